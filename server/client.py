"""The typed client the harness uses to talk to the cloud server (httpx, keep-alive connections).

    with CloudClient("http://127.0.0.1:8000", token="s3cret") as cloud:
        cloud.models()                                   # list of model summaries (dicts)
        result = cloud.infer("mobilenet_v2-int8", x, from_segment=8)
        result.output, result.server_ms, result.queue_ms, result.request_bytes

Failures become the project's exceptions: connection refused, timeouts and 503s that outlast the retries
are :class:`~models.errors.ServerUnavailableError`; 4xx are :class:`~models.errors.ServerRejectedError`
(with ``status`` and the server's ``detail``); other errors are :class:`~models.errors.ServerError`.
One client may be shared by threads (httpx's connection pool is thread-safe).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from models.errors import ServerError, ServerRejectedError, ServerUnavailableError
from server import jpeg, wire

__all__ = ["CloudClient", "InferResult", "parse_server_timing"]

_TIMING = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(?:;[^,]*?dur=([0-9.eE+-]+))?[^,]*")


@dataclass
class InferResult:
    """The output tensor of a remote inference and what it cost."""

    output: np.ndarray
    server_ms: float  # compute time on the server (JPEG decode + segments + requantization)
    queue_ms: float  # time waiting for a free interpreter chain on the server
    request_bytes: int  # body bytes sent (after compression)
    response_bytes: int  # body bytes received
    round_trip_ms: float = 0.0  # client-side wall time of the HTTP exchange
    segment_ms: tuple[float, ...] = ()  # per-segment compute time on the server
    scale: float | None = None  # int8 output quantization, when the output is int8
    zero_point: int | None = None
    decode_ms: float = 0.0  # server-side JPEG decode (included in server_ms); 0 for .npy bodies


def parse_server_timing(header: str) -> dict[str, float]:
    """``"queue;dur=0.1, compute;dur=2.5"`` -> ``{"queue": 0.1, "compute": 2.5}`` (ms)."""
    timings: dict[str, float] = {}
    for part in header.split(","):
        match = _TIMING.match(part)
        if match and match.group(2):
            timings[match.group(1)] = float(match.group(2))
    return timings


class CloudClient:
    """Client of one JointDNN cloud server; a context manager (closes its connections)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        encoding: wire.Encoding = "identity",
    ):
        self.base_url = base_url.rstrip("/")
        self.retries = retries  # extra attempts after a 503 (honouring Retry-After), a refused or a dropped keep-alive connection
        self.encoding = encoding  # Content-Encoding of infer bodies
        headers = {"Accept-Encoding": "identity", "User-Agent": "jointdnn-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    # -- endpoints ----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /healthz``: status, served models, backend, pid."""
        result: dict[str, Any] = self._request("GET", "/healthz").json()
        return result

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: name, model, quant, num_segments, cut_layers, input, output per model."""
        result: list[dict[str, Any]] = self._request("GET", "/v1/models").json()
        return result

    def model(self, name: str) -> dict[str, Any]:
        """``GET /v1/models/{name}``: the summary plus every segment's boundary tensors."""
        result: dict[str, Any] = self._request("GET", f"/v1/models/{_quote(name)}").json()
        return result

    def infer(
        self,
        model: str,
        x: np.ndarray,
        *,
        from_segment: int,
        to_segment: int | None = None,
        dequantize: bool = False,
        encoding: wire.Encoding | None = None,
        segment_timings: bool = False,
    ) -> InferResult:
        """Run segments ``from_segment .. to_segment-1`` of ``model`` on ``x`` remotely.

        ``x`` is the tensor entering ``from_segment`` in that segment's dtype (float32 is accepted for
        int8 segments: the server quantizes). The output is in segment ``to_segment-1``'s dtype unless
        ``dequantize``. ``encoding`` overrides the client's body compression; ``segment_timings`` asks
        for every segment's server compute time (``InferResult.segment_ms``).
        """
        body = wire.compress(wire.encode_npy(x), encoding or self.encoding)
        headers = {"Content-Type": wire.CONTENT_TYPE}
        if (encoding or self.encoding) != "identity":
            headers["Content-Encoding"] = encoding or self.encoding
        query = f"from_segment={int(from_segment)}"  # a plain string: httpx's params merging costs ~0.1 ms
        if to_segment is not None:
            query += f"&to_segment={int(to_segment)}"
        if dequantize:
            query += "&dequantize=true"
        if segment_timings:
            query += "&segment_timings=true"
        return self._post_infer(model, query, body, headers)

    def infer_jpeg(
        self, model: str, image: bytes, *, to_segment: int | None = None, dequantize: bool = False
    ) -> InferResult:
        """Run segments ``0 .. to_segment-1`` on a JPEG-coded input photo (``image/jpeg`` body).

        The server decodes the JPEG (:mod:`server.jpeg`) and counts the decode in its time:
        ``InferResult.server_ms`` includes it, ``InferResult.decode_ms`` is the decode alone.
        """
        query = "from_segment=0"
        if to_segment is not None:
            query += f"&to_segment={int(to_segment)}"
        if dequantize:
            query += "&dequantize=true"
        return self._post_infer(model, query, bytes(image), {"Content-Type": jpeg.CONTENT_TYPE})

    def _post_infer(self, model: str, query: str, body: bytes, headers: dict[str, str]) -> InferResult:
        t0 = time.perf_counter()
        response = self._request(
            "POST", f"/v1/models/{_quote(model)}/infer?{query}", content=body, headers=headers
        )
        round_trip_ms = (time.perf_counter() - t0) * 1e3
        try:
            output = wire.decode_npy(response.content)
        except wire.WireFormatError as exc:
            raise ServerError(f"the server's response is not a .npy tensor: {exc}") from None
        timing = parse_server_timing(response.headers.get("server-timing", ""))
        segment_ms = response.headers.get("x-segment-ms", "")
        scale = response.headers.get("x-tensor-scale")
        zero_point = response.headers.get("x-tensor-zero-point")
        decode_ms = timing.get("decode", 0.0)  # JPEG bodies only
        return InferResult(
            output=output,
            server_ms=timing.get("compute", math.nan) + decode_ms,
            queue_ms=timing.get("queue", math.nan),
            request_bytes=len(body),
            response_bytes=len(response.content),
            round_trip_ms=round_trip_ms,
            segment_ms=tuple(float(v) for v in segment_ms.split(",") if v),
            scale=float(scale) if scale is not None else None,
            zero_point=int(zero_point) if zero_point is not None else None,
            decode_ms=decode_ms,
        )

    def profile(self, model: str, runs: int = 20) -> list[dict[str, Any]]:
        """``GET /v1/models/{model}/profile``: profile rows (``ProfileRow`` fields; null floats -> NaN)."""
        response = self._request("GET", f"/v1/models/{_quote(model)}/profile", params={"runs": runs})
        rows: list[dict[str, Any]] = response.json()
        return [{k: (math.nan if v is None else v) for k, v in row.items()} for row in rows]

    def load(self) -> dict[str, Any]:
        """``GET /v1/load``: in_flight, queued, pool_size, utilization (0..1), window_s, per model."""
        result: dict[str, Any] = self._request("GET", "/v1/load").json()
        return result

    def metrics(self) -> str:
        """``GET /metrics``: Prometheus text."""
        return self._request("GET", "/metrics").text

    # -- plumbing -----------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                raise ServerUnavailableError(f"{method} {self.base_url}{path} timed out: {exc}") from None
            except httpx.TransportError as exc:
                # A refused connection, or a pooled keep-alive connection the server closed just as
                # it was reused: every request here is stateless, so sending it again is safe.
                if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError) and not last:
                    time.sleep(0.1 * (attempt + 1))
                    continue
                raise ServerUnavailableError(
                    f"cannot reach the server at {self.base_url} ({type(exc).__name__}: {exc}); "
                    "is `jointdnn serve` running?"
                ) from None
            if response.status_code == 503 and not last:
                time.sleep(min(_retry_after_s(response), 10.0))
                continue
            _raise_for_status(response, method, path)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _raise_for_status(response: httpx.Response, method: str, path: str) -> None:
    status = response.status_code
    if status < 400:
        return
    try:
        body = response.json()
        detail = str(body.get("detail", "")) if isinstance(body, dict) else response.text[:200]
    except ValueError:
        detail = response.text[:200]
    where = f"{method} {path}"
    if status == 503:
        raise ServerUnavailableError(f"{where}: the server stayed overloaded (503): {detail}")
    if 400 <= status < 500:
        raise ServerRejectedError(f"{where} was rejected ({status}): {detail}", status=status, detail=detail)
    raise ServerError(f"{where} failed on the server ({status}): {detail}")
