"""``jointdnn run --adaptive --trace FILE``: run a model over a replayed link trace, re-planning online.

One run = one link session (:mod:`harness.runner.session`: shaped link, server behind it, client on the
device side), the runner's profiles, calibration and planning problem, then one pass over the trace
with every *policy*: ``adaptive`` (the :class:`~harness.adaptive.controller.AdaptiveController`),
``adaptive-energy`` (the same, minimising energy) or ``static:<schedule>`` (one schedule throughout, for
comparison; ``static:planned`` stands for every schedule the planner picks for some row of the trace,
for either objective, plus mobile-only and cloud-only). The policies run **interleaved**, one request
each in turn (as the runner measures schedules round robin), so that every policy meets the same link,
server load and machine load at the same moments; each has its own estimators and battery, fed by its
own requests only. The pass replays the trace (:class:`~harness.links.trace.TraceReplay` changes the
shaping while requests flow), starts the load phases (a bounded load generator on the server's side of
the link, :mod:`harness.adaptive.loadgen`) at their trace times, and executes requests with the
runner's :class:`~harness.runner.execute.ScheduleExecutor` until the trace ends. Meanwhile a poller on
the device side reads ``/v1/load`` a few times a second: the server's load for the queue estimate, and
its round trip as the link's latency sample (pacing included); for a policy whose requests sent nothing
large for :data:`PROBE_IDLE_S` (mobile-only, small splits), it also times an upload and a download with
the link probe, between requests, so that its bandwidth estimate does not go stale.

Every request becomes a :class:`~harness.reports.schema.DecisionRow` in ``decisions.csv``: inputs,
decision, decision time, the trace's truth, and the measured execution. The battery is a model
(:class:`ModelBattery`) drained by each request's measured mobile energy, so that a short run can cross
the battery threshold; its capacity is a parameter, reported in ``run.json``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.adaptive.controller import AdaptiveController, ControllerSettings, Decision, Observation
from harness.adaptive.estimator import LinkEstimator, QueueEstimator
from harness.links import ShapedLink, netns
from harness.links.measure import probe_transfer
from harness.links.trace import LinkConditions, LinkTrace, TraceReplay, load_trace
from harness.planner import PlanningProblem
from harness.reports.schema import DecisionRow, columns, values_from
from harness.runner.bundles import ensure_bundle
from harness.runner.calibration import Calibration, calibrate_request_overhead
from harness.runner.devices import open_device
from harness.runner.execute import ScheduleExecutor
from harness.runner.inputs import prepare_inputs
from harness.runner.observer import NullObserver, RunObserver
from harness.runner.planning import planning_problem
from harness.runner.profile_sources import ensure_cloud_profile, ensure_mobile_profile
from harness.runner.reference import check_output
from harness.runner.run import RunConfig
from harness.runner.session import Exchange, LinkSession, open_link_session
from harness.runner.stages import stages_from_label
from harness.specs import load_device, load_link
from models.errors import UsageError
from server.client import CloudClient

__all__ = [
    "AdaptiveResult",
    "AdaptiveRunConfig",
    "LoadPhase",
    "ModelBattery",
    "run_adaptive",
]

POLL_PERIOD_S = 0.25  # /v1/load polls per second: 4
PROBE_IDLE_S = 1.0  # probe the bandwidth when no transfer gave a sample for this long
PROBE_BYTES = 48_000  # per direction (above the estimator's MIN_SAMPLE_BYTES)


@dataclass(frozen=True)
class LoadPhase:
    """A server-load spike: ``concurrency`` whole-model requests in flight from ``start_s`` to ``stop_s``."""

    start_s: float
    stop_s: float
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.stop_s or self.concurrency < 1:
            raise UsageError(f"a load phase needs 0 <= start < stop and concurrency >= 1, got {self}")


@dataclass
class ModelBattery:
    """A battery model: ``level_pct`` falls by each request's measured mobile energy over ``capacity_mj``."""

    level_pct: float = 100.0
    capacity_mj: float = math.inf  # inf: the level never moves

    def drain(self, energy_mj: float) -> None:
        if math.isfinite(self.capacity_mj) and energy_mj > 0:
            self.level_pct = max(0.0, self.level_pct - 100.0 * energy_mj / self.capacity_mj)


