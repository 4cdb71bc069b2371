"""``jointdnn plan``: the optimal mobile/cloud schedule for measured profiles, as a table + JSON + CSV.

With ``--sweep-bandwidth LO:HI`` it also re-plans over a range of uplink bandwidths and writes where
the split moves (CSV + PNG). Imports no TensorFlow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from models.errors import UsageError

if TYPE_CHECKING:
    from harness.planner.costs import Phase, PlanningProblem
    from harness.planner.objectives import ObjectiveKind

__all__ = ["register"]


def _check_flags(
    objective: str,
    latency_weight: float | None,
    energy_weight: float | None,
    phase: str,
    sync_every: int | None,
    sweep: str | None,
    sweep_points: int | None,
) -> Phase:
    """Reject flag combinations that contradict each other; the checked phase."""
    from harness.planner.costs import check_phase

    if objective not in ("latency", "energy", "weighted"):
        raise UsageError(f"--objective must be latency, energy or weighted, got {objective!r}")
    checked = check_phase(phase, "--phase")
    if objective != "weighted" and (latency_weight is not None or energy_weight is not None):
        raise UsageError("--latency-weight/--energy-weight only apply to --objective weighted")
    if sync_every is not None and phase != "training":
        raise UsageError("--sync-every (weight download every K steps) needs --phase training")
    if sweep_points is not None and sweep is None:
        raise UsageError("--sweep-points needs --sweep-bandwidth LO:HI")
    if sweep_points is not None and sweep_points < 2:
        raise UsageError("--sweep-points must be >= 2")
    return checked


def _parse_range(text: str) -> tuple[float, float]:
    """``--sweep-bandwidth LO:HI`` in Mbps, 0 < LO < HI."""
    try:
        lo_text, hi_text = text.split(":")
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        raise UsageError(f"--sweep-bandwidth wants LO:HI in Mbps (e.g. 0.1:100), got {text!r}") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise UsageError(f"--sweep-bandwidth needs 0 < LO < HI, got {text!r}")
    return lo, hi


def plan_command(
    mobile: Annotated[Path, typer.Option("--mobile", help="Mobile profile CSV (per-segment rows).")],
    cloud: Annotated[Path, typer.Option("--cloud", help="Cloud profile CSV (same segments).")],
    link: Annotated[
        str, typer.Option("--link", help="Link profile name (3g, 4g, wifi) or YAML path.")
    ] = "4g",
    device: Annotated[
        str, typer.Option("--device", help="Device power profile name or YAML path.")
    ] = "generic-phone",
    objective: Annotated[str, typer.Option("--objective", help="latency, energy or weighted.")] = "latency",
    latency_weight: Annotated[
        float | None, typer.Option("--latency-weight", help="Per ms (weighted).")
    ] = None,
    energy_weight: Annotated[float | None, typer.Option("--energy-weight", help="Per mJ (weighted).")] = None,
    deadline_ms: Annotated[
        float | None, typer.Option("--deadline-ms", help="End-to-end latency budget.")
    ] = None,
    energy_budget_mj: Annotated[
        float | None, typer.Option("--energy-budget-mj", help="Mobile energy budget per query.")
    ] = None,
    cloud_budget_ms: Annotated[
        float | None, typer.Option("--cloud-budget-ms", help="Cloud compute time budget per query.")
    ] = None,
    phase: Annotated[str, typer.Option("--phase", help="inference or training.")] = "inference",
    sync_every: Annotated[
        int | None,
        typer.Option("--sync-every", help="Training: download cloud-trained weights every K steps."),
    ] = None,
    waiting_energy: Annotated[
        bool, typer.Option("--waiting-energy/--no-waiting-energy", help="Count the phone's waiting power.")
    ] = True,
    input_bytes: Annotated[
        int | None, typer.Option("--input-bytes", help="Model input size if the profile lacks in_bytes.")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where to write JSON/CSV (and sweep files).")
    ] = Path("plans"),
    sweep: Annotated[
        str | None, typer.Option("--sweep-bandwidth", help="Re-plan over uplink LO:HI Mbps (log-spaced).")
    ] = None,
    sweep_points: Annotated[
        int | None, typer.Option("--sweep-points", help="Points in the sweep (40).")
    ] = None,
    smartdeal: Annotated[
        Path | None,
        typer.Option(
            "--smartdeal",
            help="SmartDeal artifact of the profiled bundle: its segments read (and sync) compact weights.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Plan where each segment runs (mobile or cloud) and print the schedule with its predicted costs."""
    import numpy as np
    from rich.console import Console

    from harness.cli.plan_tables import plan_table, summary_lines
    from harness.planner import Constraints, Objective, baselines, build_problem, plan
    from harness.planner.sweep import sweep_bandwidth, write_sweep_csv
    from harness.reports.sweep import plot_sweep

    checked_phase = _check_flags(
        objective, latency_weight, energy_weight, phase, sync_every, sweep, sweep_points
    )
    bandwidths = None
    if sweep is not None:
        lo, hi = _parse_range(sweep)
        bandwidths = np.geomspace(lo, hi, sweep_points or 40)
    goal = Objective(
        cast("ObjectiveKind", objective),
        latency_weight if latency_weight is not None else 1.0,
        energy_weight if energy_weight is not None else 1.0,
    )
    budgets = Constraints(
        deadline_ms=deadline_ms, energy_budget_mj=energy_budget_mj, cloud_budget_ms=cloud_budget_ms
    )
    problem = build_problem(
        mobile,
        cloud,
        link,
        device,
        phase=checked_phase,
        include_waiting_energy=waiting_energy,
        sync_every_steps=sync_every,
        input_bytes=input_bytes,
    )
    if smartdeal is not None:
        problem = _with_smartdeal(problem, smartdeal)
    console = Console()
    stem = f"plan-{problem.model or mobile.stem}-{phase}-{problem.link.name}-{objective}"
    best = plan(problem, goal, budgets)
    base = baselines(problem, goal, budgets)
    console.print(plan_table(problem, best))
    for line in summary_lines(best, base):
        console.print(line, highlight=False, soft_wrap=True)
    json_path = best.write_json(
        out_dir / f"{stem}.json", extra={"baselines": {k: v.to_dict() for k, v in base.items()}}
    )
    csv_path = best.write_csv(out_dir / f"{stem}.csv")
    console.print(f"wrote {json_path} and {csv_path}", highlight=False, soft_wrap=True)
    if bandwidths is not None:
        points = sweep_bandwidth(problem, bandwidths, goal, budgets)
        sweep_csv = write_sweep_csv(points, out_dir / f"{stem}-sweep.csv")
        title = (
            f"{problem.model or mobile.stem} {phase}: optimum vs uplink "
            f"(downlink {problem.link.down_mbps:g} Mbit/s, RTT {problem.link.rtt_ms:g} ms, {problem.link.name})"
        )
        sweep_png = plot_sweep(
            points,
            out_dir / f"{stem}-sweep.png",
            objective=goal,
            title=title,
            constrained=bool(budgets.active()),
        )
        moves = [p for i, p in enumerate(points) if i == 0 or p.label != points[i - 1].label]
        for p in moves:
            console.print(f"  from {p.up_mbps:8.3g} Mbps up: {p.label or 'infeasible'}", highlight=False)
        console.print(f"wrote {sweep_csv} and {sweep_png}", highlight=False, soft_wrap=True)


def _with_smartdeal(problem: PlanningProblem, artifact: Path) -> PlanningProblem:
    """``problem`` with the weight bytes of the artifact's segments reduced to their compact size."""
    import dataclasses

    from models.smartdeal_artifact import segment_savings

    try:
        savings = segment_savings(artifact.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read SmartDeal artifact {artifact}: {exc.strerror or exc}") from None
    assert problem.segments.weight_bytes is not None
    weights = problem.segments.weight_bytes.copy()
    for index, saved in savings.items():
        if index >= weights.size or saved > weights[index]:
            raise UsageError(
                f"SmartDeal artifact {artifact} does not match the profile (segment {index}); "
                "export the artifact from the bundle that was profiled"
            )
        weights[index] -= saved
    segments = dataclasses.replace(problem.segments, weight_bytes=weights, param_bytes=weights)
    return dataclasses.replace(problem, segments=segments)


def register(app: typer.Typer) -> None:
    """Attach ``jointdnn plan`` to the main app."""
    app.command("plan")(plan_command)
