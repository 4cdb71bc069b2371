"""Graph analysis of a functional Keras model: fusion-aware cut points and per-segment sizes.

A **cut point** is a layer whose single output tensor is the only tensor crossing the boundary after
it: a dominator of the model output (every path from the input to the output passes through it).
Cut points are **fusion-aware**: TFLite fuses Conv/DepthwiseConv/Dense with a following
BatchNormalization and activation, and Add with its activation, so no cut separates those. Between
consecutive cut points lies a **segment**; segment ``k`` maps tensor ``k`` to tensor ``k + 1``.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import InvalidCutError, ModelFileError

if TYPE_CHECKING:
    import keras

__all__ = ["LayerGraph", "LayerNode", "SegmentInfo", "analyze"]

# Layers whose output TFLite fuses with a following BatchNormalization / activation.
_FUSING_PRODUCERS = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "Conv2DTranspose",
        "Dense",
        "BatchNormalization",
        "Add",
    }
)
_ACTIVATIONS = frozenset({"ReLU", "Activation", "LeakyReLU", "PReLU", "ELU"})
_FUSED_CONSUMERS = _ACTIVATIONS | {"BatchNormalization"}
# Explicit padding only ever grows the tensor and belongs to the conv / pooling that consumes it.
_PADDINGS = frozenset({"ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"})
_PADDED_CONSUMERS = frozenset(
    {"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D"}
)


@dataclass
class LayerNode:
    """One layer of the model in topological order, with its producers and output tensor."""

    name: str
    class_name: str
    inputs: list[str]  # names of the layers whose outputs this layer consumes
    output_shape: tuple[int, ...]  # batch dimension set to 1
    dtype: str
    params: int
    macs: int  # multiply-accumulates for one input


@dataclass
class SegmentInfo:
    """Segment ``index`` covers ``layers`` (first_layer..last_layer); its output crosses the cut."""

    index: int
    first_layer: str
    last_layer: str
    output_shape: tuple[int, ...]  # batch dimension set to 1
    dtype: str
    out_bytes: int  # bytes of the output tensor for one input
    params: int
    macs: int
    layers: list[str] = field(default_factory=list)


@dataclass
class LayerGraph:
    """The layer DAG of a model, its cut layers and the segments between them."""

    model_name: str
    input_layer: str
    input_shape: tuple[int, ...]  # batch dimension set to 1
    layers: list[LayerNode]  # topological order, input layer first
    cut_layers: list[str]  # last layer of segments 0..n-2
    segments: list[SegmentInfo]
    rejected: dict[str, str]  # layer name -> why it is not a cut point

    @property
    def num_segments(self) -> int:
        return len(self.segments)

    def layer_index(self, name: str) -> int:
        """Topological position of layer ``name``."""
        for i, node in enumerate(self.layers):
            if node.name == name:
                return i
        raise InvalidCutError(f"model {self.model_name!r} has no layer named {name!r}")

    def check_cut(self, layer: str) -> int:
        """Index of the segment that ends at ``layer``; raises :class:`InvalidCutError` saying why not."""
        if layer in self.cut_layers:
            return self.cut_layers.index(layer)
        position = self.layer_index(layer)
        reason = self.rejected.get(layer, "it is the model output")
        cut_positions = [self.layer_index(c) for c in self.cut_layers]
        at = bisect.bisect_left(cut_positions, position)
        before = self.cut_layers[at - 1] if at > 0 else None
        after = self.cut_layers[at] if at < len(self.cut_layers) else None
        nearest = " and ".join(f"{c!r}" for c in (before, after) if c) or "none (the model has no cuts)"
        raise InvalidCutError(
            f"layer {layer!r} of {self.model_name!r} is not a cut point: {reason}; nearest valid cuts: {nearest}"
        )

    def segments_for_cuts(self, cuts: list[str]) -> list[tuple[int, int]]:
        """Segment ranges ``[start, stop)`` of a coarser chain that only cuts after the layers ``cuts``."""
        indices = sorted({self.check_cut(c) for c in cuts})
        bounds = [0, *(i + 1 for i in indices), self.num_segments]
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _model_nodes(model: keras.Model) -> list[Any]:
    """The model's own graph nodes in topological order (a layer may also belong to other models)."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:
        raise ModelFileError(f"model {model.name!r} is not a functional Keras model; it cannot be cut")
    order = {id(op): i for i, op in enumerate(model.operations)}
    nodes: list[Any] = []
    for depth in sorted(by_depth, reverse=True):  # depth 0 is the output
        nodes.extend(sorted(by_depth[depth], key=lambda n: order.get(id(n.operation), 0)))
    return nodes


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(1 if d is None else int(d) for d in tensor.shape)


