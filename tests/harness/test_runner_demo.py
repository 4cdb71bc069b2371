"""`jointdnn demo` in a fresh working directory: a report per model, nothing left running."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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
    assert main(["demo", "--models", "small_cnn", "--links", "wifi", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    runs = list((tmp_path / "reports").iterdir())
    assert len(runs) == 1 and (runs[0] / "index.md").is_file() and (runs[0] / "summary.csv").is_file()
    assert "index.md" in out and "demo finished" in out
    assert (tmp_path / "bundles" / "small_cnn-int8" / "manifest.json").is_file()
    if netns.NETNS_DIR.is_dir():
        assert not [p for p in netns.NETNS_DIR.iterdir() if p.name.startswith(f"jdnn-{os.getpid()}-")]
