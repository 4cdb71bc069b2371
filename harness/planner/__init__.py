"""The JointDNN partition planner: where each segment of a chain should run, and what it costs.

Import without TensorFlow. Typical use::

    from harness.planner import Constraints, Objective, baselines, build_problem, evaluate, plan

    problem = build_problem("mobile.csv", "cloud.csv", "4g", "generic-phone")
    best = plan(problem, Objective("energy"), Constraints(deadline_ms=200))
    best.locations, best.predicted.latency_ms, evaluate(problem, ["mobile", "cloud", "mobile"])

Modules: ``costs`` (validated inputs), ``objectives``, ``costmodel`` (tables + evaluate),
``shortest_path`` (unconstrained), ``milp`` (constrained), ``brute_force`` (reference),
``baselines``, ``plan`` (the Plan), ``solve`` (entry point), ``sweep`` (bandwidth sweeps).

Pure: no TensorFlow, no plotting, no terminal output. The tables live in ``harness.cli.plan_tables``,
the sweep plot in ``harness.reports.sweep``; ``tests/test_layering.py`` checks the rule.
"""

from __future__ import annotations

from harness.planner.baselines import BASELINE_NAMES, baselines, single_cut_schedule, single_cut_schedules
from harness.planner.costmodel import METRICS, Breakdown, evaluate
from harness.planner.costs import LOCATIONS, Location, Phase, PlanningProblem, SegmentCosts, build_problem
from harness.planner.objectives import Constraints, Objective
from harness.planner.plan import Plan
from harness.planner.solve import make_plan, plan
from harness.planner.sweep import SweepPoint, sweep_bandwidth, write_sweep_csv

__all__ = [
    "BASELINE_NAMES",
    "LOCATIONS",
    "METRICS",
    "Breakdown",
    "Constraints",
    "Location",
    "Objective",
    "Phase",
    "Plan",
    "PlanningProblem",
    "SegmentCosts",
    "SweepPoint",
    "baselines",
    "build_problem",
    "evaluate",
    "make_plan",
    "plan",
    "single_cut_schedule",
    "single_cut_schedules",
    "sweep_bandwidth",
    "write_sweep_csv",
]
