"""The files of a run directory and the columns of its CSVs (units in the names).

``reports/<run-id>/``::

    run.json           what was run: model, quant, device, server, links, objectives, budgets, repeats
    links.csv          per link: shaping used, target and achieved up/down Mbps and RTT
    plans.csv          per link x objective x kind: the schedule and its predicted breakdown
    measurements.csv   per link x schedule x repeat: the measured breakdown and the output check
    summary.csv        per link x objective: predicted vs measured, speedups, the chosen schedule
    profiles/          the mobile and cloud profile CSVs and the link/device YAML used
    *.png, index.md    plots and the page that shows them (``jointdnn report RUN_DIR`` rebuilds them)

``kind`` in plans.csv: ``jointdnn`` (the planner's choice for the objective), the baselines
``mobile_only``, ``cloud_only``, ``best_single_cut`` (predicted best single cut for the objective),
and ``single_cut`` (every cut ``k`` = segments before ``k`` on the mobile; objective ``any``).
Schedules are labels with one letter per segment: ``M`` mobile, ``C`` cloud.

Each CSV's columns are the fields of one row dataclass, in order (as :class:`models.profile_rows.ProfileRow`
does for profiles): :class:`LinkRow`, :class:`PlanRow`, :class:`MeasurementRow`, :class:`SummaryRow`.
A field whose value is an attribute of an object the runner holds (the plan's predicted breakdown, an
execution, an output check, the link measurement, the calibration) names that object in its metadata
(``source``, and ``attr`` when the attribute is named otherwise); :func:`values_from` reads them all.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any

__all__ = [
    "LINKS_COLUMNS",
    "MEASUREMENT_COLUMNS",
    "PLAN_COLUMNS",
    "PLAN_KINDS",
    "SUMMARY_COLUMNS",
    "LinkRow",
    "MeasurementRow",
    "PlanRow",
    "RunKey",
    "SummaryRow",
    "columns",
    "values_from",
]

PLAN_KINDS: tuple[str, ...] = ("jointdnn", "mobile_only", "cloud_only", "best_single_cut", "single_cut")


def _from(source: str, attr: str = "", default: Any = math.nan) -> Any:
    """A column whose value is ``getattr(<source object>, attr or the column's name)``."""
    return field(default=default, metadata={"source": source, "attr": attr})


def columns(row_type: type) -> list[str]:
    """The CSV columns of a row dataclass: its field names, in order."""
    return [f.name for f in fields(row_type)]


def _sourced(row_type: type, source: str) -> list[Field[Any]]:
    return [f for f in fields(row_type) if f.metadata.get("source") == source]


def values_from(row_type: type, source: str, obj: object) -> dict[str, Any]:
    """``{column: value}`` of every column of ``row_type`` that ``source`` provides, read off ``obj``."""
    return {f.name: getattr(obj, f.metadata["attr"] or f.name) for f in _sourced(row_type, source)}


@dataclass(kw_only=True)
class LinkRow:
    """links.csv: per link, the shaping used, target and achieved up/down Mbps and RTT, the calibration."""

    link: str = _from("measured", default="")
    shaping: str = _from("measured", default="")  # ShapingMode
    note: str = _from("measured", default="")
    target_up_mbps: float = _from("measured")
    target_down_mbps: float = _from("measured")
    target_rtt_ms: float = _from("measured")
    up_mbps: float = _from("measured")
    down_mbps: float = _from("measured")
    rtt_ms: float = _from("measured")
    probe_bytes_up: int = _from("measured", default=0)
    probe_bytes_down: int = _from("measured", default=0)
    # calibration: measured mobile-only chain compute / sum of profiled segments
    mobile_scale: float = _from("calibration", default=1.0)
    mobile_energy_scale: float = _from("calibration", default=1.0)
    # calibration: measured cloud-only server compute / sum of profiled segments
    cloud_scale: float = _from("calibration", default=1.0)
    # HTTP/serving cost of one request beyond RTT + bytes/Mbps + server compute
    request_overhead_ms: float = _from("calibration", default=0.0)


@dataclass(kw_only=True)
class RunKey:
    """The columns that say which run, model, device and link a plans/measurements row belongs to."""

    run_id: str = ""
    model: str = ""
    quant: str = ""
    device: str = ""
    link: str = ""


@dataclass(kw_only=True)
class PlanRow(RunKey):
    """plans.csv: per link x objective x kind, the schedule and its predicted breakdown.

    ``pred_*`` come from the plan's :class:`~harness.planner.costmodel.Breakdown` (source
    ``predicted``); NaN when the objective's budgets are infeasible.
    """

    objective: str
    kind: str  # one of PLAN_KINDS
    schedule: str = ""
    cut: int = -1  # single cut k (segments before k on the mobile), -1 for other schedules
    cuts: str = ""  # boundaries where the side changes, e.g. "2;5"
    solver: str = ""
    constraints: str = ""  # JSON of the active budgets
    feasible: bool = True
    error: str = ""
    pred_latency_ms: float = _from("predicted", "latency_ms")
    pred_latency_compute_ms: float = _from("predicted", "latency_compute_ms")
    pred_latency_transfer_ms: float = _from("predicted", "latency_transfer_ms")
    pred_mobile_compute_ms: float = _from("predicted", "mobile_compute_ms")
    pred_cloud_ms: float = _from("predicted", "cloud_ms")
    pred_mobile_energy_mj: float = _from("predicted", "mobile_energy_mj")
    pred_mobile_compute_mj: float = _from("predicted", "mobile_compute_mj")
    pred_mobile_transfer_mj: float = _from("predicted", "mobile_transfer_mj")
    pred_mobile_waiting_mj: float = _from("predicted", "mobile_waiting_mj")
    pred_up_bytes: float = _from("predicted", "up_bytes")
    pred_down_bytes: float = _from("predicted", "down_bytes")
    pred_transfers: float = _from("predicted", "transfers")
    pred_mobile_memory_mj: float = _from("predicted", "mobile_memory_mj")  # weight bytes read x pJ/byte


@dataclass(kw_only=True)
class MeasurementRow(RunKey):
    """measurements.csv: per link x schedule x repeat, the measured breakdown and the output check.

    The breakdown comes from the runner's ``Execution`` (source ``execution``), the last four columns
    from its ``OutputCheck`` (source ``check``).
    """

    shaping: str = ""
    schedule: str
    repeat: int
    latency_ms: float = _from("execution")
    device_compute_ms: float = _from("execution")
    upload_ms: float = _from("execution")
    queue_ms: float = _from("execution")
    server_ms: float = _from("execution")
    download_ms: float = _from("execution")
    transfer_ms: float = _from("execution")
    paced_ms: float = _from("execution")
    device_overhead_ms: float = _from("execution")
    wall_ms: float = _from("execution")
    up_bytes: int = _from("execution", default=0)
    down_bytes: int = _from("execution", default=0)
    requests: int = _from("execution", default=0)
    mobile_energy_mj: float = _from("execution")
    mobile_compute_mj: float = _from("execution")
    mobile_radio_mj: float = _from("execution")
    mobile_waiting_mj: float = _from("execution")
    output_max_abs_err: float = _from("check", "max_abs_err")
    output_tolerance: float = _from("check", "tolerance")
    output_matches: bool = _from("check", "matches", default=False)
    argmax_matches: bool = _from("check", "argmax_matches", default=False)


@dataclass(kw_only=True)
class SummaryRow:
    """summary.csv: per link x objective, predicted vs measured, speedups, the chosen schedule."""

    link: str
    objective: str
    shaping: str
    achieved_up_mbps: float
    achieved_down_mbps: float
    achieved_rtt_ms: float
    schedule: str
    cuts: str
    pred_latency_ms: float
    meas_latency_ms: float
    latency_error_pct: float
    pred_energy_mj: float
    meas_energy_mj: float
    energy_error_pct: float
    mobile_only_latency_ms: float
    cloud_only_latency_ms: float
    best_single_cut_schedule: str
    best_single_cut_latency_ms: float
    mobile_only_energy_mj: float
    cloud_only_energy_mj: float
    best_single_cut_energy_mj: float
    speedup_vs_mobile_only: float
    speedup_vs_cloud_only: float
    energy_saving_vs_mobile_only: float
    energy_saving_vs_cloud_only: float
    best_measured_schedule: str
    regret: float
    outputs_match: bool


LINKS_COLUMNS: list[str] = columns(LinkRow)
PLAN_COLUMNS: list[str] = columns(PlanRow)
MEASUREMENT_COLUMNS: list[str] = columns(MeasurementRow)
SUMMARY_COLUMNS: list[str] = columns(SummaryRow)
