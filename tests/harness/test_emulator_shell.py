"""The emulated device's shell and programs, run directly (no adb): quoting, pipes, redirection, status."""

from __future__ import annotations

import io
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
        ("for i in 1 2 3; do echo $i; done | tail -n 1", 0, "3\n"),
        ("i=0; while [ $i != 2 ]; do i=$(echo 2); echo loop; done", 0, "loop\n"),
        ("if [ -d /sdcard ]; then echo dir; else echo nodir; fi", 0, "dir\n"),
        ("echo $(echo inner) outer", 0, "inner outer\n"),
        ("! false", 0, ""),
        ("getprop ro.build.version.sdk; getprop no.such.prop fallback", 0, "34\nfallback\n"),
        ("nproc; taskset f nproc", 0, "8\n4\n"),
        ("sh -c 'echo $1-$0' zero one", 0, "one-zero\n"),
        ("cat /sys/class/power_supply/battery/status", 0, "Charging\n"),
        ("printf 'a b c\\nd\\n' | while read x rest; do echo \"$rest/$x\"; done", 0, "b c/a\n/d\n"),
        ("ls -R /sdcard", 0, "/sdcard:\n"),
        ("cat <<EOF", 2, ""),
        (
            "i=0; while [ $i -lt 3 ]; do i=$((i + 1)); done; echo $i $((7 / 2)) $(( (1 << 4) % 5 ))",
            0,
            "3 3 1\n",
        ),
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


def test_syntax_errors_are_reported_with_status_2(system: AndroidSystem) -> None:
    with pytest.raises(ShellSyntaxError):
        parse("if true; then echo")
    status, _, err = run(system, "echo 'unterminated")
    assert status == 2 and "unterminated" in err


def test_builtin_program_usage_errors(system: AndroidSystem) -> None:
    status, _, err = run(system, "./benchmark_model --graph=/data/local/tmp/missing.tflite")
    assert status == 1 and "Failed to mmap model /data/local/tmp/missing.tflite" in err
    status, _, err = run(system, "./benchmark_model --graph=x --no_such_flag=1")
    assert status == 1 and "Unconsumed cmdline flags: --no_such_flag=1" in err
    status, _, err = run(system, "./jointdnn_chain_runner --graphs=a.tflite")
    assert status == 1 and "usage" in err