@dataclass
class AdaptiveRunConfig:
    """What an adaptive run does: the runner's settings (``run``: model, device, server, the one link
    whose radio power model and rates are the starting point, shaping, folders, profiling) plus the
    trace, the policies, the controller's settings, the load phases and the battery model."""

    run: RunConfig
    trace: str  # file or shipped trace name
    policies: list[str] = field(default_factory=lambda: ["adaptive"])
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    load: list[LoadPhase] = field(default_factory=list)
    battery_start_pct: float = 100.0
    battery_capacity_mj: float = math.inf
    duration_s: float | None = None  # default: the trace's duration; longer: the trace loops
    trace_rtt_ms: float = 50.0  # Mahimahi traces carry no delay

    def validate(self) -> None:
        self.run.validate()
        if len(self.run.links) != 1:
            raise UsageError("an adaptive run replays one trace over one link's radio model: give one link")
        for policy in self.policies:
            if policy not in ("adaptive", "adaptive-energy", "static:planned") and not (
                policy.startswith("static:") and set(policy[7:]) <= {"M", "C"} and len(policy) > 7
            ):
                raise UsageError(
                    f"policy {policy!r}: use adaptive, adaptive-energy, static:planned or "
                    "static:<schedule of M/C letters>"
                )
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError(f"--duration-s must be > 0, got {self.duration_s}")
        if not 0 <= self.battery_start_pct <= 100:
            raise UsageError(f"battery start must be within 0-100 %, got {self.battery_start_pct}")


@dataclass
class AdaptiveResult:
    run_dir: Path
    decisions: pd.DataFrame
    trace: LinkTrace


class _Beliefs:
    """The estimators, shared by the request loop and the poller thread (one lock)."""

    def __init__(self, prior: LinkConditions, model: str):
        self.link = LinkEstimator(prior)
        self.queue = QueueEstimator()
        self.model = model
        self.in_flight = False  # one of our requests is at the server
        self.lock = threading.Lock()

    def observation(self, battery_pct: float) -> Observation:
        with self.lock:
            est = self.link.estimate()
            return Observation(est.up_mbps, est.down_mbps, est.rtt_ms, self.queue.queue_ms, battery_pct)


@dataclass(frozen=True)
class _WatchedSession(LinkSession):
    """The run's link session, flagging while one of our requests is on the link or at the server (the
    poller then neither probes nor counts our request in the server's backlog)."""

    beliefs: _Beliefs | None = None

    def exchange(
        self, x: np.ndarray, *, from_segment: int, to_segment: int, jpeg: bytes | None = None
    ) -> Exchange:
        assert self.beliefs is not None
        self.beliefs.in_flight = True
        try:
            return super().exchange(x, from_segment=from_segment, to_segment=to_segment, jpeg=jpeg)
        finally:
            self.beliefs.in_flight = False


class _Poller:
    """Reads ``/v1/load`` every :data:`POLL_PERIOD_S` from the device side; feeds every lane's RTT and
    queue beliefs, and probes the bandwidth for lanes whose own traffic gave no sample lately."""

    def __init__(self, shaped: ShapedLink, url: str, token: str | None, lanes: list[_Beliefs]):
        self.shaped, self.url, self.token, self.lanes = shaped, url, token, lanes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-poller", daemon=True)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _busy(self) -> bool:
        return any(b.in_flight for b in self.lanes)

    def _run(self) -> None:
        names = self.shaped.namespaces
        if names is not None:
            netns.enter_namespace(names[0])  # this thread only: its HTTP crosses the shaped link
        with CloudClient(self.url, token=self.token, timeout_s=30.0, retries=0) as client:
            while not self._stop.wait(POLL_PERIOD_S):
                t0 = time.perf_counter()
                try:
                    report = client.load()
                except Exception:  # a poll lost to a fade is just a missing sample
                    continue
                elapsed = (time.perf_counter() - t0) * 1e3
                elapsed += self.shaped.pace(200, 600, elapsed)  # pacing: a small request/response
                now, busy = time.monotonic(), self._busy()
                idle = []
                for beliefs in self.lanes:
                    with beliefs.lock:
                        beliefs.link.add_ping(elapsed, now)
                        beliefs.queue.update(report, beliefs.model, ours_in_flight=busy)
                        if now - beliefs.link.last_sample_s > PROBE_IDLE_S:
                            idle.append(beliefs)
                if idle and not self._busy():
                    self._probe(idle)

    def _probe(self, lanes: list[_Beliefs]) -> None:
        shaped = self.shaped
        try:
            ping_ms, up_ms, down_ms = probe_transfer(
                shaped.cloud_host, shaped.probe_port, PROBE_BYTES, PROBE_BYTES
            )
        except OSError:
            return
        ping_ms += shaped.pace(0, 0, ping_ms)
        up_ms += shaped.pace(PROBE_BYTES, 0, up_ms)
        down_ms += shaped.pace(0, PROBE_BYTES, down_ms)
        for beliefs in lanes:
            with beliefs.lock:
                beliefs.link.add_probe(
                    PROBE_BYTES, up_ms, PROBE_BYTES, down_ms, time.monotonic(), rtt_ms=ping_ms
                )


