"""Prometheus metrics of one server process (``GET /metrics``).

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so several apps in one process (tests)
do not collide. With ``jointdnn serve --workers N`` the workers run in prometheus' multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by the command before the workers start): every worker writes its
values to files there and ``/metrics``, whichever worker answers it, sums them over all workers.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MULTIPROC_ENV", "Metrics", "MetricsMiddleware", "multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """The counters and histograms the server keeps; names follow Prometheus conventions (units)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "jointdnn_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jointdnn_http_request_duration_seconds",
            "Wall time from request start to response end, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.errors = Counter(
            "jointdnn_errors",
            "Error responses by code (bad_npy, shape_mismatch, queue_full, ...).",
            ["code"],
            registry=self.registry,
        )
        self.compute = Histogram(
            "jointdnn_infer_compute_seconds",
            "Time running segments per inference, by model.",
            ["model"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.queue = Histogram(
            "jointdnn_infer_queue_seconds",
            "Time an inference waited for a free interpreter chain, by model.",
            ["model"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.tensor_bytes = Counter(
            "jointdnn_infer_body_bytes",
            "Request and response body bytes of inferences, by direction.",
            ["direction"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "jointdnn_http_requests_in_flight",
            "Requests being handled now.",
            registry=self.registry,
            multiprocess_mode="livesum",  # summed over the live workers
        )
        # labels() takes a lock and a dict lookup: the hot path reuses the children it made once
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._inference_children: dict[str, tuple[Any, Any]] = {}
        self._request_bytes = self.tensor_bytes.labels("request")
        self._response_bytes = self.tensor_bytes.labels("response")

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its wall time (s) under its route template."""
        children = self._request_children.get((route, method, status))
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_inference(
        self, model: str, compute_ms: float, queue_ms: float, request_bytes: int, response_bytes: int
    ) -> None:
        """Record one inference: compute and queue time (ms) and its body sizes (bytes)."""
        children = self._inference_children.get(model)
        if children is None:
            children = (self.compute.labels(model), self.queue.labels(model))
            self._inference_children[model] = children
        children[0].observe(compute_ms / 1e3)
        children[1].observe(queue_ms / 1e3)
        self._request_bytes.inc(request_bytes)
        self._response_bytes.inc(response_bytes)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (summed over workers in multiprocess mode)."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        collected = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(collected)
        return generate_latest(collected)


def multiprocess_dir() -> str | None:
    """The directory of prometheus' multiprocess mode, when this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task, unlike BaseHTTPMiddleware): counts and times requests."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe_request(template, scope["method"], status, time.perf_counter() - start)
