"""``jointdnn run``: plan every link x objective, execute every plan end to end, write the report.

For each link the runner opens a link session (:mod:`harness.runner.session`: a fresh shaped link,
measured first, with the server behind it), calibrates (:mod:`harness.runner.calibration`), plans each
objective with the JointDNN planner, adds the baselines (mobile-only, cloud-only, best single cut) and
every single cut (:mod:`harness.runner.planning`), and executes each distinct schedule ``repeats``
times on the device and the server over the shaped link (after a warm-up of the two extreme
schedules), checking every output against the whole model's. Inputs are real photos (sklearn's two or
``images``), and every schedule that starts on the cloud is also planned and executed uploading the
photo as a JPEG (``jpeg_quality``; :mod:`harness.runner.inputs`), the status quo of a real app. Rows go to ``plans.csv``,
``measurements.csv`` and ``links.csv`` (row types in :mod:`harness.reports.schema`); the report module
derives ``summary.csv``, the plots and ``index.md`` from them.

Modelling notes. Planning uses only the profiles and the link measurement, never the run's own
executions. The profiles time every segment in chain context — once per pass of the whole chain, as a
schedule runs it (the device's chain runner; the server's serving path) — and carry the fixed cost of
one invocation (``overhead_ms``, how it was measured in ``overhead_method``), which the cost model
charges once per mobile stage / cloud request (:mod:`harness.planner.costmodel`). The planner sees
per transfer half the round trip measured on the link plus the per-request overhead measured there
with a probe request before any schedule runs (:func:`~harness.runner.planning.planning_link`;
``request_overhead_ms`` in links.csv): one request/response costs one round trip, and HTTP, the web
framework and tensor encoding add a fixed few ms that the link model has no term for; and the bytes
a tc-shaped link lets through unserialised per transfer (its token bucket's burst: a 3 KB tensor
crosses 3G at once, not in 22 ms; ``up_burst_bytes``/``down_burst_bytes``). The factors a
per-link rescaling would have needed (measured mobile-only / cloud-only compute over predicted) are a
diagnostic in links.csv (``needed_*_scale``), not applied; ``calibrate=True`` (``jointdnn run
--calibrate``, opt-in) applies the old rescaling (:func:`~harness.runner.calibration.calibrate_compute`,
``mobile_scale``/``cloud_scale``), which fits the profiles on two executions of the link.
"""

from __future__ import annotations

import json
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
import yaml
from pydantic import BaseModel

from harness.devices.base import Device
from harness.links import ShapingRequest
from harness.planner import Constraints
from harness.reports.schema import LinkRow, MeasurementRow, PlanRow, RunKey, columns, values_from
from harness.runner.bundles import ensure_bundle
from harness.runner.calibration import (
    Calibration,
    calibrate_compute,
    calibrate_request_overhead,
    rescale_diagnostic,
)
from harness.runner.devices import open_device
from harness.runner.execute import ScheduleExecutor
from harness.runner.inputs import RunInput, jpeg_input, prepare_inputs, profile_jpeg_decode
from harness.runner.observer import NullObserver, RunObserver
from harness.runner.planning import plan_rows, planning_link, planning_problem
from harness.runner.profile_sources import ensure_cloud_profile, ensure_mobile_profile
from harness.runner.reference import check_output
from harness.runner.session import LinkSession, open_link_session
from harness.runner.stages import input_codec, stages_from_label
from harness.specs import DeviceSpec, LinkSpec, load_device, load_link
from models.bundle import BundleManifest
from models.errors import UsageError

__all__ = [
    "Calibration",
    "RunConfig",
    "RunResult",
    "calibrate_compute",
    "calibrate_request_overhead",
    "plan_rows",
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
    calibrate: bool = False  # opt-in: rescale the profiles per link with two executions (circular)
    images: list[Path] = field(default_factory=list)  # input photos; none = sklearn's two sample photos
    jpeg_quality: int = 90  # of the JPEG-coded input (the cloud-only status quo)
    measure_kinds: tuple[str, ...] = ()  # plan kinds to execute (PLAN_KINDS); () = all (sweeps: fewer)
    note: str = ""  # shown on the report's index page (e.g. "untrained butterfly weights")

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
        if not 1 <= self.jpeg_quality <= 95:
            raise UsageError(f"--jpeg-quality must be between 1 and 95, got {self.jpeg_quality}")
        missing = [str(p) for p in self.images if not Path(p).is_file()]
        if missing:
            raise UsageError(f"--image {missing[0]} is not a file")


@dataclass
class RunResult:
    """Where the report is and what went into it."""

    run_dir: Path
    plans: pd.DataFrame
    measurements: pd.DataFrame
    links: pd.DataFrame


@dataclass(frozen=True)
class _Run:
    """What every link of one run shares: the config, the bundle, the device, the input and its yardstick."""

    config: RunConfig
    run_dir: Path
    bundle_dir: Path
    manifest: BundleManifest
    device: Device
    power: DeviceSpec
    x: np.ndarray  # (1, H, W, C) float32 model input (the first photo)
    reference: np.ndarray  # the whole model's float32 output on x
    inputs: tuple[RunInput, ...] = ()  # every photo, raw and JPEG (x is inputs[0].x)

    @property
    def profiles(self) -> Path:
        return self.run_dir / "profiles"

    def key(self, link: LinkSpec) -> RunKey:
        m = self.manifest
        return RunKey(
            run_id=self.run_dir.name, model=m.model, quant=m.quant, device=self.device.name, link=link.name
        )

    def executor(self, session: LinkSession, request_overhead_ms: float) -> ScheduleExecutor:
        return ScheduleExecutor(
            device=self.device,
            bundle_dir=self.bundle_dir,
            manifest=self.manifest,
            session=session,
            power=self.power,
            request_overhead_ms=request_overhead_ms,
        )


@dataclass
class _LinkOutcome:
    plans: list[PlanRow]
    measurements: list[MeasurementRow]
    link: LinkRow


def _run_id(model: str, quant: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{Path(model).name}-{quant}-{os.getpid()}"


def _write_yaml(path: Path, spec: BaseModel) -> None:
    path.write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))


