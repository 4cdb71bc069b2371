"""Streaming PCA at the cut: the Generalized Hebbian Algorithm (Sanger's rule), float and fixed point.

The phone learns the channel reduction of :mod:`models.feature_pca` from its own cut features, one
mini-batch at a time, without a covariance matrix: its whole state is the ``(k, C)`` weights, the
``(C,)`` running mean and a few scalars (O(k·C) words). Only the learnt weights ever leave the device.

The rule (Sanger 1989), for a centered feature vector ``x`` (C,) and ``y = W x`` (k,)::

    ΔW = η (y xᵀ − LT(y yᵀ) W)          (textbook form; LT = lower triangle incl. the diagonal)

is evaluated here in its *residual* form, which needs no k×k matrix and 3·k·C multiplies per vector
instead of k·C·(3 + (k+1)/2)::

    r₀ = x;  for i = 1..k:  rᵢ = rᵢ₋₁ − yᵢ wᵢ;  Δwᵢ = η yᵢ rᵢ

Hardware-friendly choices (arXiv:1801.04014 motivates them; its exact modification of GHA is not in the
material available to us, so this is *our* fixed-point GHA, not a reproduction of the paper's):

- learning rates are powers of two, ``η = 2^-lr_shift``, and the mini-batch is a power of two, so
  scaling an update is an arithmetic shift, never a multiply or a divide;
- the running mean uses a power-of-two rate ``2^-min(⌈log₂ t⌉, mean_shift_max)`` (≈ 1/t at first,
  an exponential average later: it follows a drifting stream);
- fixed point: weights int16 in Q1.14, features int16 with ``feature_bits`` significant bits (a
  power-of-two input scale chosen from the first batch), products accumulated in int32, the running
  mean in an int32 register with 16 more fractional bits than the features. An int32
  accumulator that would overflow, or an int16 weight that would saturate, is a detected divergence.

:class:`StreamingPCA` (float64) and :class:`FixedPointStreamingPCA` share the interface
(``update``/``fit``/``to_pca``/``converged``). :func:`principal_angles_deg` and
:func:`explained_variance` compare a learnt subspace with ``eigh``'s. :func:`resource_table` counts the
work and memory of one update for our trainer, the textbook GHA and eigh-based PCA.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from models.errors import DivergenceError, UsageError
from models.feature_pca import FeaturePCA

__all__ = [
    "FixedPointStreamingPCA",
    "ResourceRow",
    "StreamConfig",
    "StreamingPCA",
    "explained_variance",
    "feature_batches",
    "fit_stream",
    "principal_angles_deg",
    "resource_table",
]

Q_WEIGHT = 14  # weights are int16 in Q1.14: 1.0 == 2**14
MEAN_FRACTION = 16  # extra fractional bits of the fixed-point running mean (an int32 register per channel)
INT16_MAX = 2**15 - 1
INT32_MAX = 2**31 - 1
DIVERGED_ROW_NORM = 4.0  # GHA rows converge to unit norm; a row this long means the rate is unstable


@dataclass(frozen=True)
class StreamConfig:
    """Settings of a streaming trainer.

    ``lr_shift`` None picks ``η = 2^-⌈log₂(2·trace)⌉`` from the first batch (so ``η·λ₁ ≤ 1/2``, inside
    GHA's stability region); ``anneal_every`` > 0 halves the rate (shift + 1) every that many updates, up
    to ``max_lr_shift`` (a step schedule: the stream is learnt at one rate, then the noise is averaged
    out); 0 keeps the rate, which is what tracking a drifting stream needs.
    """

    k: int
    batch_size: int = 64  # feature vectors per update (a power of two for the fixed-point trainer)
    lr_shift: int | None = None  # η = 2**-lr_shift
    anneal_every: int = 0  # updates between halvings of the rate (0: constant rate)
    max_lr_shift: int = 30
    mean_shift_max: int = 10  # slowest running-mean rate 2**-mean_shift_max
    feature_bits: int = 10  # fixed point: significant bits of a feature (sign included)
    row_rates: bool = True  # per-row rates 2**-⌈log₂(4·E[yᵢ²])⌉ (each row learns at its own scale)
    max_boost: int = 6  # a row's rate is at most 2**max_boost times the base rate 2**-lr_shift
    check_every: int = 64  # updates between convergence checks
    tolerance_deg: float = 1.0  # converged: subspace moved less than this between two checks
    seed: int = 0


def _as_vectors(features: np.ndarray) -> np.ndarray:
    """``(..., C)`` features -> ``(M, C)`` float64 vectors; NaN/inf are refused."""
    vectors = np.asarray(features, dtype=np.float64)
    vectors = vectors.reshape(-1, vectors.shape[-1]) if vectors.ndim else vectors.reshape(0, 1)
    if not np.all(np.isfinite(vectors)):
        bad = int(np.sum(~np.isfinite(vectors)))
        raise UsageError(
            f"the feature stream holds {bad} NaN/inf values; streaming PCA needs finite features "
            "(check the model's cut layer and the input images)"
        )
    return vectors


def feature_batches(features: np.ndarray, batch_size: int, *, seed: int | None = 0) -> Iterator[np.ndarray]:
    """Mini-batches ``(batch_size, C)`` of the vectors of ``features`` (``(N, H, W, C)`` or ``(M, C)``).

    ``seed`` shuffles the vectors (None keeps the stream order); a last partial batch is dropped.
    """
    vectors = np.asarray(features, dtype=np.float32).reshape(-1, np.shape(features)[-1])
    order = np.arange(len(vectors)) if seed is None else np.random.default_rng(seed).permutation(len(vectors))
    for start in range(0, len(vectors) - batch_size + 1, batch_size):
        yield vectors[order[start : start + batch_size]]


def _orthonormal_init(k: int, channels: int, seed: int) -> np.ndarray:
    """Random ``(k, C)`` orthonormal rows (seeded)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((channels, k)))
    return q.T


