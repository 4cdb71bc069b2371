"""``perfetto`` and ``kill`` on the emulated device: a power trace of the battery model, in the background.

What is emulated, and why it is honest: the ``android.power`` data source of a Perfetto config (text
proto on stdin with ``--txt -c -``; ``battery_poll_ms``, ``collect_power_rails``) is sampled from the same
battery model that feeds ``/sys/class/power_supply/battery`` -- battery counters (``current_ua`` with
the phone's sign: negative while discharging; ``voltage_uv``; ``charge_counter_uah``) and two cumulative
power rails in µWs: ``VDD_CPU`` (compute power above idle, i.e. what the runners draw) and
``VDD_SYSTEM`` (the idle floor). A trace therefore says nothing the sysfs files don't; what it exercises
is the harness's capture path: config through stdin, ``--background`` (prints the pid, returns at once),
``kill PID`` making it write the trace, ``kill -0 PID`` while it is still alive, pulling and parsing.

Timestamps are CLOCK_BOOTTIME ns, the clock of ``/proc/uptime`` (seconds since the device started).
Traces are written with the protobuf classes of the ``perfetto`` package, like a real trace file.
Anything else perfetto does (ftrace, ``-t`` durations, ``--attach``) is refused with a clear message.
"""

from __future__ import annotations

import re
import threading

from harness.emulator.process import Process, Program

__all__ = ["PERFETTO_PROGRAMS", "TRACE_DIR"]

TRACE_DIR = "/data/misc/perfetto-traces"
_RAILS = ("VDD_CPU", "VDD_SYSTEM")


def _config_values(text: str) -> tuple[int, bool, int]:
    """(battery_poll_ms, collect_power_rails, duration_ms) from a text-proto config."""
    if 'name: "android.power"' not in text:
        raise ValueError("the config has no android.power data source (the only one emulated)")
    poll = re.search(r"battery_poll_ms:\s*(\d+)", text)
    duration = re.search(r"^\s*duration_ms:\s*(\d+)", text, re.MULTILINE)
    rails = re.search(r"collect_power_rails:\s*true", text) is not None
    return max(100, int(poll[1]) if poll else 1000), rails, int(duration[1]) if duration else 0


class _Recorder:
    """One tracing session: the trace being built and the energy counters' zero."""

    def __init__(self, p: Process, out_path: str, rails: bool):
        from perfetto.trace_builder.proto_builder import TraceProtoBuilder

        self.system, self.battery = p.system, p.system.battery
        self.out_path, self.rails = out_path, rails
        self.builder = TraceProtoBuilder()
        self.started_s = self.system.uptime_s()
        if rails:
            packet = self.builder.add_packet()
            packet.timestamp = round(self.started_s * 1e9)
            for index, name in enumerate(_RAILS):
                rail = packet.power_rails.rail_descriptor.add()
                rail.index, rail.rail_name, rail.subsys_name, rail.sampling_rate = (
                    index,
                    name,
                    "emulated",
                    1000,
                )
        self.base_total, self.base_compute = self.battery.energy_mj(), self.battery.energy_mj(above_idle=True)
        self.sample()  # the session has started when perfetto returns: its first sample is in

    def sample(self) -> float:
        """One poll: battery counters and (if asked) the rails; returns the uptime (s)."""
        now = self.system.uptime_s()
        packet = self.builder.add_packet()
        packet.timestamp = round(now * 1e9)
        packet.battery.current_ua = self.battery.current_ua()
        packet.battery.voltage_uv = self.battery.voltage_uv()
        packet.battery.charge_counter_uah = self.battery.charge_counter_uah()
        if self.rails:
            total = self.battery.energy_mj() - self.base_total
            compute = self.battery.energy_mj(above_idle=True) - self.base_compute
            packet = self.builder.add_packet()
            packet.timestamp = round(now * 1e9)
            for index, mj in enumerate((compute, total - compute)):  # mJ -> µWs (x 1000)
                sample = packet.power_rails.energy_data.add()
                sample.index, sample.timestamp_ms, sample.energy = index, round(now * 1e3), round(mj * 1e3)
        return now

    def run(self, poll_ms: int, duration_ms: int, stop: threading.Event) -> None:
        """Poll until stopped (one last sample then, the flush) or the config's duration; write the file."""
        while not stop.wait(poll_ms / 1e3):
            if duration_ms and (self.sample() - self.started_s) * 1e3 >= duration_ms:
                break
        else:
            self.sample()
        self.system.fs.host_path(self.out_path).write_bytes(self.builder.serialize())


def _perfetto(p: Process) -> int:
    """perfetto [--background|-d] --txt -c - -o FILE (config on stdin)."""
    args = p.argv[1:]
    background = any(a in ("--background", "-d") for a in args)
    out_path = ""
    config_source = ""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "--out") and i + 1 < len(args):
            out_path, i = args[i + 1], i + 2
            continue
        if arg in ("-c", "--config") and i + 1 < len(args):
            config_source, i = args[i + 1], i + 2
            continue
        if arg not in ("--txt", "--background", "-d", "--no-guardrails"):
            return p.fail(f"option {arg} is not emulated (use --txt -c - -o FILE [--background])")
        i += 1
    if config_source != "-" or "--txt" not in args or not out_path:
        return p.fail("usage: perfetto [--background] --txt -c - -o FILE (text config on stdin)")
    out_path = p.path(out_path)
    if not out_path.startswith(TRACE_DIR + "/"):
        return p.fail(f"Failed to open {out_path}: Permission denied (write traces under {TRACE_DIR})")
    try:
        poll_ms, rails, duration_ms = _config_values(p.stdin.read().decode(errors="replace"))
    except ValueError as exc:
        return p.fail(f"invalid config: {exc}")
    recorder = _Recorder(p, out_path, rails)
    if not background:
        recorder.run(poll_ms, duration_ms or 10_000, p.cancel)
        return 0
    pid = p.system.start_daemon(["perfetto", *args], lambda stop: recorder.run(poll_ms, duration_ms, stop))
    p.out(f"{pid}\n")
    return 0


def _kill(p: Process) -> int:
    """kill [-SIGNAL|-s SIGNAL] PID...: stops background programs (perfetto); ``-0`` tests existence."""
    args = p.argv[1:]
    probe = False
    if args and args[0] == "-s" and len(args) > 1:
        probe, args = args[1] == "0", args[2:]
    elif args and args[0].startswith("-"):
        probe, args = args[0] == "-0", args[1:]
    if not args:
        return p.fail("usage: kill [-s SIGNAL | -SIGNAL] PID...")
    status = 0
    for arg in args:
        if not arg.isdigit():
            status = p.fail(f"{arg}: invalid pid")
            continue
        alive = p.system.daemon_alive(int(arg)) or int(arg) in p.system.processes()
        if not alive:
            status = p.fail(f"pid {arg}: No such process")
        elif not probe:
            p.system.stop_daemon(int(arg))
    return status


PERFETTO_PROGRAMS: dict[str, Program] = {"kill": _kill, "perfetto": _perfetto}
