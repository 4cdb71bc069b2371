"""Toybox-like file and text programs of the emulated device: ``cat``, ``ls``, ``rm``, ``stat`` ...

Each is a function ``(Process) -> int`` registered in :data:`FILE_PROGRAMS`: what the harness sends
(``cat ls rm mkdir chmod sha256sum``), what its tests use, and the everyday tools of an ``adb shell``
session (``echo printf grep head tail wc sort seq stat touch sleep pwd true false md5sum sha1sum``).
Options cover what scripts and the harness use; messages and exit codes follow toybox (``cat: x: No such file or directory``,
status 1). Android-specific programs (``getprop``, ``dumpsys`` ...) live in
:mod:`harness.emulator.android_commands`.
"""

from __future__ import annotations

import hashlib
import re
import stat as statmod
import time
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial

from harness.emulator.process import Process, Program, Readable

__all__ = ["FILE_PROGRAMS"]

_CHUNK = 1 << 20  # bytes per read when streaming files
_STREAM_CHUNK = 64 * 1024  # bytes per read of head/tail
_SEQ_BATCH = 8192  # numbers per write of seq (~70 KB for 8-digit numbers)
_YES_BLOCK = 16 * 1024  # bytes per write of yes


def _parse_flags(
    argv: list[str], known: str, with_value: str = ""
) -> tuple[set[str], dict[str, str], list[str]]:
    """Short options (``-la``, ``-n 5``, ``-n5``); ``--`` ends options. Unknown letters raise ValueError."""
    flags: set[str] = set()
    values: dict[str, str] = {}
    rest: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            rest.extend(args)
            break
        if len(arg) > 1 and arg.startswith("-") and not rest and not arg[1:].isdigit():
            letters = arg[1:]
            for k, letter in enumerate(letters):
                if letter in with_value:
                    values[letter] = letters[k + 1 :] or next(args, "")
                    break
                if letter not in known:
                    raise ValueError(f"Unknown option '{letter}'")
                flags.add(letter)
        else:
            rest.append(arg)
    return flags, values, rest


def _options(known: str, with_value: str = "") -> Callable[[Callable[..., int]], Program]:
    """Decorator: parse options first; a bad option prints toybox's message and exits 1."""

    def wrap(func: Callable[..., int]) -> Program:
        def program(p: Process) -> int:
            try:
                flags, values, rest = _parse_flags(p.argv, known, with_value)
            except ValueError as exc:
                return p.fail(str(exc))
            return func(p, flags, values, rest)

        program.__doc__ = func.__doc__
        return program

    return wrap


def _oserr(p: Process, exc: OSError) -> int:
    return p.fail(f"{exc.filename or ''}: {exc.strerror}" if exc.filename else str(exc))


def _read_inputs(p: Process, paths: list[str]) -> Iterator[tuple[str, bytes | None]]:
    """(name, content) per input; ``-`` or no paths = stdin; None content after printing an error."""
    for path in paths or ["-"]:
        if path == "-":
            yield "-", p.stdin.read()
            continue
        try:
            yield path, p.system.fs.read_bytes(path, p.cwd)
        except OSError as exc:
            _oserr(p, OSError(exc.errno, exc.strerror, path))
            yield path, None


def _stream_inputs(p: Process, paths: list[str]) -> Iterator[tuple[str, Iterator[bytes] | None]]:
    """Like :func:`_read_inputs`, but each content as chunks (bounded memory for any input size)."""
    for path in paths or ["-"]:
        if path == "-":
            yield "-", iter(partial(p.stdin.read, _CHUNK), b"")
            continue
        try:
            handle = p.system.fs.open_read(path, p.cwd)
        except OSError as exc:
            _oserr(p, OSError(exc.errno, exc.strerror, path))
            yield path, None
            continue
        with handle:
            yield path, iter(partial(handle.read, _CHUNK), b"")


