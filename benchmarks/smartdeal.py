"""SmartDeal on MobileNetV2 and ResNet-50: weight bytes, reconstruction time, planned mobile energy.

For each model (random weights, seed 0) every Conv2D / DepthwiseConv2D / Dense layer is SmartDeal-decomposed
**without training** (:func:`models.smartdeal.decompose`: it only gives sizes and costs; accuracy means
nothing here). The model is cut at ``--cuts`` evenly spaced cut points; per segment we measure, in this
one process:

- the dense fp32 weight bytes and the bytes the phone reads in SD form (payload + the layer biases/other
  weights that stay float32), from the exported bundle and the compact artifact;
- the forward latency of each dense segment on LiteRT on this host (median of ``--runs``, one thread);
  the phone's is that x the device profile's ``compute_slowdown``, its energy the power model's, and the
  cloud's is the host's (the server is this machine);
- the reconstruction of the whole artifact by ``jointdnn_sd_rebuild`` on an emulated device (its time is
  padded by ``compute_slowdown`` and charged to its battery).

Then the planner (energy objective) plans each model over 3G / 4G / Wi-Fi with the dense weight bytes and
with the SD ones (weight memory priced at the device's ``dram_pj_per_byte``, Horowitz ISSCC'14), and
prints whether the plan changes. Training-phase numbers assume a backward pass of 2x the forward time
(stated; not measured). The machine is shared with parallel work: times are single-threaded medians.

Run: ``python benchmarks/smartdeal.py [--models mobilenet_v2,resnet50] [--cuts 6] [--threshold 0.2]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

PAPER = {"inference energy": 2.44, "training storage": 10.56, "training energy": 4.48}
MAC_PJ = 3.7 + 0.9  # fp32 multiply + add, 45 nm (Horowitz ISSCC 2014)


def segment_costs(bundle: Path, runs: int) -> list[float]:
    """Median forward latency (ms) of every segment of a bundle on LiteRT, this host, one thread."""
    from models.runtime import SegmentChain

    chain = SegmentChain(bundle)
    x = chain.prepare_input(
        np.random.default_rng(0).random(tuple(chain.manifest.input.shape), dtype=np.float32)
    )
    per_segment: list[list[float]] = [[] for _ in range(len(chain))]
    for _ in range(runs + 1):  # the first run warms up
        result = chain.run(x, 0, len(chain))
        for k, ms in enumerate(result.segment_ms):
            per_segment[k].append(ms)
    return [statistics.median(times[1:]) for times in per_segment]


def rebuild_on_device(artifact: Path, root: Path) -> tuple[float, float]:
    """(rebuild_ms as printed, battery energy above idle in mJ) of jointdnn_sd_rebuild on an emulated device."""
    from harness.emulator.programs import BUILTIN_PROGRAMS
    from harness.emulator.shell import Shell
    from harness.emulator.system import AndroidSystem
    from harness.specs import load_device

    system = AndroidSystem(load_device("generic-phone"), root, serial="bench", programs={})
    system.builtin_files.update(BUILTIN_PROGRAMS)
    system.fs.write_bytes("/data/local/tmp/m.sdw", artifact.read_bytes())
    out, err = io.BytesIO(), io.BytesIO()
    before = system.battery.energy_mj(above_idle=True)
    status = Shell(system, cwd="/data/local/tmp").run(
        "./jointdnn_sd_rebuild --artifact=m.sdw --out_dir=/data/local/tmp", io.BytesIO(), out, err
    )
    energy = system.battery.energy_mj(above_idle=True) - before
    if status != 0:
        raise SystemExit(f"rebuild failed: {err.getvalue().decode()}")
    lines = dict(line.split(": ", 1) for line in out.getvalue().decode().splitlines())
    return float(lines["rebuild_ms"]), energy


def run_model(name: str, cuts: int, threshold: float, runs: int, work: Path) -> None:
    from harness.planner import Objective, PlanningProblem, SegmentCosts, evaluate, plan
    from harness.specs import load_device, load_link
    from models.export import export_bundle
    from models.graph import analyze
    from models.smartdeal import SmartDealConfig, to_smartdeal
    from models.smartdeal_artifact import read_artifact
    from models.smartdeal_export import export_smartdeal
    from models.zoo import load_model

    device = load_device("generic-phone")
    model = load_model(name, seed=0)
    graph = analyze(model)
    picks = np.linspace(0, len(graph.cut_layers) - 1, cuts + 2)[1:-1].round().astype(int)
    cut_layers = sorted({graph.cut_layers[i] for i in picks}, key=graph.cut_layers.index)
    t0 = time.perf_counter()
    manifest = export_bundle(
        model, "fp32", work / "dense", include_whole=False, cuts=cut_layers, model_name=name
    )
    host_ms = segment_costs(work / "dense", runs)
    t1 = time.perf_counter()
    sd = to_smartdeal(model, SmartDealConfig(threshold=threshold))
    t2 = time.perf_counter()
    _, report = export_smartdeal(sd, work / "sd", work / "m.sdw", cuts=cut_layers, model_name=name)
    header, _ = read_artifact((work / "m.sdw").read_bytes())
    rebuild_ms, rebuild_mj = rebuild_on_device(work / "m.sdw", work / "device")
    dense_bytes = np.array([4.0 * s.params for s in manifest.segments])  # float32, BN included (profile rows)
    sd_saved = {  # per segment file: fp32 kernel bytes replaced by SD payload bytes
        seg["file"]: sum(4 * x["out"] * x["fan_in"] - x["payload"][1] for x in seg["layers"])
        for seg in header["segments"]
    }
    sd_bytes = np.array(
        [b - sd_saved.get(s.file, 0) for b, s in zip(dense_bytes, manifest.segments, strict=True)]
    )
    n = len(manifest.segments)
    mobile_ms = np.array(host_ms) * device.compute_slowdown
    print(f"\n=== {name}: {n} segments (cuts {', '.join(cut_layers)}), threshold {threshold}")
    print(
        f"export+measure {t1 - t0:.0f} s, decompose {t2 - t1:.0f} s; {report.layers} SD layers"
        + (f", left dense: {report.layers_left_dense}" if report.layers_left_dense else "")
    )
    print(
        f"weights: fp32 {dense_bytes.sum() / 1e6:.2f} MB -> SD {sd_bytes.sum() / 1e6:.2f} MB "
        f"({dense_bytes.sum() / sd_bytes.sum():.2f}x); kernels {report.kernel_fp32_bytes / 1e6:.2f} MB -> "
        f"payload {report.sd_payload_bytes / 1e6:.2f} MB ({report.kernel_fp32_bytes / report.sd_payload_bytes:.2f}x); "
        f"segment files {report.dense_tflite_bytes / 1e6:.2f} MB -> artifact {report.artifact_bytes / 1e6:.2f} MB"
    )
    print(
        f"reconstruction on the emulated device (generic-phone, slowdown {device.compute_slowdown:g}): "
        f"{rebuild_ms:.0f} ms, {rebuild_mj:.0f} mJ (once per download, not per inference)"
    )
    print(f"forward on this host: {sum(host_ms):.1f} ms; phone model {mobile_ms.sum():.0f} ms")
    macs = float(sum(s.macs for s in manifest.segments))
    accel_dense = macs * MAC_PJ * 1e-9 + dense_bytes.sum() * device.dram_pj_per_byte * 1e-9
    accel_sd = macs * MAC_PJ * 1e-9 + sd_bytes.sum() * device.dram_pj_per_byte * 1e-9
    print(
        f"accelerator view (Horowitz pJ: {macs / 1e9:.2f} GMAC x {MAC_PJ} pJ + weight bytes x "
        f"{device.dram_pj_per_byte:g} pJ/B, activations ignored): dense {accel_dense:.2f} mJ, SD {accel_sd:.2f} mJ "
        f"-> {accel_dense / accel_sd:.2f}x (paper: {PAPER['inference energy']}x)"
    )
    energy = Objective("energy")
    power_mj = np.array([device.compute_energy_mj(ms) for ms in mobile_ms])  # power model, reads included
    compute_mj = np.maximum(power_mj - dense_bytes * device.dram_pj_per_byte * 1e-9, 0.0)  # reads split out
    for phase in ("inference", "training"):
        print(
            f"-- {phase}: mobile energy per {'query' if phase == 'inference' else 'step'} (mJ), energy objective"
        )
        print(
            f"{'link':6} {'mobile-only dense':>18} {'SD':>8} {'ratio':>6} | {'plan dense':>11} {'SD':>8}  plan changes?"
        )
        for link_name in ("3g", "4g", "wifi"):
            results = {}
            for label, weights in (("dense", dense_bytes), ("sd", sd_bytes)):
                backward = 2.0 if phase == "training" else 0.0
                costs = SegmentCosts(
                    mobile_ms=mobile_ms,
                    mobile_mj=compute_mj,
                    cloud_ms=np.array(host_ms),
                    out_bytes=[s.out_bytes for s in manifest.segments],
                    input_bytes=manifest.input.nbytes,
                    mobile_backward_ms=backward * mobile_ms,
                    mobile_backward_mj=backward * compute_mj,
                    cloud_backward_ms=backward * np.array(host_ms),
                    param_bytes=weights,
                    weight_bytes=weights,
                )
                problem = PlanningProblem(
                    segments=costs,
                    link=load_link(link_name),
                    waiting_mw=device.waiting_mw,
                    phase=phase,  # type: ignore[arg-type]
                    sync_every_steps=10 if phase == "training" else None,
                    dram_pj_per_byte=device.dram_pj_per_byte,
                )
                chosen = plan(problem, energy)
                results[label] = (evaluate(problem, ["mobile"] * n), chosen)
            (mo_d, plan_d), (mo_s, plan_s) = results["dense"], results["sd"]
            changed = plan_d.locations != plan_s.locations
            where = lambda p: "".join("M" if loc == "mobile" else "C" for loc in p.locations)  # noqa: E731
            mobile_mb = [
                sum(w for w, loc in zip(ws, p.locations, strict=True) if loc == "mobile") / 1e6
                for ws, p in ((dense_bytes, plan_d), (sd_bytes, plan_s))
            ]
            print(
                f"{link_name:6} {mo_d.mobile_energy_mj:18.1f} {mo_s.mobile_energy_mj:8.1f} "
                f"{mo_d.mobile_energy_mj / mo_s.mobile_energy_mj:6.3f} | {plan_d.predicted.mobile_energy_mj:11.1f} "
                f"{plan_s.predicted.mobile_energy_mj:8.1f}  {'YES' if changed else 'no'} "
                f"({where(plan_d)} -> {where(plan_s)}; memory {plan_d.predicted.mobile_memory_mj:.1f} -> "
                f"{plan_s.predicted.mobile_memory_mj:.1f} mJ; mobile-half weights {mobile_mb[0]:.2f} -> "
                f"{mobile_mb[1]:.2f} MB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="mobilenet_v2,resnet50")
    parser.add_argument("--cuts", type=int, default=6, help="evenly spaced cut points per model")
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("paper (SmartDeal, with its accelerator): " + ", ".join(f"{k} {v}x" for k, v in PAPER.items()))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            run_model(name, args.cuts, args.threshold, args.runs, Path(tmp) / name)


if __name__ == "__main__":
    main()
