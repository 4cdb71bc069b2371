"""Android-specific programs of the emulated device: ``getprop``, ``dumpsys``, ``nproc``, ``taskset``.

``dumpsys battery`` understands ``unplug``, ``reset`` and ``set <key> <value>`` like Android's
BatteryService.
"""

from __future__ import annotations

import time

from harness.emulator.process import Process, Program

__all__ = ["ANDROID_PROGRAMS"]


def _getprop(p: Process) -> int:
    """getprop [NAME [DEFAULT]]: one value, or every property as ``[name]: [value]`` lines."""
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    if not args:
        p.out("".join(f"[{k}]: [{v}]\n" for k, v in p.system.all_props().items()))
        return 0
    value = p.system.getprop(args[0])
    p.out((value if value is not None else (args[1] if len(args) > 1 else "")) + "\n")
    return 0


def _battery_service(p: Process, args: list[str]) -> int:
    battery = p.system.battery
    if not args or (args[0] in ("-a", "--proto") and len(args) == 1):
        p.out(battery.dumpsys())
        return 0
    verb = args[0]
    if verb == "unplug":
        battery.unplug()
        return 0
    if verb == "reset":
        battery.reset()
        return 0
    if verb == "set" and len(args) == 3:
        try:
            battery.set_value(args[1], int(args[2]))
        except ValueError as exc:
            p.err(f"Bad value: {exc}\n")
            return 255
        return 0
    if verb in ("-h", "help"):
        p.out(
            "Battery service (battery) commands:\n  help\n  set [-f] [ac|usb|wireless|status|level|temp|present|"
            "invalid] <value>\n  unplug [-f]\n  reset [-f] [ac|usb|wireless]\n"
        )
        return 0
    p.err(f"Unknown option: {verb}\n")
    return 255


def _dumpsys(p: Process) -> int:
    """dumpsys [battery [ARGS...]]; only ``battery`` has content on the emulated device."""
    args = p.argv[1:]
    if not args:
        p.out(p.system.battery.dumpsys())
        return 0
    if args[0] == "battery":
        return _battery_service(p, args[1:])
    p.out(f"Can't find service: {args[0]}\n")
    return 0


def _nproc(p: Process) -> int:
    """nproc: the profile's CPU count (or the taskset mask's)."""
    count = p.system.spec.cpu_count
    if p.cpu_mask is not None:
        count = bin(p.cpu_mask & ((1 << count) - 1)).count("1")
    p.out(f"{count}\n")
    return 0


def _parse_cpu_list(text: str) -> int:
    mask = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        for cpu in range(int(low), int(high or low) + 1):
            mask |= 1 << cpu
    return mask


def _taskset(p: Process) -> int:
    """taskset [-a] MASK COMMAND... | taskset -c LIST COMMAND... | taskset -p [MASK] PID"""
    args = p.argv[1:]
    while args and args[0] == "-a":
        args = args[1:]
    if args and args[0].startswith("-p"):
        return p.fail("sched_getaffinity: No such process (the emulated device has no other processes)")
    try:
        if args and args[0] == "-c":
            mask, command = _parse_cpu_list(args[1]), args[2:]
        else:
            mask, command = int(args[0], 16), args[1:]
    except (IndexError, ValueError):
        return p.fail("usage: taskset [-a] MASK COMMAND... | taskset -c LIST COMMAND...")
    usable = mask & ((1 << p.system.spec.cpu_count) - 1)
    if usable == 0:
        return p.fail(f"sched_setaffinity: Invalid argument (mask {mask:x} has no CPU of this device)")
    if not command:
        return p.fail("Needs a command")
    child = p.with_argv(command)
    child.cpu_mask = usable
    return p.run_command(child, command)


def _setprop(p: Process) -> int:
    """setprop NAME VALUE"""
    if len(p.argv) != 3:
        return p.fail("usage: setprop NAME VALUE")
    try:
        p.system.setprop(p.argv[1], p.argv[2])
    except PermissionError as exc:
        return p.fail(str(exc))
    return 0


_SERVICES = ("battery",)  # the only service with content on the emulated device


def _cmd(p: Process) -> int:
    """cmd SERVICE ARGS...; ``cmd battery`` behaves as ``dumpsys battery``."""
    args = p.argv[1:]
    if args[:1] == ["battery"]:
        return _battery_service(p, args[1:])
    if not args or args[0] == "-l":
        p.out("".join(f"{s}\n" for s in _SERVICES))
        return 0
    p.err(f"cmd: Can't find service: {args[0]}\n")
    return 20


def _date(p: Process) -> int:
    """date [+FORMAT] (``+%s`` for epoch seconds)"""
    fmt = next((a[1:] for a in p.argv[1:] if a.startswith("+")), "%a %b %e %H:%M:%S %Z %Y")
    now = time.time()
    text = fmt.replace("%s", str(int(now))).replace("%N", f"{int(now % 1 * 1e9):09d}")
    p.out(time.strftime(text, time.gmtime(now)).replace("UTC", "GMT") + "\n")
    return 0


def _uname(p: Process) -> int:
    """uname [-a] [-m] [-r] [-s]"""
    machine = {"arm64-v8a": "aarch64", "armeabi-v7a": "armv8l", "x86_64": "x86_64"}.get(
        p.system.spec.abi, "aarch64"
    )
    fields = {"s": "Linux", "n": "localhost", "r": "6.1.0-jointdnn-emulated", "m": machine}
    flags = "".join(a[1:] for a in p.argv[1:] if a.startswith("-")) or "s"
    if "a" in flags:
        p.out(f"Linux localhost {fields['r']} #1 SMP PREEMPT {machine} Toybox\n")
        return 0
    p.out(" ".join(fields[f] for f in "snrm" if f in flags) + "\n")
    return 0


def _id(p: Process) -> int:
    p.out(
        "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),3003(inet) context=u:r:shell:s0\n"
    )
    return 0


def _whoami(p: Process) -> int:
    p.out("shell\n")
    return 0


def _uptime(p: Process) -> int:
    p.out(time.strftime(" %H:%M:%S up 0 days, load average: 0.00, 0.00, 0.00\n", time.gmtime()))
    return 0


def _getenforce(p: Process) -> int:
    p.out("Enforcing\n")
    return 0


ANDROID_PROGRAMS: dict[str, Program] = {
    "cmd": _cmd,
    "date": _date,
    "getenforce": _getenforce,
    "id": _id,
    "setprop": _setprop,
    "uname": _uname,
    "uptime": _uptime,
    "whoami": _whoami,
    "dumpsys": _dumpsys,
    "getprop": _getprop,
    "nproc": _nproc,
    "taskset": _taskset,
}