def _echo(p: Process) -> int:
    """echo [-n] [-e] ARGS..."""
    args = p.argv[1:]
    newline, escapes = True, False
    while args and args[0] in ("-n", "-e", "-ne", "-en", "-E"):
        newline = newline and "n" not in args[0]
        escapes = escapes or "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = text.encode().decode("unicode_escape")
    p.out(text + ("\n" if newline else ""))
    return 0


def _printf(p: Process) -> int:
    """printf FORMAT [ARGS...] (%s %d %i %f %x %% and backslash escapes; FORMAT repeats for extra ARGS)."""
    if len(p.argv) < 2:
        return p.fail("needs 1 argument")
    fmt = p.argv[1].encode().decode("unicode_escape")
    pending = list(p.argv[2:])
    spec = re.compile(r"%([-+ 0#]*\d*(?:\.\d+)?)([sdifxXgeEc%])")

    def repl(match: re.Match[str]) -> str:
        flags, conv = match.groups()
        if conv == "%":
            return "%"
        arg = pending.pop(0) if pending else ""
        if conv in "di":
            return f"%{flags}d" % int(float(arg or 0))
        if conv in "fgeE":
            return f"%{flags}{conv}" % float(arg or 0)
        if conv in "xX":
            return f"%{flags}{conv}" % int(arg or 0)
        return f"%{flags}s" % arg

    out = [spec.sub(repl, fmt)]
    while pending and spec.search(fmt):
        out.append(spec.sub(repl, fmt))
    p.out("".join(out))
    return 0


def _cat(p: Process) -> int:
    """cat [FILE|-]..."""
    status = 0
    for path in p.argv[1:] or ["-"]:
        if path == "-":
            while (chunk := p.stdin.read(_CHUNK)) and not p.cancel.is_set():
                p.stdout.write(chunk)
            continue
        try:
            with p.system.fs.open_read(path, p.cwd) as handle:
                while (chunk := handle.read(_CHUNK)) and not p.cancel.is_set():
                    p.stdout.write(chunk)
        except OSError as exc:
            _oserr(p, OSError(exc.errno, exc.strerror, path))
            status = 1
    return status


def _mode_string(mode: int) -> str:
    return statmod.filemode(mode)


def _ls_line(p: Process, path: str, name: str) -> str:
    st = p.system.fs.stat(path, p.cwd)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime))
    owner = "root" if p.system.fs.normalize(path, p.cwd).startswith(("/sys", "/proc", "/system")) else "shell"
    return f"{_mode_string(st.st_mode)} 1 {owner} {owner} {st.st_size:>8} {stamp} {name}"


@_options("laA1dRh")
def _ls(p: Process, flags: set[str], values: dict[str, str], paths: list[str]) -> int:
    """ls [-l] [-a] [-1] [-d] [-R] [PATH...]"""
    fs = p.system.fs
    status = 0
    targets = paths or ["."]
    for index, target in enumerate(targets):
        if not fs.exists(target, p.cwd):
            p.fail(f"{target}: No such file or directory")
            status = 1
            continue
        if fs.is_dir(target, p.cwd) and "d" not in flags:
            names = fs.listdir(target, p.cwd)
            if "a" in flags:
                names = [".", "..", *names]
            elif "A" not in flags:
                names = [n for n in names if not n.startswith(".")]
            if len(targets) > 1 or "R" in flags:
                p.out(("\n" if index else "") + f"{target}:\n")
            for name in names:
                child = f"{target.rstrip('/')}/{name}"
                p.out((_ls_line(p, child, name) if "l" in flags else name) + "\n")
            if "R" in flags:
                for name in names:
                    child = f"{target.rstrip('/')}/{name}"
                    if name not in (".", "..") and fs.is_dir(child, p.cwd):
                        p.out("\n")
                        _ls(p.with_argv(["ls", *(["-l"] if "l" in flags else []), "-R", child]))
        else:
            p.out((_ls_line(p, target, target) if "l" in flags else target) + "\n")
    return status


