"""A bounded load generator: occupies a cloud server with whole-model requests for a while, then exits.

Used by the adaptive experiment to make a server-load spike on purpose. It runs on the server's side
of the link (``ShapedLink.spawn_cloud``: inside the cloud namespace, on its loopback), so its traffic
does not cross the shaped link, only the server's interpreters are busy. It is bounded twice — by
``--duration-s`` and by ``--max-requests`` — and its parent stops it by pid with the link.

Run: ``python -m harness.adaptive.loadgen --url http://127.0.0.1:8000 --model NAME --concurrency 4
--duration-s 10 [--start-at EPOCH_S]``. ``--start-at`` (a ``time.time()`` value) waits until then, so that
a phase starts on time however long this interpreter took to start. It prints ``done <requests>``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np

from models.errors import JointDNNError
from server.client import CloudClient

__all__ = ["generate_load", "main"]


def generate_load(
    url: str,
    model: str,
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int = 100_000,
    token: str | None = None,
) -> int:
    """Keep ``concurrency`` whole-model requests in flight for ``duration_s``; return how many completed."""
    with CloudClient(url, token=token, timeout_s=60.0) as probe:
        info = probe.model(model)
    shape = tuple(int(v) for v in info["input"]["shape"])
    segments = int(info["num_segments"])
    x = np.random.default_rng(0).random(shape, dtype=np.float32)  # float input: the server quantizes
    deadline = time.monotonic() + duration_s
    done = [0]
    lock = threading.Lock()

    def worker() -> None:
        with CloudClient(url, token=token, timeout_s=60.0) as client:
            while time.monotonic() < deadline:
                with lock:
                    if done[0] >= max_requests:
                        return
                    done[0] += 1
                try:
                    client.infer(model, x, from_segment=0, to_segment=segments)
                except JointDNNError:
                    time.sleep(0.05)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration_s + 120)
    return done[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="JointDNN bounded load generator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--token", default=None)
    parser.add_argument("--start-at", type=float, default=None, help="time.time() to start at")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration_s <= 0:
        print("--concurrency must be >= 1 and --duration-s > 0", file=sys.stderr)
        return 2
    try:
        if args.start_at is not None:
            time.sleep(max(0.0, args.start_at - time.time()))
        count = generate_load(
            args.url,
            args.model,
            concurrency=args.concurrency,
            duration_s=args.duration_s,
            max_requests=args.max_requests,
            token=args.token,
        )
    except KeyboardInterrupt:
        return 130
    except JointDNNError as exc:
        print(f"load generator: {exc}", file=sys.stderr)
        return 1
    print(f"done {count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
