"""Planner solve times: shortest path (unconstrained), HiGHS integer program (constrained), brute force.

Prints the median of repeats, all measured in this one process, for 40, 200, 1,000 and 10,000 random
segments over 4G, and brute force at 16 segments. Targets (issue 3): unconstrained 1,000 segments
<= 5 ms; constrained 200 segments <= 200 ms. Run: ``python benchmarks/planner.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from harness.planner import Constraints, Objective, PlanningProblem, SegmentCosts, evaluate, plan
from harness.planner.brute_force import brute_force
from harness.planner.costmodel import build_tables, objective_vector
from harness.planner.shortest_path import shortest_path
from harness.specs import load_link


def random_problem(n: int, seed: int) -> PlanningProblem:
    """A chain with phone-like and server-like costs (ms, mJ, bytes), over the 4G link."""
    rng = np.random.default_rng(seed)
    mobile_ms = rng.uniform(1, 50, n)
    segments = SegmentCosts(
        mobile_ms=mobile_ms,
        mobile_mj=mobile_ms * rng.uniform(1.0, 2.0, n),  # 1-2 W while computing
        cloud_ms=mobile_ms / rng.uniform(5, 20, n),
        # Mostly big activations, with a few small "bottleneck" tensors where a cut pays off.
        out_bytes=np.where(
            rng.random(n) < 0.1, rng.integers(1_000, 20_000, n), rng.integers(200_000, 2_000_000, n)
        ),
        input_bytes=150_528,
    )
    return PlanningProblem(segments=segments, link=load_link("4g"), waiting_mw=300.0)


def binding_budgets(problem: PlanningProblem) -> Constraints:
    """A cloud-load budget the latency optimum breaks (half its cloud compute), so the MILP must run."""
    fastest = evaluate(problem, plan(problem, Objective("latency")).locations)
    return Constraints(cloud_budget_ms=fastest.cloud_ms / 2)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    latency = Objective("latency")
    weights = objective_vector(latency)
    print(
        f"{'segments':>9} {'tables ms':>10} {'shortest path ms':>17} {'plan() ms':>10} "
        f"{'constrained ms':>15} {'solver':>14}"
    )
    results: dict[int, tuple[float, float]] = {}
    for n in (40, 200, 1_000, 10_000):
        problem = random_problem(n, seed=n)
        build = median_ms(lambda problem=problem: build_tables(problem), 3)
        node, edge = problem.tables.scalar(weights)
        sp = median_ms(lambda node=node, edge=edge: shortest_path(node, edge), args.repeats)
        full = median_ms(lambda problem=problem: plan(problem, latency), args.repeats)
        budgets = binding_budgets(problem)
        constrained_plan = plan(problem, latency, budgets)
        reps = args.repeats if n <= 1_000 else max(1, args.repeats // 3)
        constrained = median_ms(lambda p=problem, b=budgets: plan(p, latency, b), reps)
        results[n] = (full, constrained)
        print(
            f"{n:>9,} {build:>10.3f} {sp:>17.3f} {full:>10.3f} {constrained:>15.1f} "
            f"{constrained_plan.solver:>14}  binding={','.join(constrained_plan.binding) or '-'}"
        )
    small = random_problem(16, seed=16)
    budgets = binding_budgets(small)
    budget_list = [
        (v, b)
        for v, b in [
            (objective_vector(Objective("energy")), budgets.energy_budget_mj or 0.0),
        ]
    ]
    bf = median_ms(lambda: brute_force(small.tables, weights, budget_list), 3)
    print(f"brute force, 16 segments (65,536 schedules, {len(budget_list)} budget(s)): {bf:.1f} ms")
    print(
        f"unconstrained 1,000: {results[1_000][0]:.3f} ms  (target <= 5 ms: "
        f"{results[1_000][0] / 5:.2f}x of target)"
    )
    print(
        f"constrained 200:     {results[200][1]:.1f} ms  (target <= 200 ms: "
        f"{results[200][1] / 200:.2f}x of target)"
    )


if __name__ == "__main__":
    main()
