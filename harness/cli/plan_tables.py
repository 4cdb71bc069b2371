"""``jointdnn plan``'s terminal output: a per-segment rich table of a Plan and its summary lines."""

from __future__ import annotations

from rich.table import Table

from harness.planner.costs import PlanningProblem
from harness.planner.plan import Plan

__all__ = ["plan_table", "summary_lines"]


def plan_table(problem: PlanningProblem, best: Plan) -> Table:
    """One row per segment: where it runs, its compute cost there and the bytes after it."""
    seg = problem.segments
    table = Table(title=f"{best.model or 'model'} {best.phase} plan over {best.link} ({best.solver})")
    for column in ("seg", "layers", "location", "mobile ms", "mobile mJ", "cloud ms", "out bytes"):
        table.add_column(column, justify="left" if column in ("layers", "location") else "right")
    for i, loc in enumerate(best.locations):
        table.add_row(
            str(i),
            seg.names[i],
            f"[bold cyan]{loc}[/]" if loc == "cloud" else loc,
            f"{seg.mobile_ms[i]:.3f}",
            f"{seg.mobile_mj[i]:.3f}",
            f"{seg.cloud_ms[i]:.3f}",
            f"{int(seg.out_bytes[i]):,}",
        )
    return table


def summary_lines(best: Plan, baselines: dict[str, Plan]) -> list[str]:
    """Predicted totals with their breakdowns, budgets and the comparison with the baselines."""
    p = best.predicted
    lines = [
        f"schedule {best.label}  cuts at boundaries {best.cuts or 'none'}  "
        f"objective {best.objective.kind} = {best.objective_value:.4g} {best.objective.unit}",
        f"latency      {p.latency_ms:10.3f} ms  = compute {p.latency_compute_ms:.3f} + transfer {p.latency_transfer_ms:.3f}",
        f"mobile energy{p.mobile_energy_mj:10.3f} mJ  = compute {p.mobile_compute_mj:.3f} + radio "
        f"{p.mobile_transfer_mj:.3f} + waiting {p.mobile_waiting_mj:.3f} + weight memory {p.mobile_memory_mj:.3f}",
        f"cloud        {p.cloud_ms:10.3f} ms  compute (+ {p.cloud_transfer_ms:.3f} ms send/receive)",
    ]
    for name, slack in best.slack.items():
        state = "binding" if name in best.binding else "not binding"
        lines.append(f"budget {name} = {best.constraints.active()[name]:g}: slack {slack:.4g} ({state})")
    for name, other in baselines.items():
        ratio = other.objective_value / best.objective_value if best.objective_value > 0 else float("nan")
        broken = [n for n, v in other.slack.items() if v < 0]
        lines.append(
            f"vs {name:16s} {other.label:>12.12s} {other.objective_value:10.4g} {best.objective.unit}"
            f"  ({ratio:.2f}x the optimum)" + (f"  breaks {', '.join(broken)}" if broken else "")
        )
    return lines
