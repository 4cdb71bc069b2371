"""A content-addressed store of converted ``.tflite`` artifacts and their metadata.

Each artifact lives at ``<root>/<key[:2]>/<key>.tflite`` next to ``<key>.json`` (tensor specs, sha256),
where ``key`` hashes everything the bytes depend on (see :mod:`models.export`). Writes go to a temp
file and are renamed into place, so concurrent exporters and interrupted runs never leave a torn file.
The root defaults to the user cache dir (``platformdirs``) and is overridden by ``JOINTDNN_CACHE_DIR``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import CacheError

__all__ = ["CACHE_ENV", "ArtifactCache", "CachedArtifact", "default_cache_dir"]

CACHE_ENV = "JOINTDNN_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$JOINTDNN_CACHE_DIR`` if set, else the user cache dir's ``jointdnn/artifacts``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("jointdnn")) / "artifacts"


@dataclass
class CachedArtifact:
    """A cached ``.tflite`` file and the metadata stored with it."""

    path: Path
    meta: dict[str, Any]


class ArtifactCache:
    """Get / put artifacts by key; raises :class:`CacheError` when the directory is not usable."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-", delete=True)  # noqa: SIM115
            probe.close()
        except OSError as exc:
            raise CacheError(
                f"artifact cache {self.root} is not writable ({exc.strerror or exc}); "
                f"point {CACHE_ENV} or --cache-dir at a writable directory"
            ) from None

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.tflite", folder / f"{key}.json"

    def get(self, key: str) -> CachedArtifact | None:
        """The artifact stored under ``key``, or ``None`` (also when its files are torn or unreadable)."""
        data_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not data_path.is_file() or data_path.stat().st_size != meta.get("size"):
            return None
        return CachedArtifact(data_path, meta)

    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> CachedArtifact:
        """Store ``data`` under ``key`` with ``meta`` (``size`` is added); returns the stored artifact."""
        data_path, meta_path = self._paths(key)
        meta = {**meta, "size": len(data)}
        try:
            data_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(data_path, data)
            _atomic_write(meta_path, (json.dumps(meta, indent=1) + "\n").encode())
        except OSError as exc:
            raise CacheError(f"cannot write to artifact cache {self.root}: {exc.strerror or exc}") from None
        return CachedArtifact(data_path, meta)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
