"""The emulated device's ``/system/bin/sh``: runs the command lists of :mod:`harness.emulator.shell_syntax`.

Semantics follow mksh/toybox on Android where the harness can observe them: exit status ``$?``,
``&&``/``||``, pipelines whose stages run concurrently over real OS pipes (a stage writing to a closed
pipe ends with status 141), redirections to device files, ``127`` for unknown commands and ``126`` for
files that cannot be executed, messages prefixed ``/system/bin/sh:``. Builtins: ``cd``, ``exit``,
``export`` and ``sh`` (``sh -c CMD [ARG0 ARGS...]``, ``sh FILE [ARGS...]``).

Executables: a device file that starts with the builtin marker runs the builtin program it names
(``/data/local/tmp/benchmark_model``); a file starting with ``#!`` and ``sh`` runs as a shell script
(line by line, as this shell has no control flow); anything else (an ARM ELF binary pushed by the user)
cannot run on this emulated device and fails with status 126 and a message saying so.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.emulator.filesystem import builtin_program_name
from harness.emulator.process import Process, Program, Readable, Writable
from harness.emulator.shell_syntax import (
    Command,
    CommandList,
    Pipeline,
    Redirect,
    ShellSyntaxError,
    expand,
    parse,
)
from harness.emulator.system import AndroidSystem

__all__ = ["SH", "Shell"]

SH = "/system/bin/sh"
SIGPIPE_STATUS = 141  # 128 + SIGPIPE
CANCELLED_STATUS = 130  # 128 + SIGINT, when the adb stream went away
MAX_PIPELINE = 1000  # commands in one pipeline


class _Exit(Exception):
    """``exit N`` (unwinds to the top of the command line)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Cancelled(Exception):
    """The adb stream closed: stop running the command line."""


@dataclass
class _IO:
    stdin: Readable
    stdout: Writable
    stderr: Writable


