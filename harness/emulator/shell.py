"""The emulated device's ``/system/bin/sh``: executes the AST of :mod:`harness.emulator.shell_syntax`.

Semantics follow mksh/toybox on Android where the harness can observe them: exit status ``$?``,
``&&``/``||``, pipelines whose stages run concurrently over real OS pipes (a stage writing to a closed
pipe ends with status 141), redirections to device files, ``127`` for unknown commands and ``126`` for
files that cannot be executed, messages prefixed ``/system/bin/sh:``.

Executables: a device file that starts with the builtin marker runs the builtin program it names
(``/data/local/tmp/benchmark_model``); a file starting with ``#!`` and ``sh`` runs as a shell script;
anything else (an ARM ELF binary pushed by the user) cannot run on this emulated device and fails with
status 126 and a message saying so.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.emulator.filesystem import builtin_program_name
from harness.emulator.process import Process, Readable, Writable
from harness.emulator.shell_syntax import (
    AndOr,
    Command,
    For,
    Group,
    If,
    Pipeline,
    Redirect,
    Sequence,
    ShellSyntaxError,
    Simple,
    While,
    Word,
    parse,
)
from harness.emulator.system import AndroidSystem

__all__ = ["SH", "IOSet", "Shell", "ShellExit"]

SH = "/system/bin/sh"
SIGPIPE_STATUS = 141  # 128 + SIGPIPE
CANCELLED_STATUS = 130  # 128 + SIGINT, when the adb stream went away


class ShellExit(Exception):
    """``exit N`` (unwinds to the top of the script)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Cancelled(Exception):
    """The adb stream closed: stop running the script."""


class _LoopControl(Exception):
    def __init__(self, kind: str, levels: int):
        super().__init__(kind)
        self.kind = kind  # "break" | "continue"
        self.levels = levels


@dataclass
class IOSet:
    stdin: Readable
    stdout: Writable
    stderr: Writable


