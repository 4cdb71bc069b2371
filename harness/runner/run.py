"""``jointdnn run``: plan every link x objective, execute every plan end to end, write the report.

For each link (a fresh :class:`~harness.links.ShapedLink`, measured first) the runner plans each
objective with the JointDNN planner, adds the baselines (mobile-only, cloud-only, best single cut) and
every single cut, and executes each distinct schedule ``repeats`` times on the device and the server
over the shaped link (after a warm-up of the two extreme schedules), checking every output against the
whole model's. Rows go to ``plans.csv``, ``measurements.csv`` and ``links.csv``; the report module
derives ``summary.csv``, the plots and ``index.md`` from them.

Two modelling notes. The planner charges its link ``rtt_ms`` once per transfer, i.e. once per
direction. Over HTTP, a request (upload) and its response (download) share a single round trip, so
each direction really costs the one-way latency; the runner therefore plans with half the round trip
as the per-transfer latency (:func:`planning_link`), which makes a mobile->cloud->mobile hop cost one
round trip. And a request costs more than its round trip: HTTP, the web framework and tensor encoding
add a fixed few ms that the link model has no term for; the runner measures it per link
(:func:`calibrate_request_overhead`, ``request_overhead_ms`` in links.csv) and adds it to the round trip
the planner sees. The report shows the link profile's own RTT next to both.

And segments profiled alone (warm, hot caches, at another moment) run faster than the same segments
executed in a chain on a possibly busy machine: before a link's runs, the runner executes mobile-only
and cloud-only twice each and scales the profiles' segment costs so that those two match
(:func:`calibrate_compute`; ``mobile_scale``, ``cloud_scale`` in links.csv). The *shape* of the
per-segment costs — what the planner decides on — still comes from the profiles.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.links import LinkMeasurement, ShapedLink, ShapingRequest, measure_link
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
from harness.planner.solve import make_plan
from harness.reports.schema import LINKS_COLUMNS, MEASUREMENT_COLUMNS, PLAN_COLUMNS
from harness.runner.bundles import ensure_bundle
from harness.runner.cloud import start_local_server
from harness.runner.devices import open_device
from harness.runner.execute import Execution, ScheduleExecutor
from harness.runner.observer import NullObserver, RunObserver
from harness.runner.profile_sources import cloud_profile_rows, ensure_mobile_profile, write_rows
from harness.runner.reference import check_output, reference_output
from harness.runner.stages import stages_from_label
from harness.specs import DeviceSpec, LinkSpec, load_device, load_link
from models.bundle import BundleManifest
from models.errors import InfeasibleError, UsageError

__all__ = [
    "Calibration",
    "RunConfig",
    "RunResult",
    "calibrate_compute",
    "calibrate_request_overhead",
    "planning_link",
    "planning_problem",
    "run_experiment",
]

OBJECTIVES = ("latency", "energy")


@dataclass
class RunConfig:
    """Everything ``jointdnn run`` was asked to do."""

    model: str  # zoo name, model file or bundle directory
    quant: str = "int8"
    device: str = "emulated"  # local | emulated | adb serial
    server: str = "local"  # local | http(s)://host:port
    links: list[str] = field(default_factory=lambda: ["3g", "4g", "wifi"])
    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES))
    constraints: Constraints = field(default_factory=Constraints)
    repeats: int = 3
    out_dir: Path = Path("reports")
    bundles_dir: Path = Path("bundles")
    profiles_root: Path = Path(".")  # device_profiles/measured/... lives under it
    shaping: ShapingRequest = "auto"
    device_profile: str = "generic-phone"
    profile_runs: int = 10
    cloud_profile_runs: int = 20
    token: str | None = None
    run_id: str | None = None
    seed: int = 0

    def validate(self) -> None:
        if self.repeats < 1:
            raise UsageError(f"--repeats must be >= 1, got {self.repeats}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or not self.objectives:
            raise UsageError(f"objectives must be among {', '.join(OBJECTIVES)}, got {self.objectives}")
        if not self.links:
            raise UsageError("give at least one link (--links 3g,4g,wifi)")
        if self.server != "local" and not self.server.startswith(("http://", "https://")):
            raise UsageError(f"--server must be `local` or an http(s):// URL, got {self.server!r}")


@dataclass
class RunResult:
    """Where the report is and what went into it."""

    run_dir: Path
    plans: pd.DataFrame
    measurements: pd.DataFrame
    links: pd.DataFrame


def planning_link(link: LinkSpec, request_overhead_ms: float = 0.0) -> LinkSpec:
    """The link as the planner should see it: per-transfer latency = one-way latency (see module doc)."""
    return link.model_copy(update={"rtt_ms": (link.rtt_ms + request_overhead_ms) / 2})


@dataclass(frozen=True)
class Calibration:
    """Factors applied to the profiles for one link, measured just before its runs (1.0 = none).

    ``mobile_scale`` = measured mobile-only chain compute / sum of the profiled mobile segments;
    ``mobile_energy_scale`` the same for compute energy; ``cloud_scale`` = measured cloud-only server
    compute / sum of the profiled cloud segments; ``request_overhead_ms`` = per-request cost beyond
    RTT + bytes/bandwidth + server compute.
    """

    mobile_scale: float = 1.0
    mobile_energy_scale: float = 1.0
    cloud_scale: float = 1.0
    request_overhead_ms: float = 0.0


def planning_problem(
    mobile_csv: Path, cloud_csv: Path, link: LinkSpec, power: DeviceSpec, calibration: Calibration
) -> PlanningProblem:
    """The problem the runner plans: the profiles scaled by ``calibration``, over the planning link."""
    problem = build_problem(
        mobile_csv, cloud_csv, planning_link(link, calibration.request_overhead_ms), power
    )
    seg = problem.segments
    scaled = replace(
        seg,
        mobile_ms=seg.mobile_ms * calibration.mobile_scale,
        mobile_mj=seg.mobile_mj * calibration.mobile_energy_scale,
        cloud_ms=seg.cloud_ms * calibration.cloud_scale,
    )
    return replace(problem, segments=scaled)


def _ratio(measured: list[float], profiled: float) -> float:
    value = float(np.median(measured)) / profiled if profiled > 0 else 1.0
    return value if math.isfinite(value) and value > 0 else 1.0


def calibrate_compute(
    executor: ScheduleExecutor, x: np.ndarray, raw: PlanningProblem, *, runs: int = 2
) -> tuple[float, float, float]:
    """(mobile, mobile energy, cloud) scale factors from mobile-only and cloud-only executions.

    Segments profiled alone, warm and over and over, run faster than the same segments executed in a
    chain (cold interpreters on the device's chain runner, caches shared with the other segments, a
    machine whose load changes): two reference executions per side, measured on the spot, scale the
    profiles so that the planner's costs describe the executions it plans.
    """
    n = raw.n
    mobile = [executor.run(["mobile"] * n, x) for _ in range(runs)]
    cloud = [executor.run(["cloud"] * n, x) for _ in range(runs)]
    seg = raw.segments
    return (
        _ratio([e.device_compute_ms for e in mobile], float(seg.mobile_ms.sum())),
        _ratio([e.mobile_compute_mj for e in mobile], float(seg.mobile_mj.sum())),
        _ratio([e.server_ms for e in cloud], float(seg.cloud_ms.sum())),
    )


def calibrate_request_overhead(
    shaped: ShapedLink,
    client: Any,
    served: str,
    manifest: BundleManifest,
    measured: LinkMeasurement,
    *,
    calls: int = 7,
) -> float:
    """Median time (ms) one infer request costs beyond RTT, bytes/bandwidth and server compute.

    That is HTTP framing, the web framework, .npy encoding, the client library: a fixed cost per
    request that the planner's link model has no term for, so it is added to the round trip the
    planner sees. Measured with the last segment (the smallest request) after one warm-up call.
    """
    last = manifest.num_segments - 1
    spec = manifest.segments[last].input
    x = np.zeros(spec.shape, dtype=np.dtype(spec.dtype))
    samples = []
    for attempt in range(calls + 1):
        t0 = time.perf_counter()
        reply = shaped.device_call(client.infer, served, x, from_segment=last, to_segment=last + 1)
        wire_ms = (time.perf_counter() - t0) * 1e3
        compute = sum(v for v in (reply.server_ms, reply.queue_ms) if math.isfinite(v))
        wire_ms = wire_ms - compute
        wire_ms += shaped.pace(reply.request_bytes, reply.response_bytes, wire_ms)
        serial_ms = reply.request_bytes * 8 / (measured.up_mbps * 1e3)
        serial_ms += reply.response_bytes * 8 / (measured.down_mbps * 1e3)
        if attempt:
            samples.append(wire_ms - serial_ms - measured.rtt_ms)
    return max(0.0, float(np.median(samples)))


def _plan_row(base: dict[str, Any], p: Plan, objective: str, kind: str, cut: int = -1) -> dict[str, Any]:
    b = p.predicted
    return {
        **base,
        "objective": objective,
        "kind": kind,
        "schedule": p.label,
        "cut": cut,
        "cuts": ";".join(str(c) for c in p.cuts),
        "solver": p.solver,
        "constraints": json.dumps(p.constraints.active()),
        "feasible": True,
        "error": "",
        "pred_latency_ms": b.latency_ms,
        "pred_latency_compute_ms": b.latency_compute_ms,
        "pred_latency_transfer_ms": b.latency_transfer_ms,
        "pred_mobile_compute_ms": b.mobile_compute_ms,
        "pred_cloud_ms": b.cloud_ms,
        "pred_mobile_energy_mj": b.mobile_energy_mj,
        "pred_mobile_compute_mj": b.mobile_compute_mj,
        "pred_mobile_transfer_mj": b.mobile_transfer_mj,
        "pred_mobile_waiting_mj": b.mobile_waiting_mj,
        "pred_up_bytes": b.up_bytes,
        "pred_down_bytes": b.down_bytes,
        "pred_transfers": b.transfers,
    }


def plan_rows(
    problem: PlanningProblem, objectives: Sequence[str], constraints: Constraints, base: dict[str, Any]
) -> list[dict[str, Any]]:
    """plans.csv rows of one link: every single cut, then per objective the plan and the baselines."""
    n = problem.n
    rows = [
        _plan_row(base, make_plan(problem, single_cut_schedule(n, k), Objective()), "any", "single_cut", k)
        for k in range(n + 1)
    ]
    for name in objectives:
        objective = Objective(name)  # type: ignore[arg-type]
        try:
            rows.append(_plan_row(base, plan(problem, objective, constraints), name, "jointdnn"))
        except InfeasibleError as exc:
            empty = dict.fromkeys(PLAN_COLUMNS, math.nan)
            rows.append(
                {
                    **empty,
                    **base,
                    "objective": name,
                    "kind": "jointdnn",
                    "schedule": "",
                    "cut": -1,
                    "cuts": "",
                    "solver": "",
                    "constraints": json.dumps(constraints.active()),
                    "feasible": False,
                    "error": str(exc),
                }
            )
        for kind, baseline in baselines(problem, objective, constraints).items():
            cut = {"mobile_only": n, "cloud_only": 0}.get(kind, -1)
            if kind == "best_single_cut":
                cut = baseline.label.find("C") if "C" in baseline.label else n
            rows.append(_plan_row(base, baseline, name, kind, cut))
    return rows


def _measurement_row(base: dict[str, Any], e: Execution, repeat: int, check: Any) -> dict[str, Any]:
    return {
        **base,
        "schedule": e.label,
        "repeat": repeat,
        "latency_ms": e.latency_ms,
        "device_compute_ms": e.device_compute_ms,
        "upload_ms": e.upload_ms,
        "queue_ms": e.queue_ms,
        "server_ms": e.server_ms,
        "download_ms": e.download_ms,
        "transfer_ms": e.transfer_ms,
        "paced_ms": e.paced_ms,
        "device_overhead_ms": e.device_overhead_ms,
        "wall_ms": e.wall_ms,
        "up_bytes": e.up_bytes,
        "down_bytes": e.down_bytes,
        "requests": e.requests,
        "mobile_energy_mj": e.mobile_energy_mj,
        "mobile_compute_mj": e.mobile_compute_mj,
        "mobile_radio_mj": e.mobile_radio_mj,
        "mobile_waiting_mj": e.mobile_waiting_mj,
        "output_max_abs_err": check.max_abs_err,
        "output_tolerance": check.tolerance,
        "output_matches": check.matches,
        "argmax_matches": check.argmax_matches,
    }


def _run_id(model: str, quant: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{Path(model).name}-{quant}-{os.getpid()}"


def _execute_link(
    config: RunConfig,
    link: LinkSpec,
    *,
    device: Any,
    device_name: str,
    bundle_dir: Path,
    manifest: BundleManifest,
    run_dir: Path,
    mobile_csv: Path,
    x: np.ndarray,
    reference: np.ndarray,
    observer: RunObserver,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    from server.client import CloudClient

    power = load_device(config.device_profile)
    shaping: ShapingRequest = config.shaping if config.server == "local" else "pacing"
    base = {"run_id": run_dir.name, "model": manifest.model, "quant": manifest.quant, "device": device_name}
    cloud_csv = run_dir / "profiles" / "cloud.csv"
    observer.phase(f"{link.name}: shaping the link ({shaping})")
    with ShapedLink(link, shaping=shaping) as shaped:
        if config.server != "local":
            shaped.note = "remote server: client-side pacing on top of the real network"
        measured = measure_link(shaped)
        observer.phase(
            f"{link.name}: {shaped.mode}, achieved up {measured.up_mbps:.2f} Mbps, "
            f"down {measured.down_mbps:.2f} Mbps, RTT {measured.rtt_ms:.1f} ms"
        )
        if config.server == "local":
            url = start_local_server(shaped, bundle_dir, log_path=run_dir / f"server-{link.name}.log")
        else:
            url = config.server
        served = bundle_dir.name
        client = shaped.device_call(lambda: CloudClient(url, token=config.token, timeout_s=120.0))
        try:
            if not cloud_csv.is_file():
                observer.phase("profiling the cloud server (/profile)")
                raw = shaped.device_call(client.profile, served, config.cloud_profile_runs)
                write_rows(cloud_csv, cloud_profile_rows(raw, manifest))
            overhead_ms = calibrate_request_overhead(shaped, client, served, manifest, measured)
            executor = ScheduleExecutor(
                device=device,
                bundle_dir=bundle_dir,
                manifest=manifest,
                shaped=shaped,
                cloud=client,
                served_model=served,
                measured_link=measured,
                power=power,
                request_overhead_ms=overhead_ms,
            )
            n = manifest.num_segments
            for warm in ("C" * n, "M" * n):  # connections, pushed bundle, server interpreters
                executor.run(stages_from_label(warm), x)
            uncalibrated = planning_problem(
                mobile_csv, cloud_csv, link, power, Calibration(request_overhead_ms=overhead_ms)
            )
            mobile_scale, energy_scale, cloud_scale = calibrate_compute(executor, x, uncalibrated)
            calibration = Calibration(mobile_scale, energy_scale, cloud_scale, overhead_ms)
            observer.phase(
                f"{link.name}: calibration: request overhead {overhead_ms:.1f} ms, mobile x{mobile_scale:.2f}, "
                f"cloud x{cloud_scale:.2f}"
            )
            problem = planning_problem(mobile_csv, cloud_csv, link, power, calibration)
            plans = plan_rows(problem, config.objectives, config.constraints, {**base, "link": link.name})
            labels = list(dict.fromkeys(str(r["schedule"]) for r in plans if r["schedule"]))
            task = observer.task(f"{manifest.model} over {link.name}", len(labels) * config.repeats)
            rows = []
            row_base = {**base, "link": link.name, "shaping": shaped.mode}
            for repeat in range(config.repeats):  # round robin: drift hits every schedule alike
                for label in labels:
                    execution = executor.run(stages_from_label(label), x)
                    check = check_output(manifest, execution.output, reference)
                    rows.append(_measurement_row(row_base, execution, repeat, check))
                    observer.advance(task)
            observer.done(task)
        finally:
            shaped.device_call(client.close)
    return plans, rows, {**measured.as_row(), **asdict(calibration)}


def run_experiment(config: RunConfig, observer: RunObserver | None = None) -> RunResult:
    """Run everything ``config`` asks for and write the report; return where it is."""
    observer = observer or NullObserver()
    config.validate()
    links = [load_link(name) for name in config.links]  # fail early on unknown names
    power = load_device(config.device_profile)
    run_dir = Path(config.out_dir) / (config.run_id or _run_id(config.model, config.quant))
    (run_dir / "profiles").mkdir(parents=True, exist_ok=True)
    started = time.time()

    observer.phase(f"bundle {config.model} ({config.quant})")
    export_task: list[int] = []

    def exported(done: int, total: int) -> None:
        if not export_task:
            export_task.append(observer.task(f"exporting {config.model} ({config.quant})", total))
        observer.advance(export_task[0])

    bundle_dir, manifest = ensure_bundle(config.model, config.quant, config.bundles_dir, progress=exported)
    if export_task:
        observer.done(export_task[0])
    rng = np.random.default_rng(config.seed)
    x = rng.random(manifest.input.shape, dtype=np.float32)  # (1, H, W, C) in [0, 1): the calibration range
    reference = reference_output(bundle_dir, manifest, x)

    all_plans: list[dict[str, Any]] = []
    all_rows: list[dict[str, Any]] = []
    link_rows: list[dict[str, Any]] = []
    with open_device(config.device, power) as (device, device_name):
        observer.phase(f"mobile profile of {manifest.model} on {device_name}")
        task = observer.task(f"profiling {manifest.model} on {device_name}", manifest.num_segments + 1)
        mobile_csv = ensure_mobile_profile(
            device, bundle_dir, config.profiles_root, runs=config.profile_runs,
            on_segment=lambda _: observer.advance(task),
        )  # fmt: skip
        observer.done(task)
        shutil.copyfile(mobile_csv, run_dir / "profiles" / "mobile.csv")
        for link in links:
            plans, rows, measured = _execute_link(
                config, link, device=device, device_name=device_name, bundle_dir=bundle_dir,
                manifest=manifest, run_dir=run_dir, mobile_csv=run_dir / "profiles" / "mobile.csv",
                x=x, reference=reference, observer=observer,
            )  # fmt: skip
            all_plans += plans
            all_rows += rows
            link_rows.append(measured)
            (run_dir / "profiles" / f"link-{link.name}.yaml").write_text(
                "\n".join(f"{k}: {json.dumps(v)}" for k, v in link.model_dump().items()) + "\n"
            )
    (run_dir / "profiles" / f"device-{power.name}.yaml").write_text(
        "\n".join(f"{k}: {json.dumps(v)}" for k, v in power.model_dump().items()) + "\n"
    )
    plans_frame = pd.DataFrame(all_plans, columns=PLAN_COLUMNS)
    measurements = pd.DataFrame(all_rows, columns=MEASUREMENT_COLUMNS)
    links_frame = pd.DataFrame(link_rows, columns=LINKS_COLUMNS)
    plans_frame.to_csv(run_dir / "plans.csv", index=False)
    measurements.to_csv(run_dir / "measurements.csv", index=False)
    links_frame.to_csv(run_dir / "links.csv", index=False)
    meta = {
        **{k: v for k, v in asdict(config).items() if k not in ("constraints", "token")},
        "constraints": config.constraints.active(),
        "out_dir": str(config.out_dir),
        "bundles_dir": str(config.bundles_dir),
        "profiles_root": str(config.profiles_root),
        "bundle_dir": str(bundle_dir),
        "model_name": manifest.model,
        "num_segments": manifest.num_segments,
        "device_name": device_name,
        "planning_note": "per transfer the planner sees (rtt_ms + request_overhead_ms) / 2; segment "
        "costs scaled per link by the calibration factors in links.csv (see harness.runner.run)",
        "started_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    from harness.reports import build_report

    observer.phase("writing the report")
    build_report(run_dir)
    return RunResult(run_dir=run_dir, plans=plans_frame, measurements=measurements, links=links_frame)