@_options("rRfd")
def _rm(p: Process, flags: set[str], values: dict[str, str], paths: list[str]) -> int:
    """rm [-r] [-f] PATH..."""
    if not paths and "f" not in flags:
        return p.fail("Needs 1 argument")
    status = 0
    for path in paths:
        try:
            p.system.fs.remove(path, p.cwd, recursive=bool(flags & {"r", "R"}))
        except IsADirectoryError:
            status = p.fail(f"{path}: Is a directory")
        except OSError as exc:
            if "f" in flags and exc.errno == 2:
                continue
            status = _oserr(p, OSError(exc.errno, exc.strerror, path))
    return status


@_options("pv", "m")
def _mkdir(p: Process, flags: set[str], values: dict[str, str], paths: list[str]) -> int:
    """mkdir [-p] [-m MODE] DIR..."""
    if not paths:
        return p.fail("Needs 1 argument")
    status = 0
    for path in paths:
        try:
            p.system.fs.mkdir(path, p.cwd, parents="p" in flags)
            if "m" in values:
                p.system.fs.chmod(path, int(values["m"], 8), p.cwd)
        except OSError as exc:
            status = _oserr(p, OSError(exc.errno, exc.strerror, path))
    return status


def _apply_symbolic(mode: int, spec: str) -> int:
    """chmod's ``u+x``, ``a-w``, ``+x``, ``go=r`` (comma-separated clauses)."""
    for clause in spec.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwx]*)", clause)
        if not match:
            raise ValueError(f"bad mode '{spec}'")
        who, op, perms = match.groups()
        who = who or "a"
        bits = 0
        for w in who:
            shifts = {"u": [6], "g": [3], "o": [0], "a": [6, 3, 0]}[w]
            for shift in shifts:
                for perm in perms:
                    bits |= {"r": 4, "w": 2, "x": 1}[perm] << shift
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            clear = sum(7 << s for w in who for s in {"u": [6], "g": [3], "o": [0], "a": [6, 3, 0]}[w])
            mode = (mode & ~clear) | bits
    return mode


@_options("Rvf")
def _chmod(p: Process, flags: set[str], values: dict[str, str], args: list[str]) -> int:
    """chmod [-R] MODE FILE... (octal or symbolic)"""
    if len(args) < 2:
        return p.fail("Needs 2 arguments")
    spec, paths = args[0], args[1:]
    status = 0
    for path in paths:
        try:
            current = statmod.S_IMODE(p.system.fs.stat(path, p.cwd).st_mode)
            mode = int(spec, 8) if re.fullmatch(r"[0-7]+", spec) else _apply_symbolic(current, spec)
            p.system.fs.chmod(path, mode, p.cwd)
        except ValueError as exc:
            return p.fail(str(exc))
        except OSError as exc:
            status = _oserr(p, OSError(exc.errno, exc.strerror, path))
    return status


def _touch(p: Process) -> int:
    """touch FILE..."""
    status = 0
    for path in p.argv[1:]:
        if path.startswith("-"):
            continue
        try:
            if p.system.fs.exists(path, p.cwd):
                p.system.fs.set_mtime(path, int(time.time()), p.cwd)
            else:
                p.system.fs.open_write(path, p.cwd).close()
        except OSError as exc:
            status = _oserr(p, OSError(exc.errno, exc.strerror, path))
    return status


def _hash_program(algorithm: str) -> Program:
    def program(p: Process) -> int:
        status = 0
        for name, chunks in _stream_inputs(p, [a for a in p.argv[1:] if not a.startswith("-") or a == "-"]):
            if chunks is None:
                status = 1
                continue
            digest = hashlib.new(algorithm)
            for chunk in chunks:
                digest.update(chunk)
            p.out(f"{digest.hexdigest()}  {name}\n")
        return status

    program.__doc__ = f"{algorithm}sum [FILE...]"
    return program


def _stat_format(p: Process, fmt: str, path: str) -> str:
    st = p.system.fs.stat(path, p.cwd)
    kind = "directory" if statmod.S_ISDIR(st.st_mode) else "regular file"
    if statmod.S_ISREG(st.st_mode) and st.st_size == 0:
        kind = "regular empty file"
    fields: dict[str, object] = {
        "s": st.st_size,
        "n": path,
        "N": f"'{path}'",
        "a": f"{statmod.S_IMODE(st.st_mode):o}",
        "A": _mode_string(st.st_mode),
        "F": kind,
        "Y": int(st.st_mtime),
        "y": time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000", time.gmtime(st.st_mtime)),
    }
    return re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else str(fields.get(m.group(1), "?")), fmt)