class Shell:
    """One shell instance (variables, cwd, ``$?``, background jobs) on an :class:`AndroidSystem`."""

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
        self._jobs: list[threading.Thread] = []

    # --- entry points -------------------------------------------------------------------------------
    def run(self, source: str, stdin: Readable, stdout: Writable, stderr: Writable) -> int:
        """Run a command line or script; returns its exit status (background jobs are awaited)."""
        io_set = IOSet(stdin, stdout, stderr)
        try:
            tree = parse(source)
        except ShellSyntaxError as exc:
            _safe_write(stderr, f"{SH}: {exc}\n")
            self.status = 2
            return 2
        try:
            self.status = self._sequence(tree, io_set)
        except ShellExit as exc:
            self.status = exc.status & 0xFF
            self.exited = True
        except _Cancelled:
            self.status = CANCELLED_STATUS
        except _LoopControl:
            pass
        self.wait_jobs()
        return self.status

    def wait_jobs(self) -> None:
        for job in self._jobs:
            job.join()
        self._jobs.clear()

    # --- structure ----------------------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()

    def _sequence(self, sequence: Sequence, io_set: IOSet) -> int:
        status = self.status
        for and_or, background in sequence.items:
            self._check_cancel()
            if background:
                job = threading.Thread(target=self._background, args=(and_or, io_set), daemon=True)
                job.start()
                self._jobs.append(job)
                status = 0
            else:
                status = self._and_or(and_or, io_set)
            self.status = status
        return status

    def _background(self, and_or: AndOr, io_set: IOSet) -> None:
        child = Shell(self.system, env=self.env, cwd=self.cwd, cancel=self.cancel, positional=self.positional)
        with contextlib.suppress(ShellExit, _Cancelled, _LoopControl, BrokenPipeError):
            child._and_or(and_or, IOSet(io.BytesIO(b""), io_set.stdout, io_set.stderr))

    def _and_or(self, and_or: AndOr, io_set: IOSet) -> int:
        status = self._pipeline(and_or.first, io_set)
        for op, pipeline in and_or.rest:
            self.status = status
            if (op == "&&") == (status == 0):
                status = self._pipeline(pipeline, io_set)
        return status

    def _pipeline(self, pipeline: Pipeline, io_set: IOSet) -> int:
        commands = pipeline.commands
        if len(commands) == 1:
            status = self._command_guarded(commands[0], io_set)
        else:
            status = self._run_pipes(commands, io_set)
        self._check_cancel()
        return int(status == 0) if pipeline.negate else status

    def _command_guarded(self, command: Command, io_set: IOSet) -> int:
        try:
            return self._command(command, io_set)
        except BrokenPipeError:
            self._check_cancel()
            return SIGPIPE_STATUS

    def _run_pipes(self, commands: list[Command], io_set: IOSet) -> int:
        count = len(commands)
        pipes = [os.pipe() for _ in range(count - 1)]
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
            except (ShellExit, _LoopControl) as exc:
                statuses[k] = exc.status if isinstance(exc, ShellExit) else 0
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

    def _command(self, command: Command, io_set: IOSet) -> int:
        if isinstance(command, Simple):
            return self._simple(command, io_set)
        opened: list[object] = []
        try:
            io_set = self._redirect(command.redirects, io_set, opened)
            if isinstance(command, Group):
                if command.subshell:
                    child = Shell(
                        self.system,
                        env=self.env,
                        cwd=self.cwd,
                        cancel=self.cancel,
                        positional=self.positional,
                    )
                    try:
                        return child._sequence(command.body, io_set)
                    except ShellExit as exc:
                        return exc.status
                return self._sequence(command.body, io_set)
            if isinstance(command, If):
                for condition, body in command.branches:
                    if self._sequence(condition, io_set) == 0:
                        return self._sequence(body, io_set)
                return self._sequence(command.otherwise, io_set) if command.otherwise else 0
            if isinstance(command, While):
                return self._while(command, io_set)
            return self._for(command, io_set)
        except OSError as exc:
            _safe_write(io_set.stderr, f"{SH}: {_oserror_text(exc)}\n")
            return 1
        finally:
            _close_all(opened)

    def _loop_body(self, body: Sequence, io_set: IOSet) -> int | None:
        """One iteration of a loop body: its status, or None after ``break`` (``break N`` propagates)."""
        self._check_cancel()
        try:
            return self._sequence(body, io_set)
        except _LoopControl as ctl:
            if ctl.levels > 1:
                raise _LoopControl(ctl.kind, ctl.levels - 1) from None
            return None if ctl.kind == "break" else 0

    def _while(self, command: While, io_set: IOSet) -> int:
        status = 0
        while (self._sequence(command.condition, io_set) == 0) != command.until:
            result = self._loop_body(command.body, io_set)
            if result is None:
                return 0
            status = result
        return status

    def _for(self, command: For, io_set: IOSet) -> int:
        items = self.expand(command.items) if command.items is not None else self.positional[1:]
        status = 0
        for item in items:
            self.env[command.variable] = item
            result = self._loop_body(command.body, io_set)
            if result is None:
                return 0
            status = result
        return status

    # --- simple commands ----------------------------------------------------------------------------
    def _simple(self, command: Simple, io_set: IOSet) -> int:
        try:
            argv = self.expand(command.words)
            values = {a.name: "".join(self.expand_word(a.value, split=False)) for a in command.assignments}
        except ShellSyntaxError as exc:
            _safe_write(io_set.stderr, f"{SH}: {exc}\n")
            return 2
        if not argv:
            self.env.update(values)
        opened: list[object] = []
        try:
            io_set = self._redirect(command.redirects, io_set, opened)
            if not argv:
                return 0
            return self.execute(argv, io_set, env_extra=values)
        except OSError as exc:
            _safe_write(io_set.stderr, f"{SH}: {_oserror_text(exc)}\n")
            return 1
        finally:
            _close_all(opened)

    def _redirect(self, redirects: list[Redirect], io_set: IOSet, opened: list[object]) -> IOSet:
        fds: dict[int, object] = {0: io_set.stdin, 1: io_set.stdout, 2: io_set.stderr}
        for redirect in redirects:
            target = "".join(self.expand_word(redirect.target, split=False))
            if redirect.op in (">&", "<&"):
                if target == "-":
                    fds[redirect.fd] = io.BytesIO()
                    continue
                if not target.isdigit() or int(target) not in fds:
                    raise OSError(9, "Bad file descriptor", target)
                fds[redirect.fd] = fds[int(target)]
                continue
            fs = self.system.fs
            handle: object
            if redirect.op == "<":
                handle = fs.open_read(target, self.cwd)
            else:
                handle = fs.open_write(target, self.cwd, append=redirect.op == ">>")
            opened.append(handle)
            fds[redirect.fd] = handle
        stdin, stdout, stderr = fds[0], fds[1], fds[2]
        return IOSet(stdin, stdout, stderr)  # type: ignore[arg-type]

    def execute(self, argv: list[str], io_set: IOSet, *, env_extra: dict[str, str] | None = None) -> int:
        """Run one command (builtin, program or device file) with ``argv`` already expanded."""
        self._check_cancel()
        name = argv[0]
        special = _SPECIAL.get(name)
        if special is not None:
            return special(self, argv, io_set)
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
                _safe_write(io_set.stderr, f"{SH}: {name}: inaccessible or not found\n")
                return 127
            return program(process)
        return self._execute_file(process, io_set)

    def _run_for_process(self, process: Process, argv: list[str]) -> int:
        """Run ``argv`` with the I/O of ``process`` (``taskset``, ``sh -c``)."""
        shell = Shell(
            self.system,
            env=process.env,
            cwd=process.cwd,
            cancel=self.cancel,
            positional=self.positional,
            cpu_mask=process.cpu_mask,
        )
        return shell.execute(argv, IOSet(process.stdin, process.stdout, process.stderr))

    def _execute_file(self, process: Process, io_set: IOSet) -> int:
        fs = self.system.fs
        path = fs.normalize(process.argv[0], self.cwd)
        shown = process.argv[0]
        base = path.rsplit("/", 1)[-1]
        if (
            path.startswith(("/system/bin/", "/system/xbin/", "/vendor/bin/"))
            and base in self.system.programs
        ):
            return self.system.programs[base](process)
        if not fs.exists(path):
            _safe_write(io_set.stderr, f"{SH}: {shown}: inaccessible or not found\n")
            return 127
        if fs.is_dir(path):
            _safe_write(io_set.stderr, f"{SH}: {shown}: can't execute: Is a directory\n")
            return 126
        if not fs.is_executable(path):
            _safe_write(io_set.stderr, f"{SH}: {shown}: can't execute: Permission denied\n")
            return 126
        with fs.open_read(path) as handle:
            head = handle.read(256)
        builtin = builtin_program_name(head)
        if builtin is not None:
            program = self.system.builtin_files.get(builtin)
            if program is None:
                _safe_write(io_set.stderr, f"{SH}: {shown}: builtin {builtin!r} is not installed\n")
                return 127
            return program(process)
        if head.startswith(b"#!") and b"sh" in head.split(b"\n", 1)[0]:
            script = fs.read_bytes(path).decode("utf-8", "replace")
            child = Shell(
                self.system, env=process.env, cwd=self.cwd, cancel=self.cancel, positional=process.argv
            )
            return child.run(script, io_set.stdin, io_set.stdout, io_set.stderr)
        kind = "an ELF binary" if head.startswith(b"\x7fELF") else "not a script"
        _safe_write(
            io_set.stderr,
            f"{SH}: {shown}: can't execute: Exec format error ({kind}; the JointDNN emulated device runs "
            "only shell scripts and its builtin benchmark_model / jointdnn_chain_runner)\n",
        )
        return 126

    # --- expansion ----------------------------------------------------------------------------------
    def lookup(self, name: str) -> str:
        if name == "?":
            return str(self.status)
        if name == "#":
            return str(len(self.positional) - 1)
        if name in ("@", "*"):
            return " ".join(self.positional[1:])
        if name == "$":
            return str(threading.get_ident() % 30000 + 1000)
        if name == "!":
            return ""
        if name.isdigit():
            index = int(name)
            return self.positional[index] if index < len(self.positional) else ""
        return self.env.get(name, "")

    def arithmetic(self, expression: str) -> int:
        """``$((expression))``: integer arithmetic; variables by name or ``$name``; C division."""
        text = re.sub(r"\$\{?(\w+|[?#])\}?", lambda m: self.lookup(m.group(1)) or "0", expression)
        text = re.sub(r"[A-Za-z_]\w*", lambda m: self.env.get(m.group(0), "0") or "0", text)
        try:
            tree = ast.parse(text.strip().replace("&&", " and ").replace("||", " or "), mode="eval")
            return _eval_int(tree.body)
        except (SyntaxError, ValueError, ZeroDivisionError) as exc:
            raise ShellSyntaxError(f"{expression}: bad arithmetic expression ({exc})") from None

    def substitute(self, source: str) -> str:
        """``$(source)``: its stdout without trailing newlines."""
        buffer = io.BytesIO()
        child = Shell(self.system, env=self.env, cwd=self.cwd, cancel=self.cancel, positional=self.positional)
        child.run(source, io.BytesIO(b""), buffer, _Discard())
        self.status = child.status
        return buffer.getvalue().decode("utf-8", "replace").rstrip("\n")

    def expand(self, words: list[Word]) -> list[str]:
        out: list[str] = []
        for word in words:
            out.extend(self.expand_word(word))
        return out

    def expand_word(self, word: Word, *, split: bool = True) -> list[str]:
        """Variables, command substitution, field splitting and globbing of one word."""
        fields: list[list[tuple[str, bool]]] = [[]]  # pieces of each field: (text, may glob)
        keep_empty = False
        for part in word.parts:
            if part.kind == "text":
                fields[-1].append((part.value, not part.quoted))
                keep_empty = keep_empty or part.quoted
                continue
            if part.kind == "var" and part.value == "@" and part.quoted:
                args = self.positional[1:]
                for k, arg in enumerate(args):
                    if k:
                        fields.append([])
                    fields[-1].append((arg, False))
                continue
            if part.kind == "var":
                value = self.lookup(part.value)
                if not value and part.default is not None:
                    value = part.default
            elif part.kind == "arith":
                value = str(self.arithmetic(part.value))
            else:
                value = self.substitute(part.value)
            if part.quoted or not split:
                fields[-1].append((value, False))
                keep_empty = keep_empty or part.quoted
                continue
            pieces = value.split()
            if not pieces:
                continue
            if value[0].isspace() and fields[-1]:
                fields.append([])
            fields[-1].append((pieces[0], False))
            for piece in pieces[1:]:
                fields.append([(piece, False)])
            if value[-1].isspace():
                fields.append([])
        out: list[str] = []
        for field_pieces in fields:
            if not field_pieces:
                continue
            text = "".join(t for t, _ in field_pieces)
            if split and any(g and any(c in t for c in "*?[") for t, g in field_pieces):
                matches = self.system.fs.walk_glob(text, self.cwd)
                if matches:
                    out.extend(matches)
                    continue
            out.append(text)
        if not out and keep_empty:
            out.append("")
        return out


