"""CLI usage errors: typer's one-line usage error and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import main

USAGE_ERRORS = [
    (["profile", "small_cnn", "--runs", "-5"], "--runs"),
    (["profile", "small_cnn", "--threads", "0"], "--threads"),
    (["serve", "--workers", "0"], "--workers"),
    (["profile", "small_cnn", "--runs", "abc"], "--runs"),
    (["profile", "small_cnn", "--no-such-option"], "--no-such-option"),
    (["profile"], "Missing argument"),
    (["plan"], "Missing option"),
    (["no-such-command"], "No such command"),
]


@pytest.mark.parametrize(("argv", "named"), USAGE_ERRORS)
def test_usage_errors_exit_2_with_a_usage_line(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Usage: " in err and "Error: " in err and named in err


def test_the_console_script_prints_no_traceback_either() -> None:
    """The real entry point in a fresh interpreter, as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "profile", "small_cnn", "--runs", "-5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "Invalid value for '--runs'" in done.stderr


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Usage: " in capsys.readouterr().out
