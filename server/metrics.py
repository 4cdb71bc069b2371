"""Prometheus metrics of one server process (``GET /metrics``).

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so several apps in one process (tests)
do not collide. With ``uvicorn --workers N`` each worker reports its own counters (scrape each worker or
put them behind one exporter); the server does not use prometheus' multiprocess mode.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]

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
            "jointdnn_http_requests_in_flight", "Requests being handled now.", registry=self.registry
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


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
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
