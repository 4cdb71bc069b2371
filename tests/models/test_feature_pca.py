"""PCA baseline: reconstruction error falls as k grows; the PCA model is a cut-point model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.errors import UsageError
from models.feature_pca import PCA_REDUCE_LAYER, FeaturePCA, cut_features, fit_cut_pca, insert_pca


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    """(64, 8, 8, 16) features of rank ~6 plus noise, ReLU'd like a real feature map."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((6, 16))
    weights = rng.standard_normal((64, 8, 8, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.7, 0.5])
    return np.maximum(weights @ basis + 0.05 * rng.standard_normal((64, 8, 8, 16)), 0).astype(np.float32)


def test_error_falls_as_k_grows(features):
    ks = [1, 2, 4, 8, 16]
    exact = [FeaturePCA.fit(features, k).relative_error(features, quantize=False) for k in ks]
    coded = [FeaturePCA.fit(features, k).relative_error(features) for k in ks]
    assert all(a > b for a, b in itertools.pairwise(exact))
    assert all(a > b for a, b in itertools.pairwise(coded))
    assert exact[-1] < 1e-10  # k = C reconstructs exactly before quantization
    assert coded[-1] < 1e-3  # 8-bit coefficients cost little
    ratios = [FeaturePCA.fit(features, k).explained_variance_ratio for k in ks]
    assert ratios == sorted(ratios) and abs(ratios[-1] - 1.0) < 1e-9


def test_codes_are_bytes_and_shapes(features):
    pca = FeaturePCA.fit(features, 4)
    codes = pca.encode(features)
    assert codes.dtype == np.uint8 and codes.shape == (64, 8, 8, 4)
    assert pca.decode(codes).shape == features.shape
    with pytest.raises(UsageError, match="k <= 16"):
        FeaturePCA.fit(features, 17)


def test_pca_model_matches_numpy_roundtrip_and_is_a_cut():
    from models.graph import analyze
    from models.zoo import build_model

    model = build_model("small_cnn", seed=0)
    x = np.random.default_rng(1).random((32, 32, 32, 3), dtype=np.float32)
    errors = []
    for k in (2, 8, 32):
        pca = fit_cut_pca(model, "block2_pool", x, k)
        feats = cut_features(model, "block2_pool", x)
        errors.append(pca.relative_error(feats))
        variant = insert_pca(model, "block2_pool", pca)
        assert tuple(variant.get_layer(PCA_REDUCE_LAYER).output.shape[1:]) == (8, 8, k)
        assert PCA_REDUCE_LAYER in analyze(variant).cut_layers
        restored = cut_features(variant, "pca_restore", x)  # ReLU of the reconstruction
        np.testing.assert_allclose(restored, np.maximum(pca.roundtrip(feats), 0), atol=2e-2)
    assert errors[0] > errors[1] > errors[2]
    full = insert_pca(model, "block2_pool", fit_cut_pca(model, "block2_pool", x, 32))
    ref = model.predict(x, verbose=0)
    np.testing.assert_allclose(full.predict(x, verbose=0), ref, atol=0.05 * np.abs(ref).max())
