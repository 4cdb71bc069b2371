"""Time-varying links: a trace of (up Mbps, down Mbps, RTT) over time, read from CSV or Mahimahi files.

Two formats:

``CSV`` (this project's): a header ``t_s,up_mbps,down_mbps,rtt_ms`` and one row per change; a row holds
from its ``t_s`` until the next row's (the last row for as long as the step before it). Lines starting
with ``#`` are comments (the shipped traces say there how they were made). Time must start at >= 0 and
strictly increase; rates must be > 0 Mbps (write a small rate such as 0.05 for an outage: a token
bucket cannot be set to zero) and the RTT >= 0 ms.

``Mahimahi`` (``mm-link`` packet-delivery traces, as in the Mahimahi and Pensieve data sets): one integer
millisecond timestamp per line, each an opportunity to deliver one 1500-byte packet; timestamps never
decrease and the file loops at its last timestamp. It is binned into ``bin_ms`` windows (Mbps =
opportunities x 1500 B x 8 / window); a window without opportunities gets :data:`MIN_MBPS`. Mahimahi
keeps delay apart (``mm-delay``), so the RTT is a parameter; a second file may give the downlink (else
the one trace shapes both directions, like ``mm-link TRACE TRACE``).

Errors name the file, the line and what to fix (:class:`~models.errors.SpecError`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from harness.specs import LinkSpec, builtin_profiles_dir
from models.errors import SpecError

__all__ = [
    "CSV_HEADER",
    "MAHIMAHI_PACKET_BYTES",
    "MIN_MBPS",
    "LinkConditions",
    "LinkTrace",
    "TraceReplay",
    "load_trace",
    "parse_csv_trace",
    "parse_mahimahi",
    "shipped_traces",
    "trace_path",
]

CSV_HEADER = ("t_s", "up_mbps", "down_mbps", "rtt_ms")
MAHIMAHI_PACKET_BYTES = 1500  # one delivery opportunity
MIN_MBPS = 0.05  # floor for windows without delivery opportunities (tbf rates must be > 0)


@dataclass(frozen=True)
class LinkConditions:
    """What the link offers at one moment."""

    up_mbps: float
    down_mbps: float
    rtt_ms: float

    def apply_to(self, link: LinkSpec) -> LinkSpec:
        """``link`` with these rates and round trip (the radio power model stays)."""
        return link.model_copy(
            update={"up_mbps": self.up_mbps, "down_mbps": self.down_mbps, "rtt_ms": self.rtt_ms}
        )


@dataclass(frozen=True, eq=False)
class LinkTrace:
    """A piecewise-constant link over time: row ``i`` holds from ``t_s[i]`` to ``t_s[i+1]`` (arrays (k,))."""

    name: str
    t_s: np.ndarray
    up_mbps: np.ndarray
    down_mbps: np.ndarray
    rtt_ms: np.ndarray
    source: str = ""  # how the trace was made / where it comes from

    @property
    def duration_s(self) -> float:
        """End of the last row: its start plus the step before it (1 s for a one-row trace)."""
        t = self.t_s
        return float(t[-1] + (t[-1] - t[-2] if t.size > 1 else 1.0))

    def index_at(self, t_s: float) -> int:
        """The row in force at ``t_s`` (the first row before it starts, the last after it ends)."""
        return max(0, int(np.searchsorted(self.t_s, t_s, side="right")) - 1)

    def at(self, t_s: float) -> LinkConditions:
        """The conditions in force at ``t_s`` seconds."""
        i = self.index_at(t_s)
        return LinkConditions(float(self.up_mbps[i]), float(self.down_mbps[i]), float(self.rtt_ms[i]))

    def change_times(self) -> list[float]:
        """When the conditions change (s), first row included."""
        return [float(t) for t in self.t_s]


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(
            f"{where}: {what} is not a number ({text.strip()!r}); fix or remove the line"
        ) from None
    if not math.isfinite(value):
        raise SpecError(f"{where}: {what} must be finite, got {text.strip()!r}")
    return value


def parse_csv_trace(text: str, name: str = "trace", source: str = "") -> LinkTrace:
    """A trace from CSV text (see the module docstring); ``name`` is used in errors."""
    rows: list[tuple[float, float, float, float]] = []
    comments: list[str] = []
    header_seen = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{name} line {lineno}"
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line.lstrip("# "))
            continue
        fields = [f.strip() for f in line.split(",")]
        if not header_seen:
            if tuple(fields) != CSV_HEADER:
                raise SpecError(
                    f"{where}: expected the header {','.join(CSV_HEADER)}, got {line!r} "
                    "(or give a Mahimahi trace: one integer ms timestamp per line)"
                )
            header_seen = True
            continue
        if len(fields) != len(CSV_HEADER):
            raise SpecError(
                f"{where}: expected {len(CSV_HEADER)} values ({','.join(CSV_HEADER)}), got {line!r}"
            )
        t, up, down, rtt = (_number(v, col, where) for v, col in zip(fields, CSV_HEADER, strict=True))
        for value, col in ((up, "up_mbps"), (down, "down_mbps")):
            if value <= 0:
                raise SpecError(
                    f"{where}: {col} must be > 0, got {value:g} (write e.g. {MIN_MBPS} for an outage)"
                )
        if rtt < 0:
            raise SpecError(f"{where}: rtt_ms must be >= 0, got {rtt:g}")
        if t < 0:
            raise SpecError(f"{where}: t_s must be >= 0, got {t:g}")
        if rows and t <= rows[-1][0]:
            raise SpecError(
                f"{where}: t_s must increase from row to row, got {t:g} after {rows[-1][0]:g}; sort the rows"
            )
        rows.append((t, up, down, rtt))
    if not rows:
        raise SpecError(
            f"{name}: no rows (expected the header {','.join(CSV_HEADER)} and one row per change)"
        )
    data = np.array(rows)
    return LinkTrace(name, data[:, 0], data[:, 1], data[:, 2], data[:, 3], source or " ".join(comments))


def _mahimahi_times(text: str, name: str) -> np.ndarray:
    times: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{name} line {lineno}"
        if not line.isdigit():
            if line.lstrip("-").isdigit():
                raise SpecError(f"{where}: timestamps must be >= 0 ms, got {line}")
            raise SpecError(f"{where}: a Mahimahi trace has one integer ms timestamp per line, got {line!r}")
        value = int(line)
        if times and value < times[-1]:
            raise SpecError(f"{where}: timestamps must not decrease, got {value} after {times[-1]}")
        times.append(value)
    if not times or times[-1] <= 0:
        raise SpecError(f"{name}: a Mahimahi trace needs delivery timestamps ending after 0 ms")
    return np.array(times, dtype=np.int64)


def _binned_mbps(times_ms: np.ndarray, bin_ms: int, bins: int) -> np.ndarray:
    counts = np.bincount(np.minimum(times_ms // bin_ms, bins - 1), minlength=bins)[:bins]
    mbps = counts * MAHIMAHI_PACKET_BYTES * 8 / (bin_ms * 1e3)
    return np.maximum(mbps, MIN_MBPS)


def parse_mahimahi(
    up_text: str,
    down_text: str | None = None,
    *,
    rtt_ms: float = 50.0,
    bin_ms: int = 1000,
    name: str = "trace",
) -> LinkTrace:
    """A trace from Mahimahi packet-delivery text(s) (see the module docstring)."""
    if bin_ms <= 0:
        raise SpecError(f"bin_ms must be > 0, got {bin_ms}")
    if not math.isfinite(rtt_ms) or rtt_ms < 0:
        raise SpecError(f"rtt_ms must be >= 0, got {rtt_ms}")
    up = _mahimahi_times(up_text, name)
    down = _mahimahi_times(down_text, f"{name} (downlink)") if down_text is not None else up
    period_ms = int(max(up[-1], down[-1]))
    bins = max(1, math.ceil(period_ms / bin_ms))
    t = np.arange(bins) * bin_ms / 1e3
    return LinkTrace(
        name,
        t,
        _binned_mbps(up, bin_ms, bins),
        _binned_mbps(down, bin_ms, bins),
        np.full(bins, float(rtt_ms)),
        f"Mahimahi packet-delivery trace binned into {bin_ms} ms windows, RTT {rtt_ms:g} ms",
    )


def shipped_traces() -> list[str]:
    """Names of the traces shipped in ``device_profiles/traces``."""
    return sorted(p.stem for p in (builtin_profiles_dir() / "traces").glob("*.csv"))


def trace_path(name_or_path: str | Path) -> Path:
    """A trace file: a path, or the name of a shipped trace (``lte-walk-deep-fade``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = builtin_profiles_dir() / "traces" / f"{path.stem}.csv"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise SpecError(
        f"no trace file {str(name_or_path)!r}; give a path or one of: {', '.join(shipped_traces())}"
    )


def load_trace(
    path: str | Path, *, downlink: str | Path | None = None, rtt_ms: float = 50.0, bin_ms: int = 1000
) -> LinkTrace:
    """Read a CSV or Mahimahi trace file or shipped trace (told apart by its first non-comment line)."""
    path = trace_path(path)
    try:
        text = path.read_text()
        down_text = Path(downlink).read_text() if downlink is not None else None
    except OSError as exc:
        raise SpecError(f"cannot read the link trace: {exc}") from None
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if first.isdigit():
        return parse_mahimahi(text, down_text, rtt_ms=rtt_ms, bin_ms=bin_ms, name=path.name)
    if downlink is not None:
        raise SpecError(
            f"{path.name} is a CSV trace; a separate downlink file goes with Mahimahi traces only"
        )
    return parse_csv_trace(text, path.name)


class TraceReplay:
    """Plays a trace in real time: calls ``apply(conditions)`` at every row's time, from a thread.

    ``apply`` is typically :meth:`harness.links.ShapedLink.set_conditions` (via a lambda), so the
    shaping changes while the run's traffic flows. ``loop`` repeats the trace past its end. Use as a
    context manager; the first row is applied before the block starts. An error raised by ``apply``
    stops the replay and is raised again when the block exits.
    """

    def __init__(self, trace: LinkTrace, apply: Callable[[LinkConditions], None], *, loop: bool = False):
        self.trace = trace
        self.apply = apply
        self.loop = loop
        self.started = 0.0  # time.monotonic() at the start
        self.applied = 0  # rows applied so far
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def elapsed_s(self) -> float:
        """Trace time now (s), wrapped when looping."""
        t = time.monotonic() - self.started
        return t % self.trace.duration_s if self.loop else t

    def conditions(self) -> LinkConditions:
        """The conditions the trace prescribes now (the ground truth of the run)."""
        return self.trace.at(self.elapsed_s())

    def __enter__(self) -> TraceReplay:
        self.started = time.monotonic()
        self.apply(self.trace.at(0.0))
        self.applied = 1
        self._thread = threading.Thread(target=self._run, name=f"trace-{self.trace.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        times = self.trace.change_times()
        period = self.trace.duration_s
        cycle, i = 0, 1
        while not self._stop.is_set():
            if i >= len(times):
                if not self.loop:
                    return
                cycle, i = cycle + 1, 0
            due = self.started + cycle * period + times[i]
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            try:
                self.apply(self.trace.at(times[i]))
            except Exception as exc:  # handed to the caller on exit
                self.error = exc
                return
            self.applied += 1
            i += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.error is not None and exc_type is None:
            raise self.error
