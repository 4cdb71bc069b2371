"""TFLite chains agree with the whole model, and the artifact cache makes re-exports free.

Tolerances: fp32 TFLite chains within 1e-5 relative (max |diff| / max |ref|) of the fp32 whole
``.tflite`` (and of the Keras model for the small CNN; 1e-4 for ImageNet models, where TFLite and
TensorFlow kernels drift apart over ~50 layers); int8 chains within 2 output quantization steps of the
int8 whole model (both sides of a cut are calibrated on the same activations, so they agree up to
rounding); for the small CNN the int8 whole model is within 5 % of the float output's range.
"""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import pytest

from models.bundle import read_manifest
from models.errors import CacheError, InvalidCutError, UsageError
from models.export import STATS, export_bundle
from models.graph import analyze
from models.runtime import SegmentChain, SegmentRunner, dequantize, quantize
from models.zoo import build_model, input_shape

FP32_RTOL = 1e-5
FP32_KERAS_RTOL = 1e-4
INT8_OUTPUT_STEPS = 2
INT8_BOUNDARY_FRACTION = 0.05


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(out - ref).max() / max(float(np.abs(ref).max()), 1e-12))


def _inputs(name: str, count: int, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((1, *input_shape(name)), dtype=np.float32) for _ in range(count)]


