"""What the planner minimises (:class:`Objective`) and the budgets it must respect (:class:`Constraints`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from models.errors import UsageError

__all__ = ["CONSTRAINT_NAMES", "FEASIBILITY_RTOL", "Constraints", "Objective", "ObjectiveKind"]

ObjectiveKind = Literal["latency", "energy", "weighted"]
CONSTRAINT_NAMES: tuple[str, ...] = ("deadline_ms", "energy_budget_mj", "cloud_budget_ms")
# A schedule meets a budget if value <= budget * (1 + FEASIBILITY_RTOL) (absorbs float rounding and
# the integer program's primal tolerance; far below any measurement noise).
FEASIBILITY_RTOL = 1e-7
FEASIBILITY_ATOL = 1e-9  # ms or mJ, for budgets of zero


def budget_limit(budget: float) -> float:
    """The largest value that still meets ``budget`` (tolerances above)."""
    return budget * (1 + FEASIBILITY_RTOL) + FEASIBILITY_ATOL


@dataclass(frozen=True)
class Objective:
    """Minimise end-to-end latency (ms), mobile energy (mJ), or ``latency_weight * ms + energy_weight * mJ``."""

    kind: ObjectiveKind = "latency"
    latency_weight: float = 1.0  # per ms (weighted only)
    energy_weight: float = 1.0  # per mJ (weighted only)

    def __post_init__(self) -> None:
        if self.kind not in ("latency", "energy", "weighted"):
            raise UsageError(f"objective must be latency, energy or weighted, got {self.kind!r}")
        for name in ("latency_weight", "energy_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise UsageError(f"{name} must be a non-negative number, got {value}")
        if self.kind == "weighted" and self.latency_weight == 0 and self.energy_weight == 0:
            raise UsageError("a weighted objective needs a positive latency or energy weight")

    @property
    def weights(self) -> tuple[float, float]:
        """(per-ms weight, per-mJ weight) of the scalar objective."""
        if self.kind == "latency":
            return 1.0, 0.0
        if self.kind == "energy":
            return 0.0, 1.0
        return self.latency_weight, self.energy_weight

    @property
    def unit(self) -> str:
        """Unit of the objective value."""
        return {"latency": "ms", "energy": "mJ", "weighted": "weighted ms+mJ"}[self.kind]


@dataclass(frozen=True)
class Constraints:
    """Per-query budgets; ``None`` = unconstrained.

    ``deadline_ms``: end-to-end latency (QoS); ``energy_budget_mj``: mobile energy (battery);
    ``cloud_budget_ms``: cloud compute time (cloud load).
    """

    deadline_ms: float | None = None
    energy_budget_mj: float | None = None
    cloud_budget_ms: float | None = None

    def __post_init__(self) -> None:
        for name in CONSTRAINT_NAMES:
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise UsageError(f"{name} must be a non-negative number, got {value}")

    def active(self) -> dict[str, float]:
        """The budgets that are set, by name."""
        return {name: float(v) for name in CONSTRAINT_NAMES if (v := getattr(self, name)) is not None}

    def without(self, name: str) -> Constraints:
        """The same budgets minus one."""
        values = {n: getattr(self, n) for n in CONSTRAINT_NAMES}
        values[name] = None
        return Constraints(**values)