def _frame(rows: Sequence[LinkRow | PlanRow | MeasurementRow], row_type: type) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows], columns=columns(row_type))


def _warm_up(run: _Run, executor: ScheduleExecutor) -> None:
    """Cloud-only, then mobile-only, once: connections, the pushed bundle, the server's interpreters."""
    n = run.manifest.num_segments
    for warm in ("C" * n, "M" * n):
        executor.run(stages_from_label(warm), run.x)


def _calibrate_compute_step(
    run: _Run, executor: ScheduleExecutor, link: LinkSpec, cloud_csv: Path, measured: Calibration
) -> Calibration:
    """``--calibrate`` only: the compute rescaling of the profiles for this link (fitted on two executions)."""
    uncalibrated = planning_problem(run.profiles / "mobile.csv", cloud_csv, link, run.power, measured)
    mobile_scale, energy_scale, cloud_scale = calibrate_compute(executor, run.x, uncalibrated)
    return replace(
        measured, mobile_scale=mobile_scale, mobile_energy_scale=energy_scale, cloud_scale=cloud_scale
    )


def _measure_schedules(
    run: _Run, executor: ScheduleExecutor, labels: list[str], key: RunKey, shaping: str, observer: RunObserver
) -> list[MeasurementRow]:
    """Every schedule ``repeats`` times, round robin (drift hits every schedule alike), outputs checked."""
    repeats = run.config.repeats
    task = observer.task(f"{run.manifest.model} over {key.link}", len(labels) * repeats)
    rows = []
    for repeat in range(repeats):
        image = repeat % len(run.inputs)  # photos in turn
        for label in labels:
            codec = input_codec(label)
            x, reference, jpeg = run.inputs[image].for_codec(codec)
            execution = executor.run(stages_from_label(label), x, jpeg=jpeg)
            check = check_output(run.manifest, execution.output, reference)
            rows.append(
                MeasurementRow(
                    **asdict(key),
                    shaping=shaping,
                    schedule=execution.label,
                    repeat=repeat,
                    **values_from(MeasurementRow, "execution", execution),
                    **values_from(MeasurementRow, "check", check),
                    input_codec=codec,
                    image=image,
                )
            )
            observer.advance(task)
    observer.done(task)
    return rows


def _run_link(run: _Run, link: LinkSpec, observer: RunObserver) -> _LinkOutcome:
    """One link: session, cloud profile, calibration, planning, then every planned schedule executed."""
    config = run.config
    with open_link_session(
        link, run.bundle_dir, server=config.server, shaping=config.shaping, token=config.token,
        log_dir=run.run_dir, observer=observer,
    ) as session:  # fmt: skip
        cloud_csv = ensure_cloud_profile(
            session,
            run.manifest,
            run.profiles / "cloud.csv",
            runs=config.cloud_profile_runs,
            observer=observer,
        )
        overhead_ms = calibrate_request_overhead(session, run.manifest)
        executor = run.executor(session, overhead_ms)
        _warm_up(run, executor)
        up_burst, down_burst = session.shaped.burst_bytes
        calibration = Calibration(
            request_overhead_ms=overhead_ms,
            up_burst_bytes=up_burst,
            down_burst_bytes=down_burst,
            rtt_ms=session.measured.rtt_ms,
        )
        if config.calibrate:
            calibration = _calibrate_compute_step(run, executor, link, cloud_csv, calibration)
        observer.phase(
            f"{link.name}: request overhead {overhead_ms:.1f} ms"
            + (
                f", rescaled: mobile x{calibration.mobile_scale:.2f}, cloud x{calibration.cloud_scale:.2f}"
                if config.calibrate
                else ""
            )
        )
        decode_ms = profile_jpeg_decode(session, run.inputs, observer=observer)
        jpeg = jpeg_input(run.inputs, decode_ms, config.jpeg_quality)
        observer.phase(
            f"{link.name}: JPEG input {jpeg.jpeg_bytes / 1e3:.1f} KB, server decode {decode_ms:.2f} ms"
        )
        problem = planning_problem(run.profiles / "mobile.csv", cloud_csv, link, run.power, calibration)
        key = run.key(link)
        plans = plan_rows(problem, config.objectives, config.constraints, asdict(key), jpeg=jpeg)
        executed = [
            p for p in plans if p.schedule and (not config.measure_kinds or p.kind in config.measure_kinds)
        ]
        labels = list(dict.fromkeys(p.schedule for p in executed))
        measurements = _measure_schedules(run, executor, labels, key, session.shaped.mode, observer)
        diagnostic = rescale_diagnostic(problem, measurements)
        link_row = LinkRow(
            **values_from(LinkRow, "measured", session.measured),
            **values_from(LinkRow, "calibration", calibration),
            **values_from(LinkRow, "diagnostic", diagnostic),
            **values_from(LinkRow, "jpeg", jpeg),
        )
    return _LinkOutcome(plans, measurements, link_row)


