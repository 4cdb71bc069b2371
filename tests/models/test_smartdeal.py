"""SmartDeal: power-of-two rounding and its STE gradient, exact fold and rebuild, export, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.errors import InvalidCutError, UsageError
from models.smartdeal import (
    SmartDealConfig,
    fold_smartdeal,
    from_matrix,
    layer_shape,
    pow2_round,
    reconstruct,
    smartdeal_layers,
    to_matrix,
    to_smartdeal,
)
from models.smartdeal_artifact import decode_layer, encode_layer, read_artifact, rebuild_segments

C_HAND = np.array([0.3, -0.7, 0.05, 0.75, -0.0625, 1.9, 0.0, -0.12], np.float32)
# threshold 0.1: |c| < 0.1 -> 0; else nearest power of two (ties up), exponent clamped to [-3, 0]
Q_HAND = np.array([0.25, -0.5, 0.0, 1.0, 0.0, 1.0, 0.0, -0.125], np.float32)


def test_pow2_round_matches_hand_values() -> None:
    np.testing.assert_array_equal(pow2_round(C_HAND, 0.1, -3, 0), Q_HAND)
    # 0.75 is the tie between 0.5 and 1: up; 0.3 is nearer 0.25 than 0.5.
    assert pow2_round(np.float32([0.375]), 0.0, -7, 0)[0] == 0.5


def test_keras_rounding_and_ste_gradient_match_hand_values() -> None:
    import tensorflow as tf

    from models.smartdeal_layer import ste_pow2

    c = tf.Variable(C_HAND)
    upstream = tf.constant(np.arange(1, 9, dtype=np.float32))
    mask = tf.constant([1, 1, 1, 1, 1, 1, 1, 0], tf.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(ste_pow2(c, 0.1, -3, 0) * mask * upstream)
    np.testing.assert_array_equal(ste_pow2(c, 0.1, -3, 0).numpy(), Q_HAND)
    # Straight through: d y / d c = upstream * mask (pruned-by-threshold entries still get it; masked do not).
    np.testing.assert_array_equal(tape.gradient(y, c).numpy(), [1, 2, 3, 4, 5, 6, 7, 0])


def _tiny() -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    x = inp = keras.Input((12, 12, 3), name="input")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.ReLU(name="r2")(x)
    x = layers.Conv2D(12, 1, name="pw")(x)
    x = layers.ReLU(name="r3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(5, name="fc")(x)
    model = keras.Model(inp, x, name="tiny")
    bn = model.get_layer("bn1")  # non-trivial statistics, so folding BN into B is exercised
    rng = np.random.default_rng(0)
    bn.set_weights(
        [rng.uniform(0.5, 2, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8), rng.uniform(0.5, 2, 8)]
    )
    return model


@pytest.fixture(scope="module")
def sd_model() -> Any:
    return to_smartdeal(_tiny(), SmartDealConfig(threshold=0.1))


def test_layouts_round_trip_and_shapes() -> None:
    model = _tiny()
    for name in ("c1", "dw", "pw", "fc"):
        layer = model.get_layer(name)
        shape = layer_shape(layer, SmartDealConfig())
        kernel = layer.kernel.numpy()
        np.testing.assert_array_equal(from_matrix(to_matrix(kernel, shape), shape), kernel)
    assert layer_shape(model.get_layer("c1"), SmartDealConfig()).basis == 3  # kw of a 3x3 conv


def test_fold_is_exact_and_matches_the_sd_model(sd_model: Any) -> None:
    folded = fold_smartdeal(sd_model)
    assert type(folded.get_layer("bn1")).__name__ == "Identity"  # folded into c1's bases and bias
    for layer in smartdeal_layers(sd_model):
        if layer.name == "c1":
            continue
        np.testing.assert_array_equal(folded.get_layer(layer.name).kernel.numpy(), layer.folded_kernel())
        c = layer.quantized_c()
        nz = np.abs(c[c != 0])
        assert np.all(np.frexp(nz)[0] == 0.5)  # every coefficient a power of two
    x = np.random.default_rng(0).random((4, 12, 12, 3), dtype=np.float32)
    np.testing.assert_allclose(folded.predict(x, verbose=0), sd_model.predict(x, verbose=0), atol=2e-3)


def test_encode_decode_is_exact(sd_model: Any) -> None:
    for layer in smartdeal_layers(sd_model):
        c, basis = layer.quantized_c(), layer.basis16()
        c2, basis2 = decode_layer(encode_layer(c, basis, -7, 4), layer.shape, -7, 4)
        np.testing.assert_array_equal(c2, c)
        np.testing.assert_array_equal(basis2, basis)
        assert reconstruct(c2, basis2).tobytes() == reconstruct(c, basis).tobytes()


def test_export_rebuilds_segments_bit_exactly_and_matches_keras(sd_model: Any, tmp_path: Path) -> None:
    from models.runtime import SegmentChain
    from models.smartdeal_export import export_smartdeal

    bundle = tmp_path / "bundle"
    manifest, report = export_smartdeal(
        sd_model, bundle, tmp_path / "tiny.sdw", cuts=["r2"], cache_dir=tmp_path / "c"
    )
    assert report.layers == 4 and not report.layers_left_dense
    assert report.sd_payload_bytes < report.kernel_fp32_bytes
    blob = (tmp_path / "tiny.sdw").read_bytes()
    header, _ = read_artifact(blob)
    rebuilt = rebuild_segments(blob)
    assert set(rebuilt) == {s.file for s in manifest.segments}
    for file, data in rebuilt.items():
        assert data == (bundle / file).read_bytes()
    # The rebuilt segments compute what the Keras SD model computes.
    for file, data in rebuilt.items():
        (bundle / file).write_bytes(data)
    chain = SegmentChain(bundle, manifest=manifest)
    x = np.random.default_rng(1).random((1, 12, 12, 3), dtype=np.float32)
    out = chain.run(chain.prepare_input(x), 0, len(chain)).output
    np.testing.assert_allclose(out, sd_model.predict(x, verbose=0), atol=2e-3)
    assert header["code_bits"] == 4


def test_bad_input_errors() -> None:
    model = _tiny()
    with pytest.raises(UsageError, match="does not divide the fan-in"):
        to_smartdeal(model, SmartDealConfig(basis=5))
    with pytest.raises(UsageError, match="threshold must be in"):
        SmartDealConfig(threshold=1.5)
    with pytest.raises(InvalidCutError, match="not a cut point"):
        to_smartdeal(model, cut="bn1")
    import keras

    inp = keras.Input((8, 8, 3))
    sep = keras.Model(inp, keras.layers.SeparableConv2D(4, 3, name="sep")(inp))
    with pytest.raises(UsageError, match=r"SeparableConv2D.*supported: Conv2D, DepthwiseConv2D, Dense"):
        to_smartdeal(sep)


def test_export_cli_writes_bundle_and_artifact_from_a_saved_sd_model(
    sd_model: Any, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from harness.cli import main

    path = tmp_path / "tiny_sd.keras"
    sd_model.save(path)
    out = tmp_path / "bundle"
    base = [
        "export",
        str(path),
        "--out",
        str(out),
        "--cut",
        "r2",
        "--no-whole",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert main([*base, "--smartdeal", "tiny.sdw"]) == 0
    text = capsys.readouterr().out
    assert (out / "tiny.sdw").is_file() and "smaller; 4 SD layers" in text
    assert main([*base, "--quant", "int8", "--smartdeal", "tiny.sdw"]) == 2
    assert "--smartdeal needs --quant fp32" in capsys.readouterr().err
