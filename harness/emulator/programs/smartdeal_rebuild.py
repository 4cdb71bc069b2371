"""``/data/local/tmp/jointdnn_sd_rebuild``: rebuild dense segment ``.tflite`` files from a SmartDeal artifact.

    jointdnn_sd_rebuild --artifact=model.sdw [--out_dir=.]

Decodes the compact artifact (:mod:`models.smartdeal_artifact`: sparse power-of-two coefficients and
float16 bases per layer, plus segment skeletons), rebuilds every kernel with the shift-and-add sum
(:func:`models.smartdeal.reconstruct`), splices it into its segment file and checks the file's sha256, so
what the runner then loads is bit for bit the exported segment. Next to each file it writes
``<file>.sdmeta`` (the SD kernels' float32 bytes and the compact bytes that replace them), from which
``jointdnn_chain_runner`` charges the battery for the weight bytes actually read. It prints on stdout::

    segments: segment_000.tflite,segment_001.tflite
    artifact_bytes: 12345
    rebuilt_bytes: 67890
    rebuild_ms: 1.234

The rebuild draws the device profile's one-thread compute power from the battery while it runs, and its
time is padded by ``compute_slowdown`` like every other computation of this device
(:mod:`harness.devices.slowdown`). Exit status 0, or 1 with a one-line message on stderr.
"""

from __future__ import annotations

import json
import time

from harness.emulator.process import Process
from harness.emulator.programs.flags import Flag, FlagError, parse_flags

__all__ = ["FLAGS", "SIDECAR", "smartdeal_rebuild"]

SIDECAR = ".sdmeta"  # next to each rebuilt file: JSON {"dense_weight_bytes", "read_weight_bytes"}

FLAGS = [
    Flag("artifact", str, "", "the SmartDeal artifact written by `jointdnn export --smartdeal`"),
    Flag("out_dir", str, ".", "folder to write the rebuilt segment files to"),
]


def smartdeal_rebuild(p: Process) -> int:
    """Entry point of the builtin program."""
    from harness.devices.slowdown import ComputePadding
    from models.errors import BundleError
    from models.smartdeal_artifact import read_artifact, rebuild_segments

    try:
        values, _ = parse_flags(p.argv[1:], FLAGS)
    except FlagError as exc:
        return p.fail(str(exc))
    if not values["artifact"]:
        return p.fail("usage: jointdnn_sd_rebuild --artifact=model.sdw [--out_dir=DIR]")
    fs = p.system.fs
    try:
        data = fs.read_bytes(values["artifact"], p.cwd)
        read_artifact(data)
    except OSError as exc:
        return p.fail(f"cannot read {exc.filename}: {exc.strerror}")
    except BundleError as exc:
        return p.fail(str(exc))
    header, _ = read_artifact(data)
    weight_bytes = {  # per rebuilt file: the SD kernels' float32 bytes and the compact bytes read instead
        seg["file"]: {
            "dense_weight_bytes": sum(4 * layer["out"] * layer["fan_in"] for layer in seg["layers"]),
            "read_weight_bytes": sum(layer["payload"][1] for layer in seg["layers"]),
        }
        for seg in header["segments"]
    }
    padding = ComputePadding(p.system.spec.compute_slowdown, sleep=p.cancel.wait)
    try:
        with p.system.battery.computing(1):
            start = time.perf_counter()
            files = rebuild_segments(data)
            elapsed_s = padding.pad(time.perf_counter() - start)
    except BundleError as exc:
        return p.fail(str(exc))
    except (ValueError, KeyError, IndexError) as exc:
        return p.fail(f"corrupt SmartDeal artifact {values['artifact']}: {exc}")
    out_dir = values["out_dir"].rstrip("/") or "/"
    try:
        for name, content in files.items():
            fs.write_bytes(f"{out_dir}/{name}", content, p.cwd)
            fs.write_bytes(f"{out_dir}/{name}{SIDECAR}", json.dumps(weight_bytes[name]).encode(), p.cwd)
    except OSError as exc:
        return p.fail(f"cannot write {exc.filename}: {exc.strerror}")
    p.out(f"segments: {','.join(files)}\n")
    p.out(f"artifact_bytes: {len(data)}\n")
    p.out(f"rebuilt_bytes: {sum(len(c) for c in files.values())}\n")
    p.out(f"rebuild_ms: {elapsed_s * 1e3:.3f}\n")
    return 0