def _macs(layer: Any, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one layer for one input (conv, depthwise conv and dense; 0 otherwise)."""
    kind = type(layer).__name__
    out_count = int(np.prod(out_shape))
    if kind in ("Conv1D", "Conv2D", "Conv3D") and in_shapes:
        kernel = int(np.prod(layer.kernel_size))
        groups = int(getattr(layer, "groups", 1) or 1)
        return out_count * kernel * in_shapes[0][-1] // groups
    if kind == "DepthwiseConv2D":
        return out_count * int(np.prod(layer.kernel_size))
    if kind == "SeparableConv2D" and in_shapes:
        depthwise = int(np.prod(in_shapes[0])) * int(np.prod(layer.kernel_size)) * layer.depth_multiplier
        return depthwise + out_count * in_shapes[0][-1] * layer.depth_multiplier
    if kind == "Dense" and in_shapes:
        return out_count * in_shapes[0][-1]
    return 0


def _dominators(layers: list[LayerNode], output: str) -> set[str]:
    """Layers that every input-to-output path passes through: the output's chain of dominators.

    ``layers`` is topologically sorted with the input first; the chain runs output, its immediate
    dominator, ..., the input (``networkx.immediate_dominators``, Cooper-Harvey-Kennedy).
    """
    import networkx as nx  # ~0.2 s; only analysis needs it

    graph = nx.DiGraph((src, node.name) for node in layers for src in node.inputs)
    graph.add_nodes_from(node.name for node in layers)
    idom = nx.immediate_dominators(graph, layers[0].name)
    chain = [output]
    while chain[-1] in idom and idom[chain[-1]] != chain[-1]:  # older networkx maps the start to itself
        chain.append(idom[chain[-1]])
    return set(chain)


def analyze(model: keras.Model) -> LayerGraph:
    """Build the :class:`LayerGraph` of a functional single-input, single-output Keras model."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(
            f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "only single-input, single-output models can be cut into a chain"
        )
    layers: list[LayerNode] = []
    seen: set[str] = set()
    for node in _model_nodes(model):
        layer = node.operation
        if layer.name in seen:
            raise ModelFileError(
                f"layer {layer.name!r} is called more than once (shared layer); such models cannot be cut"
            )
        seen.add(layer.name)
        inputs = [p.operation.name for p in node.parent_nodes]
        in_shapes = [_shape(t) for t in node.input_tensors]
        if len(node.output_tensors) != 1:
            raise ModelFileError(f"layer {layer.name!r} has {len(node.output_tensors)} outputs; expected one")
        out = node.output_tensors[0]
        out_shape = _shape(out)
        params = int(sum(int(np.prod(w.shape)) for w in layer.weights)) if inputs else 0
        layers.append(
            LayerNode(
                name=layer.name,
                class_name=type(layer).__name__,
                inputs=inputs,
                output_shape=out_shape,
                dtype=str(out.dtype),
                params=params,
                macs=_macs(layer, in_shapes, out_shape),
            )
        )
    consumers: dict[str, list[str]] = {}
    for node in layers:
        for src in node.inputs:
            consumers.setdefault(src, []).append(node.name)
    input_name = layers[0].name
    output_name = model.outputs[0]._keras_history.operation.name
    dominators = _dominators(layers, output_name)
    by_name = {node.name: node for node in layers}
    cut_layers: list[str] = []
    rejected: dict[str, str] = {}
    for node in layers:
        if node.name == input_name:
            rejected[node.name] = "it is the model input"
            continue
        if node.name == output_name:
            rejected[node.name] = "it is the model output (the last segment ends there anyway)"
            continue
        if node.name not in dominators:
            rejected[node.name] = (
                "other tensors cross the boundary after it (it lies inside a branch, e.g. a residual block)"
            )
            continue
        nexts = consumers.get(node.name, [])
        if node.class_name in _PADDINGS and any(by_name[n].class_name in _PADDED_CONSUMERS for n in nexts):
            rejected[node.name] = (
                f"it would separate padding {node.name!r} from the {by_name[nexts[0]].class_name} "
                f"{nexts[0]!r} that consumes it (the padded tensor is only larger)"
            )
            continue
        fused = [
            n
            for n in nexts
            if by_name[n].class_name in _FUSED_CONSUMERS and node.class_name in _FUSING_PRODUCERS
        ]
        if fused:
            rejected[node.name] = (
                f"it would separate {node.class_name} {node.name!r} from the {by_name[fused[0]].class_name} "
                f"{fused[0]!r} that TFLite fuses into it"
            )
            continue
        cut_layers.append(node.name)
    segments = _segments(layers, cut_layers, output_name)
    return LayerGraph(
        model_name=model.name,
        input_layer=input_name,
        input_shape=layers[0].output_shape,
        layers=layers,
        cut_layers=cut_layers,
        segments=segments,
        rejected=rejected,
    )


def _segments(layers: list[LayerNode], cut_layers: list[str], output_name: str) -> list[SegmentInfo]:
    ends = [*cut_layers, output_name]
    segments: list[SegmentInfo] = []
    current: list[LayerNode] = []
    for node in layers[1:]:
        current.append(node)
        if node.name == ends[len(segments)]:
            segments.append(
                SegmentInfo(
                    index=len(segments),
                    first_layer=current[0].name,
                    last_layer=node.name,
                    output_shape=node.output_shape,
                    dtype=node.dtype,
                    out_bytes=int(np.prod(node.output_shape)) * np.dtype(node.dtype).itemsize,
                    params=sum(n.params for n in current),
                    macs=sum(n.macs for n in current),
                    layers=[n.name for n in current],
                )
            )
            current = []
            if len(segments) == len(ends):
                break
    return segments
