"""The JointDNN cost model: additive cost tables and :func:`evaluate` for any schedule.

A schedule gives each of the ``n`` segments a location (0 = mobile, 1 = cloud). The input starts on
the mobile and the result ends there, so boundary ``i`` (before segment ``i``; boundary ``n`` after the
last) transfers ``boundary_bytes[i]`` whenever the locations on its two sides differ. Every quantity
is a sum of per-segment terms ``node[i, loc_i]`` and per-boundary terms ``edge[i, loc_{i-1}, loc_i]``
(with ``loc_{-1} = loc_n = mobile``), so one table serves the shortest path, the integer program, the
brute force and the evaluation of baselines — they cannot disagree about what a schedule costs.

Fixed costs per invocation (measured by profiling, ``overhead_ms`` in the profiles): a mobile stage or
a cloud request starting at segment ``i`` pays that segment's overhead once, on the boundary where it
starts (:func:`_add_invocation_overheads`).

Per transfer of ``B`` bytes: time ``serial_ms + rtt_ms`` with ``serial_ms = B*8/bandwidth`` (less the
link's burst bytes, which a shaper's token bucket lets through at line rate; 0 on a radio link); radio
energy ``alpha * Mbit + beta * serial_ms`` (= ``P * serial_ms`` with ``P = alpha * bandwidth + beta``,
Huang et al.), both from :mod:`harness.links.radio`; waiting energy ``waiting_mw * rtt_ms`` (if counted).
Cloud compute costs the phone ``waiting_mw * cloud_ms`` (if counted); the cloud profile's energy is
ignored. Training: forward then backward, each segment trains where it runs, activations cross forward
and same-sized gradients cross back at every inner boundary (two transfers, two round trips); the model
input crosses once if segment 0 is on the cloud; the loss is computed where the last segment runs, so
nothing crosses after it; with ``sync_every_steps = K`` each cloud segment adds ``param_bytes / K`` of
download per step (serialisation only: the sync rides on an existing response, no extra round trip).
Weight memory: a segment on the phone costs ``weight_bytes * dram_pj_per_byte`` (once per forward pass,
twice per training step) in ``mobile_memory_mj``, part of the mobile energy; SmartDeal segments have
fewer weight bytes (the compact form is what is read, reconstruction happening next to the compute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from harness.links import radio
from harness.planner.costs import LOCATIONS, Location, PlanningProblem
from harness.planner.objectives import Objective
from harness.specs import LinkSpec
from models.errors import UsageError

__all__ = [
    "METRICS",
    "Breakdown",
    "CostTables",
    "build_tables",
    "evaluate",
    "evaluate_many",
    "metric_vector",
    "schedule_array",
]

# Additive metrics, in this order along the last axis of the tables.
METRICS: tuple[str, ...] = (
    "mobile_compute_ms",  # phone busy computing (forward + backward)
    "cloud_compute_ms",  # server busy computing
    "transfer_ms",  # serialisation + round trips, on the critical path
    "mobile_compute_mj",  # phone compute energy above idle
    "mobile_transfer_mj",  # radio energy while sending/receiving
    "mobile_waiting_mj",  # phone waiting for the cloud / round trips
    "cloud_transfer_ms",  # time the server spends receiving/sending (serialisation only)
    "up_bytes",
    "down_bytes",
    "transfers",  # number of network transfers
    "mobile_memory_mj",  # phone reading its segments' weights from DRAM (weight bytes x pJ/byte)
)
_I = {name: i for i, name in enumerate(METRICS)}


def metric_vector(**weights: float) -> np.ndarray:
    """A weight vector over :data:`METRICS`; also the derived ``latency_ms``, ``mobile_energy_mj``, ``cloud_ms``."""
    vector = np.zeros(len(METRICS))
    derived = {
        "latency_ms": ("mobile_compute_ms", "cloud_compute_ms", "transfer_ms"),
        "mobile_energy_mj": (
            "mobile_compute_mj",
            "mobile_transfer_mj",
            "mobile_waiting_mj",
            "mobile_memory_mj",
        ),
        "cloud_ms": ("cloud_compute_ms",),
    }
    for name, weight in weights.items():
        for part in derived.get(name, (name,)):
            if part not in _I:
                raise KeyError(f"unknown metric {part}")
            vector[_I[part]] += weight
    return vector


def objective_vector(objective: Objective) -> np.ndarray:
    """Weights over :data:`METRICS` of the objective's scalar value."""
    latency_w, energy_w = objective.weights
    return metric_vector(latency_ms=latency_w, mobile_energy_mj=energy_w)


