"""What the runner plans: the problem of one link, and the plans.csv rows of its plans and baselines.

The planner charges its link ``rtt_ms`` once per transfer, i.e. once per direction. Over HTTP, a request
(upload) and its response (download) share a single round trip, so each direction really costs the
one-way latency; the runner therefore plans with half the round trip (plus the per-request overhead
measured on the link with a probe request, :mod:`harness.runner.calibration`) as the per-transfer
latency (:func:`planning_link`), which makes a mobile->cloud->mobile hop cost one round trip. Segment
costs and per-invocation overheads are the profiles' own; the compute scales of a
:class:`~harness.runner.calibration.Calibration` are 1.0 unless ``--calibrate`` asked for them.

With a :class:`~harness.planner.input_codec.JpegInput` (the run's photo as a JPEG: its encoded size and
the server's measured decode time), every schedule that starts on the cloud also exists as a JPEG
variant (label suffix ``+jpeg``): the objective's plan is the better of the raw and the JPEG problem's
optimum, the baseline ``cloud_only_jpeg`` is the status quo of a real app, and cut 0 is listed (and
executed) in both variants.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from harness.links import radio
from harness.planner import (
    Constraints,
    Objective,
    Plan,
    PlanningProblem,
    baselines,
    build_problem,
    plan,
    single_cut_schedule,
)
from harness.planner.input_codec import JpegInput, jpeg_problem
from harness.planner.solve import make_plan
from harness.reports.schema import PlanRow, RunKey, values_from
from harness.runner.calibration import Calibration
from harness.runner.stages import JPEG_SUFFIX
from harness.specs import DeviceSpec, LinkSpec
from models.errors import InfeasibleError

__all__ = ["best_plan", "plan_rows", "planning_link", "planning_problem"]


def planning_link(
    link: LinkSpec, request_overhead_ms: float = 0.0, burst_bytes: tuple[float, float] = (0.0, 0.0)
) -> LinkSpec:
    """The link as the planner should see it: per-transfer latency = one-way latency (see module doc).

    ``burst_bytes`` (up, down): what the shaped link passes at line rate per transfer.
    """
    return link.model_copy(
        update={
            "rtt_ms": radio.one_way_ms(link.rtt_ms, request_overhead_ms),
            "up_burst_bytes": burst_bytes[0],
            "down_burst_bytes": burst_bytes[1],
        }
    )


def planning_problem(
    mobile_csv: Path, cloud_csv: Path, link: LinkSpec, power: DeviceSpec, calibration: Calibration
) -> PlanningProblem:
    """The problem the runner plans: the profiles (scaled by ``calibration``, 1.0 by default), over the planning link."""
    bursts = (calibration.up_burst_bytes, calibration.down_burst_bytes)
    if math.isfinite(calibration.rtt_ms):  # the measured round trip (the overhead is relative to it)
        link = link.model_copy(update={"rtt_ms": calibration.rtt_ms})
    problem = build_problem(
        mobile_csv, cloud_csv, planning_link(link, calibration.request_overhead_ms, bursts), power
    )
    seg = problem.segments
    scaled = replace(
        seg,
        mobile_ms=seg.mobile_ms * calibration.mobile_scale,
        mobile_mj=seg.mobile_mj * calibration.mobile_energy_scale,
        cloud_ms=seg.cloud_ms * calibration.cloud_scale,
    )
    return replace(problem, segments=scaled)


def _plan_row(key: RunKey, p: Plan, objective: str, kind: str, cut: int = -1, jpeg: bool = False) -> PlanRow:
    jpeg = jpeg and p.label.startswith("C")  # a schedule starting on the mobile uploads no input
    return PlanRow(
        **asdict(key),
        objective=objective,
        kind=kind,
        schedule=p.label + (JPEG_SUFFIX if jpeg else ""),
        cut=cut,
        cuts=";".join(str(c) for c in p.cuts),
        solver=p.solver,
        constraints=json.dumps(p.constraints.active()),
        **values_from(PlanRow, "predicted", p.predicted),
        input_codec="jpeg" if jpeg else "raw",
    )


def _baseline_cut(kind: str, baseline: Plan, n: int) -> int:
    """The single cut ``k`` of a baseline (segments before ``k`` on the mobile), -1 if it has none."""
    if kind == "best_single_cut":
        return baseline.label.find("C") if "C" in baseline.label else n
    return {"mobile_only": n, "cloud_only": 0}.get(kind, -1)


def best_plan(
    problem: PlanningProblem, jpeg: PlanningProblem | None, objective: Objective, constraints: Constraints
) -> tuple[Plan, bool]:
    """The objective's plan over both input codecs: (plan, whether it uploads the JPEG)."""
    try:
        raw: Plan | None = plan(problem, objective, constraints)
    except InfeasibleError:
        if jpeg is None:
            raise
        raw = None
    if jpeg is not None:
        try:
            coded = plan(jpeg, objective, constraints)
        except InfeasibleError:
            if raw is None:
                raise
        else:
            if raw is None or (coded.label.startswith("C") and coded.objective_value < raw.objective_value):
                return coded, True
    assert raw is not None
    return raw, False


def plan_rows(
    problem: PlanningProblem,
    objectives: Sequence[str],
    constraints: Constraints,
    base: Mapping[str, str],
    jpeg: JpegInput | None = None,
) -> list[PlanRow]:
    """plans.csv rows of one link: every single cut, then per objective the plan and the baselines.

    ``base`` fills the :class:`~harness.reports.schema.RunKey` columns (run, model, device, link).
    An objective whose budgets no schedule meets gets a row with ``feasible`` False and the reason.
    ``jpeg``: the JPEG input's size and decode time; adds the JPEG variants (see the module doc).
    """
    n = problem.n
    key = RunKey(**base)
    coded = jpeg_problem(problem, jpeg) if jpeg is not None else None
    rows = [
        _plan_row(key, make_plan(problem, single_cut_schedule(n, k), Objective()), "any", "single_cut", k)
        for k in range(n + 1)
    ]
    if coded is not None:
        cloud_only = make_plan(coded, single_cut_schedule(n, 0), Objective())
        rows.append(_plan_row(key, cloud_only, "any", "single_cut", 0, jpeg=True))
    for name in objectives:
        objective = Objective(name)  # type: ignore[arg-type]
        try:
            chosen, uses_jpeg = best_plan(problem, coded, objective, constraints)
            rows.append(_plan_row(key, chosen, name, "jointdnn", jpeg=uses_jpeg))
        except InfeasibleError as exc:
            rows.append(
                PlanRow(
                    **asdict(key),
                    objective=name,
                    kind="jointdnn",
                    constraints=json.dumps(constraints.active()),
                    feasible=False,
                    error=str(exc),
                )
            )
        for kind, baseline in baselines(problem, objective, constraints).items():
            rows.append(_plan_row(key, baseline, name, kind, _baseline_cut(kind, baseline, n)))
        if coded is not None:
            status_quo = baselines(coded, objective, constraints)["cloud_only"]
            rows.append(_plan_row(key, status_quo, name, "cloud_only_jpeg", 0, jpeg=True))
    return rows
