"""The planner's output: a :class:`Plan` (schedule + predicted breakdown), and its JSON/CSV forms."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.planner.costmodel import Breakdown
from harness.planner.costs import Location, Phase
from harness.planner.objectives import Constraints, Objective

__all__ = ["Plan"]


@dataclass(frozen=True)
class Plan:
    """Where every segment runs and what that is predicted to cost.

    ``binding``: constraints that shaped the plan (the unconstrained optimum would break them);
    ``slack``: budget minus predicted value for every active constraint (0 = at the limit).
    """

    locations: list[Location]  # per segment
    predicted: Breakdown
    objective: Objective
    objective_value: float  # in objective.unit
    phase: Phase = "inference"
    constraints: Constraints = field(default_factory=Constraints)
    binding: list[str] = field(default_factory=list)
    slack: dict[str, float] = field(default_factory=dict)
    solver: str = ""  # shortest_path | pareto | milp | brute_force | baseline:<name>
    solve_ms: float = 0.0
    link: str = ""
    model: str = ""
    segment_names: list[str] = field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        return self.predicted.latency_ms

    @property
    def mobile_energy_mj(self) -> float:
        return self.predicted.mobile_energy_mj

    @property
    def cloud_ms(self) -> float:
        return self.predicted.cloud_ms

    @property
    def schedule(self) -> tuple[int, ...]:
        """0 (mobile) / 1 (cloud) per segment."""
        return tuple(int(loc == "cloud") for loc in self.locations)

    @property
    def label(self) -> str:
        """Compact schedule, one letter per segment: ``MMCCM``."""
        return "".join("C" if loc == "cloud" else "M" for loc in self.locations)

    @property
    def cuts(self) -> list[int]:
        """Boundaries where the location changes (``i`` = before segment ``i``; ``n`` = before the result)."""
        padded = [0, *self.schedule, 0]
        return [i for i in range(len(padded) - 1) if padded[i] != padded[i + 1]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (schema: the fields of this class, ``predicted`` as a Breakdown dict)."""
        return {
            "model": self.model,
            "phase": self.phase,
            "link": self.link,
            "objective": asdict(self.objective),
            "objective_unit": self.objective.unit,
            "objective_value": self.objective_value,
            "constraints": self.constraints.active(),
            "binding": list(self.binding),
            "slack": dict(self.slack),
            "solver": self.solver,
            "solve_ms": self.solve_ms,
            "locations": list(self.locations),
            "label": self.label,
            "cuts": self.cuts,
            "predicted": self.predicted.to_dict(),
            "segment_names": list(self.segment_names),
        }

    def write_json(self, path: Path, extra: dict[str, Any] | None = None) -> Path:
        """Write :meth:`to_dict` (plus ``extra`` keys, e.g. baselines) as indented JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.to_dict(), **(extra or {})}, indent=2) + "\n")
        return path

    def write_csv(self, path: Path) -> Path:
        """Write one row per segment: ``segment, name, location``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = self.segment_names or [f"segment {i}" for i in range(len(self.locations))]
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["segment", "name", "location"])
            for i, (name, loc) in enumerate(zip(names, self.locations, strict=True)):
                writer.writerow([i, name, loc])
        return path
