"""What a program on the emulated device sees: argv, three byte streams, env, cwd and the device.

Programs (``cat``, ``getprop``, ``benchmark_model`` ...) are plain functions ``(Process) -> int``; the
shell builds the :class:`Process` with redirections and pipes already applied. Output is bytes, written
as produced (a pipe to the next stage, a file, or the adb stream).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.emulator.system import AndroidSystem

__all__ = ["Process", "Program", "Readable", "Writable"]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass
class Process:
    """One running program: its arguments, I/O, environment, working directory and the device."""

    argv: list[str]
    stdin: Readable
    stdout: Writable
    stderr: Writable
    env: dict[str, str]
    cwd: str
    system: AndroidSystem
    cancel: threading.Event  # set when the adb stream closed: long-running programs stop early
    run_command: Callable[[Process, list[str]], int]  # run another command with this process's I/O
    cpu_mask: int | None = None  # set by taskset

    @property
    def name(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else "sh"

    def out(self, text: str) -> None:
        self.stdout.write(text.encode())

    def err(self, text: str) -> None:
        self.stderr.write(text.encode())

    def fail(self, message: str, status: int = 1) -> int:
        """Print ``<name>: <message>`` on stderr and return ``status`` (toybox style)."""
        self.err(f"{self.name}: {message}\n")
        return status

    def with_argv(self, argv: list[str]) -> Process:
        return replace(self, argv=argv)

    def path(self, path: str) -> str:
        """A device path made absolute against the working directory."""
        return self.system.fs.normalize(path, self.cwd)


Program = Callable[[Process], int]
