"""``POST /v1/models/{name}/infer``: run segments ``from_segment .. to_segment-1`` on one ``.npy`` tensor.

The body is the tensor entering segment ``from_segment`` (its dtype, or float32 for an int8 segment,
which the server then quantizes); the response is the tensor leaving segment ``to_segment - 1`` in that
segment's dtype (``dequantize=true`` returns float32). ``Server-Timing`` says where the time went
(``parse``, ``queue``, ``compute``, ms; ``segment_timings=true`` adds ``X-Segment-Ms``); for int8 outputs ``X-Tensor-Scale`` / ``X-Tensor-Zero-Point``
carry the quantization.

A request for segment 0 may instead send the photo as an ``image/jpeg`` body (what a real app uploads):
the server decodes it to the model input (:mod:`server.jpeg`) and reports the decode time as
``decode`` in ``Server-Timing``; it counts as server time.

This is the server's hot path, so it is served as plain ASGI by :class:`InferEndpoint`, a middleware in
front of FastAPI's routing, dependency injection and exception handling (together ~0.4 ms of CPU per
request): it reads the query string and headers from the ASGI scope once, reads the body into one
buffer, decodes it by content type, runs it and sends the ``.npy`` answer. The FastAPI route below
declares the same endpoint for the OpenAPI schema and serves anything the middleware passes on; both
go through :func:`run_infer`, so errors have the same status, code and text either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from server import jpeg, wire
from server.metrics import Metrics
from server.pool import ModelPool, QueueFullError, TensorMismatchError
from server.problems import ERROR_RESPONSES, ApiError, error_response
from server.routes.deps import check_token, lookup_pool
from server.settings import Settings

__all__ = ["ROUTE", "InferEndpoint", "InferReply", "router", "run_infer"]

log = logging.getLogger("server")

router = APIRouter(prefix="/v1/models", tags=["infer"])
ROUTE = "/v1/models/{name}/infer"  # the route template (the metrics label)
_PREFIX, _SUFFIX = "/v1/models/", "/infer"

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


class InferReply:
    """A successful inference as ASGI pieces: the ``.npy`` payload and the raw response headers."""

    __slots__ = ("headers", "payload")

    def __init__(self, payload: bytes, headers: list[tuple[bytes, bytes]]):
        self.payload = payload
        self.headers = headers


class _Disconnected(Exception):
    """The client went away while sending the body: nothing to answer."""


@router.post(
    "/{name}/infer",
    response_class=Response,
    responses=_INFER_RESPONSES,
    openapi_extra=_NPY_BODY | _INFER_PARAMETERS,
)  # fmt: skip
async def infer(request: Request) -> Response:
    """Run a contiguous range of the model's segments on the request tensor.

    Requests normally never get here: :class:`InferEndpoint` answers them first. This route documents
    the endpoint (its parameters are declared through ``openapi_extra``, since they are read from the
    raw query string) and answers requests when the middleware is not installed.
    """
    reply = await run_infer(request.app.state, request.path_params["name"], request.scope, request.receive)
    response = Response(reply.payload)
    response.raw_headers = reply.headers
    return response


async def run_infer(state: State, name: str, scope: Scope, receive: Receive) -> InferReply:
    """Check, read, decode, run and encode one inference; raises :class:`ApiError` for a bad request.

    The order of the checks is part of the API (a missing token is 401 before an unknown model is
    404, a bad range 404 before a bad body 4xx): token, model, query parameters, segment range, content
    type and encoding, body size, body contents, tensor shape and dtype.
    """
    t0 = time.perf_counter()
    settings: Settings = state.settings
    metrics: Metrics = state.metrics
    headers = _headers(scope["headers"])
    check_token(settings, headers.get("authorization"))
    pool = lookup_pool(state.registry, name)
    query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
    from_segment = _int_param(query, "from_segment")
    if from_segment is None:
        raise ApiError(400, "bad_request", "invalid request: query.from_segment: Field required")
    to_segment = _int_param(query, "to_segment")
    dequantize = _bool_param(query, "dequantize")
    segment_timings = _bool_param(query, "segment_timings")
    stop = _check_range(pool, from_segment, to_segment)
    content_type = _content_type(headers)
    encoding = _content_encoding(headers)
    body = await _read_body(receive, headers.get("content-length"), settings.max_request_bytes)
    decode_ms = None  # ms, JPEG bodies only
    if content_type == jpeg.CONTENT_TYPE:
        x, decode_ms = _decode_jpeg(body, pool, from_segment)
    else:
        x = _decode(body, content_type, encoding, settings)
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
    metrics.observe_inference(pool.name, run.compute_ms, run.queue_ms, len(body), len(payload))
    timing = f"parse;dur={parse_ms:.3f}, queue;dur={run.queue_ms:.3f}, compute;dur={run.compute_ms:.3f}"
    if decode_ms is not None:
        timing += f", decode;dur={decode_ms:.3f}"
    out = [
        (b"content-length", str(len(payload)).encode()),
        (b"content-type", _NPY_TYPE),
        (b"server-timing", timing.encode()),
    ]
    if segment_timings:
        out.append((b"x-segment-ms", ",".join(f"{ms:.3f}" for ms in run.segment_ms).encode()))
    quant = pool.output_quant(stop)
    if quant is not None and not dequantize:
        out.append((b"x-tensor-scale", repr(quant.scale).encode()))
        out.append((b"x-tensor-zero-point", str(quant.zero_point).encode()))
    return InferReply(payload, out)


_NPY_TYPE = wire.CONTENT_TYPE.encode()
_WANTED_HEADERS = frozenset({b"authorization", b"content-type", b"content-encoding", b"content-length"})


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The few request headers the endpoint reads (ASGI gives names lower-cased; the last one wins)."""
    return {key.decode(): value.decode("latin-1") for key, value in raw if key in _WANTED_HEADERS}


