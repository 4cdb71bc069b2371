"""Typed, validated planner inputs: per-segment costs on the mobile and the cloud, plus the link.

A :class:`SegmentCosts` holds one chain of ``n`` segments (arrays of shape ``(n,)``) measured on both
sides; a :class:`PlanningProblem` adds the wireless link, the phone's waiting power and the phase
(inference or training). :func:`build_problem` makes one from profile CSVs (``models.profile_rows``
format) and the YAML link/device profiles (``harness.specs``), checking that the two profiles
describe the same segments and that every cost is present and non-negative.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import pandas as pd

from harness.specs import DeviceSpec, LinkSpec, load_device, load_link
from models.errors import ProfileError, UsageError
from models.profile_rows import read_profile, segment_rows

if TYPE_CHECKING:
    from harness.planner.costmodel import CostTables

__all__ = [
    "LOCATIONS",
    "PHASES",
    "Location",
    "Phase",
    "PlanningProblem",
    "SegmentCosts",
    "build_problem",
    "check_phase",
    "costs_from_frames",
]

Location = Literal["mobile", "cloud"]
Phase = Literal["inference", "training"]
LOCATIONS: tuple[Location, Location] = ("mobile", "cloud")  # index 0 = mobile, 1 = cloud
PHASES: tuple[Phase, Phase] = ("inference", "training")


def check_phase(phase: str, name: str = "phase") -> Phase:
    """``phase`` as a :data:`Phase`; :class:`~models.errors.UsageError` naming ``name`` if it is none."""
    if phase not in PHASES:
        raise UsageError(f"{name} must be {' or '.join(PHASES)}, got {phase!r}")
    return cast(Phase, phase)


def _array(name: str, values: object, n: int | None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if n is not None and array.shape != (n,):
        raise ProfileError(f"{name} has {array.size} values, expected one per segment ({n})")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ProfileError(f"{name} is missing (NaN/inf) for segment {int(bad[0])}")
    negative = np.flatnonzero(array < 0)
    if negative.size:
        i = int(negative[0])
        raise ProfileError(f"{name} is negative ({array[i]}) for segment {i}; costs must be >= 0")
    return array


@dataclass(frozen=True, eq=False)
class SegmentCosts:
    """Costs of a chain of ``n`` segments on both sides (all arrays shape ``(n,)``, validated).

    ``out_bytes[i]`` crosses the network when the location changes after segment ``i``;
    ``input_bytes`` is the model input (crosses when segment 0 runs on the cloud). The backward arrays
    and ``param_bytes`` matter only for training plans (zeros otherwise).
    """

    mobile_ms: np.ndarray  # forward latency on the phone, ms
    mobile_mj: np.ndarray  # forward energy on the phone above idle, mJ
    cloud_ms: np.ndarray  # forward latency on the cloud server, ms
    out_bytes: np.ndarray  # bytes of each segment's output tensor
    input_bytes: float  # bytes of the model input tensor
    mobile_backward_ms: np.ndarray | None = None
    mobile_backward_mj: np.ndarray | None = None
    cloud_backward_ms: np.ndarray | None = None
    param_bytes: np.ndarray | None = None  # float32 trainable weights per segment
    names: tuple[str, ...] = ()
    # fixed cost of one invocation starting at segment i: a mobile stage (ms, mJ) / a cloud request (ms)
    mobile_overhead_ms: np.ndarray | None = None
    mobile_overhead_mj: np.ndarray | None = None
    cloud_overhead_ms: np.ndarray | None = None
    weight_bytes: np.ndarray | None = None  # weight bytes the phone reads per pass (default: zeros)

    def __post_init__(self) -> None:
        n = np.asarray(self.mobile_ms).size
        if n == 0:
            raise ProfileError("a plan needs at least one segment; the profile has none")
        set_ = object.__setattr__  # frozen dataclass: normalise fields once, here
        for name in ("mobile_ms", "mobile_mj", "cloud_ms", "out_bytes"):
            set_(self, name, _array(name, getattr(self, name), n))
        optional = ("mobile_backward_ms", "mobile_backward_mj", "cloud_backward_ms", "param_bytes")
        overheads = ("mobile_overhead_ms", "mobile_overhead_mj", "cloud_overhead_ms")
        for name in (*optional, *overheads, "weight_bytes"):
            value = getattr(self, name)
            set_(self, name, np.zeros(n) if value is None else _array(name, value, n))
        input_bytes = float(self.input_bytes)
        if not math.isfinite(input_bytes) or input_bytes < 0:
            raise ProfileError(f"input_bytes must be a non-negative number, got {self.input_bytes}")
        set_(self, "input_bytes", input_bytes)
        names = tuple(self.names) or tuple(f"segment {i}" for i in range(n))
        if len(names) != n:
            raise ProfileError(f"{len(names)} segment names for {n} segments")
        set_(self, "names", names)

    @property
    def n(self) -> int:
        """Number of segments."""
        return int(self.mobile_ms.size)

    def boundary_bytes(self) -> np.ndarray:
        """Bytes crossing boundary ``i`` (before segment ``i``; ``n`` = after the last), shape (n+1,)."""
        return np.concatenate(([self.input_bytes], self.out_bytes))


@dataclass(frozen=True, eq=False)
class PlanningProblem:
    """Everything the planner needs besides the objective and the constraints.

    ``include_waiting_energy``: JointDNN counts only the phone's compute and radio energy; we also
    count, by default, ``waiting_mw`` while the phone waits for the cloud to compute and for round
    trips, because a phone that offloads still pays for staying awake (set False for the paper's model).
    ``sync_every_steps`` (training only): cloud-trained weights are downloaded every K steps, so each
    step pays ``param_bytes / K`` of download for every cloud-side segment.
    """

    segments: SegmentCosts
    link: LinkSpec
    waiting_mw: float = 0.0
    phase: Phase = "inference"
    include_waiting_energy: bool = True
    sync_every_steps: int | None = None
    model: str = ""
    device: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    dram_pj_per_byte: float = 0.0  # the device's price of reading a weight byte (0: not modelled)

    def __post_init__(self) -> None:
        check_phase(self.phase)
        if not math.isfinite(self.dram_pj_per_byte) or self.dram_pj_per_byte < 0:
            raise ProfileError(f"dram_pj_per_byte must be >= 0, got {self.dram_pj_per_byte}")
        if not math.isfinite(self.waiting_mw) or self.waiting_mw < 0:
            raise ProfileError(f"waiting_mw must be >= 0, got {self.waiting_mw}")
        if self.sync_every_steps is not None:
            if self.phase != "training":
                raise UsageError("sync_every_steps (weight download every K steps) needs phase=training")
            if self.sync_every_steps < 1:
                raise UsageError(f"sync_every_steps must be >= 1, got {self.sync_every_steps}")

    @property
    def n(self) -> int:
        """Number of segments."""
        return self.segments.n

    @cached_property
    def tables(self) -> CostTables:
        """Per-segment and per-boundary cost tables (built once per problem)."""
        from harness.planner.costmodel import build_tables

        return build_tables(self)

    def with_link(self, link: LinkSpec) -> PlanningProblem:
        """The same problem over another link (bandwidth sweeps)."""
        return PlanningProblem(
            segments=self.segments,
            link=link,
            waiting_mw=self.waiting_mw,
            phase=self.phase,
            include_waiting_energy=self.include_waiting_energy,
            sync_every_steps=self.sync_every_steps,
            model=self.model,
            device=self.device,
            extra=dict(self.extra),
        )


def _column(frame: pd.DataFrame, column: str, label: str) -> np.ndarray:
    if column not in frame.columns:
        raise ProfileError(f"{label} profile lacks column {column}")
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def _optional(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column added to profiles later (NaN where absent)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def _in_chain(frame: pd.DataFrame, hot: str, chain: str) -> np.ndarray:
    """Per segment, the in-chain time where the profile has it, else the hot-loop one (ms)."""
    chained = _optional(frame, chain)
    return np.where(np.isnan(chained), _column(frame, hot, "profile"), chained)


def costs_from_frames(
    mobile: pd.DataFrame,
    cloud: pd.DataFrame,
    device: DeviceSpec,
    *,
    phase: Phase = "inference",
    input_bytes: float | None = None,
) -> SegmentCosts:
    """Per-segment costs from a mobile and a cloud profile (``models.profile_rows`` frames).

    Both profiles must list the same segments (same indices, layers and ``out_bytes``). A segment's
    cost is its time in chain context (``chain_ms_median``, ``chain_energy_mj``) where the profile has
    it, else its hot-loop time (``latency_ms_median``, ``energy_mj``); the fixed cost of an invocation
    starting at a segment is its ``overhead_ms`` (0 where not measured). A mobile energy that is NaN
    (not measured) is derived from the device power model (``DeviceSpec.compute_energy_mj`` at the
    row's thread count), as is the energy of a mobile overhead; the cloud's energy is ignored.
    """
    m, c = segment_rows(mobile), segment_rows(cloud)
    if m.empty or c.empty:
        raise ProfileError(f"the {'mobile' if m.empty else 'cloud'} profile has no segment rows")
    m_seg, c_seg = m["segment"].astype(int).tolist(), c["segment"].astype(int).tolist()
    if m_seg != list(range(len(m_seg))):
        raise ProfileError(f"mobile profile segments are not 0..{len(m_seg) - 1}: {m_seg[:10]}")
    if m_seg != c_seg:
        raise ProfileError(
            f"mobile and cloud profiles list different segments ({len(m_seg)} vs {len(c_seg)}); "
            "profile both with the same bundle"
        )
    for column in ("first_layer", "last_layer"):
        differ = np.flatnonzero(m[column].astype(str).to_numpy() != c[column].astype(str).to_numpy())
        if differ.size:
            i = int(differ[0])
            raise ProfileError(
                f"mobile and cloud profiles differ at segment {i}: {column} "
                f"{m[column].iloc[i]!r} vs {c[column].iloc[i]!r} (profiles of different models/cuts?)"
            )
    m_out, c_out = _column(m, "out_bytes", "mobile"), _column(c, "out_bytes", "cloud")
    if not np.array_equal(m_out, c_out, equal_nan=True):
        i = int(np.flatnonzero(m_out != c_out)[0])
        raise ProfileError(
            f"mobile and cloud profiles differ at segment {i}: out_bytes {m_out[i]} vs {c_out[i]}"
        )

    mobile_ms = _array("mobile latency", _in_chain(m, "latency_ms_median", "chain_ms_median"), None)
    threads = np.nan_to_num(_column(m, "threads", "mobile"), nan=1.0).astype(int)
    hot_energy = _column(m, "energy_mj", "mobile")
    chain_energy = _optional(m, "chain_energy_mj")
    energy = np.where(np.isnan(_optional(m, "chain_ms_median")), hot_energy, chain_energy)
    derived = np.array(
        [device.compute_energy_mj(ms, int(t)) for ms, t in zip(mobile_ms, threads, strict=True)]
    )
    mobile_mj = np.where(np.isnan(energy), derived, energy)
    mobile_overhead_ms = np.nan_to_num(_optional(m, "overhead_ms"), nan=0.0)
    mobile_overhead_mj = np.array(
        [device.compute_energy_mj(ms, int(t)) for ms, t in zip(mobile_overhead_ms, threads, strict=True)]
    )
    # A profiled (or power-model) energy already includes reading the segment's float32 weights from DRAM;
    # split that part out into the memory term (costmodel adds weight_bytes x price back per pass), so a
    # dense plan's total is unchanged and a compact (SmartDeal) segment pays only for its compact bytes.
    dense_bytes = (
        np.nan_to_num(_column(m, "param_bytes", "mobile"), nan=0.0) if "param_bytes" in m.columns else None
    )
    dense_mj = 0.0 if dense_bytes is None else dense_bytes * device.dram_pj_per_byte * 1e-9
    mobile_mj = np.maximum(mobile_mj - dense_mj, 0.0)

    if input_bytes is None:
        input_bytes = float(_column(m, "in_bytes", "mobile")[0])
        if not math.isfinite(input_bytes) or input_bytes <= 0:
            raise ProfileError(
                "the mobile profile has no in_bytes for segment 0 (the model input size); "
                "re-profile or pass the input size explicitly (--input-bytes)"
            )

    backward: dict[str, np.ndarray | None] = {
        "mobile_backward_ms": None,
        "mobile_backward_mj": None,
        "cloud_backward_ms": None,
        "param_bytes": None,
    }
    if phase == "training":
        mb = _column(m, "backward_ms", "mobile")
        cb = _column(c, "backward_ms", "cloud")
        for label, values in (("mobile", mb), ("cloud", cb)):
            missing = np.flatnonzero(np.isnan(values))
            if missing.size:
                raise ProfileError(
                    f"training plan needs backward_ms, missing in the {label} profile for segment "
                    f"{int(missing[0])} (profile with training enabled)"
                )
        mbe = _column(m, "backward_energy_mj", "mobile")
        mbe_derived = np.array(
            [device.compute_energy_mj(ms, int(t)) for ms, t in zip(mb, threads, strict=True)]
        )
        backward = {
            "mobile_backward_ms": mb,
            "mobile_backward_mj": np.maximum(np.where(np.isnan(mbe), mbe_derived, mbe) - dense_mj, 0.0),
            "cloud_backward_ms": cb,
            "param_bytes": np.nan_to_num(_column(m, "param_bytes", "mobile"), nan=0.0),
        }
    names = tuple(
        f"{a}..{b}" if a != b else str(a) for a, b in zip(m["first_layer"], m["last_layer"], strict=True)
    )
    return SegmentCosts(
        mobile_ms=mobile_ms,
        mobile_mj=mobile_mj,
        cloud_ms=_in_chain(c, "latency_ms_median", "chain_ms_median"),
        out_bytes=m_out,
        input_bytes=input_bytes,
        names=names,
        **backward,
        mobile_overhead_ms=mobile_overhead_ms,
        mobile_overhead_mj=mobile_overhead_mj,
        cloud_overhead_ms=np.nan_to_num(_optional(c, "overhead_ms"), nan=0.0),
        weight_bytes=(
            np.nan_to_num(_column(m, "param_bytes", "mobile"), nan=0.0)
            if "param_bytes" in m.columns
            else None
        ),
    )


def build_problem(
    mobile: Path | str | pd.DataFrame,
    cloud: Path | str | pd.DataFrame,
    link: LinkSpec | str | Path,
    device: DeviceSpec | str | Path = "generic-phone",
    *,
    phase: Phase = "inference",
    include_waiting_energy: bool = True,
    sync_every_steps: int | None = None,
    input_bytes: float | None = None,
    weight_bytes: Sequence[float] | None = None,
) -> PlanningProblem:
    """A planning problem from profile CSVs (or frames), a link and a device power profile.

    ``link``/``device`` are profile objects, built-in names (``4g``, ``generic-phone``) or YAML paths.
    Raises :class:`~models.errors.ProfileError` / :class:`~models.errors.UnknownLinkError` on bad input,
    :class:`~models.errors.UsageError` on an unknown phase (:func:`check_phase`, in :class:`PlanningProblem`).
    """
    m_frame = mobile if isinstance(mobile, pd.DataFrame) else read_profile(Path(mobile))
    c_frame = cloud if isinstance(cloud, pd.DataFrame) else read_profile(Path(cloud))
    link_profile = link if isinstance(link, LinkSpec) else load_link(link)
    device_profile = device if isinstance(device, DeviceSpec) else load_device(device)
    segments = costs_from_frames(m_frame, c_frame, device_profile, phase=phase, input_bytes=input_bytes)
    if weight_bytes is not None:  # e.g. SmartDeal segments: the compact bytes are read and synced
        compact = _array("weight_bytes", weight_bytes, segments.n)
        segments = dataclasses.replace(segments, weight_bytes=compact, param_bytes=compact)
    models = segment_rows(m_frame)["model"].astype(str).unique().tolist()
    return PlanningProblem(
        segments=segments,
        link=link_profile,
        waiting_mw=device_profile.waiting_mw,
        phase=phase,
        include_waiting_energy=include_waiting_energy,
        sync_every_steps=sync_every_steps,
        model=models[0] if len(models) == 1 else "",
        device=device_profile.name,
        dram_pj_per_byte=device_profile.dram_pj_per_byte,
    )
