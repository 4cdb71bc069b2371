"""``jointdnn run``, ``jointdnn report`` and ``jointdnn demo``: execute plans end to end and report them.

``run`` plans every link x objective, executes every plan and baseline for real (device + shaped link
+ server) and writes ``reports/<run-id>/``; ``report`` rebuilds a run's summary, plots and index from
its CSVs; ``demo`` starts an emulated low-end Android phone and runs ``run`` on the small CNN and on
ResNet-50 with a butterfly unit over 3G, 4G and Wi-Fi, then a measured uplink-bandwidth sweep, so that
every regime (mobile-only, a split, cloud-only with a JPEG upload) is chosen and measured; it stops
everything it started.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from models.errors import UsageError

if TYPE_CHECKING:
    from harness.runner.bundles import ButterflyBundle

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
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Rescale the profiles per link with two mobile-/cloud-only executions (opt-in; circular).",
        ),
    ] = False,
    image: Annotated[
        list[Path] | None,
        typer.Option("--image", help="Input photo (repeatable); default: scikit-learn's two sample photos."),
    ] = None,
    jpeg_quality: Annotated[
        int,
        typer.Option(
            "--jpeg-quality", help="Quality (1-95) of the JPEG-coded input (cloud-only status quo)."
        ),
    ] = 90,
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
        calibrate=calibrate,
        images=list(image or []),
        jpeg_quality=jpeg_quality,
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


def summary_table(run_dir: Path) -> Table:
    """The run's answers as a table that fits 80 columns (:func:`harness.reports.summary.outcomes`)."""
    import pandas as pd
    from rich import box
    from rich.table import Table

    from harness.reports.summary import outcomes

    view = outcomes(pd.read_csv(run_dir / "summary.csv", keep_default_na=True))
    table = Table(
        title=f"{run_dir.name}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
        caption="plan: M = mobile, C = cloud segments, jpeg = photo uploaded as JPEG. Values in the goal's "
        "metric: meas = median, err = (meas-pred)/meas, vs = baseline/plan (>1: plan wins).",
        caption_justify="left",
    )  # fmt: skip
    for column, justify in (
        ("link", "left"), ("goal", "left"), ("plan", "left"), ("meas", "right"), ("err", "right"),
        ("vs mobile", "right"), ("vs JPEG", "right"), ("regret", "right"),
    ):  # fmt: skip
        table.add_column(column, justify=justify, no_wrap=column != "plan")  # type: ignore[arg-type]
    for row in view.itertuples():
        table.add_row(
            str(row.link), "energy" if row.objective == "energy" else "latency", str(row.plan),
            f"{row.measured:.3g} {row.unit}", f"{row.error_pct:+.0f}%", f"x{row.vs_mobile:.2f}",
            f"x{row.vs_jpeg:.2f}", f"{row.regret:.2f}",
        )  # fmt: skip
    return table


def _print_summary(run_dir: Path) -> None:
    _console.print(summary_table(run_dir))
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


BUTTERFLY_DEMO = "resnet50_butterfly"  # the demo's name for DEMO_BUTTERFLY
DEMO_SWEEP_MBPS = "0.5,1,2,5,20,50"
DEMO_NOTE = (
    "resnet50_butterfly is ResNet-50 (int8, seeded random weights) with an untrained butterfly unit "
    "(1x1 conv to 4 channels, stride 2, 8-bit) after pool1: its latency, energy and bytes are real, its "
    "accuracy is not (train the unit with `jointdnn butterfly` for that). Its bundle has no whole-model "
    "file (half the export time), so outputs are checked against the in-process segment chain."
)


def _demo_butterfly() -> ButterflyBundle:
    """ResNet-50 with a butterfly unit after the stem: 56x56x64 -> 28x28x4 int8 (3136 bytes) crosses the
    network, ~5x less than the photo's JPEG, after ~3% of the model's MACs on the phone."""
    from harness.runner.bundles import ButterflyBundle

    return ButterflyBundle(
        "resnet50", "pool1_pool", channels=4, stride=2,
        cuts=("conv2_block3_out", "conv3_block4_out", "conv4_block6_out"), include_whole=False,
    )  # fmt: skip


def _sweep_links(base: str, mbps: list[float], folder: Path) -> list[str]:
    """YAML link specs of ``base`` at every uplink bandwidth in ``mbps`` (downlink and RTT unchanged)."""
    import yaml

    from harness.specs import load_link

    link = load_link(base)
    paths = []
    for up in mbps:
        spec = link.with_bandwidth(up).model_copy(update={"name": f"{link.name}-up{up:g}", "aliases": []})
        path = folder / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))
        paths.append(str(path))
    return paths


