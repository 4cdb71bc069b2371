"""The emulated device's shell and programs, run directly (no adb): quoting, pipes, redirection, status."""

from __future__ import annotations

import io
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator.android_commands import ANDROID_PROGRAMS
from harness.emulator.commands import FILE_PROGRAMS
from harness.emulator.programs import BUILTIN_PROGRAMS
from harness.emulator.shell import Shell
from harness.emulator.shell_syntax import ShellSyntaxError, parse
from harness.emulator.system import AndroidSystem
from harness.specs import load_device


@pytest.fixture
def system(tmp_path: Path) -> Iterator[AndroidSystem]:
    system = AndroidSystem(
        load_device("generic-phone"),
        tmp_path,
        serial="emulated-test",
        programs={**FILE_PROGRAMS, **ANDROID_PROGRAMS},
    )
    system.builtin_files.update(BUILTIN_PROGRAMS)
    yield system


def run(system: AndroidSystem, line: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    status = Shell(system, cwd="/data/local/tmp").run(line, io.BytesIO(stdin), out, err)
    return status, out.getvalue().decode(), err.getvalue().decode()


@pytest.mark.parametrize(
    ("line", "status", "stdout"),
    [
        ("echo 'a  b' \"c $HOME\" d\\ e", 0, "a  b c / d e\n"),
        ("false; echo $?", 0, "1\n"),
        ("true && echo yes || echo no", 0, "yes\n"),
        ("false && echo yes || echo no", 0, "no\n"),
        ("exit 7", 7, ""),
        ("nosuchcommand", 127, ""),
        ("echo hi | wc -c", 0, "3\n"),
        ("printf 'b\\na\\nc\\n' | sort | head -n 2", 0, "a\nb\n"),
        ("X=5; echo ${X} ${Y:-dflt}", 0, "5 dflt\n"),
        ("echo '$HOME' \"\\$HOME\" a#b # comment", 0, "$HOME $HOME a#b\n"),
        ("echo ';' 'a|b' '&&' 2>/dev/null", 0, "; a|b &&\n"),  # quoted operators (shlex.quote)
        ("echo 'it'\"'\"'s' \"$UNSET\" $UNSET x", 0, "it's  x\n"),
        ("echo 2 >f; cat f; echo 2>f", 0, "2\n\n"),  # "2 >" is an argument, "2>" a redirection
        ("false\n\necho $? &&\n echo next", 0, "1\nnext\n"),
        ("! false", 0, ""),
        ("getprop ro.build.version.sdk; getprop no.such.prop fallback", 0, "34\nfallback\n"),
        ("nproc; taskset f nproc", 0, "8\n4\n"),
        ("sh -c 'echo $1-$0' zero one", 0, "one-zero\n"),
        ("cat /sys/class/power_supply/battery/status", 0, "Charging\n"),
        ("ls -R /sdcard", 0, "/sdcard:\n"),
        ("cat <<EOF", 2, ""),
    ],
)
def test_shell_semantics(system: AndroidSystem, line: str, status: int, stdout: str) -> None:
    got_status, got_out, _ = run(system, line)
    assert (got_status, got_out) == (status, stdout)


def test_redirections_write_device_files(system: AndroidSystem) -> None:
    status, out, err = run(
        system, "echo one > f.txt; echo two >> f.txt; cat < f.txt; ls /nope 2>/dev/null; echo $?"
    )
    assert (status, out, err) == (0, "one\ntwo\n1\n", "")
    assert (system.fs.host_path("/data/local/tmp/f.txt")).read_text() == "one\ntwo\n"
    status, out, _ = run(system, "ls /nope 2>&1 | grep -c 'No such file'")
    assert out == "1\n"


def test_read_only_locations_and_exec_errors(system: AndroidSystem) -> None:
    status, _, err = run(system, "echo x > /system/x")
    assert status == 1 and "Read-only file system" in err
    run(system, "echo data > plain.txt")
    status, _, err = run(system, "./plain.txt")
    assert status == 126 and "Permission denied" in err
    run(system, "printf '#!/system/bin/sh\\necho script $1\\nexit 4\\n' > s.sh; chmod 755 s.sh")
    assert run(system, "./s.sh arg")[:2] == (4, "script arg\n")
    (system.fs.host_path("/data/local/tmp/elf")).write_bytes(b"\x7fELF\x02\x01")
    run(system, "chmod +x elf")
    status, _, err = run(system, "/data/local/tmp/elf")
    assert status == 126 and "Exec format error" in err


def test_stat_hash_and_wc(system: AndroidSystem) -> None:
    run(system, "echo -n hello > h.txt")
    status, out, _ = run(system, "stat -c '%s %a %n' h.txt; sha256sum h.txt; md5sum < h.txt; wc -c h.txt")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "5 644 h.txt"
    assert lines[1] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  h.txt"
    assert lines[2] == "5d41402abc4b2a76b9719d911017c592  -"
    assert lines[3].split() == ["5", "h.txt"]


def test_glob_rm_and_mkdir(system: AndroidSystem) -> None:
    run(system, "mkdir -p a/b && touch a/b/x.tflite a/b/y.tflite a/b/z.txt")
    assert run(system, "ls a/b/*.tflite")[1] == "a/b/x.tflite\na/b/y.tflite\n"
    assert run(system, "rm a/b/*.tflite && ls a/b")[1] == "z.txt\n"
    assert run(system, "rm a")[0] == 1
    assert run(system, "rm -r a && ls a")[0] == 1


def test_dumpsys_battery_unplug_and_reset(system: AndroidSystem) -> None:
    assert "USB powered: true" in run(system, "dumpsys battery")[1]
    run(system, "dumpsys battery unplug; dumpsys battery set level 42")
    text = run(system, "dumpsys battery")[1]
    assert "UPDATES STOPPED" in text and "USB powered: false" in text and "level: 42" in text
    assert run(system, "cat /sys/class/power_supply/battery/capacity /sys/class/power_supply/battery/status")[
        1
    ] == ("42\nDischarging\n")
    assert int(run(system, "cat /sys/class/power_supply/battery/current_now")[1]) < 0
    run(system, "dumpsys battery reset")
    text = run(system, "dumpsys battery")[1]
    assert "UPDATES STOPPED" not in text and "USB powered: true" in text
    assert int(run(system, "cat /sys/class/power_supply/battery/current_now")[1]) > 0


@pytest.mark.parametrize(
    "line",
    [
        "if true; then echo",  # control flow is not supported: a clear error, not "if: not found"
        "for i in 1 2; do echo $i; done",
        "while true; do sleep 1; done",
        "sleep 1 &",  # no background jobs
        "(cd /sdcard)",  # no subshells
        "echo a |",
        "echo a &&",
        "| echo a",
        "echo >",
    ],
)
def test_unsupported_syntax_is_a_syntax_error(line: str) -> None:
    with pytest.raises(ShellSyntaxError):
        parse(line)


def test_syntax_errors_are_reported_with_status_2(system: AndroidSystem) -> None:
    status, _, err = run(system, "for i in 1 2; do echo $i; done")
    assert status == 2 and "control flow is not supported" in err
    status, _, err = run(system, "echo 'unterminated")
    assert status == 2 and "unterminated" in err


def test_builtin_program_usage_errors(system: AndroidSystem) -> None:
    status, _, err = run(system, "./benchmark_model --graph=/data/local/tmp/missing.tflite")
    assert status == 1 and "Failed to mmap model /data/local/tmp/missing.tflite" in err
    status, _, err = run(system, "./benchmark_model --graph=x --no_such_flag=1")
    assert status == 1 and "Unconsumed cmdline flags: --no_such_flag=1" in err
    status, _, err = run(system, "./jointdnn_chain_runner --graphs=a.tflite")
    assert status == 1 and "usage" in err


def test_shlex_quoted_arguments_arrive_verbatim(system: AndroidSystem) -> None:
    """adbutils sends argument lists through ``shlex.quote``: every argument must come out as it went in."""
    args = ["a b", "it's", "$HOME", "*", "a|b;c&&d", "", "2>x", "#x", '"q"', "back\\slash", "${X:-y}"]
    status, out, _ = run(system, "printf '%s\\n' " + " ".join(shlex.quote(a) for a in args))
    assert (status, out) == (0, "".join(f"{a}\n" for a in args))


@pytest.mark.parametrize(
    ("line", "stdout"),
    [
        ("echo hi | tee t.txt >/dev/null; cp t.txt u.txt; mv u.txt v.txt; cat v.txt", "hi\n"),
        (
            "touch f; test -f f && echo file; [ -d /data ] && echo dir; [ 2 -lt 1 ] || echo no",
            "file\ndir\nno\n",
        ),
        ("basename /a/b/c.txt .txt; dirname /a/b/c.txt", "c\n/a/b\n"),
        ("which getprop cat", "/system/bin/getprop\n/system/bin/cat\n"),
        ("setprop debug.x 1; getprop debug.x", "1\n"),
        ("id -u; whoami; getenforce", None),
        ("date +%s; uname -m; uptime; env; cmd -l", None),
    ],
)
def test_the_documented_everyday_programs_run(system: AndroidSystem, line: str, stdout: str | None) -> None:
    status, out, err = run(system, line)
    assert status == 0, err
    if stdout is not None:
        assert out == stdout
    else:
        assert out.strip()


@pytest.mark.parametrize(
    ("line", "status", "stdout", "stderr"),
    [
        ("(" * 10_000 + "echo hi" + ")" * 10_000, 2, "", "syntax error: '(' unexpected"),
        ("{ " * 10_000 + "true", 2, "", "syntax error: '{'"),
        ("! " * 10_000 + "false; echo $?", 0, "1\n", ""),  # an even number of negations
        ("! " * 10_001 + "false; echo $?", 0, "0\n", ""),
        ("true" + " && true" * 10_000 + " && echo end", 0, "end\n", ""),
        ("echo hi" + " | cat" * 200, 0, "hi\n", ""),
        ("echo hi" + " | cat" * 10_000, 2, "", "pipeline of 10001 commands is too long (at most 1000)"),
        ("echo 'sh r.sh' > r.sh; sh r.sh; echo after $?", 0, "after 2\n", "commands nested too deeply"),
    ],
    ids=[
        "parens",
        "braces",
        "not-even",
        "not-odd",
        "and-list",
        "pipeline-200",
        "pipeline-10001",
        "self-call",
    ],
)
def test_deep_nesting_and_long_command_lines_give_clear_errors(
    system: AndroidSystem, line: str, status: int, stdout: str, stderr: str
) -> None:
    got_status, got_out, got_err = run(system, line)
    assert (got_status, got_out) == (status, stdout), got_err[:300]
    assert stderr in got_err and "Recursion" not in got_err
    assert got_err.count("\n") <= 1  # one clear message, not one per level


def test_wc_and_hashes_stream_their_input(system: AndroidSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.emulator.commands as commands

    monkeypatch.setattr(commands, "_CHUNK", 7)  # words and lines split across reads
    assert run(system, "printf 'hello world  foo\\nbarbaz qux\\n' | wc") == (
        0,
        "      2       5      28\n",
        "",
    )
    assert run(system, "seq 1 100000 | wc -l; seq 3 | tail -n 1")[1] == "100000\n3\n"
    sha = "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb"
    assert run(system, "echo abc > f; sha256sum f; echo abc | sha256sum") == (0, f"{sha}  f\n{sha}  -\n", "")
