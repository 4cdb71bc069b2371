"""`jointdnn demo` in a fresh working directory: a report per model and sweep, nothing left running."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.links import netns


@pytest.mark.slow
def test_demo_writes_a_report_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundle_factory: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    bundle_factory("small_cnn", "int8")  # warms the session's artifact cache: the demo's export is quick
    monkeypatch.chdir(tmp_path)
    args = ["--models", "small_cnn", "--links", "wifi", "--repeats", "1", "--sweep", "1,5,20,50",
            "--sweep-model", "small_cnn"]  # fmt: skip
    assert main(["demo", *args]) == 0
    out = capsys.readouterr().out
    runs = sorted((tmp_path / "reports").iterdir())
    assert len(runs) == 2 and all((r / "index.md").is_file() and (r / "summary.csv").is_file() for r in runs)
    assert "index.md" in out and "demo finished" in out and "mobile-only:" in out
    assert max(len(line) for line in out.splitlines()) <= 80  # the terminal summary fits 80 columns
    sweep = runs[1]
    assert (sweep / "bandwidth_sweep.png").is_file() and "bandwidth_sweep.png" in (
        sweep / "index.md"
    ).read_text()
    executed = pd.read_csv(sweep / "measurements.csv")
    assert executed["link"].nunique() == 4 and executed["schedule"].str.endswith("+jpeg").any()
    assert (tmp_path / "bundles" / "small_cnn-int8" / "manifest.json").is_file()
    if netns.NETNS_DIR.is_dir():
        assert not [p for p in netns.NETNS_DIR.iterdir() if p.name.startswith(f"jdnn-{os.getpid()}-")]
