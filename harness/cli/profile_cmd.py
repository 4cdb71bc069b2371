"""``jointdnn profile`` and ``jointdnn devices``: measure segments on devices, list connected devices."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from models.errors import DeviceError, DeviceNotFoundError, UsageError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from harness.devices.base import Device
    from harness.profiling.job import JobListener, JobResult
    from models.profile_rows import ProfileRow

__all__ = ["register"]


def _open_devices(
    spec: str,
    *,
    benchmark_binary: Path | None,
    power_profile: str,
    energy_window_s: float,
    perfetto: bool = False,
) -> list[Device]:
    """``local`` -> LocalDevice; ``all`` -> every ready adb device; else one adb serial (or ANDROID_SERIAL)."""
    from harness.devices.adb import AdbDevice, list_serials
    from harness.devices.local import LocalDevice
    from harness.specs import load_device

    profile = load_device(power_profile)
    if spec == "local":
        return [LocalDevice(profile)]
    serials = list_serials() if spec == "all" else [spec or ""]
    if spec == "all" and not serials:
        raise DeviceNotFoundError(
            "no Android device is connected (adb devices is empty); connect one, or use --device local"
        )
    return [
        AdbDevice(
            serial or None,
            benchmark_binary=benchmark_binary,
            power_spec=profile,
            energy_window_s=energy_window_s,
            perfetto=perfetto,
        )
        for serial in serials
    ]


def _rich_listener(progress: Progress) -> JobListener:
    """One progress bar per device (rich), with ETA; safe to call from the worker threads."""
    from harness.profiling.job import JobListener

    class RichListener(JobListener):
        def __init__(self) -> None:
            self.tasks: dict[str, TaskID] = {}
            self.lock = threading.Lock()

        def started(self, device: str, total: int, done: int) -> None:
            with self.lock:
                self.tasks[device] = progress.add_task(device, total=total, completed=done)

        def unit_done(self, device: str, row: ProfileRow, measured: bool) -> None:
            label = "whole" if row.segment < 0 else f"segment {row.segment}"
            progress.update(
                self.tasks[device], advance=1, description=f"{device}: {label} {row.latency_ms_median:.3f} ms"
            )

        def finished(self, device: str, result: JobResult | None, error: BaseException | None) -> None:
            if device in self.tasks:
                state = "done" if error is None else "[red]stopped"
                progress.update(self.tasks[device], description=f"{device}: {state}")

    return RichListener()


def profile(
    model: Annotated[
        str, typer.Argument(help="zoo model name (small_cnn, mobilenet_v2, ...) or a model file")
    ],
    device: Annotated[
        str,
        typer.Option("--device", "-d", help="adb serial, 'local' (this host) or 'all' (every adb device)"),
    ] = "",
    quant: Annotated[str, typer.Option("--quant", "-q", help="fp32 | fp16 | int8")] = "fp32",
    threads: Annotated[int, typer.Option("--threads", min=1, help="inference threads")] = 1,
    runs: Annotated[int, typer.Option("--runs", min=1, help="minimum measured runs per segment")] = 50,
    warmup_runs: Annotated[int, typer.Option("--warmup-runs", min=0)] = 1,
    min_secs: Annotated[
        float, typer.Option("--min-secs", min=0.0, help="minimum measured seconds per segment")
    ] = 0.0,
    max_secs: Annotated[float, typer.Option("--max-secs", min=0.1)] = 150.0,
    xnnpack: Annotated[bool | None, typer.Option("--xnnpack/--no-xnnpack", help="pass --use_xnnpack")] = None,
    taskset: Annotated[
        str | None, typer.Option("--taskset", help="CPU mask in hex (e.g. f0: big cores)")
    ] = None,
    energy: Annotated[bool, typer.Option("--energy/--no-energy", help="measure battery drain")] = True,
    energy_window: Annotated[
        float, typer.Option("--energy-window", min=0.1, help="seconds per run when measuring energy")
    ] = 1.0,
    backward: Annotated[
        bool,
        typer.Option(
            "--backward/--no-backward",
            help="time each segment's backward pass (builtin-op .tflite; local and adb devices)",
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="remeasure rows that are already in the CSV")
    ] = False,
    benchmark_binary: Annotated[
        Path | None,
        typer.Option(
            "--benchmark-binary", help="benchmark_model built for the phone's ABI (pushed if missing)"
        ),
    ] = None,
    power_profile: Annotated[
        str, typer.Option("--power-profile", help="device power profile (fallback energy model)")
    ] = "generic-phone",
    bundle_root: Annotated[Path, typer.Option("--bundle-dir", help="where exported bundles go")] = Path(
        "bundles"
    ),
    out: Annotated[Path, typer.Option("--out", help="root of the measured profiles")] = Path(
        "device_profiles/measured"
    ),
    cooldown_temp: Annotated[
        float | None,
        typer.Option(
            "--cooldown-temp", help="before each unit, wait until the hottest thermal zone is <= C (°C)"
        ),
    ] = None,
    cooldown_s: Annotated[
        float | None,
        typer.Option(
            "--cooldown-s",
            min=0.0,
            help="with --cooldown-temp: the longest wait per unit (default 300 s); alone: a pause before each unit",
        ),
    ] = None,
    perfetto: Annotated[
        bool,
        typer.Option(
            "--perfetto/--no-perfetto",
            help="adb: energy from Perfetto power rails / battery counters (falls back to sysfs sampling)",
        ),
    ] = False,
) -> None:
    """Export MODEL's segments (cached), push them, and time every segment and the whole model.

    Appends one row per segment to OUT/<device>/<model>-<quant>.csv as each finishes; rerunning the same
    command resumes (rows already measured with the same artifact and settings are skipped).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.profiling.job import ProfileSettings, export_for_profiling, profile_devices

    if quant not in ("fp32", "fp16", "int8"):
        raise UsageError(f"unknown quantization {quant!r}; choose fp32, fp16 or int8")
    console = Console(stderr=True)
    devices = _open_devices(
        device,
        benchmark_binary=benchmark_binary,
        power_profile=power_profile,
        energy_window_s=energy_window,
        perfetto=perfetto,
    )
    with console.status(f"exporting {model} ({quant}) through the artifact cache"):
        bundle_dir = export_for_profiling(model, quant, bundle_root)
    settings = ProfileSettings(
        threads=threads,
        runs=runs,
        warmup_runs=warmup_runs,
        min_secs=min_secs,
        max_secs=max_secs,
        use_xnnpack=xnnpack,
        taskset_mask=taskset,
        measure_energy=energy,
        backward=backward,
        force=force,
        cooldown_temp_c=cooldown_temp,
        cooldown_s=cooldown_s,
    )

    def resume_hint(dev: Device) -> str:
        return f"jointdnn profile {model} --device {dev.serial} --quant {quant} --threads {threads} --runs {runs}"

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        results = profile_devices(
            devices,
            bundle_dir,
            settings,
            out_root=out,
            listener=_rich_listener(progress),
            resume_hint=resume_hint,
        )
    failures = [r for r in results if isinstance(r, BaseException)]
    for result in results:
        if not isinstance(result, BaseException):
            typer.echo(
                f"{result.device}: {len(result.measured)} measured, {len(result.skipped)} already there "
                f"-> {result.csv_path}"
            )
            throttled = sum(row.throttled for row in result.rows)
            if result.warnings:
                console.print(
                    f"[yellow]warning:[/] {result.device}: {len(result.warnings)} of {len(result.rows)} units "
                    f"changed device state ({throttled} throttled); see the columns throttled, state_notes",
                    highlight=False,
                    soft_wrap=True,
                )
    if failures:
        for failure in failures[1:]:
            console.print(f"[bold red]error:[/] {failure}", highlight=False, soft_wrap=True)
        first = failures[0]
        if isinstance(first, DeviceError | UsageError) or not isinstance(first, Exception):
            raise first
        raise DeviceError(str(first))


def devices() -> None:
    """List the devices the adb server sees, with their facts."""
    from harness.devices.adb import AdbDevice, adb_client

    infos = adb_client().list()
    if not infos:
        typer.echo("no devices (connect a phone, `adb connect HOST:PORT`, or `jointdnn emulator start`)")
        return
    typer.echo(f"{'serial':<24} {'state':<13} {'model':<28} {'abi':<12} {'sdk':>3} {'cpus':>4} boot  id")
    for info in infos:
        if info.state != "device":
            typer.echo(f"{info.serial:<24} {info.state:<13}")
            continue
        facts = AdbDevice(info.serial).facts()
        typer.echo(
            f"{facts.serial:<24} {info.state:<13} {facts.model[:28]:<28} {facts.abi:<12} {facts.sdk:>3} "
            f"{facts.cpu_count:>4} {'yes' if facts.boot_completed else 'no':<5} {facts.device_id}"
        )


def register(app: typer.Typer) -> None:
    """Attach ``profile`` and ``devices`` to the main app."""
    app.command("profile")(profile)
    app.command("devices")(devices)
