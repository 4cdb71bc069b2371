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
``cloud_only_jpeg`` (cloud-only uploading the photo as a JPEG: a real app's status quo),
and ``single_cut`` (every cut ``k`` = segments before ``k`` on the mobile; objective ``any``).
Schedules are labels with one letter per segment: ``M`` mobile, ``C`` cloud; a schedule that starts on
the cloud and uploads the JPEG instead of the raw input tensor ends in ``+jpeg`` (``input_codec``).

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
    "DECISION_COLUMNS",
    "LINKS_COLUMNS",
    "MEASUREMENT_COLUMNS",
    "PLAN_COLUMNS",
    "PLAN_KINDS",
    "SUMMARY_COLUMNS",
    "DecisionRow",
    "LinkRow",
    "MeasurementRow",
    "PlanRow",
    "RunKey",
    "SummaryRow",
    "columns",
    "values_from",
]

PLAN_KINDS: tuple[str, ...] = (
    "jointdnn",
    "mobile_only",
    "cloud_only",
    "best_single_cut",
    "single_cut",
    "cloud_only_jpeg",
)


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
    # diagnostic (issue #12), not applied: the factor a rescaling would have needed after planning,
    # measured mobile-only device compute / predicted (time, energy), cloud-only server compute / predicted
    needed_mobile_scale: float = _from("diagnostic", attr="mobile_scale", default=math.nan)
    needed_mobile_energy_scale: float = _from("diagnostic", attr="mobile_energy_scale", default=math.nan)
    needed_cloud_scale: float = _from("diagnostic", attr="cloud_scale", default=math.nan)
    # the JPEG input: encoded size of the run's photo(s) (mean bytes), server decode time (median ms)
    jpeg_bytes: float = _from("jpeg", "jpeg_bytes")
    jpeg_decode_ms: float = _from("jpeg", "decode_ms")
    # bytes per transfer the shaped link passes at line rate (tc's token bucket; 0 when paced), up / down
    up_burst_bytes: float = _from("calibration", default=0.0)
    down_burst_bytes: float = _from("calibration", default=0.0)


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
    input_codec: str = "raw"  # how the model input is uploaded when segment 0 runs on the cloud: raw | jpeg
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
    input_codec: str = "raw"  # raw | jpeg (the schedule uploaded the photo as a JPEG)
    image: int = 0  # which of the run's input photos (index)


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
    regime: str = ""  # mobile-only | cloud-only | split: where the chosen schedule runs
    cloud_only_jpeg_latency_ms: float = math.nan
    cloud_only_jpeg_energy_mj: float = math.nan
    speedup_vs_cloud_only_jpeg: float = math.nan
    energy_saving_vs_cloud_only_jpeg: float = math.nan


LINKS_COLUMNS: list[str] = columns(LinkRow)
PLAN_COLUMNS: list[str] = columns(PlanRow)
MEASUREMENT_COLUMNS: list[str] = columns(MeasurementRow)
SUMMARY_COLUMNS: list[str] = columns(SummaryRow)


@dataclass(kw_only=True)
class DecisionRow:
    """decisions.csv (``jointdnn run --adaptive``): one request of one policy over a replayed trace.

    What the controller saw (its estimates, the server's load, the battery), what it chose and how long
    the choice took, what the trace really offered at that moment, and what the execution measured.
    """

    run_id: str
    policy: str  # adaptive | adaptive-energy | static:<schedule>
    request: int
    t_s: float  # trace time at the decision
    schedule: str
    switched: bool
    cache_hit: bool
    decision_us: float
    objective: str
    mode: str  # normal | battery-low
    feasible: bool
    predicted: float  # the schedule's predicted objective value in its grid cell (ms or mJ)
    est_up_mbps: float
    est_down_mbps: float
    est_rtt_ms: float  # per-request latency (round trip + serving overhead)
    est_queue_ms: float  # expected server queueing from /v1/load
    server_backlog: int
    server_utilization: float
    battery_pct: float
    true_up_mbps: float  # the trace at the decision
    true_down_mbps: float
    true_rtt_ms: float
    latency_ms: float = _from("execution")
    mobile_energy_mj: float = _from("execution")
    transfer_ms: float = _from("execution")
    server_ms: float = _from("execution")
    queue_ms: float = _from("execution")
    up_bytes: int = _from("execution", default=0)
    down_bytes: int = _from("execution", default=0)
    output_matches: bool = _from("check", "matches", default=False)


DECISION_COLUMNS: list[str] = columns(DecisionRow)
