"""Butterfly unit benchmark: accuracy vs bytes on digits, and planned latency/energy for MobileNetV2.

Part 1 (real data): trains the small CNN (cut ``block2_pool``) and the small residual network (cut
``stage2_out``) on scikit-learn's digits, then their butterfly variants and the PCA baseline for
c' in 2, 4, 8, 16, and prints the table of ``jointdnn butterfly``.

Part 2 (MobileNetV2, random weights: bytes and latency only): exports the base model and butterfly
variants as int8 bundles over a coarse chain of cuts, profiles every segment on this host with LiteRT
(one thread, :class:`harness.devices.local.LocalDevice`, energy from the ``generic-phone`` power
model), and asks the planner (``harness.planner``) for the predicted end-to-end latency and mobile
energy over 3G, 4G and Wi-Fi of: cloud-only, mobile-only, the best plan without a butterfly (JointDNN
over the base chain) and the best plan with one (the split at the butterfly: reduction on the phone,
8-bit tensor up, restoration and the rest on the cloud; the best of the variants). The cloud profile is this host as measured;
the mobile profile is this host slowed down by ``--mobile-slowdown`` (1 = the same machine; a phone is
typically several times slower than a server).

    python benchmarks/butterfly.py [--skip-digits] [--runs 20] [--mobile-slowdown 1,10]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd

LINKS = ("3g", "4g", "wifi")
MNV2_CUTS = [  # a coarse chain: block outputs of MobileNetV2 (224x224x3 input)
    "expanded_conv_project_BN",  # 112x112x16
    "block_2_add",  # 56x56x24
    "block_5_add",  # 28x28x32
    "block_9_add",  # 14x14x64
    "block_12_add",  # 14x14x96
    "block_15_add",  # 7x7x160
    "block_16_project_BN",  # 7x7x320
    "global_average_pooling2d",  # 1280
]
MNV2_BUTTERFLIES = [  # (cut, channels, stride)
    ("block_2_add", 8, 2),  # 56x56x24 -> 28x28x8
    ("block_5_add", 4, 1),  # 28x28x32 -> 28x28x4
    ("block_9_add", 4, 1),  # 14x14x64 -> 14x14x4
]


def digits_tables(out_dir: Path) -> None:
    """Part 1: the accuracy/bytes table on digits for the small CNN and the small residual network."""
    from models.butterfly_study import run_study, write_study
    from models.datasets import load_digits
    from models.small_resnet import build_small_resnet
    from models.training import TrainConfig
    from models.zoo import build_model

    data = load_digits(seed=0)
    for name, build, cut in (
        ("small_cnn", lambda: build_model("small_cnn", seed=0), "block2_pool"),
        ("small_resnet", lambda: build_small_resnet(seed=0), "stage2_out"),
    ):
        t0 = time.perf_counter()
        rows = run_study(
            build(),
            cut,
            [2, 4, 8, 16],
            data,
            base_training=TrainConfig(epochs=4, seed=0),
            variant_training=TrainConfig(epochs=2, seed=0),
            latency_dir=out_dir / "bundles",
            quant="fp32",
        )
        csv_path, _ = write_study(rows, out_dir, stem=f"{name}-{cut}")
        print(
            f"\n## digits: {name}, cut after {cut} ({len(data.x_test)} held-out images; {time.perf_counter() - t0:.0f} s)"
        )
        print("variant    c'  shape      bytes  zstd   x fewer  acc %   Δ pts  device ms  cloud ms")
        for r in rows:
            print(
                f"{r.variant:<10} {r.channels:>3} {r.cut_shape:<9} {r.cut_bytes:>6} {r.cut_bytes_zstd:>5} "
                f"{r.ratio:>8.1f} {100 * r.accuracy:>6.2f} {r.accuracy_delta_pts:>+7.2f} "
                f"{r.device_ms:>10.3f} {r.cloud_ms:>9.3f}"
            )
        print(f"(csv: {csv_path})")


def _profile(bundle: Path, out_root: Path, runs: int) -> pd.DataFrame:
    from harness.devices.local import LocalDevice
    from harness.profiling.job import ProfileSettings, profile_device
    from models.profile_rows import read_profile

    settings = ProfileSettings(runs=runs, warmup_min_secs=0.1, backward=False, whole_model=False)
    result = profile_device(LocalDevice("generic-phone"), bundle, settings, out_root=out_root)
    return read_profile(result.csv_path)


def _mobile(frame: pd.DataFrame, slowdown: float) -> pd.DataFrame:
    """The host's profile as a phone's: latencies x ``slowdown``, energy re-derived by the planner."""
    mobile = frame.copy()
    for column in ("latency_ms_median", "latency_ms_p10", "latency_ms_p90"):
        mobile[column] = mobile[column] * slowdown
    mobile["energy_mj"] = math.nan  # the planner derives it from the device power model
    return mobile


def mobilenet_tables(work: Path, runs: int, slowdowns: list[float]) -> None:
    """Part 2: bytes at the cut and planned latency/energy of MobileNetV2 with and without butterflies."""
    from harness.planner import Objective, baselines, build_problem, make_plan, plan, single_cut_schedule
    from models.butterfly import REDUCE_LAYER, ButterflyConfig, insert_butterfly
    from models.export import export_bundle
    from models.zoo import build_model

    base = build_model("mobilenet_v2", seed=0)
    cache = None  # the user artifact cache (or $JOINTDNN_CACHE_DIR): reruns skip conversion
    t0 = time.perf_counter()
    bundles: dict[str, Path] = {}
    export_bundle(base, "int8", work / "mobilenet_v2", cache_dir=cache, cuts=MNV2_CUTS, include_whole=False)
    bundles["base"] = work / "mobilenet_v2"
    described: dict[str, tuple[str, str, int, int]] = {}
    for cut, channels, stride in MNV2_BUTTERFLIES:
        net = insert_butterfly(base, cut, ButterflyConfig(channels=channels, stride=stride))
        label = f"{cut}/c'={channels}/s={stride}"
        name = f"mobilenet_v2_bf_{cut}_{channels}_{stride}"
        export_bundle(
            net,
            "int8",
            work / name,
            cache_dir=cache,
            cuts=[*MNV2_CUTS, REDUCE_LAYER],
            include_whole=False,
            model_name=name,
        )
        bundles[label] = work / name
        raw = int(np.prod(base.get_layer(cut).output.shape[1:])) * 4
        sent = int(np.prod(net.get_layer(REDUCE_LAYER).output.shape[1:]))
        described[label] = (
            cut,
            "x".join(str(int(d)) for d in net.get_layer(REDUCE_LAYER).output.shape[1:]),
            raw,
            sent,
        )
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = {label: _profile(path, work / "profiles", runs) for label, path in bundles.items()}
    profile_s = time.perf_counter() - t0
    print(
        f"\n## MobileNetV2 (random weights, int8, coarse chain); export {export_s:.0f} s, profiling {profile_s:.0f} s"
    )
    base_frame = frames["base"]
    base_total = float(base_frame.latency_ms_median.sum())
    print(f"whole chain on this host, 1 thread: {base_total:.2f} ms (sum of {len(base_frame)} segments)")
    print(
        "butterfly                    sent shape   raw fp32 B  sent int8 B  x fewer  head ms  tail ms  chain ms"
    )
    for label, (_cut, shape, raw, sent) in described.items():
        frame = frames[label]
        k = int(frame.index[frame.last_layer == REDUCE_LAYER][0]) + 1
        head = float(frame.latency_ms_median.iloc[:k].sum())
        tail = float(frame.latency_ms_median.iloc[k:].sum())
        print(
            f"{label:<28} {shape:<11} {raw:>11} {sent:>12} {raw / sent:>8.0f} {head:>8.2f} {tail:>8.2f} {head + tail:>9.2f}"
        )

    for slowdown in slowdowns:
        print(
            f"\n### predicted per inference, mobile = this host x{slowdown:g}, cloud = this host, generic-phone power"
        )
        print(
            "link  plan                        schedule    latency ms  energy mJ  lat x vs cloud  energy x vs cloud"
        )
        for link in LINKS:
            problems = {
                label: build_problem(_mobile(frame, slowdown), frame, link, "generic-phone")
                for label, frame in frames.items()
            }
            base_problem = problems.pop("base")
            fixed = baselines(base_problem, Objective("latency"))
            cloud = fixed["cloud_only"]
            rows = [
                ("cloud-only", cloud, cloud),
                ("mobile-only", fixed["mobile_only"], fixed["mobile_only"]),
                (
                    "best plan, no butterfly",
                    plan(base_problem, Objective("latency")),
                    plan(base_problem, Objective("energy")),
                ),
            ]
            splits = []  # the butterfly used: mobile up to the reduction, cloud from the restoration on
            for label, problem in problems.items():
                k = int(frames[label].index[frames[label].last_layer == REDUCE_LAYER][0]) + 1
                schedule = single_cut_schedule(problem.n, k)
                splits.append(
                    (
                        label,
                        make_plan(problem, schedule, Objective("latency")),
                        make_plan(problem, schedule, Objective("energy")),
                    )
                )
            best_lat = min(splits, key=lambda item: item[1].latency_ms)
            best_en = min(splits, key=lambda item: item[2].mobile_energy_mj)
            rows.append(("best plan with butterfly", best_lat[1], best_en[2]))
            for name, by_latency, by_energy in rows:
                print(
                    f"{link:<5} {name:<27} {by_latency.label:<11} {by_latency.latency_ms:>10.1f} "
                    f"{by_energy.mobile_energy_mj:>10.1f} {cloud.latency_ms / by_latency.latency_ms:>15.1f} "
                    f"{cloud.mobile_energy_mj / by_energy.mobile_energy_mj:>18.1f}"
                )
            print(f"      (butterfly with the lowest latency: {best_lat[0]}; lowest energy: {best_en[0]})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-digits", action="store_true", help="skip part 1 (training on digits)")
    parser.add_argument("--skip-mobilenet", action="store_true", help="skip part 2 (MobileNetV2 planning)")
    parser.add_argument("--runs", type=int, default=20, help="measured runs per segment")
    parser.add_argument("--mobile-slowdown", default="1,10", help="phone/host latency factors, e.g. 1,10")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/butterfly"))
    args = parser.parse_args()
    slowdowns = [float(v) for v in args.mobile_slowdown.split(",")]
    if not args.skip_digits:
        digits_tables(args.out)
    if not args.skip_mobilenet:
        with tempfile.TemporaryDirectory(prefix="jointdnn-butterfly-") as tmp:
            mobilenet_tables(Path(tmp), args.runs, slowdowns)


if __name__ == "__main__":
    main()
