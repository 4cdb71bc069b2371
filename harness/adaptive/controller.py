"""The online controller: per request, pick a schedule for the conditions the estimators report.

Each decision maps an :class:`Observation` (estimated up/down Mbps, per-request latency, expected server
queueing, battery level) to a schedule, in microseconds:

* **Plan cache over a grid.** Conditions are snapped to a grid (``grid_step`` in log2 units: 0.5 =
  steps of 41 %) and the planner runs once per grid cell and objective; later decisions in the same
  cell are a dictionary lookup. The cell keeps the scalar cost tables, so the cost of *any* schedule in
  that cell is a short sum.
* **Cloud load.** The expected queueing delay is charged to every cloud request (JointDNN's cloud-load
  idea): it is added to the per-request latency the planner charges each mobile->cloud->mobile hop,
  together with the phone's waiting energy for it (the cost model's round-trip terms).
* **Battery.** Below ``battery_threshold_pct`` the controller either switches to the energy objective
  (``battery_policy="objective"``) or keeps minimising latency under an energy budget of
  ``battery_budget_factor`` x the least energy any schedule needs in that cell (``"constraint"``: the
  constrained solver, :mod:`harness.planner.pareto`).
* **Hysteresis.** It leaves the current schedule only for one predicted ``switch_margin`` better under
  the current conditions and objective (or when the current one breaks a budget the other meets), and
  not within ``min_dwell`` requests of the last switch, so conditions hovering around a crossover do
  not make it flap.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from harness.links import radio
from harness.planner import Constraints, Objective, PlanningProblem, plan
from harness.planner.costmodel import CONSTRAINT_VECTORS, objective_vector
from harness.planner.objectives import budget_limit
from harness.planner.shortest_path import shortest_path
from models.errors import InfeasibleError, UsageError

__all__ = ["AdaptiveController", "ControllerSettings", "Decision", "Observation"]

BatteryPolicy = Literal["objective", "constraint"]


@dataclass(frozen=True)
class Observation:
    """The controller's inputs at one decision."""

    up_mbps: float
    down_mbps: float
    rtt_ms: float  # per-request latency (round trip + serving overhead), ms
    queue_ms: float = 0.0  # expected server queueing of one request, ms
    battery_pct: float = 100.0


@dataclass(frozen=True)
class ControllerSettings:
    """How the controller decides (see the module docstring)."""

    objective: str = "latency"  # latency | energy (when the battery is fine)
    constraints: Constraints = field(default_factory=Constraints)
    battery_threshold_pct: float = 20.0
    battery_policy: BatteryPolicy = "objective"
    battery_budget_factor: float = 1.2  # "constraint": energy budget = factor x least energy
    grid_step: float = 0.5  # log2 units per grid cell (0.5: cells 41 % wide)
    switch_margin: float = 0.10  # a new schedule must be predicted this much better
    min_dwell: int = 2  # requests between two switches

    def __post_init__(self) -> None:
        if self.objective not in ("latency", "energy"):
            raise UsageError(f"the adaptive objective must be latency or energy, got {self.objective!r}")
        if self.battery_policy not in ("objective", "constraint"):
            raise UsageError(f"battery policy must be objective or constraint, got {self.battery_policy!r}")
        if not 0 <= self.switch_margin < 1 or self.grid_step <= 0 or self.min_dwell < 0:
            raise UsageError("switch margin must be in [0, 1), grid step > 0 and dwell >= 0")


@dataclass(frozen=True)
class Decision:
    """One decision: the schedule to run and why."""

    schedule: tuple[int, ...]  # 0 mobile / 1 cloud per segment
    objective: str  # what was minimised
    mode: str  # normal | battery-low
    switched: bool
    cache_hit: bool
    predicted: float  # predicted objective value of the schedule in the cell (ms or mJ)
    best_predicted: float  # the cell's optimum
    feasible: bool  # the cell's plan met its budgets (else: best effort)
    decision_us: float  # wall time of decide()

    @property
    def label(self) -> str:
        return "".join("C" if loc else "M" for loc in self.schedule)


@dataclass
class _Cell:
    """One grid cell's plan and the scalar tables to price any schedule there."""

    best: tuple[int, ...]
    node: list[list[float]]  # (n, 2) objective per segment and location
    edge: list[list[list[float]]]  # (n+1, 2, 2) objective per boundary
    limits: list[tuple[list[list[float]], list[list[list[float]]], float]]  # per budget: node, edge, limit
    feasible: bool

    def cost(self, schedule: tuple[int, ...]) -> float:
        """The objective value of ``schedule`` in this cell."""
        return _price(self.node, self.edge, schedule)

    def meets(self, schedule: tuple[int, ...]) -> bool:
        """Whether ``schedule`` meets every budget in this cell."""
        return all(_price(node, edge, schedule) <= limit for node, edge, limit in self.limits)


def _price(node: list[list[float]], edge: list[list[list[float]]], schedule: tuple[int, ...]) -> float:
    """Sum of scalar node and edge costs along a schedule (lists: a few µs for tens of segments)."""
    total, prev = 0.0, 0
    for i, loc in enumerate(schedule):
        total += edge[i][prev][loc] + node[i][loc]
        prev = loc
    return total + edge[len(schedule)][prev][0]


