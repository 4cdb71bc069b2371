"""Content fingerprints of a model's layers: architecture and weights, never auto-generated names.

Keras names layers ``conv2d_3`` or ``conv2d_17`` depending on how many layers the process built before,
so a cache keyed by names would miss across processes. Each layer's digest hashes its class, its config
with every ``name`` removed, the topological positions of its producers (relative to the layer, so a
segment hashes the same wherever it sits) and its weight bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from models.graph import LayerGraph

if TYPE_CHECKING:
    import keras

__all__ = ["LayerDigests", "digest_bytes", "layer_digests"]


def _strip_names(value: Any) -> Any:
    """The config with every ``name`` key removed, recursively (JSON-safe)."""
    if isinstance(value, dict):
        return {k: _strip_names(v) for k, v in sorted(value.items()) if k != "name"}
    if isinstance(value, list | tuple):
        return [_strip_names(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return repr(type(value).__name__)


def digest_bytes(*parts: bytes | str) -> str:
    """Hex SHA-256 of the parts, each length-prefixed so that concatenations cannot collide."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class LayerDigests:
    """Per-layer architecture and weight digests of one model, in the graph's topological order."""

    def __init__(self, architecture: list[str], weights: list[str]):
        self.architecture = architecture
        self.weights = weights

    def of_range(self, graph: LayerGraph, start: int, stop: int) -> str:
        """Digest of segments ``start .. stop-1``: their layers' architecture and weights + input shape."""
        first = graph.layer_index(graph.segments[start].first_layer)
        last = graph.layer_index(graph.segments[stop - 1].last_layer)
        in_shape = graph.input_shape if start == 0 else graph.segments[start - 1].output_shape
        parts = [json.dumps(list(in_shape))]
        for i in range(first, last + 1):
            parts += [self.architecture[i], self.weights[i]]
        return digest_bytes(*parts)

    def of_model(self) -> str:
        """Digest of the whole model (every layer)."""
        return digest_bytes(*self.architecture, *self.weights)


def layer_digests(model: keras.Model, graph: LayerGraph) -> LayerDigests:
    """Architecture and weight digests of every layer of ``model`` (positions as in ``graph.layers``)."""
    position = {node.name: i for i, node in enumerate(graph.layers)}
    layers = {layer.name: layer for layer in model.layers}
    architecture: list[str] = []
    weights: list[str] = []
    for i, node in enumerate(graph.layers):
        layer = layers[node.name]
        config = _strip_names(layer.get_config())
        relative_inputs = [i - position[src] for src in node.inputs]  # 1 = the previous layer
        architecture.append(
            digest_bytes(
                type(layer).__name__, json.dumps(config, sort_keys=True), json.dumps(relative_inputs)
            )
        )
        digest = hashlib.sha256()
        for w in layer.weights:
            array = np.ascontiguousarray(w.numpy())
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        weights.append(digest.hexdigest())
    return LayerDigests(architecture, weights)
