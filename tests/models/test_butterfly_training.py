"""Butterfly on real data (digits): bytes vs accuracy, and the exported variant vs its Keras model.

One module fixture trains the small CNN (4 epochs) and its butterfly variant (c' = 8 at block2_pool,
2 more epochs from the base weights), with fixed seeds on a fixed held-out split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.butterfly import REDUCE_LAYER, butterfly_cut_bytes, insert_butterfly
from models.datasets import load_digits
from models.training import TrainConfig, accuracy, train_classifier

CUT = "block2_pool"  # (8, 8, 32) float32 = 8192 bytes
STEP = 6.0 / 255  # quantization step of the ReLU6 butterfly output


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    """(base after 4 epochs, base after 4+2 epochs, butterfly after 4+2 epochs), all seeded."""
    import keras

    from models.zoo import build_model

    base = build_model("small_cnn", seed=0)
    train_classifier(base, digits, TrainConfig(epochs=4, seed=0))
    butterfly = insert_butterfly(base, CUT, 8)
    longer = keras.models.clone_model(base)
    longer.set_weights(base.get_weights())
    train_classifier(longer, digits, TrainConfig(epochs=2, seed=0))  # the base model trained the same way
    train_classifier(butterfly, digits, TrainConfig(epochs=2, seed=0))
    return base, longer, butterfly


def test_butterfly_sends_16x_fewer_bytes_within_2_points(trained, digits):
    base, longer, butterfly = trained
    raw_fp32 = int(np.prod(base.get_layer(CUT).output.shape[1:])) * 4
    assert raw_fp32 / butterfly_cut_bytes(butterfly) >= 16
    acc_base = accuracy(base, digits.x_test, digits.y_test)
    acc_longer = accuracy(longer, digits.x_test, digits.y_test)
    acc_butterfly = accuracy(butterfly, digits.x_test, digits.y_test)
    assert acc_base > 0.9 and acc_longer > 0.9  # the base model really learnt the digits
    assert acc_butterfly >= max(acc_base, acc_longer) - 0.02


@pytest.fixture(scope="module")
def bundles(trained, digits, tmp_path_factory, artifact_cache_dir):
    from models.export import export_bundle

    butterfly = trained[2]
    root = tmp_path_factory.mktemp("butterfly-bundles")
    for quant in ("fp32", "int8"):
        export_bundle(
            butterfly,
            quant,
            root / f"small_cnn_butterfly8-{quant}",
            cache_dir=artifact_cache_dir,
            calibration_inputs=digits.x_train[:64],
            include_whole=False,
            cuts=[CUT, REDUCE_LAYER],
            model_name="small_cnn_butterfly8",
        )
    return root


def _keras_outputs(model, layer, x):
    import keras

    head = keras.Model(model.inputs, model.get_layer(layer).output)
    return head.predict(x, verbose=0), model.predict(x, verbose=0)


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_exported_butterfly_matches_keras(trained, digits, bundles, quant):
    from models.runtime import SegmentChain

    butterfly = trained[2]
    chain = SegmentChain(bundles / f"small_cnn_butterfly8-{quant}")
    k = chain.manifest.cut_layers.index(REDUCE_LAYER) + 1  # segments [0, k) end at the butterfly
    sent = chain.manifest.segments[k - 1].output
    x = digits.x_test[:24]
    ref_cut, ref_out = _keras_outputs(butterfly, REDUCE_LAYER, x)
    cut_values, outputs = [], []
    for image in x:
        head = chain.run(chain.prepare_input(image[None]), 0, k)
        cut_values.append(chain.finish_output(head.output, k)[0])
        outputs.append(chain.finish_output(chain.run(head.output, k).output)[0])
    cut_values = np.stack(cut_values)
    outputs = np.stack(outputs)
    if quant == "fp32":
        assert sent.dtype == "float32"
        # Same 8-bit grid; conv rounding differences may flip a code at a tie by one step.
        assert np.max(np.abs(cut_values - ref_cut)) <= STEP + 1e-5
        assert np.mean(np.abs(cut_values - ref_cut) > 1e-5) < 0.01
        np.testing.assert_allclose(outputs, ref_out, atol=0.05 * np.abs(ref_out).max())
        assert np.array_equal(outputs.argmax(-1), ref_out.argmax(-1))
    else:
        assert sent.dtype == "int8" and sent.nbytes == butterfly_cut_bytes(butterfly)  # 1 byte per value
        tol = 2 * max(STEP, sent.quant.scale)
        assert np.max(np.abs(cut_values - ref_cut)) <= tol + 0.1 * np.abs(ref_cut).max()
        assert np.mean(np.abs(cut_values - ref_cut) <= tol) > 0.95
        assert np.mean(outputs.argmax(-1) == ref_out.argmax(-1)) >= 0.9


def test_server_runs_the_butterfly_tail(trained, digits, bundles):
    from models.runtime import SegmentChain
    from server.background import BackgroundServer
    from server.client import CloudClient
    from server.settings import Settings

    name = "small_cnn_butterfly8-int8"
    chain = SegmentChain(bundles / name)
    k = chain.manifest.cut_layers.index(REDUCE_LAYER) + 1
    x = digits.x_test[:8]
    _, ref_out = _keras_outputs(trained[2], REDUCE_LAYER, x)
    with (
        BackgroundServer(Settings(bundle_dir=Path(bundles), pool_size=1)) as server,
        CloudClient(server.base_url) as cloud,
    ):
        served = {m["name"] for m in cloud.models()}
        assert name in served
        agree = 0
        for i, image in enumerate(x):
            head = chain.run(chain.prepare_input(image[None]), 0, k).output  # int8 (1, 8, 8, 8): the device
            result = cloud.infer(name, head, from_segment=k, dequantize=True)
            local = chain.finish_output(chain.run(head, k).output)
            np.testing.assert_array_equal(result.output, local)  # the server computes the same tail
            assert result.request_bytes < 8 * 8 * 8 + 256  # int8 tensor + .npy header
            agree += int(result.output.argmax()) == int(ref_out[i].argmax())
    assert agree >= 7  # of 8: int8 predictions agree with the Keras model


def test_split_latency_of_the_butterfly(trained, digits, tmp_path, artifact_cache_dir):
    from models.butterfly_study import measure_split_latency

    device_ms, cloud_ms = measure_split_latency(
        trained[2], REDUCE_LAYER, tmp_path / "b", runs=5, cache_dir=artifact_cache_dir,
        calibration=digits.x_train[:16],
    )  # fmt: skip
    assert device_ms > 0 and cloud_ms > 0
    assert sorted(p.name for p in (tmp_path / "b").glob("*.tflite")) == [
        "segment_000.tflite",
        "segment_001.tflite",
    ]


def test_emulated_device_head_and_server_tail_match_keras(trained, digits, bundles):
    """The full split: head on the emulated Android device over ADB, 8-bit cut tensor to the server."""
    from harness.devices.adb import AdbDevice
    from harness.emulator import EmulatedDevice
    from models.runtime import SegmentChain
    from server.background import BackgroundServer
    from server.client import CloudClient
    from server.settings import Settings

    name = "small_cnn_butterfly8-int8"
    bundle = bundles / name
    chain = SegmentChain(bundle)
    k = chain.manifest.cut_layers.index(REDUCE_LAYER) + 1
    x = digits.x_test[:4]
    ref_cut, ref_out = _keras_outputs(trained[2], REDUCE_LAYER, x)
    with (
        EmulatedDevice("generic-phone") as emulated,
        BackgroundServer(Settings(bundle_dir=Path(bundles), pool_size=1)) as server,
        CloudClient(server.base_url) as cloud,
    ):
        device = AdbDevice(emulated.serial, power_spec=emulated.spec)
        for i, image in enumerate(x):
            head, segment_ms, _ = device.run_chain(bundle, list(range(k)), chain.prepare_input(image[None]))
            assert head.dtype == np.int8 and head.shape == (1, 8, 8, 8) and len(segment_ms) == k
            np.testing.assert_array_equal(head, chain.run(chain.prepare_input(image[None]), 0, k).output)
            sent = chain.finish_output(head, k)[0]
            assert np.mean(np.abs(sent - ref_cut[i]) <= 2 * STEP) > 0.95
            result = cloud.infer(name, head, from_segment=k, dequantize=True)
            assert np.argmax(result.output) == np.argmax(ref_out[i])