def _stat(p: Process) -> int:
    """stat [-c FORMAT] FILE... (%s %n %N %a %A %F %Y %y)"""
    try:
        _, values, paths = _parse_flags(p.argv, "L", "c")
    except ValueError as exc:
        return p.fail(str(exc))
    if not paths:
        return p.fail("Needs 1 argument")
    fmt = values.get("c", "  File: %N\n  Size: %s\t%F\nAccess: (0%a/%A)\nModify: %y")
    status = 0
    for path in paths:
        try:
            p.out(_stat_format(p, fmt.replace("\\n", "\n").replace("\\t", "\t"), path) + "\n")
        except OSError as exc:
            status = p.fail(f"{path}: {exc.strerror}")
    return status


@_options("lwcm")
def _wc(p: Process, flags: set[str], values: dict[str, str], paths: list[str]) -> int:
    """wc [-l] [-w] [-c] [FILE...]"""
    chosen = [f for f in "lwc" if f in flags or (f == "c" and "m" in flags)] or ["l", "w", "c"]
    status = 0
    totals = {"l": 0, "w": 0, "c": 0}
    for name, chunks in _stream_inputs(p, paths):
        if chunks is None:
            status = 1
            continue
        counts = {"l": 0, "w": 0, "c": 0}
        after_space = True  # a word split across two chunks counts once
        for chunk in chunks:
            counts["l"] += chunk.count(b"\n")
            counts["c"] += len(chunk)
            counts["w"] += len(chunk.split()) - (not after_space and not chunk[:1].isspace())
            after_space = chunk[-1:].isspace()
        for key in totals:
            totals[key] += counts[key]
        numbers = [counts[f] for f in chosen]
        if name == "-" and len(chosen) == 1:
            p.out(f"{numbers[0]}\n")
        else:
            p.out(" ".join(f"{n:>7}" for n in numbers) + ("" if name == "-" else f" {name}") + "\n")
    if len(paths) > 1:
        p.out(" ".join(f"{totals[f]:>7}" for f in chosen) + " total\n")
    return status


def _count_option(argv: list[str], default: int) -> tuple[int, bool, list[str]]:
    """head/tail: ``-n N``, ``-nN``, ``-N``, ``-c N``; returns (count, count_bytes, paths)."""
    count, use_bytes, paths = default, False, []
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-n", "-c"):
            use_bytes = arg == "-c"
            count = int(next(args, str(default)).lstrip("+"))
        elif arg.startswith(("-n", "-c")) and len(arg) > 2:
            use_bytes = arg.startswith("-c")
            count = int(arg[2:].lstrip("+"))
        elif arg.startswith("-") and arg[1:].isdigit():
            count = int(arg[1:])
        else:
            paths.append(arg)
    return count, use_bytes, paths


def _head_stream(p: Process, source: Readable, count: int, use_bytes: bool) -> None:
    """The first ``count`` lines (bytes) of ``source``, read only as far as needed: ``seq ... | head``
    stops reading, the pipe closes, and the writer ends with SIGPIPE instead of running on."""
    left = count
    while left > 0 and (chunk := source.read(_STREAM_CHUNK)):
        if use_bytes:
            piece = chunk[:left]
            left -= len(piece)
        else:
            end = 0
            while left > 0 and (newline := chunk.find(b"\n", end)) >= 0:
                end, left = newline + 1, left - 1
            piece = chunk if left > 0 else chunk[:end]
        p.stdout.write(piece)


