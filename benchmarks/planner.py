"""Planner solve times: shortest path (unconstrained), the one-budget constrained solver, brute force.

Prints the median of repeats, all measured in this one process, for 40, 200, 1,000 and 10,000 random
segments over 4G, and brute force at 16 segments. The constrained column is ``plan()`` under a binding
cloud budget (the exact Lagrangian + label-sweep solver, ``pareto``); its peak memory is the peak of
Python/numpy allocations (tracemalloc) of one extra, untimed solve. Targets: unconstrained 1,000
segments <= 5 ms (issue 3); constrained 1,000 segments <= 20 ms and 10,000 segments <= 1 s with
<= 1 GB (issue 16). Times are process CPU time by default (``--clock cpu``): the planner is
single-threaded, and on a shared, loaded machine wall time mostly measures the other processes.
Run: ``python benchmarks/planner.py [--repeats 7] [--clock cpu|wall]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
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


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append((clock() - start) * 1e3)
    return statistics.median(times)


def peak_mb(fn: Callable[[], object]) -> float:
    """Peak traced allocation (MB) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    print(f"times: median {args.clock} ms")
    latency = Objective("latency")
    weights = objective_vector(latency)
    print(
        f"{'segments':>9} {'tables ms':>10} {'shortest path ms':>17} {'plan() ms':>10} "
        f"{'constrained ms':>15} {'peak MB':>8} {'solver':>8}"
    )
    results: dict[int, tuple[float, float, float]] = {}
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
        peak = peak_mb(lambda p=problem, b=budgets: plan(p, latency, b))
        results[n] = (full, constrained, peak)
        print(
            f"{n:>9,} {build:>10.3f} {sp:>17.3f} {full:>10.3f} {constrained:>15.1f} {peak:>8.1f} "
            f"{constrained_plan.solver:>8}  binding={','.join(constrained_plan.binding) or '-'}"
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
        f"constrained 1,000:   {results[1_000][1]:.1f} ms  (target <= 20 ms: "
        f"{results[1_000][1] / 20:.2f}x of target)"
    )
    print(
        f"constrained 10,000:  {results[10_000][1]:.1f} ms, peak {results[10_000][2]:.1f} MB  "
        f"(target <= 1000 ms and <= 1000 MB: {results[10_000][1] / 1000:.2f}x, "
        f"{results[10_000][2] / 1000:.3f}x of target)"
    )


if __name__ == "__main__":
    main()
