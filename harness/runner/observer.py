"""How a run reports progress: a small listener protocol the CLI implements with rich progress bars.

It is the runner's one progress style. Where a lower layer reports its own way, an adapter in the
runner turns that into observer calls: :class:`~harness.runner.bundles.ExportProgress` (the exporter's
``progress(done, total)`` callback) and :class:`~harness.runner.profile_sources.ProfileProgress` (the
profiling job's :class:`~harness.profiling.JobListener`).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullObserver", "RunObserver"]


class RunObserver(Protocol):
    """Hooks the runner calls; every method must be cheap and must not raise."""

    def phase(self, message: str) -> None:
        """A one-line note of what happens next (exporting, profiling, shaping 3g, ...)."""

    def task(self, description: str, total: int) -> int:
        """Open a progress task of ``total`` steps; returns its id."""
        ...

    def advance(self, task_id: int, steps: int = 1) -> None:
        """Advance a task."""

    def done(self, task_id: int) -> None:
        """Close a task."""


class NullObserver:
    """Silent observer (library use, tests)."""

    def phase(self, message: str) -> None:
        pass

    def task(self, description: str, total: int) -> int:
        return 0

    def advance(self, task_id: int, steps: int = 1) -> None:
        pass

    def done(self, task_id: int) -> None:
        pass
