"""``jointdnn run MODEL --adaptive --trace FILE``: the adaptive run (:mod:`harness.adaptive.loop`) from the CLI.

``run_cmd`` owns the flags; this module turns them into an :class:`AdaptiveRunConfig`, runs it with
the progress display, and prints one line per policy (mean latency and energy, switches, decision time).
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.runner.run import RunConfig
from models.errors import UsageError

__all__ = ["parse_load_phase", "run_adaptive_command"]


def parse_load_phase(text: str) -> tuple[float, float, int]:
    """``START:STOP[:CONCURRENCY]`` (seconds of trace time) -> the phase's numbers."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        start, stop = float(parts[0]), float(parts[1])
        concurrency = int(parts[2]) if len(parts) == 3 else 4
    except ValueError:
        raise UsageError(
            f"--load-phase takes START:STOP[:CONCURRENCY] in trace seconds, got {text!r}"
        ) from None
    return start, stop, concurrency


def run_adaptive_command(
    config: RunConfig,
    *,
    trace: str | None,
    policies: str,
    battery_threshold_pct: float,
    battery_policy: str,
    battery_start_pct: float,
    battery_capacity_mj: float | None,
    load_phases: list[str],
    duration_s: float | None,
    console: Console,
) -> Path:
    """Run the adaptive experiment the flags describe (``config``: the runner's own flags)."""
    from harness.adaptive.controller import ControllerSettings
    from harness.adaptive.loop import AdaptiveRunConfig, LoadPhase, run_adaptive
    from harness.cli.run_cmd import _progress, _split

    if not trace:
        raise UsageError("--adaptive needs --trace FILE (a CSV or Mahimahi trace, or a shipped trace name)")
    settings = ControllerSettings(
        objective=config.objectives[0],  # the first of --objectives; the battery policy may add energy
        constraints=config.constraints,
        battery_threshold_pct=battery_threshold_pct,
        battery_policy=battery_policy,  # type: ignore[arg-type]
    )
    adaptive = AdaptiveRunConfig(
        run=config,
        trace=trace,
        policies=_split(policies, "policies"),
        settings=settings,
        load=[LoadPhase(*parse_load_phase(p)) for p in load_phases],
        battery_start_pct=battery_start_pct,
        battery_capacity_mj=battery_capacity_mj if battery_capacity_mj is not None else math.inf,
        duration_s=duration_s,
    )
    with _progress() as observer:
        result = run_adaptive(adaptive, observer)
    table = Table(title=f"{result.run_dir.name}: {result.trace.name}", title_justify="left")
    for column in ("policy", "requests", "mean ms", "mean mJ", "switches", "decision µs (median)"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for policy, rows in result.decisions.groupby("policy", sort=False):
        table.add_row(
            str(policy),
            str(len(rows)),
            f"{rows['latency_ms'].mean():.1f}",
            f"{rows['mobile_energy_mj'].mean():.1f}",
            str(int(rows["switched"].sum())),
            f"{rows['decision_us'].median():.1f}" if str(policy).startswith("adaptive") else "-",
        )
    console.print(table)
    console.print(f"decisions: {result.run_dir / 'decisions.csv'}")
    return result.run_dir
