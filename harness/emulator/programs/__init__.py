"""Builtin programs installed in the emulated device's image (run through their files' paths).

``/data/local/tmp/benchmark_model`` and ``/data/local/tmp/jointdnn_chain_runner`` hold a marker that
names the program here; the shell dispatches to it (see :mod:`harness.emulator.shell`).
"""

from __future__ import annotations

from harness.emulator.process import Program
from harness.emulator.programs.benchmark_model import benchmark_model
from harness.emulator.programs.chain_runner import chain_runner
from harness.emulator.programs.smartdeal_rebuild import smartdeal_rebuild

__all__ = ["BUILTIN_PROGRAMS"]

BUILTIN_PROGRAMS: dict[str, Program] = {
    "benchmark_model": benchmark_model,
    "jointdnn_chain_runner": chain_runner,
    "jointdnn_sd_rebuild": smartdeal_rebuild,
}
