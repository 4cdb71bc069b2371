"""Cut points are single-tensor dominators of the output and never split a fused op group."""

from __future__ import annotations

import keras
import pytest

from models.errors import InvalidCutError
from models.graph import LayerGraph, analyze
from models.zoo import build_model

_FUSING = {"Conv2D", "DepthwiseConv2D", "Dense", "BatchNormalization", "Add"}
_FUSED_AFTER = {"BatchNormalization", "ReLU", "Activation"}


@pytest.fixture(scope="module")
def graphs() -> dict[str, LayerGraph]:
    return {name: analyze(build_model(name)) for name in ("small_cnn", "mobilenet_v2", "resnet50")}


def test_small_cnn_cuts_after_every_fused_block(graphs: dict[str, LayerGraph]) -> None:
    graph = graphs["small_cnn"]
    assert graph.cut_layers == [
        "block1_relu",
        "block1_pool",
        "block2_relu",
        "block2_pool",
        "block3_relu",
        "block3_pool",
        "flatten",
        "fc1_relu",
    ]
    assert [s.last_layer for s in graph.segments[:-1]] == graph.cut_layers
    assert graph.segments[-1].last_layer == "logits"
    assert graph.segments[0].output_shape == (1, 32, 32, 16)
    assert graph.segments[0].out_bytes == 32 * 32 * 16 * 4
    # block1_conv: 3x3 kernel, 3 -> 16 channels on 32x32 outputs
    assert graph.segments[0].macs == 32 * 32 * 16 * 3 * 3 * 3


def test_resnet50_cuts_are_block_outputs_only(graphs: dict[str, LayerGraph]) -> None:
    cuts = graphs["resnet50"].cut_layers
    stem = ["conv1_relu", "pool1_pool"]
    blocks = [c for c in cuts if c not in stem and c != "avg_pool"]
    assert cuts[:2] == stem and cuts[-1] == "avg_pool"
    assert all(c.endswith("_out") for c in blocks), blocks
    assert len(blocks) == 3 + 4 + 6 + 3  # every bottleneck block of ResNet-50, no cut inside one


@pytest.mark.parametrize("name", ["small_cnn", "mobilenet_v2", "resnet50"])
def test_no_cut_separates_fused_ops_and_every_cut_is_a_dominator(
    graphs: dict[str, LayerGraph], name: str
) -> None:
    graph = graphs[name]
    by_name = {node.name: node for node in graph.layers}
    position = {node.name: i for i, node in enumerate(graph.layers)}
    for cut in graph.cut_layers:
        node = by_name[cut]
        consumers = [n for n in graph.layers if cut in n.inputs]
        if node.class_name in _FUSING:
            assert not any(c.class_name in _FUSED_AFTER for c in consumers), cut
        # dominator: no edge jumps over the cut
        assert not any(
            position[src] < position[cut] < position[n.name] for n in graph.layers for src in n.inputs
        )


@pytest.mark.parametrize("name", ["small_cnn", "mobilenet_v2", "resnet50"])
def test_segments_partition_the_layers_and_their_params(graphs: dict[str, LayerGraph], name: str) -> None:
    graph = graphs[name]
    covered = [layer for seg in graph.segments for layer in seg.layers]
    assert covered == [node.name for node in graph.layers[1:]]
    assert sum(s.params for s in graph.segments) == build_model(name).count_params()


def test_not_a_cut_inside_a_residual_block_names_the_nearest_cuts(graphs: dict[str, LayerGraph]) -> None:
    with pytest.raises(InvalidCutError) as info:
        graphs["resnet50"].check_cut("conv3_block2_2_relu")
    message = str(info.value)
    assert "inside a branch" in message
    assert "'conv3_block1_out' and 'conv3_block2_out'" in message


def test_not_a_cut_between_conv_and_batch_norm_says_so(graphs: dict[str, LayerGraph]) -> None:
    with pytest.raises(
        InvalidCutError, match=r"from the BatchNormalization 'block2_bn'.*'block1_pool' and 'block2_relu'"
    ):
        graphs["small_cnn"].check_cut("block2_conv")


def test_unknown_layer_and_valid_cut(graphs: dict[str, LayerGraph]) -> None:
    graph = graphs["small_cnn"]
    assert graph.check_cut("block2_pool") == 3
    with pytest.raises(InvalidCutError, match="no layer named 'nope'"):
        graph.check_cut("nope")
    assert graph.segments_for_cuts(["block2_pool", "flatten"]) == [(0, 4), (4, 7), (7, 9)]


def test_branching_model_only_cuts_outside_the_branch() -> None:
    x = inputs = keras.Input((8,), name="in")
    x = keras.layers.Dense(8, name="stem")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    left = keras.layers.Dense(8, name="left")(x)
    right = keras.layers.Dense(8, name="right")(x)
    x = keras.layers.Concatenate(name="join")([left, right])
    outputs = keras.layers.Dense(2, name="head")(x)
    graph = analyze(keras.Model(inputs, outputs))
    assert graph.cut_layers == ["stem_relu", "join"]
    assert graph.rejected["stem"].startswith("it would separate Dense 'stem' from the ReLU")