def _whole_int8(bundle: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    whole = SegmentRunner(bundle / "whole.tflite")
    assert whole.input_quant is not None and whole.output_quant is not None
    return dequantize(whole.run(quantize(x, whole.input_quant)), whole.output_quant), whole.output_quant.scale


@functools.cache
def _zoo_model(name: str) -> keras.Model:
    return build_model(name)


def _sample_cuts(name: str) -> tuple[str, ...]:
    """A sample of cut layers: two for MobileNetV2, one (mid-network block output) for ResNet-50."""
    cuts = analyze(_zoo_model(name)).cut_layers
    n = len(cuts)
    return (cuts[n // 3], cuts[2 * n // 3]) if name == "mobilenet_v2" else (cuts[n // 2],)


def _head_then_tail(chain: SegmentChain, x: np.ndarray, k: int) -> np.ndarray:
    """Run segments [0, k) and [k, n) as two separate calls (a device head and a server tail)."""
    head = chain.run(chain.prepare_input(x), 0, k).output
    return chain.finish_output(chain.run(head, k).output)


def test_small_cnn_fp32_every_cut_matches_keras(bundle_factory) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    chain = SegmentChain(bundle)
    model = build_model("small_cnn")
    assert len(chain) == analyze(model).num_segments == 9
    for x in _inputs("small_cnn", 3):
        ref = np.asarray(model(x, training=False))
        for k in range(1, len(chain)):
            assert _rel_err(_head_then_tail(chain, x, k), ref) <= FP32_RTOL, k
        assert _rel_err(SegmentRunner(bundle / "whole.tflite").run(x), ref) <= FP32_RTOL


def test_small_cnn_int8_every_cut_matches_int8_whole(bundle_factory) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    chain = SegmentChain(bundle)
    assert all(r.input_dtype == np.int8 and r.output_dtype == np.int8 for r in chain.runners)
    model = build_model("small_cnn")
    for x in _inputs("small_cnn", 4):
        whole, scale = _whole_int8(bundle, x)
        for k in range(1, len(chain)):
            assert np.abs(_head_then_tail(chain, x, k) - whole).max() <= INT8_OUTPUT_STEPS * scale + 1e-7, k
        ref = np.asarray(model(x, training=False))
        assert np.abs(whole - ref).max() <= INT8_BOUNDARY_FRACTION * np.ptp(ref)


def test_small_cnn_fp16_chain_close_to_keras(bundle_factory) -> None:
    chain = SegmentChain(bundle_factory("small_cnn", "fp16"))
    model = build_model("small_cnn")
    x = _inputs("small_cnn", 1)[0]
    assert _rel_err(chain.run_float(x).output, np.asarray(model(x, training=False))) <= 1e-2


def test_manifest_describes_the_files(bundle_factory) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    manifest = read_manifest(bundle, verify_hashes=True)
    assert manifest.model == "small_cnn" and manifest.quant == "int8"
    assert manifest.cut_layers == analyze(build_model("small_cnn")).cut_layers
    for prev, nxt in zip(manifest.segments, manifest.segments[1:], strict=False):
        assert prev.output.shape == nxt.input.shape and prev.output.dtype == "int8"
        assert prev.output.quant is not None and nxt.input.quant is not None
        # calibrated on the same activations: the two sides of a cut agree on the scale
        assert prev.output.quant.scale == pytest.approx(nxt.input.quant.scale, rel=1e-3)
    assert manifest.input.dtype == "float32" and manifest.input.shape == [1, 32, 32, 3]


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_imagenet_models_sampled_cuts_fp32(bundle_factory, name: str) -> None:
    cuts = _sample_cuts(name)
    bundle = bundle_factory(name, "fp32", cuts)
    chain = SegmentChain(bundle)
    assert [s.last_layer for s in chain.manifest.segments[:-1]] == list(cuts)
    x = _inputs(name, 1)[0]
    whole = SegmentRunner(bundle / "whole.tflite").run(x)
    ref = np.asarray(_zoo_model(name)(x, training=False))
    for k in range(1, len(chain)):
        out = _head_then_tail(chain, x, k)
        assert _rel_err(out, whole) <= FP32_RTOL, cuts[k - 1]
        # TFLite kernels vs TensorFlow kernels over ~50 layers: looser than chain vs whole
        assert _rel_err(out, ref) <= FP32_KERAS_RTOL, cuts[k - 1]


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_imagenet_models_sampled_cuts_int8(bundle_factory, name: str) -> None:
    cuts = _sample_cuts(name)
    bundle = bundle_factory(name, "int8", cuts)
    chain = SegmentChain(bundle)
    assert all(r.input_dtype == np.int8 for r in chain.runners)
    x = _inputs(name, 1)[0]
    whole, scale = _whole_int8(bundle, x)
    for k in range(1, len(chain)):
        # the boundary tensor uses the int8 range (BN stats are recalibrated, activations do not vanish);
        # MobileNetV2's random-weight softmax output, by contrast, is nearly flat
        assert np.ptp(chain.run(chain.prepare_input(x), 0, k).output.astype(np.int32)) >= 32
        assert np.abs(_head_then_tail(chain, x, k) - whole).max() <= INT8_OUTPUT_STEPS * scale + 1e-7


def test_second_export_is_a_cache_hit(tmp_path: Path) -> None:
    model = build_model("small_cnn", seed=11)
    export_bundle(model, "fp32", tmp_path / "a", cache_dir=tmp_path / "cache")
    conversions, hits = STATS.conversions, STATS.cache_hits
    manifest = export_bundle(model, "fp32", tmp_path / "b", cache_dir=tmp_path / "cache")
    assert STATS.conversions == conversions
    assert STATS.cache_hits == hits + manifest.num_segments + 1  # + whole.tflite
    first = read_manifest(tmp_path / "a")
    assert [s.sha256 for s in first.segments] == [s.sha256 for s in manifest.segments]


def _auto_named_model(seed: int) -> keras.Model:
    """A model whose layer names come from Keras' per-process counters (dense_3, re_lu_7, ...)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16,))
    x = keras.layers.ReLU()(keras.layers.Dense(8)(inputs))
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def test_cache_key_ignores_auto_generated_names_but_not_weights(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, second = _auto_named_model(5), _auto_named_model(5)
    assert first.layers[1].name != second.layers[1].name
    export_bundle(first, "fp32", tmp_path / "a", cache_dir=cache)
    conversions = STATS.conversions
    export_bundle(second, "fp32", tmp_path / "b", cache_dir=cache)
    assert STATS.conversions == conversions
    export_bundle(_auto_named_model(6), "fp32", tmp_path / "c", cache_dir=cache)
    assert STATS.conversions > conversions


def test_int8_calibration_inputs_are_part_of_the_key(tmp_path: Path) -> None:
    model = _auto_named_model(5)
    calibration = np.random.default_rng(0).random((8, 16), dtype=np.float32)
    export_bundle(model, "int8", tmp_path / "a", cache_dir=tmp_path / "cache", calibration_inputs=calibration)
    conversions = STATS.conversions
    export_bundle(
        model, "int8", tmp_path / "b", cache_dir=tmp_path / "cache", calibration_inputs=calibration * 3
    )
    assert STATS.conversions > conversions


def test_unwritable_cache_dir_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="not writable"):
        export_bundle("small_cnn", "fp32", tmp_path / "out", cache_dir=blocker / "cache")


def test_bad_quant_and_bad_cut_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="fp32, fp16, int8"):
        export_bundle("small_cnn", "int4", tmp_path / "out", cache_dir=tmp_path / "cache")
    with pytest.raises(InvalidCutError, match="nearest valid cuts"):
        export_bundle("small_cnn", "fp32", tmp_path / "out", cache_dir=tmp_path / "cache", cuts=["block1_bn"])
