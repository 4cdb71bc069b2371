"""Build Keras models for a range of segments, a head or a tail, sharing the original layers' weights.

The new model re-applies the original layer objects to a fresh ``keras.Input`` of the boundary
tensor's shape, so no weight is copied: training the head trains the original model too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.errors import InvalidCutError
from models.graph import LayerGraph, _model_nodes

if TYPE_CHECKING:
    import keras

__all__ = ["head_model", "segment_model", "tail_model"]


def segment_model(model: keras.Model, graph: LayerGraph, start: int, stop: int) -> keras.Model:
    """Segments ``start .. stop-1`` of ``model`` as one Keras model (tensor ``start`` -> tensor ``stop``)."""
    import keras

    n = graph.num_segments
    if not 0 <= start < stop <= n:
        raise InvalidCutError(f"segment range [{start}, {stop}) is outside 0..{n} for {graph.model_name!r}")
    wanted = {name for seg in graph.segments[start:stop] for name in seg.layers}
    if start == 0:
        boundary_layer = graph.input_layer
        shape = graph.input_shape[1:]
    else:
        prev = graph.segments[start - 1]
        boundary_layer = prev.last_layer
        shape = prev.output_shape[1:]
    boundary = keras.Input(shape, dtype=graph.segments[start - 1].dtype if start else None, name="boundary")
    values: dict[int, Any] = {}  # id(KerasTensor of the original graph) -> tensor of the new graph
    for node in _model_nodes(model):
        layer = node.operation
        if layer.name == boundary_layer:
            values[id(node.output_tensors[0])] = boundary
            continue
        if layer.name not in wanted:
            continue
        args, kwargs = node.arguments.fill_in(values)
        values[id(node.output_tensors[0])] = layer(*args, **kwargs)
    last = graph.segments[stop - 1]
    out_node = next(n for n in _model_nodes(model) if n.operation.name == last.last_layer)
    output = values[id(out_node.output_tensors[0])]
    return keras.Model(boundary, output, name=f"{graph.model_name}_seg{start:03d}_{stop:03d}")


def head_model(model: keras.Model, graph: LayerGraph, k: int) -> keras.Model:
    """Segments ``0 .. k-1``: the part that runs before cut ``k`` (on the phone)."""
    return segment_model(model, graph, 0, k)


def tail_model(model: keras.Model, graph: LayerGraph, k: int) -> keras.Model:
    """Segments ``k .. n-1``: the part that runs after cut ``k`` (on the server)."""
    return segment_model(model, graph, k, graph.num_segments)
