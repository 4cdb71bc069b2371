"""Link traces: CSV and Mahimahi parsing, bad-input errors, the shipped synthetic traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.links.trace import (
    MIN_MBPS,
    load_trace,
    parse_csv_trace,
    parse_mahimahi,
    shipped_traces,
)
from models.errors import SpecError

GOOD_CSV = """# a comment saying how it was made
t_s,up_mbps,down_mbps,rtt_ms
0,5,10,50
2.5,1,2,120
4,6,12,40
"""


def test_csv_rows_hold_until_the_next_row() -> None:
    trace = parse_csv_trace(GOOD_CSV, "t.csv")
    assert trace.source == "a comment saying how it was made"
    assert trace.at(0.0).up_mbps == 5 and trace.at(2.49).rtt_ms == 50
    assert trace.at(2.5).up_mbps == 1 and trace.at(3.9).down_mbps == 2
    assert trace.at(100).rtt_ms == 40 and trace.at(-1).up_mbps == 5
    assert trace.duration_s == pytest.approx(5.5)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("t,up,down,rtt\n0,1,1,1\n", "expected the header"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,1,1\n", "line 2: expected 4 values"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,fast,1,1\n", "line 2: up_mbps is not a number"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,-3,1,1\n", "up_mbps must be > 0, got -3"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,1,0,1\n", "down_mbps must be > 0"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,1,1,-5\n", "rtt_ms must be >= 0"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,1,1,1\n3,1,1,1\n2,1,1,1\n", "line 4: t_s must increase"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,1,1,1\n0,1,1,1\n", "t_s must increase"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n", "no rows"),
        ("t_s,up_mbps,down_mbps,rtt_ms\n0,1,nan,1\n", "must be finite"),
    ],
)
def test_csv_bad_input_names_the_line_and_the_fix(text: str, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        parse_csv_trace(text, "bad.csv")


def test_mahimahi_bins_delivery_opportunities_into_mbps() -> None:
    # 1000 opportunities in the first second (12 Mbps), none in the second, 500 in the third (6 Mbps).
    first = [str(i) for i in range(1000)]
    third = [str(2000 + 2 * i) for i in range(500)]
    trace = parse_mahimahi("\n".join(first + third) + "\n", rtt_ms=80, name="m")
    assert trace.up_mbps.tolist() == pytest.approx([12.0, MIN_MBPS, 6.0])
    assert np.array_equal(trace.up_mbps, trace.down_mbps) and trace.at(1.5).rtt_ms == 80
    down = parse_mahimahi("\n".join(first + third), "\n".join(["1"] * 50 + ["2999"]), bin_ms=1000)
    assert down.down_mbps[0] == pytest.approx(50 * 1500 * 8 / 1e6) and down.up_mbps[0] == pytest.approx(12.0)


def test_mahimahi_repeated_timestamps_are_several_packets() -> None:
    trace = parse_mahimahi("5\n5\n5\n99\n", bin_ms=100)
    assert trace.up_mbps[0] == pytest.approx(4 * 1500 * 8 / 1e5)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1\n2\nabc\n", "line 3: a Mahimahi trace has one integer"),
        ("1\n2.5\n", "line 2: a Mahimahi trace has one integer"),
        ("5\n-3\n", "line 2: timestamps must be >= 0"),
        ("10\n20\n15\n", "line 3: timestamps must not decrease, got 15 after 20"),
        ("0\n0\n", "ending after 0 ms"),
    ],
)
def test_mahimahi_bad_input(text: str, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        parse_mahimahi(text, name="m")


def test_load_trace_tells_the_formats_apart(tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text(GOOD_CSV)
    mahi = tmp_path / "b.up"
    mahi.write_text("\n".join(str(i) for i in range(0, 3000, 2)) + "\n")
    assert load_trace(csv).up_mbps.tolist() == [5, 1, 6]
    assert load_trace(mahi, rtt_ms=30).up_mbps.tolist() == pytest.approx([6.0, 6.0, 6.0])
    with pytest.raises(SpecError, match="no trace file"):
        load_trace(tmp_path / "missing.csv")


def test_shipped_traces_load_and_say_how_they_were_made() -> None:
    names = shipped_traces()
    assert {"lte-walk-deep-fade", "wifi-to-3g-handover", "congested-cell"} <= set(names)
    for name in names:
        trace = load_trace(name)
        assert "make_traces.py" in trace.source and trace.duration_s >= 30
        assert (trace.up_mbps > 0).all() and (trace.rtt_ms >= 0).all()
    fade = load_trace("lte-walk-deep-fade")
    assert fade.at(30).up_mbps < 0.1 * fade.at(10).up_mbps  # the deep fade is in the file
