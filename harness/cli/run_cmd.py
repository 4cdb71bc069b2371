"""``jointdnn run``, ``jointdnn report`` and ``jointdnn demo``: execute plans end to end and report them.

``run`` plans every link x objective, executes every plan and baseline for real (device + shaped link
+ server) and writes ``reports/<run-id>/``; ``report`` rebuilds a run's summary, plots and index from
its CSVs; ``demo`` starts an emulated Android device and runs ``run`` on MobileNetV2 and the small CNN
over 3G, 4G and Wi-Fi, then stops everything it started.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from models.errors import UsageError

__all__ = ["RichObserver", "register"]

_console = Console()


class RichObserver:
    """Progress bars and phase lines on the terminal (rich)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def phase(self, message: str) -> None:
        self.progress.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)

    def task(self, description: str, total: int) -> int:
        return int(self.progress.add_task(description, total=total))

    def advance(self, task_id: int, steps: int = 1) -> None:
        self.progress.advance(task_id, steps)  # type: ignore[arg-type]

    def done(self, task_id: int) -> None:
        self.progress.update(task_id, visible=False)  # type: ignore[arg-type]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwind the `with` blocks: links, servers and the emulated device stop


@contextmanager
def _progress() -> Iterator[RichObserver]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console,
        transient=True,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated run cleans up like Ctrl-C
    try:
        with progress:
            yield RichObserver(progress)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _split(value: str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"--{what} needs at least one value (comma-separated)")
    return items


