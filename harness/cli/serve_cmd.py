"""``jointdnn serve``: run the cloud half (uvicorn + :func:`server.app.create_app`) on a bundle directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def serve(
    bundle: Annotated[
        Path, typer.Option("--bundle", help="Bundle directory (bundles as subfolders) or one bundle.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="uvicorn worker processes (each loads every model).")
    ] = 1,
    token: Annotated[
        str | None, typer.Option(envvar="JOINTDNN_TOKEN", help="Require `Authorization: Bearer TOKEN`.")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option(min=1, help="Interpreter chains per model per worker.")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="LiteRT threads per interpreter.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn's access log).")] = True,
) -> None:
    """Serve every bundle under --bundle over HTTP (see /docs for the API)."""
    import uvicorn

    from server.registry import discover_bundles

    names = discover_bundles(bundle)  # fails early, with a clear message, on a missing directory
    if not names:
        typer.echo(f"warning: no bundles under {bundle} (write some with `jointdnn export`)", err=True)
    # Workers are separate processes that build the app from the environment: pass settings through it.
    os.environ["JOINTDNN_BUNDLE_DIR"] = str(bundle.resolve())
    os.environ["JOINTDNN_INTERPRETER_THREADS"] = str(threads)
    if pool_size is not None:
        os.environ["JOINTDNN_POOL_SIZE"] = str(pool_size)
    if token:
        os.environ["JOINTDNN_TOKEN"] = token
    typer.echo(f"serving {', '.join(names) or 'no models'} on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "server.app:create_app", factory=True, host=host, port=port, workers=workers,
        log_level=log_level, access_log=access_log, server_header=False, date_header=False,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the main app."""
    app.command("serve")(serve)
