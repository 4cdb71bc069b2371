"""Error responses of the server: one JSON shape, ``{"detail": "...", "code": "..."}``, for every error.

Routes raise :class:`ApiError` (an ``HTTPException`` with a machine-readable ``code``); the handlers here
turn it, FastAPI's request validation errors (400, not 422: 422 is reserved for a tensor whose shape or
dtype does not match the segment) and anything unexpected (500) into that shape and count them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ERROR_RESPONSES", "ApiError", "ErrorBody", "error_response", "install_error_handlers"]

log = logging.getLogger("server")


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str
    code: str


class ApiError(HTTPException):
    """An HTTP error with a stable ``code`` clients can switch on."""

    def __init__(self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


ERROR_RESPONSES = {
    "auth": _responses(401, 403),
    "model": _responses(400, 401, 403, 404),
    "infer": _responses(400, 401, 403, 404, 413, 415, 422, 503),
}

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error shape: ``{"detail": ..., "code": ...}`` with ``status`` (and e.g. ``Retry-After``)."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, count: Any) -> None:
    """Register the handlers; ``count(code)`` is called for every error response (metrics)."""

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, f"http_{exc.status_code}")
        count(code)
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        count("bad_request")
        return error_response(400, "bad_request", "invalid request: " + "; ".join(problems))

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        count("internal")
        return error_response(500, "internal", f"internal server error: {type(exc).__name__}")

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
