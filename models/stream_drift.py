"""Drift: a streaming reduction follows a feature distribution that changes; a once-fitted PCA does not.

:func:`run_drift` streams the vectors of one distribution, then of another, through a constant-rate
GHA trainer (:mod:`models.streaming_pca`), and at every checkpoint measures the reconstruction error,
on held-out vectors of the distribution in force, of three reductions with the same ``k``:

- the streaming one, as it stands at that moment;
- a batch PCA fitted once, on the first distribution (what a host-side fit deploys);
- a batch PCA refitted on the distribution in force (the best a host could do with all its data).

The error is ``‖x − x̂‖² / total variance`` before the 8-bit quantization (the subspace and mean are
compared, not the quantizer's range). :func:`write_drift_plot` draws error against samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import UsageError
from models.feature_pca import FeaturePCA
from models.streaming_pca import FixedPointStreamingPCA, StreamConfig, StreamingPCA, feature_batches

__all__ = ["DriftResult", "run_drift", "write_drift_plot"]


@dataclass
class DriftResult:
    """Errors at checkpoints (samples = feature vectors streamed so far); the change is at ``change_at``."""

    k: int
    change_at: int
    samples: list[int] = field(default_factory=list)
    stream_error: list[float] = field(default_factory=list)
    fixed_error: list[float] = field(default_factory=list)  # batch PCA fitted once, before the change
    refit_error: list[float] = field(default_factory=list)  # batch PCA fitted on the current distribution
    tolerance: float = 0.10  # "recovered": stream error <= (1 + tolerance) × refit error

    def recovered_after(self) -> int | None:
        """Samples after the change from which the streaming error stays within tolerance of the refit's."""
        after = [
            (s, e, r)
            for s, e, r in zip(self.samples, self.stream_error, self.refit_error, strict=True)
            if s > self.change_at
        ]
        for i, (samples, _, _) in enumerate(after):
            if all(e <= (1 + self.tolerance) * r for _, e, r in after[i:]):
                return samples - self.change_at
        return None

    def final(self) -> tuple[float, float, float]:
        """(stream, once-fitted, refit) error at the last checkpoint."""
        return self.stream_error[-1], self.fixed_error[-1], self.refit_error[-1]


def run_drift(
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
    k: int,
    *,
    batch_size: int = 64,
    checkpoint_every: int = 16,
    fixed_point: bool = True,
    mean_shift_max: int = 4,
    tolerance: float = 0.10,
    seed: int = 0,
) -> DriftResult:
    """Stream ``before[0]`` then ``after[0]`` (``(N, ..., C)`` features); evaluate on ``before[1]`` / ``after[1]``.

    The trainer keeps a constant rate (no annealing: it must stay able to move) and a running mean with
    rate at least ``2**-mean_shift_max`` per update. ``checkpoint_every`` is in updates.
    """
    stream_before, eval_before = before
    stream_after, eval_after = after
    channels = int(np.shape(stream_before)[-1])
    if int(np.shape(stream_after)[-1]) != channels:
        raise UsageError(f"the two distributions have {channels} and {np.shape(stream_after)[-1]} channels")
    phases = [
        list(feature_batches(stream_before, batch_size, seed=seed)),
        list(feature_batches(stream_after, batch_size, seed=seed + 1)),
    ]
    if not phases[0] or not phases[1]:
        raise UsageError(
            "an empty feature stream: each distribution needs at least one mini-batch of features"
        )
    config = StreamConfig(k=k, batch_size=batch_size, mean_shift_max=mean_shift_max, seed=seed)
    trainer = (FixedPointStreamingPCA if fixed_point else StreamingPCA)(channels, config)
    once = FeaturePCA.fit(stream_before, k)
    refits = (once, FeaturePCA.fit(stream_after, k))
    result = DriftResult(k=k, change_at=len(phases[0]) * batch_size, tolerance=tolerance)
    for phase, (batches, held_out) in enumerate(zip(phases, (eval_before, eval_after), strict=True)):
        for i, batch in enumerate(batches, start=1):
            trainer.update(batch)
            if i % checkpoint_every == 0 or i == len(batches):
                result.samples.append(trainer.samples)
                result.stream_error.append(trainer.to_pca().relative_error(held_out, quantize=False))
                result.fixed_error.append(once.relative_error(held_out, quantize=False))
                result.refit_error.append(refits[phase].relative_error(held_out, quantize=False))
    return result


def write_drift_plot(result: DriftResult, path: Path, *, title: str = "") -> Path:
    """Reconstruction error against samples streamed (PNG at ``path``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.samples, result.stream_error, label="streaming GHA (on the phone)")
    ax.plot(result.samples, result.fixed_error, label="batch PCA fitted once, before the change")
    ax.plot(result.samples, result.refit_error, "--", label="batch PCA refitted on the current data")
    ax.plot(
        result.samples,
        [(1 + result.tolerance) * r for r in result.refit_error],
        ":",
        color="grey",
        label=f"refit + {100 * result.tolerance:.0f}%",
    )
    ax.axvline(result.change_at, color="black", linewidth=0.8)
    ax.set(xlabel="feature vectors streamed", ylabel="relative reconstruction error (held-out)")
    ax.set_title(title or f"drift at sample {result.change_at}, k = {result.k}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
