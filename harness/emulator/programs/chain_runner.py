"""``/data/local/tmp/jointdnn_chain_runner``: run a chain of segment graphs on one input, on device.

    jointdnn_chain_runner --graphs=A.tflite,B.tflite --input=in.npy --output=out.npy [--num_threads=1]
                          [--warmup_runs=0]

Runs the graphs in order (requantizing int8 tensors between segments exactly as
:class:`models.runtime.SegmentChain` does; the input ``.npy`` must already be in the first graph's input
dtype), writes the last output as ``.npy`` and prints on stdout::

    segment_ms: 1.234,5.678
    total_ms: 6.912

``--warmup_runs=N`` first runs the whole chain N times untimed (default 0), so that the timed run is warm
like ``benchmark_model``'s (XNNPACK packs weights on an interpreter's first invoke). Exit status 0, or 1
with a one-line message on stderr. The chain draws the profile's compute power from the battery while it
runs (warm-up included), less the weight-read energy a SmartDeal-rebuilt graph saves (its ``.sdmeta``
sidecar, see :mod:`.smartdeal_rebuild`). Every segment's time is the phone's: ``compute_slowdown`` x the
CPU time the segment used (one thread; a loaded host does not stretch it), slept out after it; with more
threads its wall time padded to ``slowdown`` x it (see :mod:`harness.devices.slowdown`).
"""

from __future__ import annotations

import io
import time

from harness.emulator.process import Process
from harness.emulator.programs.flags import Flag, FlagError, parse_flags

__all__ = ["FLAGS", "chain_runner"]

FLAGS = [
    Flag("graphs", str, "", "comma-separated .tflite segment files, run in order"),
    Flag("input", str, "", ".npy input in the first graph's input dtype and shape"),
    Flag("output", str, "", ".npy file to write the last graph's output to"),
    Flag("num_threads", int, 1, "interpreter threads"),
    Flag("warmup_runs", int, 0, "untimed runs of the whole chain before the timed one"),
]


def _memory_saving_mj(p: Process, graph: str) -> float:
    """Weight-read energy a run of ``graph`` saves if it was rebuilt from a SmartDeal artifact (mJ).

    ``jointdnn_sd_rebuild`` leaves ``<graph>.sdmeta``; the saving is (dense - compact) weight bytes x the
    profile's ``dram_pj_per_byte``, the same term the planner prices (0 for ordinary graphs).
    """
    import json

    from harness.emulator.programs.smartdeal_rebuild import SIDECAR

    try:
        meta = json.loads(p.system.fs.read_bytes(graph + SIDECAR, p.cwd))
        saved_bytes = float(meta["dense_weight_bytes"]) - float(meta["read_weight_bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return p.system.spec.memory_energy_mj(max(0.0, saved_bytes))


def chain_runner(p: Process) -> int:
    """Entry point of the builtin program."""
    import numpy as np

    from harness.devices.slowdown import ComputePadding
    from models.errors import BackendError
    from models.runtime import SegmentRunner, hand_over

    try:
        values, _ = parse_flags(p.argv[1:], FLAGS)
    except FlagError as exc:
        return p.fail(str(exc))
    graphs = [g for g in values["graphs"].split(",") if g]
    if not graphs or not values["input"] or not values["output"]:
        return p.fail(
            "usage: jointdnn_chain_runner --graphs=A.tflite,B.tflite --input=in.npy --output=out.npy"
        )
    threads = max(1, values["num_threads"])
    fs = p.system.fs
    try:
        runners = [SegmentRunner(fs.read_bytes(graph, p.cwd), num_threads=threads) for graph in graphs]
        x = np.load(io.BytesIO(fs.read_bytes(values["input"], p.cwd)), allow_pickle=False)
    except OSError as exc:
        return p.fail(f"cannot read {exc.filename}: {exc.strerror}")
    except (BackendError, ValueError) as exc:
        return p.fail(str(exc).splitlines()[0])
    slowdown = p.system.battery.compute_slowdown  # () -> slowdown now (throttling raises it)
    saved_mj = [_memory_saving_mj(p, graph) for graph in graphs]  # SmartDeal graphs read fewer weight bytes
    segment_ms: list[float] = []
    current = x
    k = 0
    try:
        with p.system.battery.computing(threads):
            for _ in range(max(0, values["warmup_runs"]) + 1):  # warm-ups, then the timed run
                padding = ComputePadding(slowdown, sleep=p.cancel.wait)
                segment_ms = []
                current = x
                for k, runner in enumerate(runners):
                    if k:
                        current = hand_over(current, runners[k - 1], runner)
                    start, cpu = time.perf_counter(), time.thread_time()
                    current = runner.run(current)
                    wall_s, cpu_s = time.perf_counter() - start, time.thread_time() - cpu
                    phone_s = padding.phone_time(cpu_s, wall_s) if threads == 1 else padding.pad(wall_s)
                    segment_ms.append(phone_s * 1e3)
                    if saved_mj[k]:
                        p.system.battery.draw_mj(-saved_mj[k])
                    if p.cancel.is_set():
                        return 130
    except BackendError as exc:
        return p.fail(f"segment {k} ({graphs[k]}): {exc}")
    buffer = io.BytesIO()
    np.save(buffer, current, allow_pickle=False)
    try:
        fs.write_bytes(values["output"], buffer.getvalue(), p.cwd)
    except OSError as exc:
        return p.fail(f"cannot write {exc.filename}: {exc.strerror}")
    p.out(f"segment_ms: {','.join(f'{ms:.3f}' for ms in segment_ms)}\n")
    p.out(f"total_ms: {sum(segment_ms):.3f}\n")
    return 0
