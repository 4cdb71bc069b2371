"""Adaptive execution: re-plan online as the link, the server's load and the battery change.

``estimator`` turns the run's own transfers and the server's ``/v1/load`` into beliefs; ``controller``
turns beliefs into a schedule per request (plan cache over a grid of conditions, hysteresis, battery
policy); ``loadgen`` occupies the server for experiments; ``loop`` runs a model over a replayed link
trace with the controller (``jointdnn run --adaptive --trace FILE``). The names below are imported
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.adaptive.controller import AdaptiveController, ControllerSettings, Decision, Observation
    from harness.adaptive.estimator import LinkEstimator, QueueEstimator, harmonic_mean

__all__ = [
    "AdaptiveController",
    "ControllerSettings",
    "Decision",
    "LinkEstimator",
    "Observation",
    "QueueEstimator",
    "harmonic_mean",
]

_HOMES = {
    "AdaptiveController": "controller",
    "ControllerSettings": "controller",
    "Decision": "controller",
    "Observation": "controller",
    "LinkEstimator": "estimator",
    "QueueEstimator": "estimator",
    "harmonic_mean": "estimator",
}


def __getattr__(name: str) -> Any:
    """Lazy re-exports: ``python -m harness.adaptive.loadgen`` must start fast, without the planner."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"harness.adaptive.{_HOMES[name]}"), name)
    raise AttributeError(name)
