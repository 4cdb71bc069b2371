"""Make sure a run has the per-segment profiles the planner needs, measuring what is missing.

Mobile profiles live at ``device_profiles/measured/<device>/<model>-<quant>.csv`` (the profiling job's
place, under the working directory) and are reused while their ``artifact_sha256`` match the bundle's
segments; missing or stale segments are measured and appended one at a time (atomic appends), so an
interrupted run resumes where it stopped. The profiling job of :mod:`harness.profiling` does the
measuring (``benchmark_model`` on ADB devices, in-process LiteRT on the local one).

The cloud profile comes from the server's ``/profile`` endpoint (it times its own interpreters, alone
in a loop and in chain context through its serving path, with the fixed cost of a request) and is
written into the run directory (:func:`ensure_cloud_profile`). Mobile rows get their chain-context
columns from ``run_chain`` passes of the profiling job (:func:`harness.profiling.measure_in_chain`).

Progress: the profiling job reports to a :class:`~harness.profiling.JobListener`;
:class:`ProfileProgress` is that listener forwarding to the run's
:class:`~harness.runner.observer.RunObserver` (one task).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from harness.devices.base import Device
from harness.profiling import DEFAULT_OUT_ROOT, JobListener, JobResult, ProfileSettings, profile_device
from harness.runner.observer import NullObserver, RunObserver
from harness.runner.session import LinkSession
from models.bundle import BundleManifest, read_manifest
from models.errors import ProfileError
from models.profile_rows import (
    COLUMNS,
    ProfileRow,
    append_rows,
    read_profile,
)

__all__ = [
    "ProfileProgress",
    "cloud_profile_rows",
    "ensure_cloud_profile",
    "ensure_mobile_profile",
    "write_rows",
]


class ProfileProgress(JobListener):
    """The profiling job's listener as one task of a :class:`RunObserver`: the bridge between the two.

    ``started`` opens the task (units already in the CSV count as done), every measured unit advances
    it, ``finished`` closes it.
    """

    def __init__(self, observer: RunObserver, description: str):
        self.observer = observer
        self.description = description
        self.task: int | None = None

    def started(self, device: str, total: int, done: int) -> None:
        self.task = self.observer.task(self.description, total)
        if done:
            self.observer.advance(self.task, done)

    def unit_done(self, device: str, row: ProfileRow, measured: bool) -> None:
        if self.task is not None:
            self.observer.advance(self.task)

    def finished(self, device: str, result: JobResult | None, error: BaseException | None) -> None:
        if self.task is not None:
            self.observer.done(self.task)
            self.task = None


def ensure_mobile_profile(
    device: Device,
    bundle_dir: Path,
    root: Path,
    *,
    runs: int = 10,
    observer: RunObserver | None = None,
) -> Path:
    """Profile the segments of ``bundle_dir`` that the device's profile CSV lacks; return the CSV.

    The profiling job (:func:`harness.profiling.profile_device`) skips rows already measured for the
    same artifacts, so this is cheap when the profile exists and resumes when it was interrupted.
    Its progress is one ``observer`` task.
    """
    manifest = read_manifest(bundle_dir)
    progress = ProfileProgress(observer or NullObserver(), f"profiling {manifest.model} on {device.name}")
    settings = ProfileSettings(runs=runs, backward=False, warmup_min_secs=0.1)
    result = profile_device(
        device,
        Path(bundle_dir),
        settings,
        out_root=Path(root) / DEFAULT_OUT_ROOT,
        listener=progress,
        resume_hint="the same `jointdnn run` command",
    )
    return result.csv_path


def ensure_cloud_profile(
    session: LinkSession,
    manifest: BundleManifest,
    csv_path: Path,
    *,
    runs: int = 20,
    observer: RunObserver | None = None,
) -> Path:
    """The server's profile of the session's bundle at ``csv_path``, asked of ``/profile`` unless there."""
    if not csv_path.is_file():
        (observer or NullObserver()).phase("profiling the cloud server (/profile)")
        write_rows(csv_path, cloud_profile_rows(session.profile(runs), manifest))
    return csv_path


def cloud_profile_rows(raw: list[dict[str, Any]], manifest: BundleManifest) -> list[ProfileRow]:
    """Profile rows from the server's ``/profile`` answer (unknown keys dropped, ``in_bytes`` filled)."""
    names = {f.name for f in fields(ProfileRow)}
    rows = []
    for item in raw:
        row = ProfileRow(**{k: v for k, v in item.items() if k in names})
        if 0 <= row.segment < manifest.num_segments and not row.in_bytes:
            row.in_bytes = manifest.segments[row.segment].input.nbytes
        rows.append(row)
    if not any(r.segment >= 0 for r in rows):
        raise ProfileError("the server's /profile answer has no segment rows")
    return rows


def write_rows(path: Path, rows: list[ProfileRow]) -> Path:
    """Write rows to a fresh profile CSV (replacing any)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    append_rows(path, rows)
    assert list(read_profile(path).columns)[: len(COLUMNS)] == COLUMNS
    return path
