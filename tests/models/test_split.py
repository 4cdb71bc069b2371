"""Keras splits: head then tail (and any chain of segments) is bit-identical to the whole model."""

from __future__ import annotations

import numpy as np
import pytest

from models.graph import analyze
from models.split import head_model, segment_model, tail_model
from models.zoo import build_model, input_shape


def _sample_cuts(n_segments: int) -> list[int]:
    """Three cut indices spread over the chain (first quarter, middle, last quarter)."""
    return sorted({max(1, n_segments // 4), n_segments // 2, min(n_segments - 1, 3 * n_segments // 4)})


@pytest.mark.parametrize("name", ["small_cnn", "mobilenet_v2", "resnet50"])
def test_head_then_tail_is_bit_identical(name: str) -> None:
    model = build_model(name)
    graph = analyze(model)
    x = np.random.default_rng(1).random((2, *input_shape(name)), dtype=np.float32)
    whole = np.asarray(model(x, training=False))
    n = graph.num_segments
    cuts = range(1, n) if name == "small_cnn" else _sample_cuts(n)
    for k in cuts:
        head, tail = head_model(model, graph, k), tail_model(model, graph, k)
        out = np.asarray(tail(head(x, training=False), training=False))
        assert np.array_equal(out, whole), f"{name} cut {k}: max diff {np.abs(out - whole).max()}"


def test_chain_of_every_small_cnn_segment_is_bit_identical() -> None:
    model = build_model("small_cnn")
    graph = analyze(model)
    x = np.random.default_rng(2).random((3, 32, 32, 3), dtype=np.float32)
    y = x
    for k in range(graph.num_segments):
        segment = segment_model(model, graph, k, k + 1)
        y = np.asarray(segment(y, training=False))
        assert y.shape[1:] == graph.segments[k].output_shape[1:]
    assert np.array_equal(y, np.asarray(model(x, training=False)))


def test_segments_share_weights_with_the_model() -> None:
    model = build_model("small_cnn")
    graph = analyze(model)
    head = head_model(model, graph, 2)
    conv = model.get_layer("block1_conv")
    assert head.get_layer("block1_conv") is conv
    conv.kernel.assign(np.zeros(conv.kernel.shape, dtype=np.float32))
    x = np.random.default_rng(3).random((1, 32, 32, 3), dtype=np.float32)
    before_relu = np.asarray(head(x, training=False))
    # zero kernel, no bias: BN of zeros is a per-channel constant, so every pixel of a channel agrees
    assert np.allclose(before_relu, before_relu[:, :1, :1, :])


def test_graph_still_analyzes_after_splitting() -> None:
    model = build_model("small_cnn")
    graph = analyze(model)
    segment_model(model, graph, 1, 4)  # adds inbound nodes to the shared layers
    assert analyze(model).cut_layers == graph.cut_layers