class Shell:
    """One shell instance (variables, cwd, ``$?``) on an :class:`AndroidSystem`."""

    def __init__(
        self,
        system: AndroidSystem,
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/",
        cancel: threading.Event | None = None,
        positional: list[str] | None = None,
        cpu_mask: int | None = None,
    ):
        self.system = system
        self.env: dict[str, str] = dict(env) if env is not None else _default_env()
        self.cwd = cwd
        self.cancel = cancel or threading.Event()
        self.positional = positional or ["sh"]  # $0, $1, ...
        self.status = 0
        self.exited = False  # `exit` ran: an interactive session ends
        self.cpu_mask = cpu_mask

    def run(self, source: str, stdin: Readable, stdout: Writable, stderr: Writable) -> int:
        """Run a command line (or a script of such lines); returns its exit status."""
        try:
            tree = parse(source)
        except ShellSyntaxError as exc:
            stderr.write(f"{SH}: {exc}\n".encode())
            self.status = 2
            return 2
        try:
            self._list(tree, _IO(stdin, stdout, stderr))
        except _Exit as exc:
            self.status = exc.status & 0xFF
            self.exited = True
        except _Cancelled:
            self.status = CANCELLED_STATUS
        except RecursionError:  # scripts running themselves, `sh -c` inside `sh -c` ... too deep
            stderr.write(f"{SH}: commands nested too deeply\n".encode())
            self.status = 2
        return self.status

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()

    def _child(self, **overrides: object) -> Shell:
        kwargs: dict[str, object] = {"env": self.env, "cwd": self.cwd, "cancel": self.cancel}
        kwargs |= {"positional": self.positional, "cpu_mask": self.cpu_mask} | overrides
        return Shell(self.system, **kwargs)  # type: ignore[arg-type]

    def _list(self, tree: CommandList, io_set: _IO) -> None:
        for connector, pipeline in tree.items:
            self._check_cancel()
            if connector == ";" or (connector == "&&") == (self.status == 0):
                self.status = self._pipeline(pipeline, io_set)

    def _pipeline(self, pipeline: Pipeline, io_set: _IO) -> int:
        if len(pipeline.commands) == 1:
            try:
                status = self._command(pipeline.commands[0], io_set)
            except BrokenPipeError:
                self._check_cancel()
                status = SIGPIPE_STATUS
        else:
            status = self._run_pipes(pipeline.commands, io_set)
        self._check_cancel()
        return int(status == 0) if pipeline.negate else status

    def _run_pipes(self, commands: list[Command], io_set: _IO) -> int:
        count = len(commands)
        if count > MAX_PIPELINE:  # each stage is a thread and a pipe: refuse rather than exhaust them
            return _fail(io_set, f"pipeline of {count} commands is too long (at most {MAX_PIPELINE})", 2)
        pipes: list[tuple[int, int]] = []
        try:
            for _ in range(count - 1):
                pipes.append(os.pipe())
        except OSError as exc:
            for fds in pipes:
                for fd in fds:
                    os.close(fd)
            return _fail(io_set, f"can't create pipe: {exc.strerror}", 1)
        readers = [open(r, "rb", buffering=0) for r, _ in pipes]  # noqa: SIM115 - closed by the stage
        writers = [open(w, "wb", buffering=0) for _, w in pipes]  # noqa: SIM115 - closed by the stage
        statuses = [0] * count

        def stage(k: int) -> None:
            stage_io = replace(
                io_set,
                stdin=readers[k - 1] if k > 0 else io_set.stdin,
                stdout=writers[k] if k < count - 1 else io_set.stdout,
            )
            try:
                statuses[k] = self._command(commands[k], stage_io)
            except BrokenPipeError:
                statuses[k] = SIGPIPE_STATUS
            except _Exit as exc:
                statuses[k] = exc.status
            except _Cancelled:
                statuses[k] = CANCELLED_STATUS
            finally:
                if k < count - 1:
                    writers[k].close()
                if k > 0:
                    readers[k - 1].close()

        threads = [threading.Thread(target=stage, args=(k,), daemon=True) for k in range(count - 1)]
        for thread in threads:
            thread.start()
        stage(count - 1)
        for thread in threads:
            thread.join()
        return statuses[-1]

    def _command(self, command: Command, io_set: _IO) -> int:
        argv: list[str] = []
        for raw in command.words:
            text, glob, quoted = expand(raw, self.lookup)
            matches = self.system.fs.walk_glob(glob, self.cwd) if glob is not None else []
            argv.extend(matches or ([text] if text or quoted else []))
        values = {name: self.word(raw) for name, raw in command.assignments}
        if not argv:
            self.env.update(values)
        opened: list[object] = []
        try:
            io_set = self._redirect(command.redirects, io_set, opened)
            return self.execute(argv, io_set, env_extra=values) if argv else 0
        except BrokenPipeError:
            raise  # the reader went away: the pipeline reports SIGPIPE (141), no message
        except OSError as exc:
            io_set.stderr.write(f"{SH}: {_oserror_text(exc)}\n".encode())
            return 1
        finally:
            for handle in opened:
                handle.close()  # type: ignore[attr-defined]

    def word(self, raw: str) -> str:
        """One raw word as a single string (assignment values, redirection targets: no globbing)."""
        return expand(raw, self.lookup)[0]

    def _redirect(self, redirects: list[Redirect], io_set: _IO, opened: list[object]) -> _IO:
        fds: dict[int, object] = {0: io_set.stdin, 1: io_set.stdout, 2: io_set.stderr}
        for redirect in redirects:
            target = self.word(redirect.target)
            if redirect.op in (">&", "<&"):
                if target == "-":
                    fds[redirect.fd] = io.BytesIO()
                elif target.isdigit() and int(target) in fds:
                    fds[redirect.fd] = fds[int(target)]
                else:
                    raise OSError(9, "Bad file descriptor", target)
                continue
            fs = self.system.fs
            if redirect.op == "<":
                handle: object = fs.open_read(target, self.cwd)
            else:
                handle = fs.open_write(target, self.cwd, append=redirect.op == ">>")
            opened.append(handle)
            fds[redirect.fd] = handle
        return _IO(fds[0], fds[1], fds[2])  # type: ignore[arg-type]

    def execute(self, argv: list[str], io_set: _IO, *, env_extra: dict[str, str] | None = None) -> int:
        """Run one command (builtin, program or device file) with ``argv`` already expanded."""
        self._check_cancel()
        name = argv[0]
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            return builtin(self, argv, io_set)
        process = Process(
            argv=argv,
            stdin=io_set.stdin,
            stdout=io_set.stdout,
            stderr=io_set.stderr,
            env={**self.env, **(env_extra or {})},
            cwd=self.cwd,
            system=self.system,
            cancel=self.cancel,
            run_command=self._run_for_process,
            cpu_mask=self.cpu_mask,
        )
        if "/" not in name:
            program = self.system.programs.get(name)
            if program is None:
                return _fail(io_set, f"{name}: inaccessible or not found", 127)
            return self._start(program, process)
        return self._execute_file(process, io_set)

    def _start(self, program: Program, process: Process) -> int:
        """Run a program, listed in the device's process table while it runs."""
        with self.system.running(process.argv):
            return program(process)

    def _run_for_process(self, process: Process, argv: list[str]) -> int:
        """Run ``argv`` with the I/O of ``process`` (``taskset``)."""
        shell = self._child(env=process.env, cwd=process.cwd, cpu_mask=process.cpu_mask)
        return shell.execute(argv, _IO(process.stdin, process.stdout, process.stderr))

    def _execute_file(self, process: Process, io_set: _IO) -> int:
        fs = self.system.fs
        path = fs.normalize(process.argv[0], self.cwd)
        shown = process.argv[0]
        base = path.rsplit("/", 1)[-1]
        if (
            path.startswith(("/system/bin/", "/system/xbin/", "/vendor/bin/"))
            and base in self.system.programs
        ):
            return self._start(self.system.programs[base], process)
        if not fs.exists(path):
            return _fail(io_set, f"{shown}: inaccessible or not found", 127)
        if fs.is_dir(path):
            return _fail(io_set, f"{shown}: can't execute: Is a directory", 126)
        if not fs.is_executable(path):
            return _fail(io_set, f"{shown}: can't execute: Permission denied", 126)
        with fs.open_read(path) as handle:
            head = handle.read(256)
        builtin = builtin_program_name(head)
        if builtin is not None:
            program = self.system.builtin_files.get(builtin)
            if program is None:
                return _fail(io_set, f"{shown}: builtin {builtin!r} is not installed", 127)
            return self._start(program, process)
        if head.startswith(b"#!") and b"sh" in head.split(b"\n", 1)[0]:
            script = fs.read_bytes(path).decode("utf-8", "replace")
            child = self._child(env=process.env, positional=process.argv)
            return child.run(script, io_set.stdin, io_set.stdout, io_set.stderr)
        kind = "an ELF binary" if head.startswith(b"\x7fELF") else "not a script"
        return _fail(
            io_set,
            f"{shown}: can't execute: Exec format error ({kind}; the JointDNN emulated device runs "
            "only shell scripts and its builtin benchmark_model / jointdnn_chain_runner)",
            126,
        )

    def lookup(self, name: str) -> str:
        """The value of ``$name`` (special parameters ``? # @ * $`` and positional ``0``..``9`` too)."""
        if name == "?":
            return str(self.status)
        if name == "#":
            return str(len(self.positional) - 1)
        if name in ("@", "*"):
            return " ".join(self.positional[1:])
        if name == "$":
            return str(threading.get_ident() % 30000 + 1000)
        if name.isdigit():
            index = int(name)
            return self.positional[index] if index < len(self.positional) else ""
        return self.env.get(name, "")


