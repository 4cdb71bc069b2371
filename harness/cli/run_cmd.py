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
from rich.table import Table

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
        images=list(image or []),
        jpeg_quality=jpeg_quality,
    )
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
