"""``jointdnn plan``: table + JSON + CSV, bandwidth sweeps, and one-line errors with non-zero exits."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from harness.cli import main
from models.profile_rows import ProfileRow, append_rows

MOBILE_MS = [30.0, 800.0, 10.0]
CLOUD_MS = [3.0, 8.0, 1.0]
OUT_BYTES = [200_000, 20_000, 4_000]


def _write(path: Path, latencies: list[float], n: int | None = None) -> Path:
    rows = [
        ProfileRow(
            model="toy",
            quant="int8",
            segment=i,
            first_layer=f"l{i}",
            last_layer=f"l{i}",
            out_bytes=OUT_BYTES[i],
            latency_ms_median=ms,
            latency_ms_p10=ms,
            latency_ms_p90=ms,
            runs=5,
            energy_mj=1.5 * ms,
            power_mw=math.nan,
            threads=1,
            device=path.stem,
            runtime="litert",
            timestamp="2026-11-23T00:00:00Z",
            in_bytes=150_528 if i == 0 else OUT_BYTES[i - 1],
            backward_ms=2 * ms,
            param_bytes=1000,
        )
        for i, ms in enumerate(latencies[: n or len(latencies)])
    ]
    append_rows(path, rows)
    return path


@pytest.fixture
def profiles(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "mobile.csv", MOBILE_MS), _write(tmp_path / "cloud.csv", CLOUD_MS)


def test_plan_prints_table_and_writes_json_and_csv(
    profiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m, c = profiles
    out = tmp_path / "out"
    code = main(
        [
            "plan",
            "--mobile",
            str(m),
            "--cloud",
            str(c),
            "--link",
            "4g",
            "--objective",
            "latency",
            "--cloud-budget-ms",
            "10",
            "--out-dir",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "schedule MCC" in text and "binding" in text and "best_single_cut" in text
    data = json.loads((out / "plan-toy-inference-4g-latency.json").read_text())
    assert data["locations"] == ["mobile", "cloud", "cloud"]
    assert data["solver"] == "pareto" and data["binding"] == ["cloud_budget_ms"]
    assert data["predicted"]["latency_ms"] == pytest.approx(414.829855, abs=1e-5)
    assert data["baselines"]["cloud_only"]["label"] == "CCC"
    with (out / "plan-toy-inference-4g-latency.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["location"] for r in rows] == ["mobile", "cloud", "cloud"]


def test_plan_training_weighted(profiles: tuple[Path, Path], tmp_path: Path) -> None:
    m, c = profiles
    code = main(
        [
            "plan",
            "--mobile",
            str(m),
            "--cloud",
            str(c),
            "--link",
            "wifi",
            "--objective",
            "weighted",
            "--latency-weight",
            "1",
            "--energy-weight",
            "0.5",
            "--phase",
            "training",
            "--sync-every",
            "10",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "plan-toy-training-wifi-weighted.json").read_text())
    assert data["phase"] == "training" and data["objective"]["energy_weight"] == 0.5


def test_sweep_writes_csv_and_png(profiles: tuple[Path, Path], tmp_path: Path) -> None:
    m, c = profiles
    code = main(
        [
            "plan",
            "--mobile",
            str(m),
            "--cloud",
            str(c),
            "--link",
            "4g",
            "--sweep-bandwidth",
            "0.1:100",
            "--sweep-points",
            "12",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    with (tmp_path / "plan-toy-inference-4g-latency-sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    assert float(rows[0]["up_mbps"]) == pytest.approx(0.1) and float(rows[-1]["up_mbps"]) == pytest.approx(
        100
    )
    # Slow uplink: stay on the phone; fast uplink: offload the heavy middle segment.
    assert rows[0]["label"] == "MMM" and rows[-1]["label"].endswith("CC")
    png = (tmp_path / "plan-toy-inference-4g-latency-sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        (["--link", "5g"], 2, "unknown link profile '5g'"),
        (["--objective", "latency", "--energy-weight", "2"], 2, "only apply to --objective weighted"),
        (["--sync-every", "5"], 2, "needs --phase training"),
        (["--sweep-points", "5"], 2, "needs --sweep-bandwidth"),
        (["--sweep-bandwidth", "10:1"], 2, "0 < LO < HI"),
        (["--sweep-bandwidth", "fast"], 2, "LO:HI"),
        (["--objective", "speed"], 2, "--objective must be"),
        (["--deadline-ms", "-3"], 2, "deadline_ms must be"),
        (["--deadline-ms", "100"], 1, "deadline_ms = 100 ms cannot be met"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    profiles: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    needle: str,
) -> None:
    m, c = profiles
    result = main(["plan", "--mobile", str(m), "--cloud", str(c), "--out-dir", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert result == code
    assert needle in " ".join(err.split())
    assert "Traceback" not in err


def test_mismatched_profiles_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _write(tmp_path / "mobile.csv", MOBILE_MS)
    c = _write(tmp_path / "cloud.csv", CLOUD_MS, n=2)
    assert main(["plan", "--mobile", str(m), "--cloud", str(c)]) == 2
    assert "different segments" in capsys.readouterr().err
