"""Load shared by the worker processes of ``jointdnn serve --workers N``, so ``/v1/load`` sums over all.

uvicorn's workers share one listening socket and nothing else: a ``/v1/load`` request reaches one of
them, which knows only its own pools. Each worker therefore publishes its per-model load (the dict
:meth:`server.pool.ModelPool.load` returns) every ``interval_s`` to ``load-<pid>.json`` in a directory
the command creates for the run (and removes at exit); the worker answering ``/v1/load`` adds its own
live figures to the other workers' latest ones. Files of workers that died or stopped publishing are
ignored. The in-flight and queued counts of the other workers are therefore up to ``interval_s`` old;
utilisation is over a window of seconds, so that lag does not matter to the planner reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["LoadBoard", "combine_loads"]

_STALE_S = 5.0  # a worker whose file is older than this is gone (or stuck): its load is not counted


class LoadBoard:
    """This worker's published load, and the other workers' (one JSON file per worker process)."""

    def __init__(self, directory: Path, *, interval_s: float = 0.2):
        self.directory = Path(directory)
        self.interval_s = interval_s
        self.pid = os.getpid()
        self._path = self.directory / f"load-{self.pid}.json"

    def publish(self, models: dict[str, dict[str, Any]]) -> None:
        """Replace this worker's file atomically (write a temporary file, then rename it)."""
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"pid": self.pid, "time": time.time(), "models": models}))
        os.replace(temporary, self._path)

    def others(self) -> list[dict[str, dict[str, Any]]]:
        """The per-model loads the other live workers published last."""
        now = time.time()
        found = []
        for path in self.directory.glob("load-*.json"):
            if path == self._path:
                continue
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):  # removed or replaced while we read it
                continue
            if now - float(entry.get("time", 0)) <= _STALE_S and _alive(int(entry.get("pid", 0))):
                found.append(entry["models"])
        return found

    async def run(self, snapshot: Callable[[], dict[str, dict[str, Any]]]) -> None:
        """Publish ``snapshot()`` every ``interval_s`` until cancelled; the file is removed at the end."""
        try:
            while True:
                self.publish(snapshot())
                await asyncio.sleep(self.interval_s)
        finally:
            with contextlib.suppress(OSError):
                self._path.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def combine_loads(workers: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per-model loads of several workers as one: counts add up, utilisation is chain-weighted.

    ``recent_compute_ms_median`` becomes the median of the workers' medians (each worker keeps only its
    own recent times).
    """
    merged: dict[str, list[dict[str, Any]]] = {}
    for models in workers:
        for name, entry in models.items():
            merged.setdefault(name, []).append(entry)
    out = {}
    for name, entries in sorted(merged.items()):
        chains = sum(e["pool_size"] for e in entries)
        medians = sorted(
            e["recent_compute_ms_median"] for e in entries if e["recent_compute_ms_median"] is not None
        )
        out[name] = {
            **entries[0],
            "in_flight": sum(e["in_flight"] for e in entries),
            "queued": sum(e["queued"] for e in entries),
            "pool_size": chains,
            "utilization": sum(e["utilization"] * e["pool_size"] for e in entries) / chains
            if chains
            else 0.0,
            "recent_compute_ms_median": medians[len(medians) // 2] if medians else None,
            "served": sum(e.get("served", 0) for e in entries),
        }
    return out