@contextmanager
def _load_phases(
    shaped: ShapedLink, phases: list[LoadPhase], model: str, token: str | None, log_path: Path
) -> Iterator[None]:
    """One bounded load generator per phase on the cloud side, started now and told the wall-clock
    time of its phase (so its own start-up does not delay it); each ends by itself at its stop time.
    All are stopped here when the block ends, and with the link in any case."""
    now = time.time()
    procs = []
    for phase in phases:
        argv = [sys.executable, "-m", "harness.adaptive.loadgen", "--model", model]
        argv += ["--url", f"http://127.0.0.1:{shaped.server_port}", "--concurrency", str(phase.concurrency)]
        argv += [
            "--duration-s",
            f"{phase.stop_s - phase.start_s:.3f}",
            "--start-at",
            f"{now + phase.start_s:.3f}",
        ]
        if token:
            argv += ["--token", token]
        procs.append(shaped.spawn_cloud(argv, stdout_path=str(log_path)))
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


def planned_schedules(problem: PlanningProblem, trace: LinkTrace, request_overhead_ms: float) -> list[str]:
    """Every schedule the planner picks at some row of ``trace`` (latency or energy objective), plus
    mobile-only and cloud-only: the static plans an adaptive run is compared with."""
    n = problem.n
    labels = {"M" * n, "C" * n}
    for objective in ("latency", "energy"):
        controller = AdaptiveController(problem, ControllerSettings(objective=objective))
        for t in trace.change_times():
            c = trace.at(t)
            labels.add(
                controller.cell_decision(Observation(c.up_mbps, c.down_mbps, c.rtt_ms + request_overhead_ms))
            )
    return sorted(labels, key=lambda label: (label.count("C"), label))


def _expand(policies: list[str], planned: list[str]) -> list[str]:
    out: list[str] = []
    for policy in policies:
        for p in [f"static:{label}" for label in planned] if policy == "static:planned" else [policy]:
            if p not in out:
                out.append(p)
    return out


@dataclass
class _Lane:
    """One policy within an interleaved pass: its controller or schedule, beliefs, battery and rows."""

    policy: str
    controller: AdaptiveController | None
    static: str | None
    beliefs: _Beliefs
    battery: ModelBattery
    executor: ScheduleExecutor
    rows: list[DecisionRow] = field(default_factory=list)


def _lane(
    policy: str, config: AdaptiveRunConfig, session: LinkSession, executor: ScheduleExecutor,
    problem: PlanningProblem, trace: LinkTrace,
) -> _Lane:  # fmt: skip
    manifest = executor.manifest
    settings = config.settings
    if policy == "adaptive-energy":
        settings = replace(settings, objective="energy")
    controller = AdaptiveController(problem, settings) if policy.startswith("adaptive") else None
    static = policy[7:] if policy.startswith("static:") else None
    if static is not None and len(static) != manifest.num_segments:
        raise UsageError(f"{policy}: the model has {manifest.num_segments} segments, not {len(static)}")
    beliefs = _Beliefs(trace.at(0.0), session.served_model)
    watched = ScheduleExecutor(
        device=executor.device, bundle_dir=executor.bundle_dir, manifest=manifest,
        session=_WatchedSession(**{f.name: getattr(session, f.name) for f in fields(session)}, beliefs=beliefs),
        power=executor.power, threads=executor.threads, request_overhead_ms=executor.request_overhead_ms,
    )  # fmt: skip
    battery = ModelBattery(config.battery_start_pct, config.battery_capacity_mj)
    return _Lane(policy, controller, static, beliefs, battery, watched)