def _default_env() -> dict[str, str]:
    return {
        "PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin:/odm/bin:/vendor/bin",
        "HOME": "/",
        "TMPDIR": "/data/local/tmp",
        "ANDROID_DATA": "/data",
        "ANDROID_ROOT": "/system",
        "EXTERNAL_STORAGE": "/sdcard",
        "HOSTNAME": "localhost",
        "USER": "shell",
        "SHELL": SH,
    }


def _fail(io_set: _IO, message: str, status: int) -> int:
    io_set.stderr.write(f"{SH}: {message}\n".encode())
    return status


def _oserror_text(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)


# --- builtins that need the shell's own state -------------------------------------------------------
def _cd(shell: Shell, argv: list[str], io_set: _IO) -> int:
    target = argv[1] if len(argv) > 1 else shell.env.get("HOME", "/")
    path = shell.system.fs.normalize(target, shell.cwd)
    if not shell.system.fs.is_dir(path):
        return _fail(io_set, f"cd: {target}: No such file or directory", 2)
    shell.cwd = shell.env["PWD"] = path
    return 0


def _exit(shell: Shell, argv: list[str], io_set: _IO) -> int:
    raise _Exit(int(argv[1]) if len(argv) > 1 and argv[1].lstrip("-").isdigit() else shell.status)


def _export(shell: Shell, argv: list[str], io_set: _IO) -> int:
    for arg in argv[1:]:
        name, sep, value = arg.partition("=")
        if sep:
            shell.env[name] = value
    return 0


def _sh(shell: Shell, argv: list[str], io_set: _IO) -> int:
    """``sh -c 'cmd' [arg0 args...]`` or ``sh script [args]``."""
    args = argv[1:]
    if not args or args == ["-c"]:
        return _fail(io_set, "sh: needs -c COMMAND or a script (no interactive sh inside a command)", 2)
    if args[0] == "-c":
        child = shell._child(positional=args[2:] or ["sh"])
        return child.run(args[1], io_set.stdin, io_set.stdout, io_set.stderr)
    try:
        script = shell.system.fs.read_bytes(args[0], shell.cwd).decode("utf-8", "replace")
    except OSError as exc:
        return _fail(io_set, f"{args[0]}: {exc.strerror}", 127)
    return shell._child(positional=args).run(script, io_set.stdin, io_set.stdout, io_set.stderr)


_BUILTINS: dict[str, Callable[[Shell, list[str], _IO], int]] = {
    "cd": _cd,
    "exit": _exit,
    "export": _export,
    "sh": _sh,
    SH: _sh,
}
