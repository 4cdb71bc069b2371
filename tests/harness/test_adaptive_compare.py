"""The policy comparison: per-interval figures and the hindsight oracle from static policies."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.adaptive.compare import compare_policies


def _rows(policy: str, values: list[float]) -> list[dict[str, object]]:
    return [{"policy": policy, "t_s": i + 0.5, "latency_ms": v} for i, v in enumerate(values)]


def test_oracle_takes_the_best_static_schedule_per_interval() -> None:
    d = pd.DataFrame(
        _rows("static:MM", [10, 10, 50, 50])
        + _rows("static:CC", [30, 30, 20, 20])
        + _rows("adaptive", [12, 10, 30, 20])
    )
    c = compare_policies(d, "latency_ms", interval_s=2.0)
    assert c.figures == {"adaptive": pytest.approx(18.0), "static:CC": 25.0, "static:MM": 30.0}
    assert c.oracle == pytest.approx(15.0)  # 10 in the first interval, 20 in the second
    assert c.best_static == "static:CC"
    assert c.oracle_schedules == ["static:MM", "static:CC"]


def test_median_figures_ignore_one_stalled_request() -> None:
    d = pd.DataFrame(_rows("static:MM", [10, 10, 900]) + _rows("static:CC", [20, 20, 20]))
    assert compare_policies(d, interval_s=3.0, how="median").figures["static:MM"] == 10.0
    assert compare_policies(d, interval_s=3.0).figures["static:MM"] > 300


def test_the_oracle_needs_static_runs() -> None:
    with pytest.raises(ValueError, match="static"):
        compare_policies(pd.DataFrame(_rows("adaptive", [1.0])))