def _step(
    lane: _Lane, t_s: float, trace: LinkTrace, x: np.ndarray, reference: np.ndarray, run_id: str
) -> None:
    """One request of one lane: decide, execute, learn from it, record it."""
    beliefs, battery = lane.beliefs, lane.battery
    obs = beliefs.observation(battery.level_pct)
    truth = trace.at(t_s % trace.duration_s)
    decision: Decision | None = lane.controller.decide(obs) if lane.controller is not None else None
    label = decision.label if decision is not None else str(lane.static)
    execution = lane.executor.run(stages_from_label(label), x)
    if execution.requests:
        with beliefs.lock:
            beliefs.link.add_exchange(
                execution.up_bytes, execution.down_bytes, execution.transfer_ms, time.monotonic(),
                requests=execution.requests,
            )  # fmt: skip
    battery.drain(execution.mobile_energy_mj)
    check = check_output(lane.executor.manifest, execution.output, reference)
    with beliefs.lock:
        backlog, utilization = beliefs.queue.backlog, beliefs.queue.utilization
    lane.rows.append(
        DecisionRow(
            run_id=run_id,
            policy=lane.policy,
            request=len(lane.rows),
            t_s=round(t_s, 4),
            schedule=label,
            switched=bool(decision and decision.switched),
            cache_hit=bool(decision and decision.cache_hit),
            decision_us=decision.decision_us if decision else 0.0,
            objective=decision.objective if decision else "static",
            mode=decision.mode if decision else "static",
            feasible=decision.feasible if decision else True,
            predicted=decision.predicted if decision else math.nan,
            est_up_mbps=obs.up_mbps,
            est_down_mbps=obs.down_mbps,
            est_rtt_ms=obs.rtt_ms,
            est_queue_ms=obs.queue_ms,
            server_backlog=backlog,
            server_utilization=utilization,
            battery_pct=obs.battery_pct,
            true_up_mbps=truth.up_mbps,
            true_down_mbps=truth.down_mbps,
            true_rtt_ms=truth.rtt_ms,
            **values_from(DecisionRow, "execution", execution),
            **values_from(DecisionRow, "check", check),
        )
    )


def _run_policies(
    policies: list[str],
    *,
    config: AdaptiveRunConfig,
    session: LinkSession,
    executor: ScheduleExecutor,
    problem: PlanningProblem,
    trace: LinkTrace,
    x: np.ndarray,
    reference: np.ndarray,
    run_id: str,
    log_dir: Path,
    observer: RunObserver,
) -> list[DecisionRow]:
    """One pass over the trace with every policy interleaved, one request each in turn (see the module
    docstring): every policy meets the same link, load and machine at the same moments."""
    shaped = session.shaped
    duration = config.duration_s or trace.duration_s
    lanes = [_lane(policy, config, session, executor, problem, trace) for policy in policies]
    task = observer.task(f"{len(lanes)} policies over {trace.name}", int(duration))
    apply = lambda c: shaped.set_conditions(c.up_mbps, c.down_mbps, c.rtt_ms)  # noqa: E731
    with (
        TraceReplay(trace, apply, loop=duration > trace.duration_s) as replay,
        _Poller(shaped, shaped.cloud_url(), config.run.token, [lane.beliefs for lane in lanes]),
        _load_phases(shaped, config.load, session.served_model, config.run.token, log_dir / "loadgen.log"),
    ):
        shown = 0
        while time.monotonic() - replay.started < duration:
            for lane in lanes:
                t_s = time.monotonic() - replay.started  # run time; the replay wraps the trace when looping
                if t_s >= duration:
                    break
                _step(lane, t_s, trace, x, reference, run_id)
            if int(t_s) > shown:
                observer.advance(task, int(t_s) - shown)
                shown = int(t_s)
    observer.done(task)
    return [row for lane in lanes for row in lane.rows]