# The constrained quantities: deadline on latency, battery on mobile energy, cloud load on cloud compute.
CONSTRAINT_VECTORS: dict[str, np.ndarray] = {
    "deadline_ms": metric_vector(latency_ms=1.0),
    "energy_budget_mj": metric_vector(mobile_energy_mj=1.0),
    "cloud_budget_ms": metric_vector(cloud_ms=1.0),
}


@dataclass(frozen=True, eq=False)
class CostTables:
    """``node[i, loc, m]`` shape (n, 2, M) and ``edge[i, prev, next, m]`` shape (n+1, 2, 2, M)."""

    node: np.ndarray
    edge: np.ndarray

    @property
    def n(self) -> int:
        return int(self.node.shape[0])

    def scalar(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scalar node (n, 2) and edge (n+1, 2, 2) costs for a weight vector over METRICS."""
        return self.node @ weights, self.edge @ weights


def _transfer(
    nbytes: np.ndarray, link: LinkSpec, rtt_ms: float, waiting_mw: float, up: bool, *, burst: bool = True
) -> np.ndarray:
    """Metric rows (k, M) of transfers of ``nbytes`` (k,) in one direction of ``link``.

    ``burst``: each is a transfer of its own, so the link's burst bytes pass unserialised.
    """
    mbps = link.up_mbps if up else link.down_mbps
    alpha_mw_per_mbps = link.alpha_up_mw_per_mbps if up else link.alpha_down_mw_per_mbps
    burst_bytes = (link.up_burst_bytes if up else link.down_burst_bytes) if burst else 0.0
    serial = radio.serial_ms(nbytes, mbps, burst_bytes)  # (k,) ms
    rows = np.zeros((nbytes.size, len(METRICS)))
    rows[:, _I["transfer_ms"]] = serial + rtt_ms
    rows[:, _I["mobile_transfer_mj"]] = radio.radio_energy_mj(nbytes, serial, alpha_mw_per_mbps, link.beta_mw)
    rows[:, _I["mobile_waiting_mj"]] = waiting_mw * rtt_ms / 1e3
    rows[:, _I["cloud_transfer_ms"]] = serial
    rows[:, _I["up_bytes" if up else "down_bytes"]] = nbytes
    rows[:, _I["transfers"]] = 1.0
    return rows


def build_tables(problem: PlanningProblem) -> CostTables:
    """The cost tables of a problem (O(n) numpy work)."""
    seg, link, n = problem.segments, problem.link, problem.n
    assert seg.mobile_backward_ms is not None and seg.mobile_backward_mj is not None  # set in __post_init__
    assert seg.cloud_backward_ms is not None and seg.param_bytes is not None
    assert seg.weight_bytes is not None
    training = problem.phase == "training"
    waiting_mw = problem.waiting_mw if problem.include_waiting_energy else 0.0

    node = np.zeros((n, 2, len(METRICS)))
    node[:, 0, _I["mobile_compute_ms"]] = seg.mobile_ms + (seg.mobile_backward_ms if training else 0.0)
    node[:, 0, _I["mobile_compute_mj"]] = seg.mobile_mj + (seg.mobile_backward_mj if training else 0.0)
    # Weights are read once per forward pass and once more per backward pass (input gradients).
    reads = 2.0 if training else 1.0
    node[:, 0, _I["mobile_memory_mj"]] = reads * seg.weight_bytes * problem.dram_pj_per_byte * 1e-9
    cloud_ms = seg.cloud_ms + (seg.cloud_backward_ms if training else 0.0)
    node[:, 1, _I["cloud_compute_ms"]] = cloud_ms
    node[:, 1, _I["mobile_waiting_mj"]] = waiting_mw * cloud_ms / 1e3
    if training and problem.sync_every_steps:
        sync = _transfer(seg.param_bytes / problem.sync_every_steps, link, 0.0, 0.0, up=False, burst=False)
        sync[:, _I["transfers"]] = 0.0  # piggybacks on an existing response
        node[:, 1, :] += sync

    nbytes = seg.boundary_bytes()  # (n+1,)
    up = _transfer(nbytes, link, link.rtt_ms, waiting_mw, up=True)
    down = _transfer(nbytes, link, link.rtt_ms, waiting_mw, up=False)
    edge = np.zeros((n + 1, 2, 2, len(METRICS)))
    edge[:n, 0, 1] = up[:n]  # mobile -> cloud before segment i (boundary n never goes to the cloud)
    if training:
        edge[1:n, 0, 1] += down[1:n]  # gradient comes back down
        edge[1:n, 1, 0] = down[1:n] + up[1:n]  # activation down, gradient up
    else:
        edge[1:, 1, 0] = down[1:]  # cloud -> mobile, including the result after the last segment
    _add_invocation_overheads(edge, problem, waiting_mw)
    return CostTables(node=node, edge=edge)


def _add_invocation_overheads(edge: np.ndarray, problem: PlanningProblem, waiting_mw: float) -> None:
    """Fixed cost of every invocation, on the boundary where it starts (edge shape (n+1, 2, 2, M)).

    A mobile stage starting at segment ``i`` starts at the input (``i = 0``: ``edge[0, mobile,
    mobile]``, the source is on the mobile) or after a cloud stage (``edge[i, cloud, mobile]``); a
    cloud request starting at ``i`` follows a mobile stage (``edge[i, mobile, cloud]``). Each pays
    its first segment's overhead: mobile compute time and energy, cloud compute time (the phone
    waits through it).
    """
    seg, n = problem.segments, problem.n
    assert seg.mobile_overhead_ms is not None and seg.mobile_overhead_mj is not None
    assert seg.cloud_overhead_ms is not None  # set in SegmentCosts.__post_init__
    starts_mobile = [(0, 0, 0)] + [(i, 1, 0) for i in range(1, n)]  # (boundary, prev, next)
    for i, prev, nxt in starts_mobile:
        edge[i, prev, nxt, _I["mobile_compute_ms"]] += seg.mobile_overhead_ms[i]
        edge[i, prev, nxt, _I["mobile_compute_mj"]] += seg.mobile_overhead_mj[i]
    edge[:n, 0, 1, _I["cloud_compute_ms"]] += seg.cloud_overhead_ms
    edge[:n, 0, 1, _I["mobile_waiting_mj"]] += waiting_mw * seg.cloud_overhead_ms / 1e3


def schedule_array(schedule: Sequence[int] | Sequence[str] | np.ndarray, n: int) -> np.ndarray:
    """A schedule as an int array of 0 (mobile) / 1 (cloud), validated against ``n`` segments."""
    if isinstance(schedule, np.ndarray) and schedule.dtype.kind in "iub":
        if schedule.shape != (n,) or not ((schedule == 0) | (schedule == 1)).all():
            raise UsageError(f"a schedule needs one location (0/1 or mobile/cloud) for each of {n} segments")
        return schedule.astype(np.int64, copy=False)
    values = list(schedule)
    try:
        array = np.array(
            [LOCATIONS.index(v) if isinstance(v, str) else int(v) for v in values], dtype=np.int64
        )
    except ValueError:
        raise UsageError(f"a schedule holds 'mobile'/'cloud' or 0/1 per segment, got {values[:8]}") from None
    if array.shape != (n,) or not np.isin(array, (0, 1)).all():
        raise UsageError(f"a schedule needs one location (0/1 or mobile/cloud) for each of {n} segments")
    return array


def _sum_metrics(tables: CostTables, schedules: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Totals (k, M) — or (k, q) for a (M, q) weight matrix — of k schedules (k, n)."""
    node, edge = tables.node, tables.edge
    if weights is not None:
        node, edge = node @ weights, edge @ weights
    k, n = schedules.shape
    padded = np.zeros((k, n + 2), dtype=np.int64)
    padded[:, 1:-1] = schedules
    total = node[np.arange(n), schedules].sum(axis=1)
    total += edge[np.arange(n + 1), padded[:, :-1], padded[:, 1:]].sum(axis=1)
    return total


