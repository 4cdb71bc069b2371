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
"""

from __future__ import annotations

__all__ = [
    "LINKS_COLUMNS",
    "MEASUREMENT_COLUMNS",
    "PLAN_COLUMNS",
    "PLAN_KINDS",
    "SUMMARY_COLUMNS",
]

PLAN_KINDS: tuple[str, ...] = ("jointdnn", "mobile_only", "cloud_only", "best_single_cut", "single_cut")

LINKS_COLUMNS: list[str] = [
    "link",
    "shaping",
    "note",
    "target_up_mbps",
    "target_down_mbps",
    "target_rtt_ms",
    "up_mbps",
    "down_mbps",
    "rtt_ms",
    "probe_bytes_up",
    "probe_bytes_down",
    "mobile_scale",  # calibration: measured mobile-only chain compute / sum of profiled segments
    "mobile_energy_scale",
    "cloud_scale",  # calibration: measured cloud-only server compute / sum of profiled segments
    "request_overhead_ms",  # HTTP/serving cost of one request beyond RTT + bytes/Mbps + server compute
]

PLAN_COLUMNS: list[str] = [
    "run_id",
    "model",
    "quant",
    "device",
    "link",
    "objective",
    "kind",
    "schedule",
    "cut",  # single cut k (segments before k on the mobile), -1 for other schedules
    "cuts",  # boundaries where the side changes, e.g. "2;5"
    "solver",
    "constraints",
    "feasible",
    "error",
    "pred_latency_ms",
    "pred_latency_compute_ms",
    "pred_latency_transfer_ms",
    "pred_mobile_compute_ms",
    "pred_cloud_ms",
    "pred_mobile_energy_mj",
    "pred_mobile_compute_mj",
    "pred_mobile_transfer_mj",
    "pred_mobile_waiting_mj",
    "pred_up_bytes",
    "pred_down_bytes",
    "pred_transfers",
]

MEASUREMENT_COLUMNS: list[str] = [
    "run_id",
    "model",
    "quant",
    "device",
    "link",
    "shaping",
    "schedule",
    "repeat",
    "latency_ms",
    "device_compute_ms",
    "upload_ms",
    "queue_ms",
    "server_ms",
    "download_ms",
    "transfer_ms",
    "paced_ms",
    "device_overhead_ms",
    "wall_ms",
    "up_bytes",
    "down_bytes",
    "requests",
    "mobile_energy_mj",
    "mobile_compute_mj",
    "mobile_radio_mj",
    "mobile_waiting_mj",
    "output_max_abs_err",
    "output_tolerance",
    "output_matches",
    "argmax_matches",
]

SUMMARY_COLUMNS: list[str] = [
    "link",
    "objective",
    "shaping",
    "achieved_up_mbps",
    "achieved_down_mbps",
    "achieved_rtt_ms",
    "schedule",
    "cuts",
    "pred_latency_ms",
    "meas_latency_ms",
    "latency_error_pct",
    "pred_energy_mj",
    "meas_energy_mj",
    "energy_error_pct",
    "mobile_only_latency_ms",
    "cloud_only_latency_ms",
    "best_single_cut_schedule",
    "best_single_cut_latency_ms",
    "mobile_only_energy_mj",
    "cloud_only_energy_mj",
    "best_single_cut_energy_mj",
    "speedup_vs_mobile_only",
    "speedup_vs_cloud_only",
    "energy_saving_vs_mobile_only",
    "energy_saving_vs_cloud_only",
    "best_measured_schedule",
    "regret",
    "outputs_match",
]
