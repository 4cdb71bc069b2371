"""Run the server inside the current process, on a background thread (tests, the end-to-end runner).

A real ``uvicorn.Server`` on a real socket: requests go through the TCP stack and HTTP parsing exactly as
with ``jointdnn serve``. ``port=0`` binds a free port; :attr:`BackgroundServer.base_url` says which.

    with BackgroundServer(Settings(bundle_dir=path, token="s3cret")) as server:
        client = CloudClient(server.base_url, token="s3cret")
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from models.errors import ServerUnavailableError
from server.app import create_app
from server.registry import discover_bundles
from server.settings import Settings

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """uvicorn serving :func:`server.app.create_app` on a daemon thread; a context manager."""

    def __init__(self, settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout_s: float = 60.0):  # fmt: skip
        self.settings = settings or Settings()
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.settings), log_level="warning", server_header=False, date_header=False,
            timeout_graceful_shutdown=5,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # surfaced by start()
            self._error = exc

    def start(self) -> BackgroundServer:
        """Start serving; returns once the lifespan has loaded every bundle.

        Raises :class:`~models.errors.BundleError` for a missing bundle directory and
        :class:`~models.errors.ServerUnavailableError` if uvicorn does not come up.
        """
        try:
            discover_bundles(self.settings.bundle_dir)  # the lifespan would only log this failure
        except BaseException:
            self._socket.close()
            raise
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerUnavailableError(
                    f"the server on {self.base_url} did not start: {self._error or 'startup failed or timed out'}"
                )
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Shut down gracefully (running inferences finish) and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
