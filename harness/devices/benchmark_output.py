"""Pure parsers for the text that TFLite's ``benchmark_model`` prints, in every known version.

Formats seen in the wild (fixtures in ``tests/harness/data/benchmark_outputs``):

* TF 1.12-1.15 / 2.0: ``count=50 first=… curr=… min=… max=… avg=… std=…`` then
  ``Average inference timings in us: Warmup: 146161, Init: 4452, no stats: 137722``;
* TF 2.1-2.2: the same summary with ``Inference: 79760.9`` instead of ``no stats:``;
* TF 2.3+: ``Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): …``,
  large values in C++ stream notation (``2.95034e+06``);
* TF 2.13+ / LiteRT: lines prefixed ``INFO:`` and stats with percentiles ``p5= median= p95=``;
* logcat captures (``I tflite  : …``) and TensorFlow's classic ``benchmark_model`` with glog prefixes;
* a stat whose samples are all equal prints ``count=N curr=X(all same)``.

The measured run is the stats line after the last ``Running benchmark for …`` header (the one before it
is the warm-up); without headers it is the last ``count=`` line. ``Timings (microseconds): count=…``
lines of op profiling are per-node summaries and are ignored. Output may come on stdout or stderr:
callers pass both, concatenated.
"""

from __future__ import annotations

import math
import re

from models.benchmark import BenchmarkStats
from models.errors import BenchmarkOutputError