def run_adaptive(config: AdaptiveRunConfig, observer: RunObserver | None = None) -> AdaptiveResult:
    """Run every policy of ``config`` over its trace; write ``decisions.csv``, plots and ``run.json``."""
    observer = observer or NullObserver()
    config.validate()
    run = config.run
    trace = load_trace(config.trace, rtt_ms=config.trace_rtt_ms)
    base_link = load_link(run.links[0])
    start = trace.at(0.0)
    link = start.apply_to(base_link)
    power = load_device(run.device_profile)
    run_id = run.run_id or (
        f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-adaptive-{Path(run.model).name}-{os.getpid()}"
    )
    run_dir = Path(run.out_dir) / run_id
    (run_dir / "profiles").mkdir(parents=True, exist_ok=True)
    started = time.time()
    observer.phase(f"bundle {run.model} ({run.quant})")
    bundle_dir, manifest = ensure_bundle(run.model, run.quant, run.bundles_dir, observer=observer)
    photo = prepare_inputs(bundle_dir, manifest)[0]  # a real photo, as `jointdnn run` uses
    x, reference = photo.x, photo.reference
    rows: list[DecisionRow] = []
    meta: dict[str, Any] = {}
    with open_device(run.device, power) as device:
        mobile_csv = ensure_mobile_profile(
            device, bundle_dir, run.profiles_root, runs=run.profile_runs, observer=observer
        )
        with open_link_session(
            link, bundle_dir, server=run.server, shaping=run.shaping, token=run.token,
            log_dir=run_dir, observer=observer,
        ) as session:  # fmt: skip
            cloud_csv = ensure_cloud_profile(
                session, manifest, run_dir / "profiles" / "cloud.csv", runs=run.cloud_profile_runs,
                observer=observer,
            )  # fmt: skip
            overhead_ms = calibrate_request_overhead(session, manifest)
            executor = ScheduleExecutor(
                device=device, bundle_dir=bundle_dir, manifest=manifest, session=session, power=power,
                request_overhead_ms=overhead_ms,
            )  # fmt: skip
            n = manifest.num_segments
            for warm in ("C" * n, "M" * n):
                executor.run(stages_from_label(warm), x)
            up_burst, down_burst = session.shaped.burst_bytes
            # planned from the profiles and the link measurement only: no rescaling on executions
            calibration = Calibration(
                request_overhead_ms=overhead_ms, up_burst_bytes=up_burst, down_burst_bytes=down_burst
            )
            problem = planning_problem(mobile_csv, cloud_csv, link, power, calibration)
            policies = config.policies
            if "static:planned" in policies:
                policies = _expand(policies, planned_schedules(problem, trace, overhead_ms))
            observer.phase(
                f"{', '.join(policies)}: replaying {trace.name} ({config.duration_s or trace.duration_s:.0f} s)"
            )
            rows = _run_policies(
                policies, config=config, session=session, executor=executor, problem=problem, trace=trace,
                x=x, reference=reference, run_id=run_id, log_dir=run_dir, observer=observer,
            )  # fmt: skip
            meta = {
                "shaping": session.shaped.mode,
                "shaping_note": session.shaped.note,
                "request_overhead_ms": overhead_ms,
                "calibration": asdict(calibration),
            }
    decisions = pd.DataFrame([asdict(r) for r in rows], columns=columns(DecisionRow))
    decisions.to_csv(run_dir / "decisions.csv", index=False)
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "kind": "adaptive",
                "model": run.model,
                "model_name": manifest.model,
                "num_segments": manifest.num_segments,
                "trace": str(config.trace),
                "trace_source": trace.source,
                "policies": sorted(set(decisions["policy"]), key=list(decisions["policy"]).index),
                "settings": {
                    **{k: v for k, v in asdict(config.settings).items() if k != "constraints"},
                    "constraints": config.settings.constraints.active(),
                },
                "load": [asdict(p) for p in config.load],
                "battery_start_pct": config.battery_start_pct,
                "battery_capacity_mj": config.battery_capacity_mj
                if math.isfinite(config.battery_capacity_mj)
                else None,
                "device": run.device,
                "link_power_model": base_link.name,
                "started_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
                "duration_s": round(time.time() - started, 1),
                **meta,
            },
            indent=2,
        )
        + "\n"
    )
    from harness.reports.timeline import plot_timelines

    plot_timelines(decisions, run_dir)
    return AdaptiveResult(run_dir, decisions, trace)