@dataclass(frozen=True)
class Breakdown:
    """Predicted cost of one schedule, per query (inference) or per training step.

    Totals equal the sum of their parts: ``latency_ms = latency_compute_ms + latency_transfer_ms``,
    ``mobile_energy_mj = mobile_compute_mj + mobile_transfer_mj + mobile_waiting_mj + mobile_memory_mj``,
    ``cloud_ms = cloud_compute_ms`` (the cloud budget is on compute) with ``cloud_transfer_ms`` the
    server's send/receive time alongside.
    """

    latency_ms: float
    latency_compute_ms: float  # mobile + cloud compute on the critical path
    latency_transfer_ms: float  # serialisation + round trips
    mobile_compute_ms: float
    mobile_energy_mj: float
    mobile_compute_mj: float
    mobile_transfer_mj: float  # radio
    mobile_waiting_mj: float  # idle-awake while the cloud computes / round trips
    cloud_ms: float
    cloud_compute_ms: float
    cloud_transfer_ms: float
    up_bytes: float
    down_bytes: float
    transfers: int
    mobile_memory_mj: float = 0.0  # weight bytes read from DRAM on the phone x the device's pJ/byte

    @classmethod
    def from_metrics(cls, totals: np.ndarray) -> Breakdown:
        t = {name: float(totals[i]) for i, name in enumerate(METRICS)}
        compute_ms = t["mobile_compute_ms"] + t["cloud_compute_ms"]
        return cls(
            latency_ms=compute_ms + t["transfer_ms"],
            latency_compute_ms=compute_ms,
            latency_transfer_ms=t["transfer_ms"],
            mobile_compute_ms=t["mobile_compute_ms"],
            mobile_energy_mj=t["mobile_compute_mj"]
            + t["mobile_transfer_mj"]
            + t["mobile_waiting_mj"]
            + t["mobile_memory_mj"],
            mobile_compute_mj=t["mobile_compute_mj"],
            mobile_transfer_mj=t["mobile_transfer_mj"],
            mobile_waiting_mj=t["mobile_waiting_mj"],
            cloud_ms=t["cloud_compute_ms"],
            cloud_compute_ms=t["cloud_compute_ms"],
            cloud_transfer_ms=t["cloud_transfer_ms"],
            up_bytes=t["up_bytes"],
            down_bytes=t["down_bytes"],
            transfers=round(t["transfers"]),
            mobile_memory_mj=t["mobile_memory_mj"],
        )

    def value(self, name: str) -> float:
        """A total by constraint name (``deadline_ms``, ``energy_budget_mj``, ``cloud_budget_ms``)."""
        return {
            "deadline_ms": self.latency_ms,
            "energy_budget_mj": self.mobile_energy_mj,
            "cloud_budget_ms": self.cloud_ms,
        }[name]

    def objective(self, objective: Objective) -> float:
        """The objective's scalar value for this breakdown."""
        latency_w, energy_w = objective.weights
        return latency_w * self.latency_ms + energy_w * self.mobile_energy_mj

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def evaluate(
    problem: PlanningProblem, schedule: Sequence[int] | Sequence[Location] | np.ndarray
) -> Breakdown:
    """Predicted breakdown of ANY schedule (locations per segment: 'mobile'/'cloud' or 0/1)."""
    x = schedule_array(schedule, problem.n)
    return Breakdown.from_metrics(_sum_metrics(problem.tables, x[None, :], None)[0])


def evaluate_many(problem: PlanningProblem, schedules: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted totals (k, q) of k schedules (k, n) of 0/1 for a (M, q) weight matrix."""
    return _sum_metrics(problem.tables, np.asarray(schedules, dtype=np.int64), weights)
