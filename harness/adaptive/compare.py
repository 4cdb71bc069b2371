"""Compare policies measured on the same trace: each static schedule, the adaptive controller, the oracle.

The trace time is cut into intervals of ``interval_s``. A policy's figure is the mean over intervals of
its requests' mean value there (latency ms or mobile energy mJ), so a policy that issues more requests
in good times gains nothing from it. The **oracle** is computed afterwards from the static runs: in
each interval the static schedule with the best measured mean there — the best any controller choosing
among those schedules per interval could have done, with hindsight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["PolicyComparison", "compare_policies"]

Aggregate = Literal["mean", "median"]


@dataclass(frozen=True)
class PolicyComparison:
    """Per-policy figures of one metric, plus the oracle's, the best static and adaptive facts."""

    metric: str
    figures: dict[str, float]  # policy -> mean over intervals
    oracle: float
    best_static: str
    oracle_schedules: list[str]  # per interval

    def ratio(self, policy: str, other: float) -> float:
        return other / self.figures[policy]


def _interval_table(decisions: pd.DataFrame, metric: str, interval_s: float, how: Aggregate) -> pd.DataFrame:
    """policy x interval table of the ``how`` (mean or median) of ``metric``."""
    d = decisions.assign(interval=np.floor(decisions["t_s"] / interval_s).astype(int))
    return d.pivot_table(index="interval", columns="policy", values=metric, aggfunc=how)


def compare_policies(
    decisions: pd.DataFrame, metric: str = "latency_ms", interval_s: float = 2.0, *, how: Aggregate = "mean"
) -> PolicyComparison:
    """Figures of every policy in ``decisions`` (rows of decisions.csv) and of the oracle.

    ``how="median"`` takes each interval's median instead of its mean (robust to one stalled request).
    """
    table = _interval_table(decisions, metric, interval_s, how)
    statics = [c for c in table.columns if str(c).startswith("static:")]
    if not statics:
        raise ValueError("the oracle needs static-schedule runs over the same trace")
    covered = table.dropna(subset=statics)  # intervals every static run reached
    figures = {str(c): float(covered[c].mean()) for c in table.columns}
    best_per_interval = covered[statics].idxmin(axis=1)
    oracle = float(covered[statics].min(axis=1).mean())
    best_static = min(statics, key=lambda c: figures[str(c)])
    return PolicyComparison(metric, figures, oracle, str(best_static), [str(s) for s in best_per_interval])
