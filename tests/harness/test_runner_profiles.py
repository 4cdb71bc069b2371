"""Planning profiles: per-segment costs scaled to the measured whole model when the chain is slower."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.profile_rows import COLUMNS
from harness.runner.profiles import planning_profile


def _profile(whole_ms: float, whole_mj: float) -> pd.DataFrame:
    rows = []
    for segment, ms, mj in ((0, 1.0, 2.0), (1, 3.0, 2.0), (-1, whole_ms, whole_mj)):
        row = dict.fromkeys(COLUMNS, 0)
        row.update(segment=segment, latency_ms_median=ms, latency_ms_p10=ms * 0.9, latency_ms_p90=ms * 1.1,
                   energy_mj=mj, first_layer=f"l{segment}", last_layer=f"l{segment}")  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def test_segments_scale_to_a_slower_whole_model() -> None:
    scaled, factor = planning_profile(_profile(whole_ms=8.0, whole_mj=6.0))
    assert factor == pytest.approx(2.0)  # 8 ms / (1 + 3) ms
    segments = scaled[scaled["segment"] >= 0]
    assert segments["latency_ms_median"].tolist() == pytest.approx([2.0, 6.0])
    assert segments["latency_ms_p90"].tolist() == pytest.approx([2.2, 6.6])
    assert segments["energy_mj"].tolist() == pytest.approx([3.0, 3.0])  # its own ratio: 6 mJ / 4 mJ
    assert scaled[scaled["segment"] == -1]["latency_ms_median"].item() == 8.0  # the whole row is kept


def test_a_faster_whole_model_changes_nothing() -> None:
    original = _profile(whole_ms=3.0, whole_mj=1.0)
    scaled, factor = planning_profile(original)
    assert factor == 1.0
    pd.testing.assert_frame_equal(scaled, original)


def test_without_a_whole_model_row_nothing_changes() -> None:
    original = _profile(whole_ms=8.0, whole_mj=6.0)
    original = original[original["segment"] >= 0]
    scaled, factor = planning_profile(original)
    assert factor == 1.0 and scaled["latency_ms_median"].sum() == 4.0
    assert not math.isnan(scaled["energy_mj"].sum())
