"""Regenerate the synthetic link traces in this folder: ``python device_profiles/traces/make_traces.py``.

Every trace is a CSV (``t_s,up_mbps,down_mbps,rtt_ms``, one row per 0.5 s) built from the reference links
of ``device_profiles/links`` (JointDNN/OpenSignal 2017 rates) with log-normal shadowing: an AR(1)
process in log space (``rho`` per step, stationary ``sigma``) drawn from ``numpy.random.default_rng(seed)``.
The header comment of each file repeats how it was made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STEP_S = 0.5
HERE = Path(__file__).parent
LTE = (5.85, 13.76, 50.0)  # up Mbps, down Mbps, RTT ms (device_profiles/links/4g.yaml)
WIFI = (18.88, 54.97, 20.0)
G3 = (1.1, 2.0275, 100.0)


def shadowing(rng: np.random.Generator, k: int, sigma: float, rho: float = 0.8) -> np.ndarray:
    """Multiplicative log-normal fading, AR(1) in log space, mean-one-ish (k,)."""
    x = np.empty(k)
    x[0] = rng.normal(0, sigma)
    for i in range(1, k):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * rng.normal(0, sigma)
    return np.exp(x - sigma**2 / 2)


def write(name: str, how: str, t: np.ndarray, up: np.ndarray, down: np.ndarray, rtt: np.ndarray) -> None:
    lines = [f"# {line}" for line in how.strip().splitlines()]
    lines.append("t_s,up_mbps,down_mbps,rtt_ms")
    for row in zip(t, np.maximum(up, 0.05), np.maximum(down, 0.05), rtt, strict=True):
        lines.append(f"{row[0]:.1f},{row[1]:.3f},{row[2]:.3f},{row[3]:.1f}")
    (HERE / name).write_text("\n".join(lines) + "\n")


def lte_walk(seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(0, 60, STEP_S)
    fade = np.where((t >= 25) & (t < 35), 0.05, 1.0)  # deep fade: 5 % of the rate for 10 s
    s = shadowing(rng, t.size, 0.3)
    rtt = LTE[2] + rng.uniform(0, 10, t.size) + np.where(fade < 1, 100.0, 0.0)
    write(
        "lte-walk-deep-fade.csv",
        f"""LTE walk with a deep fade (synthetic; device_profiles/traces/make_traces.py, seed {seed}).
4G reference rates (5.85 up / 13.76 down Mbps, 50 ms) x log-normal shadowing (AR(1) in log space,
sigma 0.3, rho 0.8 per 0.5 s step); from 25 s to 35 s a deep fade to 5 % of the rate with +100 ms RTT;
RTT jitter uniform 0-10 ms.""",
        t, LTE[0] * s * fade, LTE[1] * s * fade, rtt,
    )


def wifi_to_3g(seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(0, 60, STEP_S)
    wifi, gap = t < 30, (t >= 30) & (t < 32)
    s = shadowing(rng, t.size, 0.2)
    up = np.where(wifi, WIFI[0], np.where(gap, 0.05, G3[0])) * s
    down = np.where(wifi, WIFI[1], np.where(gap, 0.05, G3[1])) * s
    rtt = np.where(wifi, WIFI[2], np.where(gap, 300.0, G3[2])) + rng.uniform(0, 5, t.size)
    write(
        "wifi-to-3g-handover.csv",
        f"""Wi-Fi -> 3G handover (synthetic; device_profiles/traces/make_traces.py, seed {seed}).
Wi-Fi reference rates (18.88 up / 54.97 down Mbps, 20 ms) for 30 s, a 2 s handover gap (0.05 Mbps,
300 ms), then 3G (1.1 up / 2.03 down Mbps, 100 ms); log-normal shadowing sigma 0.2, rho 0.8 per 0.5 s
step; RTT jitter uniform 0-5 ms.""",
        t, up, down, rtt,
    )


def congested_cell(seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(0, 60, STEP_S)
    busy = (t % 20) >= 12  # 8 s busy hour every 20 s: other users take 3/4 of the cell
    s = shadowing(rng, t.size, 0.25)
    share = np.where(busy, 0.25, 1.0)
    rtt = LTE[2] + np.where(busy, 80.0, 0.0) + rng.uniform(0, 10, t.size)  # bufferbloat when busy
    write(
        "congested-cell.csv",
        f"""Congested LTE cell (synthetic; device_profiles/traces/make_traces.py, seed {seed}).
4G reference rates x log-normal shadowing (sigma 0.25, rho 0.8 per 0.5 s step); in the last 8 s of
every 20 s other users take 3/4 of the cell (rates x 0.25) and queues add 80 ms of RTT; RTT jitter
uniform 0-10 ms.""",
        t, LTE[0] * s * share, LTE[1] * s * share, rtt,
    )


def adaptive_experiment() -> None:
    t = np.arange(0, 80, 1.0)
    drop = (t >= 20) & (t < 40)
    up = np.where(drop, G3[0], WIFI[0])
    down = np.where(drop, G3[1], WIFI[1])
    rtt = np.where(drop, G3[2], WIFI[2])
    write(
        "adaptive-experiment.csv",
        """The adaptive experiment's link (benchmarks/adaptive.py; device_profiles/traces/make_traces.py).
No noise, so that every policy sees the same link: Wi-Fi reference rates (18.88 up / 54.97 down Mbps,
20 ms) except from 20 s to 40 s, a drop to 3G (1.1 up / 2.03 down Mbps, 100 ms). The experiment adds
a server-load spike from 44 s to 60 s with a load generator (it is not part of the link).""",
        t, up, down, rtt,
    )


if __name__ == "__main__":
    adaptive_experiment()
    lte_walk()
    wifi_to_3g()
    congested_cell()