def principal_angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles (degrees, ascending) between the row spaces of ``a`` (k, C) and ``b`` (k', C)."""
    from scipy.linalg import subspace_angles

    return np.sort(np.degrees(subspace_angles(np.asarray(a, np.float64).T, np.asarray(b, np.float64).T)))


def explained_variance(components: np.ndarray, features: np.ndarray) -> float:
    """Fraction of the features' total channel variance inside the row space of ``components`` (k, C)."""
    vectors = _as_vectors(features)
    centered = vectors - vectors.mean(axis=0)
    basis, _ = np.linalg.qr(np.asarray(components, np.float64).T)  # (C, k) orthonormal columns
    total = float(np.sum(centered**2)) or 1.0
    return float(np.sum((centered @ basis) ** 2)) / total


class _Trainer:
    """What the float and fixed-point trainers share: checks, schedule, statistics, convergence."""

    def __init__(self, channels: int, config: StreamConfig):
        if not 1 <= config.k <= channels:
            raise UsageError(
                f"streaming PCA needs 1 <= k <= {channels} components for {channels} channels, got "
                f"k={config.k}; choose k at most the cut's channel count"
            )
        if config.batch_size < 1:
            raise UsageError(f"batch size must be positive, got {config.batch_size}")
        if config.lr_shift is not None and config.lr_shift < 0:
            raise UsageError(f"lr_shift must be >= 0 (η = 2**-lr_shift <= 1), got {config.lr_shift}")
        self.config = config
        self.channels = channels
        self.updates = 0  # mini-batch updates so far
        self.samples = 0  # feature vectors seen
        self.lr_shift: int | None = config.lr_shift
        self._low = math.inf  # coefficient range seen since reset_range (for the 8-bit quantizer)
        self._high = -math.inf
        self._total_var = 0.0  # running mean of ||x - mean||² (trace of the covariance)
        self._coeff_var = 0.0  # running mean of ||y||²
        self._row_power = np.zeros(config.k)  # running mean of yᵢ² per row (k,)
        self._snapshot: np.ndarray | None = None
        self._last_moves: list[float] = []  # subspace movement (degrees) at the last checks

    # --- to be provided by the subclasses ---------------------------------------------------------
    @property
    def components(self) -> np.ndarray:  # (k, C) float
        raise NotImplementedError

    @property
    def mean(self) -> np.ndarray:  # (C,) float
        raise NotImplementedError

    def _step(self, batch: np.ndarray) -> np.ndarray:  # one update; returns the coefficients y (B, k)
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------------
    @property
    def k(self) -> int:
        return self.config.k

    def current_lr_shift(self) -> int:
        """The learning-rate shift of the next update (after annealing)."""
        assert self.lr_shift is not None
        extra = self.updates // self.config.anneal_every if self.config.anneal_every else 0
        return min(self.lr_shift + extra, self.config.max_lr_shift)

    def row_lr_shifts(self) -> np.ndarray:
        """Per-row learning-rate shifts ``(k,)`` of the next update.

        Row i learns from the residual ``x − Σ_{j<i} yⱼwⱼ``, whose covariance has trace
        ``tᵢ = E‖x‖² − Σ_{j<i} E[yⱼ²]`` (orthonormal rows); ``ηᵢ = 2^-⌈log₂(2·tᵢ)⌉`` keeps ``ηᵢ·λ ≤ 1/2``
        for every direction that row sees (the base rate's bound, with the trace of what is left), so
        trailing rows learn up to ``trace / tᵢ`` times faster than with the one global rate. The shift is
        a leading-zero count in hardware; the first ``check_every`` updates use the base rate (the
        statistics are not yet settled), then the shift is clamped to ``[base − max_boost, base]`` and annealing
        lowers every row alike.
        """
        base = self.current_lr_shift()
        if not self.config.row_rates or self.updates < self.config.check_every:  # warm-up: base rate
            return np.full(self.k, base, dtype=np.int64)
        before = np.concatenate([[0.0], np.cumsum(self._row_power)[:-1]])  # Σ_{j<i} E[yⱼ²]
        left = np.maximum(self._total_var - before, self._row_power)  # tᵢ (k,)
        own = np.ceil(np.log2(2.0 * np.maximum(left, 1e-30))).astype(np.int64)
        assert self.lr_shift is not None
        own += base - self.lr_shift  # the annealing offset
        return np.clip(own, base - self.config.max_boost, base)

    def mean_shift(self) -> int:
        """Running-mean rate 2**-shift: ≈ 1/t for the first updates, then a fixed exponential average."""
        return min(max(1, math.ceil(math.log2(self.updates + 1))), self.config.mean_shift_max)

    def ensure_lr_shift(self, batch: np.ndarray) -> int:
        """The base shift; unset, it is picked from ``batch`` (B, C): ``⌈log₂(2·trace)⌉``, so ``η·λ₁ ≤ 1/2``."""
        if self.lr_shift is None:
            trace = float(np.sum(np.var(np.asarray(batch, np.float64), axis=0)))
            self.lr_shift = max(0, math.ceil(math.log2(2.0 * trace))) if trace > 0 else 0
        return self.lr_shift

    def update(self, batch: np.ndarray) -> None:
        """One GHA update from a mini-batch of cut features ``(B, C)`` (or ``(B, H, W, C)``)."""
        vectors = _as_vectors(batch)
        if vectors.shape[-1] != self.channels:
            raise UsageError(
                f"features have {vectors.shape[-1]} channels; this trainer learns {self.channels}"
            )
        if len(vectors) == 0:
            raise UsageError("an empty feature batch: the stream gave no feature vectors to learn from")
        self.ensure_lr_shift(vectors)
        coeffs = self._step(vectors)  # (B, k)
        self.updates += 1
        self.samples += len(vectors)
        self._check_diverged()
        self._track(vectors, coeffs)
        if self.updates % self.config.check_every == 0:
            self._check_progress()

    def fit(self, batches: Iterable[np.ndarray], *, epochs: int = 1) -> _Trainer:
        """Run :meth:`update` over ``batches`` ``epochs`` times (in the same order); returns self.

        The coefficient range of the 8-bit quantizer is the one seen during the last epoch.
        """
        chunks = batches if isinstance(batches, list) else list(batches)
        if not chunks:
            raise UsageError(
                "an empty feature stream: streaming PCA needs at least one mini-batch of features"
            )
        for epoch in range(epochs):
            if epoch == epochs - 1:
                self.reset_range()
            for batch in chunks:
                self.update(batch)
        return self

    def _check_diverged(self) -> None:
        w = self.components
        norms = np.linalg.norm(w, axis=1) if np.all(np.isfinite(w)) else np.array([math.inf])
        if float(norms.max()) > DIVERGED_ROW_NORM:
            raise DivergenceError(
                f"streaming PCA diverged after {self.updates} updates: a weight row reached norm "
                f"{float(norms.max()):.3g} (converged rows have norm 1) at learning rate "
                f"2**-{self.current_lr_shift()}; use a smaller rate (lr_shift >= {self.current_lr_shift() + 2}) "
                "or leave lr_shift unset to pick one from the feature scale"
            )

    def _track(self, vectors: np.ndarray, coeffs: np.ndarray) -> None:
        centered = vectors - self.mean
        rate = 2.0 ** -self.mean_shift()
        self._total_var += rate * (float(np.mean(np.sum(centered**2, axis=1))) - self._total_var)
        self._coeff_var += rate * (float(np.mean(np.sum(coeffs**2, axis=1))) - self._coeff_var)
        power = np.mean(coeffs**2, axis=0)  # (k,)
        self._row_power = power if self.updates == 1 else self._row_power + rate * (power - self._row_power)
        self._low = min(self._low, float(coeffs.min()))
        self._high = max(self._high, float(coeffs.max()))

    def _check_progress(self) -> None:
        current = self.components.copy()
        if self._snapshot is not None:
            self._last_moves = [
                *self._last_moves[-1:],
                float(principal_angles_deg(self._snapshot, current)[-1]),
            ]
        self._snapshot = current

    @property
    def converged(self) -> bool:
        """The subspace moved < ``tolerance_deg`` over each of the last two check intervals, rows ≈ unit."""
        norms = np.linalg.norm(self.components, axis=1)
        return (
            len(self._last_moves) == 2
            and max(self._last_moves) < self.config.tolerance_deg
            and bool(np.all(np.abs(norms - 1.0) < 0.05))
        )

    @property
    def last_move_deg(self) -> float:
        """Largest principal angle the subspace moved over the last check interval (NaN before two checks)."""
        return self._last_moves[-1] if self._last_moves else math.nan

    def reset_range(self) -> None:
        """Forget the coefficient range seen so far (the quantizer's range is taken from here on)."""
        self._low, self._high = math.inf, -math.inf

    def to_pca(self) -> FeaturePCA:
        """The learnt reduction as a :class:`FeaturePCA` (what :func:`models.feature_pca.insert_pca` deploys).

        The components are the learnt rows as they are (not re-orthonormalized on the host): the phone
        projects with them and the cloud restores with them.
        """
        if self.updates == 0:
            raise UsageError("streaming PCA has not seen any features yet; call update() or fit() first")
        low, high = self._low, self._high
        if not high > low:
            high = low + 1e-6
        ratio = self._coeff_var / self._total_var if self._total_var > 0 else 0.0
        return FeaturePCA(
            mean=self.mean.astype(np.float32),
            components=self.components.astype(np.float32),
            low=low,
            high=high,
            explained_variance_ratio=float(min(ratio, 1.0)),
        )


class StreamingPCA(_Trainer):
    """Float GHA trainer (float64 state), mini-batch form of Sanger's rule with power-of-two rates."""

    def __init__(self, channels: int, config: StreamConfig):
        super().__init__(channels, config)
        self._w = _orthonormal_init(config.k, channels, config.seed)  # (k, C)
        self._mean = np.zeros(channels)
        self._mask = np.tril(np.ones((config.k, config.k)))  # LT(.) incl. the diagonal

    @property
    def components(self) -> np.ndarray:
        return self._w

    @property
    def mean(self) -> np.ndarray:
        return self._mean

    @property
    def state(self) -> np.ndarray:
        """The device's state ``(1 + k, C)``: the running mean, then the weight rows (float32)."""
        return np.vstack([self._mean[None], self._w]).astype(np.float32)

    def _step(self, batch: np.ndarray) -> np.ndarray:
        if self.updates == 0:
            self._mean = batch.mean(axis=0)
        else:
            self._mean += (batch.mean(axis=0) - self._mean) * 2.0 ** -self.mean_shift()
        x = batch - self._mean  # (B, C)
        y = x @ self._w.T  # (B, k)
        eta = (2.0 ** -self.row_lr_shifts().astype(np.float64) / len(batch))[:, None]  # (k, 1)
        # Σ_b [y xᵀ − LT(y yᵀ) W] over the batch; equal to the residual form summed over the batch
        self._w = self._w + eta * (y.T @ x - (self._mask * (y.T @ y)) @ self._w)
        return y


class FixedPointStreamingPCA(_Trainer):
    """Fixed-point GHA: int16 weights (Q1.14), int16 features, int32 accumulators, shifts for rates.

    Arithmetic is done on numpy int64 arrays but every accumulator is checked to fit int32 and every
    weight to fit int16 (overflow or saturation raises :class:`DivergenceError`), so the results are
    those of int32 / int16 hardware.
    """

    def __init__(self, channels: int, config: StreamConfig):
        super().__init__(channels, config)
        if config.batch_size & (config.batch_size - 1):
            raise UsageError(
                f"the fixed-point trainer needs a power-of-two batch size (a shift divides by it), "
                f"got {config.batch_size}"
            )
        if not 4 <= config.feature_bits <= 15:
            raise UsageError(f"feature_bits must be between 4 and 15, got {config.feature_bits}")
        init = _orthonormal_init(config.k, channels, config.seed)
        self._wq = np.round(init * 2**Q_WEIGHT).astype(np.int64)  # (k, C) int16 values
        # (C,) running mean in feature format with MEAN_FRACTION more fractional bits: with only the
        # features' bits, a small rate rounds every correction to 0 and the mean freezes early
        self._mq = np.zeros(channels, np.int64)
        self.feature_shift: int | None = None  # features are x * 2**feature_shift

    @property
    def components(self) -> np.ndarray:
        return self._wq.astype(np.float64) / 2**Q_WEIGHT

    @property
    def mean(self) -> np.ndarray:
        return self._mq.astype(np.float64) / 2.0 ** ((self.feature_shift or 0) + MEAN_FRACTION)

    @property
    def weights_int16(self) -> np.ndarray:
        """The learnt weights as the device holds them: int16 ``(k, C)``, Q1.14."""
        return self._wq.astype(np.int16)

    def quantize(self, vectors: np.ndarray) -> np.ndarray:
        """Float features -> int16-range integers ``round(x * 2**feature_shift)`` (saturating)."""
        assert self.feature_shift is not None
        limit = 2 ** (self.config.feature_bits - 1) - 1
        return np.clip(np.round(vectors * 2.0**self.feature_shift), -limit, limit).astype(np.int64)

    @staticmethod
    def _shift(values: np.ndarray, shift: int) -> np.ndarray:
        """Arithmetic shift right by ``shift`` with round-half-up (left if negative)."""
        if shift <= 0:
            return values << -shift
        return (values + (1 << (shift - 1))) >> shift

    def _check_int32(self, values: np.ndarray, what: str) -> None:
        peak = int(np.max(np.abs(values))) if values.size else 0
        if peak > INT32_MAX:
            raise DivergenceError(
                f"fixed-point streaming PCA diverged after {self.updates} updates: the int32 {what} "
                f"accumulator overflowed ({peak:.3g}); use a smaller learning rate (larger lr_shift) or "
                "fewer feature_bits"
            )

    @property
    def state(self) -> np.ndarray:
        """The device's state ``(1 + k, C)`` int32: the running mean (feature format with
        ``MEAN_FRACTION`` more fractional bits), then the weights (Q1.14)."""
        return np.vstack([self._mq[None], self._wq]).astype(np.int32)

    def ensure_feature_shift(self, batch: np.ndarray) -> int:
        """The input scale; unset, the largest power of two that fits ``batch``'s peak in feature_bits."""
        if self.feature_shift is None:
            peak = float(np.max(np.abs(batch))) or 1.0
            self.feature_shift = math.floor(math.log2((2 ** (self.config.feature_bits - 1) - 1) / peak))
        return self.feature_shift

    def update_shifts(self, batch_size: int) -> np.ndarray:
        """Per-row shifts ``(k,)`` from the Hebbian accumulator (2·feature_shift format) to ΔW (Q1.14).

        ``Δwᵢ = ηᵢ/B Σ_b y_bi r_bi`` with ``ηᵢ = 2^-row_shiftᵢ`` and ``B = 2^log_b``.
        """
        log_b = batch_size.bit_length() - 1
        if batch_size < 1 or 1 << log_b != batch_size:
            raise UsageError(f"the fixed-point trainer needs power-of-two batches, got {batch_size} vectors")
        assert self.feature_shift is not None
        return 2 * self.feature_shift + self.row_lr_shifts() + log_b - Q_WEIGHT

    def _step(self, batch: np.ndarray) -> np.ndarray:
        cfg = self.config
        self.ensure_feature_shift(batch)
        assert self.feature_shift is not None
        update_shifts = self.update_shifts(len(batch))  # (k,)
        log_b = len(batch).bit_length() - 1
        xq = self.quantize(batch)  # (B, C)
        batch_mean = self._shift(xq.sum(axis=0), log_b - MEAN_FRACTION)  # (C,) exact while B <= 2**16
        if self.updates == 0:
            self._mq = batch_mean
        else:
            self._mq = self._mq + self._shift(batch_mean - self._mq, self.mean_shift())
        self._check_int32(self._mq, "mean")
        x = xq - self._shift(self._mq, MEAN_FRACTION)  # (B, C) centered, feature format
        acc = x @ self._wq.T  # (B, k) int32 accumulation
        self._check_int32(acc, "projection")
        y = self._shift(acc, Q_WEIGHT)  # (B, k) feature format
        # the residual recursion rᵢ = rᵢ₋₁ − (yᵢwᵢ >> 14) for all rows at once (integer sums are exact,
        # so this equals the row-by-row loop of the hardware)
        scaled = self._shift(y[:, :, None] * self._wq[None], Q_WEIGHT)  # (B, k, C) yᵢwᵢ
        residual = x[:, None, :] - np.cumsum(scaled, axis=1)  # (B, k, C) rᵢ
        hebb = np.einsum("bi,bic->ic", y, residual)  # (k, C) int32 accumulation over the batch
        self._check_int32(hebb, "Hebbian")
        delta = np.stack([self._shift(hebb[i], int(update_shifts[i])) for i in range(cfg.k)])
        new = self._wq + delta
        if int(np.max(np.abs(new))) > INT16_MAX:
            raise DivergenceError(
                f"fixed-point streaming PCA diverged after {self.updates} updates: an int16 weight "
                f"saturated at learning rate 2**-{self.current_lr_shift()}; use a smaller rate "
                f"(lr_shift >= {self.current_lr_shift() + 2}) or leave lr_shift unset"
            )
        self._wq = new
        return y.astype(np.float64) / 2.0**self.feature_shift


@dataclass
class ResourceRow:
    """Work and memory of one update (one feature vector of C channels, k components)."""

    method: str
    multiplies: int  # per feature vector
    adds: int  # per feature vector (subtractions and accumulations included)
    shifts: int  # per feature vector (free wiring on an FPGA, one ALU op on a CPU)
    memory_words: int  # state + scratch that persists across vectors
    bit_widths: str
    note: str = ""


def resource_table(channels: int, k: int, *, batch_size: int = 64, refit_every: int = 0) -> list[ResourceRow]:
    """Operation and memory counts per feature vector for our trainer, textbook GHA and eigh-based PCA.

    Counts are exact for the algorithms as written here (dense arithmetic, no zero skipping). eigh-based
    PCA accumulates the covariance (C(C+1)/2 multiply-adds per vector, symmetric) and, every
    ``refit_every`` vectors (default: once per ``batch_size`` vectors, like one GHA update), solves a
    symmetric eigenproblem, ≈ 9·C³ flops (Golub & Van Loan: tridiagonalization plus QR with vectors).
    """
    c, b = channels, batch_size
    tri = k * (k + 1) // 2
    ours = ResourceRow(
        method="fixed-point GHA, residual form (ours)",
        multiplies=3 * k * c,  # y = Wx; yᵢwᵢ; yᵢrᵢ
        adds=k * (c - 1)
        + k * c
        + k * c
        + (k * c + c) // b
        + c,  # y sums; residual; batch acc; W += Δ/B; mean
        shifts=k + k * c + (k * c) // b + c // b,  # y rescale, yᵢwᵢ rescale, η/B per batch, mean rate
        memory_words=k * c + c + k * c + c + k,  # W, mean, Δ accumulators, residual, y
        bit_widths="weights int16 (Q1.14), features int16 (10 significant bits), accumulators int32",
        note="η and 1/B are shifts; no k×k matrix",
    )
    textbook = ResourceRow(
        method="textbook GHA (ΔW = η(y xᵀ − LT(y yᵀ)W)), float32",
        multiplies=k * c + k * c + tri + tri * c + k * c,  # Wx; y xᵀ; LT(yyᵀ); LT(yyᵀ)W; η·
        adds=k * (c - 1) + (tri - k) * c + k * c + k * c,  # Wx; LT(yyᵀ)W sums; subtract; W += ΔW
        shifts=0,
        memory_words=k * c + tri + k * c + c + k,  # W, LT(yyᵀ), ΔW, x, y
        bit_widths="float32 everywhere",
        note="η is a float multiply",
    )
    refit = refit_every or b
    eig_flops = 9 * c**3
    eigh_row = ResourceRow(
        method="eigh-based batch PCA, float64",
        multiplies=c * (c + 1) // 2 + c + math.ceil(eig_flops / 2 / refit),  # cov update; mean; eigh share
        adds=c * (c + 1) // 2 + 2 * c + math.ceil(eig_flops / 2 / refit),
        shifts=0,
        memory_words=c * (c + 1) // 2 + c + c * c + c,  # covariance (packed), mean, eigenvectors, eigenvalues
        bit_widths="float64 (eigh needs it for small eigengaps)",
        note=f"eigh every {refit} vectors, ≈9·C³ = {eig_flops} flops each, shared out per vector",
    )
    return [ours, textbook, eigh_row]


def fit_stream(
    features: np.ndarray,
    k: int,
    *,
    fixed_point: bool = False,
    batch_size: int = 64,
    epochs: int = 10,
    passes_per_halving: int = 2,
    seed: int = 0,
) -> StreamingPCA | FixedPointStreamingPCA:
    """Learn the top-``k`` channel subspace of ``features`` (N, H, W, C) by streaming GHA.

    The vectors are streamed ``epochs`` times in shuffled mini-batches of ``batch_size``; the rate is
    halved every ``passes_per_halving`` passes (a step schedule), so the last passes average out the
    noise of the constant-rate phase.
    """
    vectors = _as_vectors(features)
    batches = list(feature_batches(vectors, batch_size, seed=seed))
    if not batches:
        raise UsageError(
            f"an empty feature stream: {len(vectors)} feature vectors make no mini-batch of {batch_size}"
        )
    config = StreamConfig(
        k=k, batch_size=batch_size, anneal_every=passes_per_halving * len(batches), seed=seed
    )
    trainer: StreamingPCA | FixedPointStreamingPCA = (
        FixedPointStreamingPCA(vectors.shape[-1], config)
        if fixed_point
        else StreamingPCA(vectors.shape[-1], config)
    )
    trainer.fit(batches, epochs=epochs)
    return trainer