def _tail_stream(p: Process, source: Readable, count: int, use_bytes: bool) -> None:
    """The last ``count`` lines (bytes) of ``source``, keeping only those in memory while reading."""
    if count <= 0:
        while source.read(_STREAM_CHUNK):
            pass
        return
    if use_bytes:
        kept = bytearray()
        while chunk := source.read(_STREAM_CHUNK):
            kept += chunk
            del kept[:-count]
        p.stdout.write(bytes(kept))
        return
    lines: deque[bytes] = deque(maxlen=count)
    partial = b""
    while chunk := source.read(_STREAM_CHUNK):
        pieces = (partial + chunk).split(b"\n")
        partial = pieces.pop()
        lines.extend(piece + b"\n" for piece in pieces[-count:])
    if partial:
        lines.append(partial)
    p.stdout.write(b"".join(lines))


def _head_tail(tail: bool) -> Program:
    def program(p: Process) -> int:
        try:
            count, use_bytes, paths = _count_option(p.argv, 10)
        except ValueError:
            return p.fail("bad count")
        status = 0
        for index, path in enumerate(paths or ["-"]):
            try:
                handle = p.stdin if path == "-" else p.system.fs.open_read(path, p.cwd)
            except OSError as exc:
                _oserr(p, OSError(exc.errno, exc.strerror, path))
                status = 1
                continue
            try:
                if len(paths) > 1:
                    p.out(("\n" if index else "") + f"==> {path} <==\n")
                (_tail_stream if tail else _head_stream)(p, handle, count, use_bytes)
            finally:
                if path != "-":
                    handle.close()  # type: ignore[attr-defined]
        return status

    program.__doc__ = f"{'tail' if tail else 'head'} [-n N] [-c N] [FILE...]"
    return program


def _grep(p: Process) -> int:
    """grep [-v -i -c -q -n -o -E -F -w] PATTERN [FILE...]"""
    try:
        flags, values, rest = _parse_flags(p.argv, "vicqnoEFwsh", "e")
    except ValueError as exc:
        p.fail(str(exc))
        return 2
    pattern = values.get("e")
    if pattern is None:
        if not rest:
            p.fail("no pattern")
            return 2
        pattern, rest = rest[0], rest[1:]
    if "F" in flags:
        pattern = re.escape(pattern)
    elif "E" not in flags:  # basic regex: \( \) \| \+ are the special forms
        pattern = pattern.replace(r"\(", "(").replace(r"\)", ")").replace(r"\|", "|").replace(r"\+", "+")
    if "w" in flags:
        pattern = rf"\b(?:{pattern})\b"
    try:
        regex = re.compile(pattern.encode(), re.IGNORECASE if "i" in flags else 0)
    except re.error as exc:
        p.fail(f"bad regex: {exc}")
        return 2
    matched_any = False
    error = False
    for name, data in _read_inputs(p, rest):
        if data is None:
            error = True
            continue
        count = 0
        for number, line in enumerate(data.splitlines(), 1):
            found = regex.search(line) is not None
            if found == ("v" in flags):
                continue
            count += 1
            matched_any = True
            if "q" in flags:
                return 0
            if "c" in flags:
                continue
            prefix = (f"{name}:" if len(rest) > 1 and "h" not in flags else "") + (
                f"{number}:" if "n" in flags else ""
            )
            if "o" in flags and "v" not in flags:
                for match in regex.finditer(line):
                    p.stdout.write(prefix.encode() + match.group(0) + b"\n")
            else:
                p.stdout.write(prefix.encode() + line + b"\n")
        if "c" in flags:
            p.out((f"{name}:" if len(rest) > 1 else "") + f"{count}\n")
    if error and "s" not in flags:
        return 2
    return 0 if matched_any else 1


def _sleep(p: Process) -> int:
    """sleep SECONDS (fractions and s/m/h suffixes); ends early when the adb stream closes."""
    total = 0.0
    for arg in p.argv[1:] or ["?"]:
        match = re.fullmatch(r"(\d*\.?\d+)([smhd]?)", arg)
        if not match:
            return p.fail(f"bad duration '{arg}'")
        total += float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if p.cancel.wait(total):
        return 130
    return 0