_BINARY_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: int(a / b) if b else a // b,  # C truncation; b == 0 raises
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: int(math.fmod(a, b)) if b else a % b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
}
_COMPARE_OPS: dict[type, Callable[[int, int], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def _eval_int(node: ast.expr) -> int:
    """Evaluate a parsed integer expression (numbers and operators only, no names or calls)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return int(node.value)
    if isinstance(node, ast.UnaryOp):
        value = _eval_int(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.Not):
            return int(not value)
        if isinstance(node.op, ast.Invert):
            return ~value
        return value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        return _BINARY_OPS[type(node.op)](_eval_int(node.left), _eval_int(node.right))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE_OPS:
        return int(_COMPARE_OPS[type(node.ops[0])](_eval_int(node.left), _eval_int(node.comparators[0])))
    if isinstance(node, ast.BoolOp):
        values = [_eval_int(v) for v in node.values]
        return int(all(values) if isinstance(node.op, ast.And) else any(values))
    raise ValueError("only integers and arithmetic operators are allowed")


class _Discard:
    """stderr of a command substitution: not captured, and nowhere to go (like a detached terminal)."""

    def write(self, data: bytes) -> int:
        return len(data)


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


def _safe_write(stream: Writable, text: str) -> None:
    stream.write(text.encode())


def _close_all(handles: list[object]) -> None:
    for handle in handles:
        close = getattr(handle, "close", None)
        if close is not None:
            close()


def _oserror_text(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)


# --- builtins that need the shell's own state -------------------------------------------------------
def _cd(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    target = argv[1] if len(argv) > 1 else shell.env.get("HOME", "/")
    path = shell.system.fs.normalize(target, shell.cwd)
    if not shell.system.fs.is_dir(path):
        _safe_write(io_set.stderr, f"{SH}: cd: {target}: No such file or directory\n")
        return 2
    shell.cwd = path
    shell.env["PWD"] = path
    return 0


def _exit(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    raise ShellExit(int(argv[1]) if len(argv) > 1 and argv[1].lstrip("-").isdigit() else shell.status)


def _export(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    for arg in argv[1:]:
        name, sep, value = arg.partition("=")
        if sep:
            shell.env[name] = value
    return 0


def _unset(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    for name in argv[1:]:
        shell.env.pop(name, None)
    return 0


def _wait(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    shell.wait_jobs()
    return 0


def _loop_control(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    levels = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 1
    raise _LoopControl(argv[0], max(1, levels))


def _shift(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    count = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 1
    if count > len(shell.positional) - 1:
        return 1
    shell.positional = shell.positional[:1] + shell.positional[1 + count :]
    return 0


def _eval(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    try:
        tree = parse(" ".join(argv[1:]))
    except ShellSyntaxError as exc:
        _safe_write(io_set.stderr, f"{SH}: eval: {exc}\n")
        return 2
    return shell._sequence(tree, io_set)


def _source(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    if len(argv) < 2:
        _safe_write(io_set.stderr, f"{SH}: {argv[0]}: filename argument required\n")
        return 2
    try:
        text = shell.system.fs.read_bytes(argv[1], shell.cwd).decode("utf-8", "replace")
        tree = parse(text)
    except OSError as exc:
        _safe_write(io_set.stderr, f"{SH}: {argv[0]}: {_oserror_text(exc)}\n")
        return 1
    except ShellSyntaxError as exc:
        _safe_write(io_set.stderr, f"{SH}: {argv[1]}: {exc}\n")
        return 2
    return shell._sequence(tree, io_set)


def _read(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    """``read [-r] NAME...``: one line of stdin split into variables (the last takes the rest); 1 at EOF."""
    names = [a for a in argv[1:] if not a.startswith("-")] or ["REPLY"]
    readline = getattr(io_set.stdin, "readline", None)
    if readline is not None:
        raw: bytes = readline()
    else:  # byte by byte, so that nothing after the line is consumed
        raw = b""
        while not raw.endswith(b"\n") and (byte := io_set.stdin.read(1)):
            raw += byte
    if not raw:
        return 1
    fields = raw.decode("utf-8", "replace").rstrip("\n").split(None, len(names) - 1)
    for index, name in enumerate(names):
        shell.env[name] = fields[index] if index < len(fields) else ""
    return 0


def _sh(shell: Shell, argv: list[str], io_set: IOSet) -> int:
    """``sh -c 'cmd' [arg0 args...]``, ``sh script [args]`` or ``sh`` reading a script from stdin."""
    args = argv[1:]
    child_kwargs = {"env": shell.env, "cwd": shell.cwd, "cancel": shell.cancel, "cpu_mask": shell.cpu_mask}
    if args and args[0] == "-c":
        if len(args) < 2:
            _safe_write(io_set.stderr, f"{SH}: -c: option requires an argument\n")
            return 2
        child = Shell(shell.system, positional=args[2:] or ["sh"], **child_kwargs)  # type: ignore[arg-type]
        return child.run(args[1], io_set.stdin, io_set.stdout, io_set.stderr)
    if args:
        try:
            script = shell.system.fs.read_bytes(args[0], shell.cwd).decode("utf-8", "replace")
        except OSError as exc:
            _safe_write(io_set.stderr, f"{SH}: {args[0]}: {exc.strerror}\n")
            return 127
        child = Shell(shell.system, positional=args, **child_kwargs)  # type: ignore[arg-type]
        return child.run(script, io_set.stdin, io_set.stdout, io_set.stderr)
    script = io_set.stdin.read().decode("utf-8", "replace")
    child = Shell(shell.system, **child_kwargs)  # type: ignore[arg-type]
    return child.run(script, io.BytesIO(b""), io_set.stdout, io_set.stderr)


_SPECIAL = {
    "cd": _cd,
    "exit": _exit,
    "export": _export,
    "unset": _unset,
    "wait": _wait,
    "break": _loop_control,
    "continue": _loop_control,
    "shift": _shift,
    "eval": _eval,
    ".": _source,
    "source": _source,
    "read": _read,
    "sh": _sh,
    "/system/bin/sh": _sh,
}
