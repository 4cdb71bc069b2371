"""Response bodies of the JSON endpoints (the tensor endpoints speak ``.npy``, never JSON floats)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.bundle import TensorSpec

__all__ = ["Health", "LoadReport", "ModelDetail", "ModelLoad", "ModelSummary", "SegmentSummary"]


class Health(BaseModel):
    status: str = "ok"
    models: list[str]
    failed: dict[str, str] = Field(default_factory=dict, description="Bundles that did not load, and why.")
    backend: str = Field(description="TFLite interpreter in use: litert, tflite_runtime or tf.lite.")
    pid: int
    tensorflow_imported: bool


class SegmentSummary(BaseModel):
    index: int
    first_layer: str
    last_layer: str
    input: TensorSpec
    output: TensorSpec
    params: int
    macs: int


class ModelSummary(BaseModel):
    name: str = Field(description="Served name (the bundle's folder name); use it in URLs.")
    model: str
    quant: str
    num_segments: int
    cut_layers: list[str] = Field(description="Last layer of segments 0..n-2: the cut points.")
    input: TensorSpec = Field(description="Float model input (segment 0).")
    output: TensorSpec = Field(description="Float model output.")


class ModelDetail(ModelSummary):
    segments: list[SegmentSummary]
    has_whole_model: bool


class ModelLoad(BaseModel):
    in_flight: int = Field(description="Inferences running now.")
    queued: int = Field(description="Inferences waiting for a free interpreter chain.")
    pool_size: int
    utilization: float = Field(description="Busy fraction of the chains over the window (0..1).")
    recent_compute_ms_median: float | None
    served: int = Field(default=0, description="Inferences answered since the server started.")
    unbatchable_segments: list[int] | None = Field(
        default=None,
        description="With dynamic batching on: segments that fix the batch dimension (ranges touching "
        "them run unbatched); null when batching is off.",
    )


class LoadReport(BaseModel):
    in_flight: int
    queued: int
    pool_size: int = Field(description="Interpreter chains over all models.")
    utilization: float = Field(description="Busy fraction of all chains over the window (0..1).")
    window_s: float
    pid: int
    models: dict[str, ModelLoad]
    workers: int = Field(default=1, description="Worker processes whose load is summed here.")
    served: int = Field(default=0, description="Inferences answered since start, over all workers.")
