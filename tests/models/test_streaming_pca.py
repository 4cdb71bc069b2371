"""Streaming PCA (GHA, float and fixed point): convergence against eigh, deployment, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import DivergenceError, UsageError
from models.feature_pca import FeaturePCA, cut_features, insert_pca
from models.streaming_pca import (
    FixedPointStreamingPCA,
    StreamConfig,
    StreamingPCA,
    explained_variance,
    feature_batches,
    fit_stream,
    principal_angles_deg,
    resource_table,
)
from models.training import accuracy

SMALL_CNN_CUT = "block2_pool"  # (8, 8, 32) features of the small CNN


def _synthetic(n: int = 8192, channels: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors (n, C) with well-separated variances along a random basis; returns (vectors, basis rows)."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((channels, channels)))
    scales = np.geomspace(4.0, 0.1, channels)  # distinct eigenvalues, clear gaps
    vectors = (rng.standard_normal((n, channels)) * scales) @ basis.T + 3.0  # offset: the mean is learnt
    return vectors.astype(np.float32), basis.T


@pytest.mark.parametrize("trainer", [StreamingPCA, FixedPointStreamingPCA])
def test_stream_trainer_finds_the_top_subspace(trainer):
    vectors, basis = _synthetic()
    config = StreamConfig(k=3, batch_size=32, anneal_every=128)
    model = trainer(vectors.shape[1], config).fit(list(feature_batches(vectors, 32)), epochs=4)
    assert principal_angles_deg(model.components, basis[:3])[-1] < 2.0
    assert np.allclose(np.linalg.norm(model.components, axis=1), 1.0, atol=0.02)  # GHA rows are unit
    assert np.allclose(model.mean, vectors.mean(axis=0), atol=0.1)
    assert model.converged
    assert model.samples == 4 * (len(vectors) // 32) * 32


def test_stream_fixed_point_state_is_int16_and_tracks_float():
    vectors, _ = _synthetic(n=2048)
    config = StreamConfig(k=4, batch_size=32)
    batches = list(feature_batches(vectors, 32))
    exact = StreamingPCA(vectors.shape[1], config).fit(batches)
    fixed = FixedPointStreamingPCA(vectors.shape[1], config).fit(batches)
    assert fixed.weights_int16.dtype == np.int16 and fixed.weights_int16.shape == (4, vectors.shape[1])
    assert principal_angles_deg(fixed.components, exact.components)[-1] < 3.0
    assert not StreamingPCA(vectors.shape[1], config).fit(batches[:3]).converged  # too early to tell


def test_stream_to_pca_deploys_like_batch_pca():
    vectors, _ = _synthetic(n=4096)
    learnt = fit_stream(vectors, 4, batch_size=32, epochs=8).to_pca()
    batch = FeaturePCA.fit(vectors, 4)
    assert learnt.k == 4 and learnt.components.shape == (4, vectors.shape[1])
    exact = batch.relative_error(vectors, quantize=False)
    assert learnt.relative_error(vectors, quantize=False) == pytest.approx(exact, rel=0.02)
    assert learnt.relative_error(vectors) == pytest.approx(batch.relative_error(vectors), rel=0.05)  # 8-bit
    assert learnt.explained_variance_ratio == pytest.approx(batch.explained_variance_ratio, rel=0.05)


def test_stream_converges_on_small_cnn_cut_features(trained_small_cnn, digits_data):
    """Issue 14's bar at k = 8: largest principal angle to eigh <= 5 deg, explained variance within 1%."""
    features = cut_features(trained_small_cnn, SMALL_CNN_CUT, digits_data.x_train[:512])
    reference = FeaturePCA.fit(features, 8)
    ev_ref = explained_variance(reference.components, features)
    for fixed_point in (False, True):
        learnt = fit_stream(features, 8, fixed_point=fixed_point, epochs=6)
        angle = principal_angles_deg(learnt.components, reference.components)[-1]
        ev = explained_variance(learnt.components, features)
        assert angle <= 5.0, f"fixed_point={fixed_point}: largest principal angle {angle:.2f} deg"
        assert abs(ev - ev_ref) / ev_ref <= 0.01
    # deployed (8-bit codes at the cut, learnt weights as they are): within 0.5 points of batch PCA
    streamed = insert_pca(trained_small_cnn, SMALL_CNN_CUT, learnt.to_pca())
    batch = insert_pca(trained_small_cnn, SMALL_CNN_CUT, reference)
    test_x, test_y = digits_data.x_test, digits_data.y_test
    assert abs(accuracy(streamed, test_x, test_y) - accuracy(batch, test_x, test_y)) <= 0.005


def test_stream_bad_input_gives_clear_errors():
    vectors, _ = _synthetic(n=1024, channels=6)
    with pytest.raises(UsageError, match="k <= 6"):
        StreamingPCA(6, StreamConfig(k=7))
    with pytest.raises(UsageError, match="empty feature stream"):
        fit_stream(np.zeros((0, 6), np.float32), 2)
    with pytest.raises(UsageError, match="empty feature stream"):
        StreamingPCA(6, StreamConfig(k=2)).fit([])
    with pytest.raises(UsageError, match="empty feature batch"):
        StreamingPCA(6, StreamConfig(k=2)).update(np.zeros((0, 6)))
    poisoned = vectors.copy()
    poisoned[5, 2] = np.nan
    with pytest.raises(UsageError, match="NaN"):
        fit_stream(poisoned, 2)
    with pytest.raises(UsageError, match="power-of-two batch"):
        FixedPointStreamingPCA(6, StreamConfig(k=2, batch_size=24))
    with pytest.raises(UsageError, match="has not seen any features"):
        StreamingPCA(6, StreamConfig(k=2)).to_pca()


@pytest.mark.parametrize("trainer", [StreamingPCA, FixedPointStreamingPCA])
def test_stream_unstable_learning_rate_is_detected(trainer):
    vectors, _ = _synthetic(n=2048, channels=6)
    model = trainer(6, StreamConfig(k=3, batch_size=32, lr_shift=0))  # η = 1 against λ₁ ≈ 16
    with pytest.raises(DivergenceError, match="diverged after"):
        model.fit(list(feature_batches(vectors * 8.0, 32)))


def test_stream_resource_table_counts():
    ours, textbook, eigh = resource_table(64, 16, batch_size=64)
    assert ours.multiplies == 3 * 16 * 64  # Wx, yᵢwᵢ, yᵢrᵢ
    assert textbook.multiplies > 2 * ours.multiplies  # the k(k+1)/2·C term of LT(yyᵀ)W
    assert ours.memory_words < 4 * 16 * 64 + 4 * 64  # O(k·C)
    assert eigh.memory_words > 64 * 64  # O(C²): the covariance and the eigenvectors
    assert "int16" in ours.bit_widths and "int32" in ours.bit_widths