def _sort(p: Process) -> int:
    """sort [-r] [-n] [-u] [FILE...]"""
    flags = {a for a in p.argv[1:] if a.startswith("-")}
    paths = [a for a in p.argv[1:] if not a.startswith("-")]
    lines: list[bytes] = []
    for _, data in _read_inputs(p, paths):
        lines.extend((data or b"").splitlines())
    if "-u" in flags:
        lines = list(dict.fromkeys(lines))

    def numeric(line: bytes) -> float:
        match = re.match(rb"\s*-?\d+(\.\d+)?", line)
        return float(match.group(0)) if match else 0.0

    lines.sort(key=numeric if "-n" in flags else None, reverse="-r" in flags)  # type: ignore[arg-type]
    p.stdout.write(b"".join(line + b"\n" for line in lines))
    return 0


def _seq(p: Process) -> int:
    """seq [FIRST [STEP]] LAST"""
    try:
        nums = [int(a) for a in p.argv[1:]]
    except ValueError:
        return p.fail("not an integer")
    if len(nums) == 1:
        first, step, last = 1, 1, nums[0]
    elif len(nums) == 2:
        first, step, last = nums[0], 1, nums[1]
    elif len(nums) == 3:
        first, step, last = nums
    else:
        return p.fail("Needs 1 to 3 arguments")
    numbers = range(first, last + (1 if step > 0 else -1), step or 1)
    for start in range(0, len(numbers), _SEQ_BATCH):  # streamed: bounded memory whatever the range
        if p.cancel.is_set():
            return 130
        p.out("".join(f"{n}\n" for n in numbers[start : start + _SEQ_BATCH]))
    return 0