def _prepare(config: RunConfig, observer: RunObserver) -> tuple[Path, BundleManifest, list[RunInput]]:
    """The bundle (exported if needed) and the run's input photos with the whole model's outputs."""
    observer.phase(f"bundle {config.model} ({config.quant})")
    bundle_dir, manifest = ensure_bundle(config.model, config.quant, config.bundles_dir, observer=observer)
    inputs = prepare_inputs(bundle_dir, manifest, config.images, config.jpeg_quality)
    return bundle_dir, manifest, inputs


def _run_meta(
    config: RunConfig, bundle_dir: Path, manifest: BundleManifest, device_name: str, started: float
) -> dict[str, Any]:
    """run.json: what was run."""
    return {
        **{k: v for k, v in asdict(config).items() if k not in ("constraints", "token", "images")},
        "images": [str(p) for p in config.images] or ["sklearn:china.jpg", "sklearn:flower.jpg"],
        "constraints": config.constraints.active(),
        "out_dir": str(config.out_dir),
        "bundles_dir": str(config.bundles_dir),
        "profiles_root": str(config.profiles_root),
        "bundle_dir": str(bundle_dir),
        "model_name": manifest.model,
        "num_segments": manifest.num_segments,
        "device_name": device_name,
        "planning_note": (
            "planned from the profiles, the link measurement and two executions per link (--calibrate): "
            if config.calibrate
            else "planned from the profiles and the link measurement only: "
        )
        + "segment costs timed in chain context plus per-invocation overhead_ms from the profiles; per "
        "transfer the planner sees (rtt_ms + request_overhead_ms) / 2 (both measured on the link: pings and "
        "a probe request) and serialises the bytes beyond the shaper's burst at the spec's rate; "
        + (
            "segment costs rescaled per link by mobile_scale/cloud_scale in links.csv"
            if config.calibrate
            else "no rescaling (needed_*_scale in links.csv: the factors a rescaling would have needed)"
        ),
        "started_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
    }


def run_experiment(config: RunConfig, observer: RunObserver | None = None) -> RunResult:
    """Run everything ``config`` asks for and write the report; return where it is."""
    observer = observer or NullObserver()
    config.validate()
    links = [load_link(name) for name in config.links]  # fail early on unknown names
    power = load_device(config.device_profile)
    run_dir = Path(config.out_dir) / (config.run_id or _run_id(config.model, config.quant))
    (run_dir / "profiles").mkdir(parents=True, exist_ok=True)
    started = time.time()
    bundle_dir, manifest, inputs = _prepare(config, observer)

    outcomes: list[_LinkOutcome] = []
    with open_device(config.device, power) as device:
        device_name = device.name
        observer.phase(f"mobile profile of {manifest.model} on {device_name}")
        mobile_csv = ensure_mobile_profile(
            device, bundle_dir, config.profiles_root, runs=config.profile_runs, observer=observer
        )
        shutil.copyfile(mobile_csv, run_dir / "profiles" / "mobile.csv")
        first = inputs[0]
        run = _Run(
            config, run_dir, bundle_dir, manifest, device, power, first.x, first.reference, tuple(inputs)
        )
        for link in links:
            outcomes.append(_run_link(run, link, observer))
            _write_yaml(run_dir / "profiles" / f"link-{link.name}.yaml", link)
    _write_yaml(run_dir / "profiles" / f"device-{power.name}.yaml", power)
    plans = _frame([p for o in outcomes for p in o.plans], PlanRow)
    measurements = _frame([m for o in outcomes for m in o.measurements], MeasurementRow)
    links_frame = _frame([o.link for o in outcomes], LinkRow)
    plans.to_csv(run_dir / "plans.csv", index=False)
    measurements.to_csv(run_dir / "measurements.csv", index=False)
    links_frame.to_csv(run_dir / "links.csv", index=False)
    meta = _run_meta(config, bundle_dir, manifest, device_name, started)
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    from harness.reports import build_report

    observer.phase("writing the report")
    build_report(run_dir)
    return RunResult(run_dir=run_dir, plans=plans, measurements=measurements, links=links_frame)
