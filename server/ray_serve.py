"""The cloud half on Ray Serve: the same FastAPI app, deployed with ``@serve.ingress`` on replicas.

Each replica loads every bundle in its constructor (:class:`~server.registry.ModelRegistry`), then builds
the app with :func:`server.app.create_app` and hands it the loaded registry (Ray Serve's late-bound
ingress, ``__serve_build_asgi_app__``), so routes, auth, limits and error bodies are the uvicorn
server's, and :class:`~server.client.CloudClient` talks to Ray's HTTP proxy unchanged. Each replica
admits ``pool_size + max_queue`` requests (``max_ongoing_requests``); past that Ray queues them in the
proxy. Ray is an optional extra (``pip install -e .[ray]``), imported only here and only when used.

    ray.init(num_cpus=2)
    serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    serve.run(build_deployment(Settings(bundle_dir=...), replicas=2), name="jointdnn", route_prefix="/")

Bundles are read from ``settings.bundle_dir`` on the node each replica runs on: on a cluster, that path
(and this package) must exist on every node.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from models.errors import UsageError
from server.app import create_app
from server.registry import ModelRegistry
from server.settings import Settings

__all__ = ["APP_NAME", "RayUnavailableError", "build_deployment", "require_ray"]

APP_NAME = "jointdnn"


class RayUnavailableError(UsageError):
    """Ray Serve is not installed (it is the optional ``ray`` extra)."""


def require_ray() -> None:
    """Fail with an actionable message when ``ray[serve]`` is missing."""
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        raise RayUnavailableError(
            "Ray Serve is not installed: install the extra with `pip install -e .[ray]` "
            "(or `pip install 'ray[serve]>=2.60,<3'`)"
        ) from None


class JointDNNReplica:
    """One replica: its own interpreter pools and the app serving them (wrapped by ``serve.ingress``)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = ModelRegistry.load(settings)  # the models load here, once per replica

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = create_app(self.settings)
        app.state.registry = self.registry  # the lifespan sees it loaded and does not load again
        return app

    def __del__(self) -> None:
        registry = getattr(self, "registry", None)
        if registry is not None:
            registry.close()


def build_deployment(
    settings: Settings,
    *,
    replicas: int = 1,
    autoscale: tuple[int, int] | None = None,
    cpus_per_replica: float = 1.0,
) -> Any:
    """The bound Ray Serve application: ``replicas`` fixed replicas, or autoscaling in ``autoscale``.

    Autoscaling targets ``pool_size`` ongoing requests per replica (one per interpreter chain).
    """
    require_ray()
    from ray import serve

    scaling: dict[str, Any]
    if autoscale is not None:
        low, high = autoscale
        scaling = {
            "autoscaling_config": {
                "min_replicas": low,
                "max_replicas": high,
                "initial_replicas": low,
                "target_ongoing_requests": settings.pool_size,
            }
        }
    else:
        scaling = {"num_replicas": replicas}
    ingress = serve.ingress()(JointDNNReplica)
    deployment = serve.deployment(
        name=APP_NAME,
        max_ongoing_requests=settings.pool_size + settings.max_queue,
        ray_actor_options={"num_cpus": cpus_per_replica},
        **scaling,
    )(ingress)
    return deployment.bind(settings)
