"""Which models the server serves: bundles found under the bundle directory, each with its pool.

A model's name is its bundle's folder name (``small_cnn-int8``); if the bundle directory is itself a
bundle, it is served alone under its own folder name. Names are looked up in a dict built at startup
from the directory listing, never joined onto a path, so no request can reach outside the bundle
directory; bundle folders that resolve outside it (symlinks) are skipped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from models.bundle import MANIFEST_NAME, read_manifest
from models.errors import BundleError, JointDNNError
from server.pool import ModelPool
from server.settings import Settings

__all__ = ["MODEL_NAME_PATTERN", "ModelRegistry", "discover_bundles"]

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(MODEL_NAME_PATTERN)
log = logging.getLogger("server.registry")


def discover_bundles(root: Path) -> dict[str, Path]:
    """Map model name -> bundle directory for every bundle under ``root`` (sorted by name)."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"bundle directory {root} does not exist (write bundles with `jointdnn export`)")
    resolved_root = root.resolve()
    if (root / MANIFEST_NAME).is_file():
        return {resolved_root.name: resolved_root}
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if not (child / MANIFEST_NAME).is_file() or not _NAME.match(child.name):
            continue
        target = child.resolve()
        if not target.is_relative_to(resolved_root):
            log.warning("skipping %s: it resolves to %s, outside %s", child, target, resolved_root)
            continue
        found[child.name] = target
    return found


class ModelRegistry:
    """The served models: name -> :class:`ModelPool`, plus bundles that failed to load and why."""

    def __init__(self, pools: dict[str, ModelPool], failed: dict[str, str]):
        self.pools = pools
        self.failed = failed

    @classmethod
    def load(cls, settings: Settings) -> ModelRegistry:
        """Load every bundle of ``settings.bundle_dir`` into a pool; a broken bundle is logged, skipped."""
        pools: dict[str, ModelPool] = {}
        failed: dict[str, str] = {}
        for name, path in discover_bundles(settings.bundle_dir).items():
            try:
                manifest = read_manifest(path, verify_hashes=True)  # a modified bundle is refused
                pools[name] = ModelPool(
                    name,
                    path,
                    manifest,
                    pool_size=settings.pool_size,
                    threads=settings.interpreter_threads,
                    max_queue=settings.max_queue,
                    window_s=settings.load_window_s,
                    batching=settings.batching,
                    batch_window_ms=settings.batch_window_ms,
                    max_batch=settings.max_batch,
                )
                if pools[name].unbatchable:
                    log.info("%s: segments %s fix the batch dimension; ranges touching them run unbatched",
                             name, pools[name].unbatchable)  # fmt: skip
            except JointDNNError as exc:
                log.warning("not serving %s: %s", name, exc)
                failed[name] = str(exc)
        return cls(pools, failed)

    def get(self, name: str) -> ModelPool | None:
        """The pool of model ``name``, or None (names that fail the pattern never match)."""
        return self.pools.get(name) if _NAME.match(name) else None

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