def _lists(
    problem: PlanningProblem, weights: np.ndarray
) -> tuple[list[list[float]], list[list[list[float]]]]:
    node, edge = problem.tables.scalar(weights)
    return node.tolist(), edge.tolist()


def _snap(value: float, step: float, floor: float) -> float:
    """``value`` rounded to the log2 grid (values below ``floor`` count as ``floor``)."""
    return float(2.0 ** (round(math.log2(max(value, floor)) / step) * step))


class AdaptiveController:
    """Picks a schedule per request for a base problem whose link conditions change (see module doc).

    ``problem`` gives the segments' costs and the link's radio power model; its link's rates and
    latency are replaced by each observation's. ``request_overhead_ms`` is the serving cost of one
    request beyond the round trip (the runner's calibration) when ``rtt_ms`` observations exclude it.
    """

    def __init__(self, problem: PlanningProblem, settings: ControllerSettings | None = None):
        self.problem = problem
        self.settings = settings or ControllerSettings()
        self.current: tuple[int, ...] | None = None
        self.since_switch = 0
        self.switches = 0
        self._cells: dict[tuple[object, ...], _Cell] = {}

    # -- conditions -> cell ---------------------------------------------------------------------------

    def _mode(self, obs: Observation) -> str:
        return "battery-low" if obs.battery_pct < self.settings.battery_threshold_pct else "normal"

    def _key(self, obs: Observation, mode: str) -> tuple[object, ...]:
        s = self.settings.grid_step
        return (
            _snap(obs.up_mbps, s, 0.01),
            _snap(obs.down_mbps, s, 0.01),
            _snap(obs.rtt_ms + obs.queue_ms + 1.0, s, 1.0),  # +1: a log grid needs a floor above 0
            mode,
        )

    def cell_problem(self, key: tuple[object, ...]) -> PlanningProblem:
        """The planning problem of a grid cell: its rates, and per transfer half its request latency."""
        up, down, latency, _ = key
        link = self.problem.link.model_copy(
            update={"up_mbps": up, "down_mbps": down, "rtt_ms": radio.one_way_ms(float(latency) - 1.0)}  # type: ignore[arg-type]
        )
        return replace(self.problem, link=link)

    def _plan_cell(self, key: tuple[object, ...], mode: str) -> _Cell:
        settings = self.settings
        problem = self.cell_problem(key)
        objective_name = settings.objective
        constraints = settings.constraints
        if mode == "battery-low":
            if settings.battery_policy == "objective":
                objective_name = "energy"
            else:
                energy_node, energy_edge = problem.tables.scalar(CONSTRAINT_VECTORS["energy_budget_mj"])
                least = shortest_path(energy_node, energy_edge)[1]
                constraints = replace(constraints, energy_budget_mj=least * settings.battery_budget_factor)
        objective = Objective(objective_name)  # type: ignore[arg-type]
        try:
            best = plan(problem, objective, constraints)
            feasible = True
        except InfeasibleError:  # best effort: the objective's optimum without the budgets
            best, feasible = plan(problem, objective), False
        node, edge = _lists(problem, objective_vector(objective))
        limits = [
            (*_lists(problem, CONSTRAINT_VECTORS[name]), budget_limit(budget))
            for name, budget in constraints.active().items()
        ]
        return _Cell(tuple(best.schedule), node, edge, limits, feasible)

    # -- the decision ---------------------------------------------------------------------------------

    def objective_of(self, mode: str) -> str:
        """What is minimised in a mode."""
        low = mode == "battery-low" and self.settings.battery_policy == "objective"
        return "energy" if low else self.settings.objective

    def decide(self, obs: Observation) -> Decision:
        """The schedule for the next request (see the module docstring)."""
        started = time.perf_counter()
        mode = self._mode(obs)
        key = self._key(obs, mode)
        cell = self._cells.get(key)
        hit = cell is not None
        if cell is None:
            cell = self._cells[key] = self._plan_cell(key, mode)
        best_cost = cell.cost(cell.best)
        switched = False
        if self.current is None:
            self.current = cell.best  # the first choice is not a switch
            self.since_switch = 0
        elif cell.best != self.current and self.since_switch >= self.settings.min_dwell:
            current_cost = cell.cost(self.current)
            rescue = cell.feasible and bool(cell.limits) and not cell.meets(self.current)
            if rescue or best_cost < current_cost * (1 - self.settings.switch_margin):
                self.current, switched = cell.best, True
        if switched:
            self.switches += 1
            self.since_switch = 0
        self.since_switch += 1
        schedule = self.current
        return Decision(
            schedule=schedule,
            objective=self.objective_of(mode),
            mode=mode,
            switched=switched,
            cache_hit=hit,
            predicted=cell.cost(schedule),
            best_predicted=best_cost,
            feasible=cell.feasible,
            decision_us=(time.perf_counter() - started) * 1e6,
        )

    def cell_decision(self, obs: Observation) -> str:
        """The label of the cell's optimum for ``obs`` (no hysteresis, no state change)."""
        mode = self._mode(obs)
        key = self._key(obs, mode)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = self._plan_cell(key, mode)
        return "".join("C" if loc else "M" for loc in cell.best)

    @property
    def cached_cells(self) -> int:
        return len(self._cells)
