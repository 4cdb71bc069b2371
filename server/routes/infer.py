"""``POST /v1/models/{name}/infer``: run segments ``from_segment .. to_segment-1`` on one ``.npy`` tensor.

The body is the tensor entering segment ``from_segment`` (its dtype, or float32 for an int8 segment,
which the server then quantizes); the response is the tensor leaving segment ``to_segment - 1`` in that
segment's dtype (``dequantize=true`` returns float32). ``Server-Timing`` says where the time went
(``parse``, ``queue``, ``compute``, ms; ``segment_timings=true`` adds ``X-Segment-Ms``); for int8 outputs ``X-Tensor-Scale`` / ``X-Tensor-Zero-Point``
carry the quantization.

A request for segment 0 may instead send the photo as an ``image/jpeg`` body (what a real app uploads):
the server decodes it to the model input (:mod:`server.jpeg`) and reports the decode time as
``decode`` in ``Server-Timing``; it counts as server time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.datastructures import QueryParams

from server import jpeg, wire
from server.metrics import Metrics
from server.pool import ModelPool, QueueFullError, TensorMismatchError
from server.problems import ERROR_RESPONSES, ApiError
from server.routes.deps import check_token, lookup_pool
from server.settings import Settings

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["infer"])

_NPY_BODY = {
    "requestBody": {
        "required": True,
        "description": "One tensor in NumPy .npy format (optionally Content-Encoding: gzip or zstd).",
        "content": {
            wire.CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
            jpeg.CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_INFER_PARAMETERS = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "Served model name."},
        _query("from_segment", {"type": "integer"}, "First segment to run (its input is the body).",
               required=True),
        _query("to_segment", {"anyOf": [{"type": "integer"}, {"type": "null"}]},
               "Stop before this segment (default: run to the end)."),
        _query("dequantize", {"type": "boolean", "default": False},
               "Return float32 even if the segment outputs int8."),
        _query("segment_timings", {"type": "boolean", "default": False},
               "Add `X-Segment-Ms`: each segment's compute time (ms), comma-separated."),
    ],
}  # fmt: skip

_INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {wire.CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "description": "The output tensor as .npy.",
    },
    **ERROR_RESPONSES["infer"],
}


@router.post(
    "/{name}/infer",
    response_class=Response,
    responses=_INFER_RESPONSES,
    openapi_extra=_NPY_BODY | _INFER_PARAMETERS,
)  # fmt: skip
async def infer(request: Request) -> Response:
    """Run a contiguous range of the model's segments on the request tensor.

    The hot path of the server, so it reads its parameters itself instead of through FastAPI's
    dependency injection (which costs ~0.3 ms of CPU per request); they are documented in the schema
    through ``openapi_extra``, and validated here with the same error shapes.
    """
    t0 = time.perf_counter()
    state = request.app.state
    settings: Settings = state.settings
    metrics: Metrics = state.metrics
    check_token(settings, request.headers.get("authorization"))
    pool = lookup_pool(state.registry, request.path_params["name"])
    query = request.query_params
    from_segment = _int_param(query, "from_segment")
    if from_segment is None:
        raise ApiError(400, "bad_request", "invalid request: query.from_segment: Field required")
    to_segment = _int_param(query, "to_segment")
    dequantize = _bool_param(query, "dequantize")
    segment_timings = _bool_param(query, "segment_timings")
    stop = _check_range(pool, from_segment, to_segment)
    body = await _read_body(request, settings)
    decode_ms = None  # ms, JPEG bodies only
    if _media_type(request) == jpeg.CONTENT_TYPE:
        x, decode_ms = _decode_jpeg(body, pool, from_segment)
    else:
        x = _parse_tensor(body, request.headers.get("content-encoding", ""), settings)
    try:
        x = pool.coerce_input(x, from_segment)
    except TensorMismatchError as exc:
        raise ApiError(422, "tensor_mismatch", str(exc)) from None
    parse_ms = (time.perf_counter() - t0) * 1e3
    try:
        run = await pool.infer(x, from_segment, stop, dequantize=dequantize)
    except QueueFullError as exc:
        raise ApiError(503, "queue_full", str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    payload = wire.encode_npy(run.output)
    metrics.compute.labels(pool.name).observe(run.compute_ms / 1e3)
    metrics.queue.labels(pool.name).observe(run.queue_ms / 1e3)
    metrics.tensor_bytes.labels("request").inc(len(body))
    metrics.tensor_bytes.labels("response").inc(len(payload))
    headers = {
        "Server-Timing": f"parse;dur={parse_ms:.3f}, queue;dur={run.queue_ms:.3f}, compute;dur={run.compute_ms:.3f}"
    }
    if decode_ms is not None:
        headers["Server-Timing"] += f", decode;dur={decode_ms:.3f}"
    if segment_timings:
        headers["X-Segment-Ms"] = ",".join(f"{ms:.3f}" for ms in run.segment_ms)
    quant = pool.chains[0].runners[stop - 1].output_quant
    if quant is not None and not dequantize:
        headers["X-Tensor-Scale"] = repr(quant.scale)
        headers["X-Tensor-Zero-Point"] = str(quant.zero_point)
    return Response(payload, media_type=wire.CONTENT_TYPE, headers=headers)


def _int_param(query: QueryParams, key: str) -> int | None:
    value = query.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400, "bad_request", f"invalid request: query.{key}: {value!r} is not an integer"
        ) from None


def _bool_param(query: QueryParams, key: str) -> bool:
    value = query.get(key, "false").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, "bad_request", f"invalid request: query.{key}: {value!r} is not a boolean")


def _check_range(pool: ModelPool, start: int, stop: int | None) -> int:
    n = pool.num_segments
    end = n if stop is None else stop
    if not 0 <= start < end <= n:
        raise ApiError(
            404,
            "unknown_segment_range",
            f"{pool.name} has segments 0..{n - 1}: from_segment={start}, to_segment={stop} is not a "
            f"range inside them (need 0 <= from_segment < to_segment <= {n})",
        )
    return end


async def _read_body(request: Request, settings: Settings) -> bytes:
    """The raw body, refusing wrong content types (415) and bodies over the limit (413) early."""
    content_type = _media_type(request)
    if content_type not in (wire.CONTENT_TYPE, jpeg.CONTENT_TYPE):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the tensor as {wire.CONTENT_TYPE} (NumPy .npy bytes; or the photo as {jpeg.CONTENT_TYPE} "
            f"to segment 0), not {content_type or 'no content type'}",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in (*wire.ENCODINGS, "x-gzip"):
        raise ApiError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(wire.ENCODINGS)}",
        )
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413, "payload_too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0  # bytes received so far
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _decode_jpeg(body: bytes, pool: ModelPool, from_segment: int) -> tuple[np.ndarray, float]:
    """The model input decoded from a JPEG body, and the decode time (ms); 400/415 when it cannot be."""
    if from_segment != 0:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"an {jpeg.CONTENT_TYPE} body is the model input: only from_segment=0 takes it, "
            f"not from_segment={from_segment}; send {wire.CONTENT_TYPE} there",
        )
    t0 = time.perf_counter()
    try:
        x = jpeg.decode_jpeg(body, pool.manifest.input.shape)
    except jpeg.JpegError as exc:
        raise ApiError(400, "bad_jpeg", str(exc)) from None
    return x, (time.perf_counter() - t0) * 1e3


def _parse_tensor(body: bytes, encoding: str, settings: Settings) -> np.ndarray:
    try:
        raw = wire.decompress(body, encoding, max_bytes=settings.max_request_bytes)
        return wire.decode_npy(raw)
    except wire.PayloadTooLargeError as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from None
    except wire.UnsupportedEncodingError as exc:
        raise ApiError(415, "unsupported_encoding", str(exc)) from None
    except wire.WireFormatError as exc:
        raise ApiError(400, "bad_npy", str(exc)) from None