def _int_param(query: dict[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400, "bad_request", f"invalid request: query.{key}: {value!r} is not an integer"
        ) from None


def _bool_param(query: dict[str, str], key: str) -> bool:
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


def _content_type(headers: dict[str, str]) -> str:
    """The body's media type; anything but a tensor type is refused (415) before the body is read."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (wire.CONTENT_TYPE, jpeg.CONTENT_TYPE):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the tensor as {wire.CONTENT_TYPE} (NumPy .npy bytes; or the photo as {jpeg.CONTENT_TYPE} "
            f"to segment 0), not {content_type or 'no content type'}",
        )
    return content_type


def _content_encoding(headers: dict[str, str]) -> str:
    encoding = headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in (*wire.ENCODINGS, "x-gzip"):
        raise ApiError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(wire.ENCODINGS)}",
        )
    return encoding


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes | bytearray:
    """The raw body in one buffer, refusing bodies over ``limit`` bytes (413) as early as possible.

    With a ``Content-Length`` the buffer is allocated once and the chunks are copied into it (no join);
    a body that arrives in one chunk is used as it is.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413, "payload_too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    message = await receive()
    if message["type"] != "http.request":
        raise _Disconnected
    first: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(first) > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")
        return first
    if declared is not None and declared.isdigit() and int(declared) >= len(first):
        size = int(declared)  # bytes the client announced
        buffer = bytearray(size)
        view = memoryview(buffer)
        view[: len(first)] = first
        filled = len(first)  # bytes received so far
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk: bytes = message.get("body", b"")
            if filled + len(chunk) > size:  # more than announced: uvicorn refuses this, but be safe
                raise ApiError(400, "bad_request", "invalid request: body is longer than Content-Length")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            if not message.get("more_body", False):
                view.release()
                del buffer[filled:]
                return buffer
    buffer = bytearray(first)
    while True:  # no Content-Length (chunked): the limit must hold while streaming
        if len(buffer) > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        buffer += message.get("body", b"")
        if not message.get("more_body", False):
            if len(buffer) > limit:
                raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")
            return buffer


def _decode(body: bytes | bytearray, content_type: str, encoding: str, settings: Settings) -> np.ndarray:
    """The request tensor, decoded by content type (one branch per type the endpoint accepts)."""
    try:
        raw = wire.decompress(body, encoding, max_bytes=settings.max_request_bytes)
        return wire.decode_npy(raw)
    except wire.PayloadTooLargeError as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from None
    except wire.UnsupportedEncodingError as exc:
        raise ApiError(415, "unsupported_encoding", str(exc)) from None
    except wire.WireFormatError as exc:
        raise ApiError(400, "bad_npy", str(exc)) from None


def _model_name(path: str) -> str | None:
    """``name`` of ``/v1/models/{name}/infer``, or None for any other path (or a name with a slash)."""
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    name = path[len(_PREFIX) : -len(_SUFFIX)]
    return name if name and "/" not in name else None


class InferEndpoint:
    """Pure ASGI middleware answering ``POST /v1/models/{name}/infer`` itself (see the module doc).

    It counts and times the requests it answers the way :class:`server.metrics.MetricsMiddleware` does,
    and turns errors into the same JSON bodies as :mod:`server.problems`. Every other request goes on
    to FastAPI unchanged.
    """

    def __init__(self, app: ASGIApp, state: State):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _model_name(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        metrics: Metrics = self.state.metrics
        metrics.in_flight.inc()
        status = 500
        try:
            try:
                reply = await run_infer(self.state, name, scope, receive)
            except ApiError as exc:
                status = exc.status_code
                metrics.errors.labels(exc.code).inc()
                await error_response(exc.status_code, exc.code, str(exc.detail), exc.headers)(
                    scope, receive, send
                )
                return
            except _Disconnected:
                return
            except Exception as exc:
                log.exception("unhandled error", exc_info=exc)
                metrics.errors.labels("internal").inc()
                await error_response(500, "internal", f"internal server error: {type(exc).__name__}")(
                    scope, receive, send
                )
                return
            await send({"type": "http.response.start", "status": 200, "headers": reply.headers})
            status = 200
            await send({"type": "http.response.body", "body": reply.payload})
        finally:
            metrics.in_flight.dec()
            metrics.observe_request(ROUTE, "POST", status, time.perf_counter() - start)


def _decode_jpeg(body: bytes | bytearray, pool: ModelPool, from_segment: int) -> tuple[np.ndarray, float]:
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
        x = jpeg.decode_jpeg(bytes(body), pool.manifest.input.shape)
    except jpeg.JpegError as exc:
        raise ApiError(400, "bad_jpeg", str(exc)) from None
    return x, (time.perf_counter() - t0) * 1e3