__all__ = ["parse_benchmark_output", "parse_stat_line", "parse_summary_line"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_STAT_START = re.compile(r"(?:^|[\s:\]])count=(\d+)\b")
_KEY_VALUE = re.compile(rf"\b(first|curr|min|max|avg|std|p5|median|p95)=({_NUMBER})")
_ALL_SAME = re.compile(rf"\bcurr=({_NUMBER})\s*\(all same\)")
_RUNNING = re.compile(r"Running benchmark for\b")
_AT_LEAST_SECS = re.compile(rf"at least ({_NUMBER}) seconds")
_NEW_SUMMARY = re.compile(
    rf"Inference timings in us:\s*Init:\s*({_NUMBER}),\s*First inference:\s*({_NUMBER}),"
    rf"\s*Warmup \(avg\):\s*({_NUMBER}),\s*Inference \(avg\):\s*({_NUMBER})"
)
_OLD_SUMMARY = re.compile(r"Average inference timings in us:(.*)")
_OLD_FIELD = re.compile(rf"(Warmup|Init|no stats|Inference|with stats):\s*({_NUMBER})")
_NOT_A_RUN = ("Timings (microseconds)", "Memory (bytes)")

_STAT_FIELDS = {
    "first": "first_us",
    "curr": "curr_us",
    "min": "min_us",
    "max": "max_us",
    "avg": "avg_us",
    "std": "std_us",
    "p5": "p5_us",
    "median": "median_us",
    "p95": "p95_us",
}


def parse_stat_line(line: str) -> dict[str, float] | None:
    """Parse one ``count=… first=… …`` statistics line into ``{"count": n, "avg_us": …, …}``.

    Returns None when the line is not a run statistic (no ``count=``, or an op-profiling summary).
    ``count=N curr=X(all same)`` expands to first = min = max = avg = median = X and std = 0.
    """
    if any(marker in line for marker in _NOT_A_RUN):
        return None
    start = _STAT_START.search(line)
    if start is None:
        return None
    rest = line[start.end() :]
    out: dict[str, float] = {"count": float(start.group(1))}
    for key, value in _KEY_VALUE.findall(rest):
        out[_STAT_FIELDS[key]] = float(value)
    same = _ALL_SAME.search(rest)
    if same is not None:
        value = float(same.group(1))
        for name in ("first_us", "min_us", "max_us", "avg_us", "median_us"):
            out.setdefault(name, value)
        out.setdefault("std_us", 0.0)
    elif out["count"] == 1 and "curr_us" in out:  # "count=1 curr=X": a single sample
        value = out["curr_us"]
        for name in ("first_us", "min_us", "max_us", "avg_us", "median_us"):
            out.setdefault(name, value)
        out.setdefault("std_us", 0.0)
    return out


def parse_summary_line(line: str) -> dict[str, float] | None:
    """Parse the ``Inference timings in us:`` line (any version) into ``*_us`` fields, or None."""
    new = _NEW_SUMMARY.search(line)
    if new is not None:
        init, first, warmup, inference = (float(v) for v in new.groups())
        return {
            "init_us": init,
            "first_inference_us": first,
            "warmup_avg_us": warmup,
            "inference_avg_us": inference,
        }
    old = _OLD_SUMMARY.search(line)
    if old is None:
        return None
    values = {key: float(value) for key, value in _OLD_FIELD.findall(old.group(1))}
    out: dict[str, float] = {}
    if "Init" in values:
        out["init_us"] = values["Init"]
    if "Warmup" in values:
        out["warmup_avg_us"] = values["Warmup"]
    for key in ("no stats", "Inference"):
        if key in values:
            out["inference_avg_us"] = values[key]
            break
    return out or None


def parse_benchmark_output(text: str) -> BenchmarkStats:
    """Parse the full output (stdout + stderr) of one ``benchmark_model`` run.

    Raises :class:`~models.errors.BenchmarkOutputError` when neither a measured-run statistics line
    nor a summary line is present (the tool failed, or printed a format we do not know); the message
    carries the last lines of the output so the user sees the tool's own error.
    """
    stat_lines: list[tuple[int, dict[str, float]]] = []
    last_header = -1
    header_secs: list[float] = []  # "at least S seconds" of each phase header, in order
    summary: dict[str, float] | None = None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines):
        if _RUNNING.search(line):
            last_header = number
            secs = _AT_LEAST_SECS.search(line)
            header_secs.append(float(secs.group(1)) if secs else 0.0)
            continue
        parsed_summary = parse_summary_line(line)
        if parsed_summary is not None:
            summary = parsed_summary
            continue
        parsed = parse_stat_line(line)
        if parsed is not None and summary is None:
            stat_lines.append((number, parsed))
    measured, warmup = _measured_run(stat_lines, last_header)
    if measured is None and summary is None:
        tail = "\n".join(line for line in lines if line.strip())[-600:]
        raise BenchmarkOutputError(
            "benchmark_model printed no timing statistics (no 'count=' line and no 'Inference timings' "
            f"line); its output ends with:\n{tail or '<empty>'}"
        )
    stats = BenchmarkStats()
    for name, value in (measured or {}).items():
        setattr(stats, name, int(value) if name == "count" else value)
    for name, value in (summary or {}).items():
        setattr(stats, name, value)
    if warmup is not None:
        stats.warmup_count = int(warmup["count"])
        if math.isnan(stats.warmup_avg_us) and "avg_us" in warmup:
            stats.warmup_avg_us = warmup["avg_us"]
    if header_secs:
        stats.min_secs = header_secs[-1]
        stats.warmup_min_secs = header_secs[-2] if len(header_secs) > 1 else 0.0
    stats.output_format = _format_name(measured, summary, text)
    return stats


def _measured_run(
    stat_lines: list[tuple[int, dict[str, float]]], last_header: int
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """The measured run's stats (after the last ``Running benchmark`` header) and the warm-up's before it."""
    if not stat_lines:
        return None, None
    position = len(stat_lines) - 1
    if last_header >= 0:
        after = [i for i, (number, _) in enumerate(stat_lines) if number > last_header]
        if after:
            position = after[0]
    warmup = stat_lines[position - 1][1] if position > 0 else None
    return stat_lines[position][1], warmup


def _format_name(measured: dict[str, float] | None, summary: dict[str, float] | None, text: str) -> str:
    parts: list[str] = []
    if measured is not None:
        parts.append("stats+percentiles" if "p95_us" in measured else "stats")
    if summary is not None:
        parts.append("summary-v2" if "first_inference_us" in summary else "summary-v1")
    if "INFO:" in text:
        parts.append("info-prefix")
    return ",".join(parts)