def _mbps_list(text: str) -> list[float]:
    if text.strip().lower() in ("", "none", "off"):
        return []
    try:
        values = [float(v) for v in _split(text, "sweep")]
    except ValueError:
        raise UsageError(f"--sweep must be comma-separated Mbps values or `none`, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise UsageError(f"--sweep bandwidths must be > 0 Mbps, got {text!r}")
    return values


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder of run directories.")] = Path("reports"),
    repeats: Annotated[int, typer.Option("--repeats", help="Executions of every schedule.")] = 2,
    models: Annotated[
        str, typer.Option("--models", help=f"Comma-separated zoo models or {BUTTERFLY_DEMO}.")
    ] = f"small_cnn,{BUTTERFLY_DEMO}",
    links: Annotated[str, typer.Option("--links", help="Comma-separated link profiles.")] = "3g,4g,wifi",
    sweep: Annotated[
        str,
        typer.Option("--sweep", help="Uplink Mbps of the measured bandwidth sweep (4G otherwise), or none."),
    ] = DEMO_SWEEP_MBPS,
    sweep_model: Annotated[str, typer.Option("--sweep-model", help="Model of the sweep.")] = BUTTERFLY_DEMO,
    device_profile: Annotated[
        str, typer.Option("--device-profile", help="Profile of the emulated phone.")
    ] = "low-end-phone",
) -> None:
    """Emulated low-end phone: the small CNN and ResNet-50 + butterfly over 3G/4G/Wi-Fi, and a measured
    bandwidth sweep; every regime (mobile-only, split, cloud-only with a JPEG upload) shows up."""
    import tempfile

    from harness.devices.adb_server import stop_adb_server_we_start
    from harness.emulator import EmulatedDevice
    from harness.runner.bundles import ensure_butterfly_bundle
    from harness.runner.run import RunConfig, run_experiment

    mbps = _mbps_list(sweep)
    run_dirs: list[Path] = []
    timings: list[tuple[str, float]] = []  # (part, seconds)
    began = time.monotonic()
    bundles_dir = Path("bundles")
    # the adb server that the emulated device's registration starts (if none ran) stops at the end
    with (
        stop_adb_server_we_start(),
        EmulatedDevice(device_profile) as emulated,
        _progress() as observer,
        tempfile.TemporaryDirectory() as tmp,
    ):
        observer.phase(f"emulated Android device ({device_profile}) at {emulated.serial}")

        def model_path(name: str) -> str:
            if name != BUTTERFLY_DEMO:
                return name
            return str(ensure_butterfly_bundle(_demo_butterfly(), "int8", bundles_dir, observer=observer))

        def run(name: str, link_names: list[str], **extra: object) -> None:
            t0 = time.monotonic()
            config = RunConfig(
                model=model_path(name), device=emulated.serial, links=link_names, repeats=repeats,
                out_dir=out, bundles_dir=bundles_dir, device_profile=device_profile, profile_runs=5,
                note=DEMO_NOTE if name == BUTTERFLY_DEMO else "", **extra,  # type: ignore[arg-type]
            )  # fmt: skip
            run_dirs.append(run_experiment(config, observer).run_dir)
            timings.append((f"{name} over {len(link_names)} links", time.monotonic() - t0))

        for model in _split(models, "models"):
            run(model, _split(links, "links"))
        if mbps:
            sweep_links = _sweep_links("4g", mbps, Path(tmp))
            run(sweep_model, sweep_links, objectives=["latency"],
                measure_kinds=("jointdnn", "mobile_only", "cloud_only_jpeg", "best_single_cut"))  # fmt: skip
    for run_dir in run_dirs:
        _print_summary(run_dir)
    _print_regimes(run_dirs)
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings)
    _console.print(f"demo finished in {time.monotonic() - began:.0f} s ({parts})", highlight=False)


def _print_regimes(run_dirs: list[Path]) -> None:
    """Which regime the plans chose where, over every run of the demo."""
    import json

    import pandas as pd

    from harness.reports.summary import outcomes

    seen: dict[str, list[str]] = {}
    for run_dir in run_dirs:
        view = outcomes(pd.read_csv(run_dir / "summary.csv"))
        model = json.loads((run_dir / "run.json").read_text()).get("model_name", run_dir.name)
        for row in view.itertuples():
            seen.setdefault(str(row.regime), []).append(f"{model}/{row.link}/{row.objective}")
    for regime_name in ("mobile-only", "split", "cloud-only"):
        cases = seen.get(regime_name, [])
        shown = ", ".join(cases[:4]) + (f" (+{len(cases) - 4} more)" if len(cases) > 4 else "")
        _console.print(f"{regime_name}: {shown or 'not chosen'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``run``, ``report`` and ``demo`` to the main app."""
    app.command("run")(run_command)
    app.command("report")(report_command)
    app.command("demo")(demo_command)
