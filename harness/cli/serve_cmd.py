"""``jointdnn serve``: run the cloud half on a bundle directory, on uvicorn (one or several worker
processes) or on Ray Serve (``--ray``: replicas on this machine or a Ray cluster)."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer

from models.errors import UsageError

__all__ = ["register"]


def serve(
    bundle: Annotated[
        Path, typer.Option("--bundle", help="Bundle directory (bundles as subfolders) or one bundle.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="uvicorn worker processes (each loads every model); /metrics and /v1/load sum over them.",
        ),
    ] = 1,
    token: Annotated[
        str | None, typer.Option(envvar="JOINTDNN_TOKEN", help="Require `Authorization: Bearer TOKEN`.")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option(min=1, help="Interpreter chains per model per worker (or replica).")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="LiteRT threads per interpreter.")] = 1,
    batching: Annotated[
        bool, typer.Option(help="Dynamic batching: concurrent requests for one segment range run as a batch.")
    ] = False,
    batch_window_ms: Annotated[
        float, typer.Option(min=0.0, max=2.0, help="How long a request waits for others to batch with (ms).")
    ] = 1.0,
    ray: Annotated[
        bool, typer.Option("--ray", help="Serve on Ray Serve instead of uvicorn (needs the `ray` extra).")
    ] = False,
    replicas: Annotated[int, typer.Option(min=1, help="Ray Serve replicas (with --ray).")] = 1,
    autoscale: Annotated[
        str | None,
        typer.Option(
            metavar="MIN:MAX", help="Autoscale Ray Serve replicas between MIN and MAX (with --ray)."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            envvar="RAY_ADDRESS",
            help="Join this Ray cluster (`auto`, host:port); default: start "
            "a local Ray instance for this command.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn's access log).")] = True,
) -> None:
    """Serve every bundle under --bundle over HTTP (see /docs for the API)."""
    from server.registry import discover_bundles

    names = discover_bundles(bundle)  # fails early, with a clear message, on a missing directory
    if not names:
        typer.echo(f"warning: no bundles under {bundle} (write some with `jointdnn export`)", err=True)
    if not ray and (autoscale is not None or replicas != 1 or ray_address):
        raise UsageError("--replicas, --autoscale and --ray-address need --ray")
    if ray and workers != 1:
        raise UsageError("--workers is for uvicorn; with --ray use --replicas N or --autoscale MIN:MAX")
    scale = _parse_autoscale(autoscale)
    # Workers are separate processes that build the app from the environment: pass settings through it.
    os.environ["JOINTDNN_BUNDLE_DIR"] = str(bundle.resolve())
    os.environ["JOINTDNN_INTERPRETER_THREADS"] = str(threads)
    os.environ["JOINTDNN_BATCHING"] = str(batching).lower()
    os.environ["JOINTDNN_BATCH_WINDOW_MS"] = str(batch_window_ms)
    if pool_size is not None:
        os.environ["JOINTDNN_POOL_SIZE"] = str(pool_size)
    if token:
        os.environ["JOINTDNN_TOKEN"] = token
    where = f"http://{host}:{port}"
    if ray:
        _serve_on_ray(names, host, port, replicas, scale, ray_address)
        return
    typer.echo(f"serving {', '.join(names) or 'no models'} on {where} ({workers} worker(s))")
    if workers == 1:
        _run_uvicorn(host, port, 1, log_level, access_log)
        return
    # Several workers share their metrics (prometheus multiprocess mode) and load through one directory
    # that lives as long as this command; it must be in the environment before the workers start.
    with tempfile.TemporaryDirectory(prefix="jointdnn-workers-") as shared:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared
        os.environ["JOINTDNN_WORKERS_DIR"] = shared
        try:
            _run_uvicorn(host, port, workers, log_level, access_log)
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"], os.environ["JOINTDNN_WORKERS_DIR"]


def _run_uvicorn(host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    import uvicorn

    uvicorn.run(
        "server.app:create_app", factory=True, host=host, port=port, workers=workers,
        log_level=log_level, access_log=access_log, server_header=False, date_header=False,
    )  # fmt: skip


def _parse_autoscale(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    low, sep, high = text.partition(":")
    if not (sep and low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high)):
        raise UsageError(f"--autoscale {text!r}: give MIN:MAX replicas with 1 <= MIN <= MAX, e.g. 1:4")
    return int(low), int(high)


def _serve_on_ray(
    names: dict[str, Path], host: str, port: int, replicas: int, autoscale: tuple[int, int] | None,
    address: str | None,
) -> None:  # fmt: skip
    """Deploy on Ray Serve and block until Ctrl-C / SIGTERM; then remove what this command started."""
    from server.ray_serve import APP_NAME, build_deployment, require_ray
    from server.settings import Settings

    require_ray()
    import ray
    from ray import serve

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    ray.init(address=address, include_dashboard=False, logging_level="warning")
    try:
        serve.start(http_options={"host": host, "port": port})
        scale = f"autoscaling {autoscale[0]}..{autoscale[1]}" if autoscale else f"{replicas} replica(s)"
        serve.run(build_deployment(Settings(), replicas=replicas, autoscale=autoscale), name=APP_NAME,
                  route_prefix="/")  # fmt: skip
        typer.echo(
            f"serving {', '.join(names) or 'no models'} on http://{host}:{port} with Ray Serve ({scale})"
        )
        stop.wait()
    finally:
        if address is None:  # our own Ray instance: stop all of it
            serve.shutdown()
        else:  # someone's cluster: remove only our application
            serve.delete(APP_NAME)
        ray.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the main app."""
    app.command("serve")(serve)