def _yes(p: Process) -> int:
    """yes [STRING...]: print STRING (default ``y``) forever, until the reader goes away."""
    line = (" ".join(p.argv[1:]) if len(p.argv) > 1 else "y").encode() + b"\n"
    block = line * max(1, _YES_BLOCK // len(line))
    while not p.cancel.is_set():
        p.stdout.write(block)  # BrokenPipeError / StreamClosedError once the reader closed
    return 130


def _ps(p: Process) -> int:
    """ps: the programs running on the device (PID and command line)."""
    p.out("USER           PID NAME\n")
    for pid, argv in sorted(p.system.processes().items()):
        p.out(f"shell     {pid:>9} {' '.join(argv)}\n")
    return 0


def _pwd(p: Process) -> int:
    p.out(p.cwd + "\n")
    return 0


def _cp(p: Process) -> int:
    """cp SRC DST"""
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    if len(args) != 2:
        return p.fail("Needs 2 arguments")
    src, dst = args
    fs = p.system.fs
    if fs.is_dir(dst, p.cwd):
        dst = f"{dst.rstrip('/')}/{src.rsplit('/', 1)[-1]}"
    try:
        mode = statmod.S_IMODE(fs.stat(src, p.cwd).st_mode)
        with fs.open_read(src, p.cwd) as reader, fs.open_write(dst, p.cwd, mode=mode) as writer:
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
    except OSError as exc:
        return _oserr(p, exc)
    return 0


def _mv(p: Process) -> int:
    """mv SRC DST"""
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    if len(args) != 2:
        return p.fail("Needs 2 arguments")
    try:
        p.system.fs.rename(args[0], args[1], p.cwd)
    except OSError as exc:
        return _oserr(p, exc)
    return 0


def _tee(p: Process) -> int:
    """tee [-a] FILE..."""
    append = "-a" in p.argv
    paths = [a for a in p.argv[1:] if a != "-a"]
    try:
        handles = [p.system.fs.open_write(path, p.cwd, append=append) for path in paths]
    except OSError as exc:
        return _oserr(p, exc)
    try:
        while chunk := p.stdin.read(_CHUNK):
            p.stdout.write(chunk)
            for handle in handles:
                handle.write(chunk)
    finally:
        for handle in handles:
            handle.close()
    return 0


def _test(p: Process) -> int:
    """test EXPR / [ EXPR ] (-e -f -d -x -s -z -n = != -eq -ne -lt -le -gt -ge !)"""
    args = p.argv[1:]
    if p.argv[0] == "[":
        if not args or args[-1] != "]":
            p.fail("missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if _evaluate_test(p, args) else 1
    except (ValueError, IndexError):
        p.fail("syntax error")
        return 2


def _evaluate_test(p: Process, args: list[str]) -> bool:
    if not args:
        return False
    if args[0] == "!":
        return not _evaluate_test(p, args[1:])
    for joiner in ("-o", "-a"):
        if joiner in args:
            k = args.index(joiner)
            first, second = _evaluate_test(p, args[:k]), _evaluate_test(p, args[k + 1 :])
            return (first or second) if joiner == "-o" else (first and second)
    if len(args) == 1:
        return args[0] != ""
    fs = p.system.fs
    if len(args) == 2:
        op, operand = args
        checks: dict[str, Callable[[], bool]] = {
            "-e": lambda: fs.exists(operand, p.cwd),
            "-f": lambda: fs.exists(operand, p.cwd) and not fs.is_dir(operand, p.cwd),
            "-d": lambda: fs.is_dir(operand, p.cwd),
            "-x": lambda: fs.is_executable(operand, p.cwd) or fs.is_dir(operand, p.cwd),
            "-r": lambda: fs.exists(operand, p.cwd),
            "-w": lambda: fs.is_writable_location(fs.normalize(operand, p.cwd)),
            "-s": lambda: fs.exists(operand, p.cwd) and fs.stat(operand, p.cwd).st_size > 0,
            "-z": lambda: operand == "",
            "-n": lambda: operand != "",
        }
        if op not in checks:
            raise ValueError(op)
        return checks[op]()
    left, binary, right = args[0], args[1], args[2]
    if binary in ("=", "=="):
        return left == right
    if binary == "!=":
        return left != right
    numbers = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__}
    numbers |= {"-gt": int.__gt__, "-ge": int.__ge__}
    if binary in numbers:
        return bool(numbers[binary](int(left), int(right)))
    raise ValueError(binary)


def _basename(p: Process) -> int:
    """basename PATH [SUFFIX]"""
    if len(p.argv) < 2:
        return p.fail("Needs 1 argument")
    name = p.argv[1].rstrip("/").rsplit("/", 1)[-1] or "/"
    if len(p.argv) > 2 and name.endswith(p.argv[2]) and name != p.argv[2]:
        name = name[: -len(p.argv[2])]
    p.out(name + "\n")
    return 0


def _dirname(p: Process) -> int:
    """dirname PATH"""
    if len(p.argv) < 2:
        return p.fail("Needs 1 argument")
    head = p.argv[1].rstrip("/").rsplit("/", 1)
    p.out((head[0] or "/" if len(head) > 1 else ".") + "\n")
    return 0


def _env(p: Process) -> int:
    """env (print the environment)"""
    p.out("".join(f"{k}={v}\n" for k, v in sorted(p.env.items())))
    return 0


def _which(p: Process) -> int:
    """which NAME..."""
    status = 0
    for name in p.argv[1:]:
        if name in p.system.programs:
            p.out(f"/system/bin/{name}\n")
        else:
            status = 1
    return status


FILE_PROGRAMS: dict[str, Program] = {
    "[": _test,
    "basename": _basename,
    "cp": _cp,
    "dirname": _dirname,
    "env": _env,
    "mv": _mv,
    "tee": _tee,
    "test": _test,
    "which": _which,
    "cat": _cat,
    "chmod": _chmod,
    "echo": _echo,
    "false": lambda p: 1,
    "grep": _grep,
    "head": _head_tail(tail=False),
    "ls": _ls,
    "md5sum": _hash_program("md5"),
    "mkdir": _mkdir,
    "printf": _printf,
    "ps": _ps,
    "pwd": _pwd,
    "rm": _rm,
    "seq": _seq,
    "sha1sum": _hash_program("sha1"),
    "sha256sum": _hash_program("sha256"),
    "sleep": _sleep,
    "sort": _sort,
    "stat": _stat,
    "tail": _head_tail(tail=True),
    "touch": _touch,
    "true": lambda p: 0,
    "wc": _wc,
    "yes": _yes,
}