def run_command(
    model: Annotated[str, typer.Argument(help="Zoo model name, model file, or bundle directory.")],
    device: Annotated[
        str, typer.Option("--device", help="local (in-process), emulated (started here), or an adb serial.")
    ] = "emulated",
    server: Annotated[
        str, typer.Option("--server", help="local (uvicorn behind the shaped link) or http(s)://host:port.")
    ] = "local",
    links: Annotated[str, typer.Option("--links", help="Comma-separated link profiles (names or YAML).")] = (
        "3g,4g,wifi"
    ),
    objectives: Annotated[str, typer.Option("--objectives", help="Comma-separated: latency, energy.")] = (
        "latency,energy"
    ),
    deadline_ms: Annotated[float | None, typer.Option("--deadline-ms", help="Latency budget (ms).")] = None,
    energy_budget_mj: Annotated[
        float | None, typer.Option("--energy-budget-mj", help="Mobile energy budget (mJ).")
    ] = None,
    cloud_budget_ms: Annotated[
        float | None, typer.Option("--cloud-budget-ms", help="Cloud compute budget (ms).")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Executions of every schedule.")] = 3,
    out: Annotated[Path, typer.Option("--out", help="Folder of run directories.")] = Path("reports"),
    quant: Annotated[str, typer.Option("--quant", help="fp32, fp16 or int8 (zoo models).")] = "int8",
    shaping: Annotated[
        str, typer.Option("--shaping", help="auto (tc when privileged, else pacing), tc, or pacing.")
    ] = "auto",
    device_profile: Annotated[
        str, typer.Option("--device-profile", help="Device power profile (name or YAML).")
    ] = "generic-phone",
    bundles_dir: Annotated[Path, typer.Option("--bundles-dir", help="Where zoo models are exported.")] = Path(
        "bundles"
    ),
    profile_runs: Annotated[
        int, typer.Option("--profile-runs", help="Runs per segment when profiling.")
    ] = 10,
    token: Annotated[str | None, typer.Option("--token", help="Bearer token of a remote server.")] = None,
    adaptive: Annotated[
        bool,
        typer.Option("--adaptive", help="Re-plan per request over a replayed --trace (harness.adaptive)."),
    ] = False,
    trace: Annotated[
        str | None, typer.Option("--trace", help="Link trace: CSV, Mahimahi file, or a shipped trace name.")
    ] = None,
    policies: Annotated[
        str, typer.Option("--policies", help="--adaptive: adaptive, adaptive-energy, static:<MC schedule>.")
    ] = "adaptive",
    battery_threshold_pct: Annotated[
        float, typer.Option("--battery-threshold-pct", help="--adaptive: below this, save energy.")
    ] = 20.0,
    battery_policy: Annotated[
        str, typer.Option("--battery-policy", help="--adaptive: objective (switch to energy) or constraint.")
    ] = "objective",
    battery_start_pct: Annotated[
        float, typer.Option("--battery-start-pct", help="--adaptive: battery model's start level.")
    ] = 100.0,
    battery_capacity_mj: Annotated[
        float | None, typer.Option("--battery-capacity-mj", help="--adaptive: battery model's capacity.")
    ] = None,
    load_phase: Annotated[
        list[str] | None,
        typer.Option("--load-phase", help="--adaptive: START:STOP[:CONCURRENCY] server load (repeatable)."),
    ] = None,
    duration_s: Annotated[
        float | None, typer.Option("--duration-s", help="--adaptive: seconds of trace (default: all).")
    ] = None,
) -> None:
    """Plan every link x objective, execute every plan and baseline end to end, write the report."""
    from harness.planner import Constraints
    from harness.runner.run import RunConfig, run_experiment

    if shaping not in ("auto", "tc", "pacing"):
        raise UsageError(f"--shaping must be auto, tc or pacing, got {shaping!r}")
    config = RunConfig(
        model=model,
        quant=quant,
        device=device,
        server=server,
        links=_split(links, "links"),
        objectives=_split(objectives, "objectives"),
        constraints=Constraints(
            deadline_ms=deadline_ms, energy_budget_mj=energy_budget_mj, cloud_budget_ms=cloud_budget_ms
        ),
        repeats=repeats,
        out_dir=out,
        shaping=shaping,  # type: ignore[arg-type]
        device_profile=device_profile,
        bundles_dir=bundles_dir,
        profile_runs=profile_runs,
        token=token,
    )
    if adaptive:
        from harness.cli.adaptive_cmd import run_adaptive_command

        run_adaptive_command(
            config, trace=trace, policies=policies, battery_threshold_pct=battery_threshold_pct,
            battery_policy=battery_policy, battery_start_pct=battery_start_pct,
            battery_capacity_mj=battery_capacity_mj, load_phases=load_phase or [], duration_s=duration_s,
            console=_console,
        )  # fmt: skip
        return
    with _progress() as observer:
        result = run_experiment(config, observer)
    _print_summary(result.run_dir)


def _compact(schedule: str) -> str:
    """``MMMMCCC`` -> ``M4 C3`` (run lengths), so 34-segment schedules fit a terminal."""
    if not isinstance(schedule, str) or not schedule:
        return "infeasible"
    runs: list[tuple[str, int]] = []
    for letter in schedule:
        if runs and runs[-1][0] == letter:
            runs[-1] = (letter, runs[-1][1] + 1)
        else:
            runs.append((letter, 1))
    return " ".join(f"{letter}{count}" for letter, count in runs)


def _print_summary(run_dir: Path) -> None:
    import pandas as pd
    from rich.table import Table

    summary = pd.read_csv(run_dir / "summary.csv")
    table = Table(title=f"{run_dir.name} (M = mobile, C = cloud segments)", title_justify="left")
    for column in (
        "link",
        "objective",
        "plan",
        "pred ms",
        "meas ms",
        "meas mJ",
        "vs cloud",
        "vs mobile",
        "regret",
    ):
        table.add_column(column, justify="left" if column in ("link", "objective", "plan") else "right")
    for row in summary.itertuples():
        table.add_row(
            str(row.link), str(row.objective), _compact(row.schedule),  # type: ignore[arg-type]
            f"{row.pred_latency_ms:.3g}", f"{row.meas_latency_ms:.3g}", f"{row.meas_energy_mj:.3g}",
            f"x{row.speedup_vs_cloud_only:.3g}", f"x{row.speedup_vs_mobile_only:.3g}", f"{row.regret:.3f}",
        )  # fmt: skip
    _console.print(table)
    _console.print(f"report: [bold]{run_dir / 'index.md'}[/]", highlight=False)


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (reports/<run-id>).")],
) -> None:
    """Rebuild a run's summary.csv, plots and index.md from its CSVs."""
    from harness.reports import build_report

    report = build_report(run_dir)
    for plot in report.plots:
        _console.print(f"  {plot}", highlight=False)
    _console.print(f"report: [bold]{report.index}[/]", highlight=False)


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder of run directories.")] = Path("reports"),
    repeats: Annotated[int, typer.Option("--repeats", help="Executions of every schedule.")] = 2,
    models: Annotated[str, typer.Option("--models", help="Comma-separated zoo models.")] = (
        "mobilenet_v2,small_cnn"
    ),
    links: Annotated[str, typer.Option("--links", help="Comma-separated link profiles.")] = "3g,4g,wifi",
) -> None:
    """Start an emulated Android device, run MobileNetV2 and the small CNN over 3G/4G/Wi-Fi, report."""
    from harness.devices.adb_server import adb_server_port, kill_adb_server, port_open
    from harness.emulator import EmulatedDevice
    from harness.runner.run import RunConfig, run_experiment

    adb_port = adb_server_port()  # $ANDROID_ADB_SERVER_PORT, else 5037
    started_adb = not port_open(adb_port)
    run_dirs: list[Path] = []
    began = time.monotonic()
    try:
        with EmulatedDevice() as emulated, _progress() as observer:
            observer.phase(f"emulated Android device at {emulated.serial}")
            for model in _split(models, "models"):
                config = RunConfig(
                    model=model,
                    device=emulated.serial,
                    links=_split(links, "links"),
                    repeats=repeats,
                    out_dir=out,
                    profile_runs=5,
                )
                run_dirs.append(run_experiment(config, observer).run_dir)
    finally:
        if started_adb:  # we started the adb server: stop it again
            kill_adb_server(adb_port)
    for run_dir in run_dirs:
        _print_summary(run_dir)
    _console.print(f"demo finished in {time.monotonic() - began:.0f} s", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``run``, ``report`` and ``demo`` to the main app."""
    app.command("run")(run_command)
    app.command("report")(report_command)
    app.command("demo")(demo_command)
