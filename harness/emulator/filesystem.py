"""The emulated device's file system: Android paths mapped into a host directory, plus virtual files.

Device paths are POSIX paths (``/data/local/tmp/x.tflite``); each maps to ``<root>/data/local/tmp/x.tflite``
on the host after lexical normalisation, so ``..`` can never leave the image. Like an unrooted phone's
``shell`` user, only ``/data/local/tmp`` and ``/sdcard`` (and ``/storage``, and ``/data/misc/perfetto-traces`` for traces) are writable; ``/sys``,
``/proc`` and ``/system`` are read-only.

Virtual files (the battery's sysfs nodes) have a placeholder on disk, so ``ls`` and ``stat`` see them,
but their content comes from a callback at read time (``current_now`` is computed when it is read).
``/dev/null`` reads empty and swallows writes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["BUILTIN_MARKER", "WRITABLE_ROOTS", "DeviceFilesystem", "builtin_program_name"]

WRITABLE_ROOTS = ("/data/local/tmp", "/sdcard", "/storage", "/data/misc/perfetto-traces")
DEV_NULL = "/dev/null"
# First bytes of the files that stand for the device's builtin programs (benchmark_model, ...).
BUILTIN_MARKER = b"#!jointdnn-builtin "


def builtin_program_name(head: bytes) -> str | None:
    """The builtin program a file stands for (from its first bytes), or None for ordinary files."""
    if not head.startswith(BUILTIN_MARKER):
        return None
    return head[len(BUILTIN_MARKER) :].split(b"\n", 1)[0].decode().strip() or None


def _oserror(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class DeviceFilesystem:
    """Android paths inside ``root``; raises ``OSError`` with the *device* path, like the real tools."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._virtual: dict[str, Callable[[], bytes]] = {}

    # --- paths --------------------------------------------------------------------------------------
    @staticmethod
    def normalize(path: str, cwd: str = "/") -> str:
        """Absolute, lexically normalised device path (``..`` stops at ``/``)."""
        joined = posixpath.join(cwd, path) if not path.startswith("/") else path
        parts: list[str] = []
        for part in joined.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def host_path(self, path: str, cwd: str = "/") -> Path:
        """Where a device path lives on the host."""
        return self.root.joinpath(*self.normalize(path, cwd).split("/")[1:])

    def device_path(self, host: Path) -> str:
        """The device path of a host path inside the image."""
        return "/" + host.relative_to(self.root).as_posix().lstrip(".")

    @staticmethod
    def is_writable_location(path: str) -> bool:
        return path == DEV_NULL or any(path == r or path.startswith(r + "/") for r in WRITABLE_ROOTS)

    def _check_writable(self, path: str) -> None:
        if not self.is_writable_location(path):
            code = errno.EROFS if path.startswith(("/system", "/proc", "/sys")) else errno.EACCES
            raise _oserror(code, path)

    # --- virtual files ------------------------------------------------------------------------------
    def add_virtual(self, path: str, read: Callable[[], bytes]) -> None:
        """Register a file whose content is computed at read time (a placeholder is created on disk)."""
        path = self.normalize(path)
        self._virtual[path] = read
        host = self.host_path(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.touch()
        host.chmod(0o444)

    # --- file operations (device paths) -------------------------------------------------------------
    def open_read(self, path: str, cwd: str = "/") -> BinaryIO:
        path = self.normalize(path, cwd)
        if path == DEV_NULL:
            return io.BytesIO(b"")
        if path in self._virtual:
            return io.BytesIO(self._virtual[path]())
        host = self.host_path(path)
        if host.is_dir():
            raise _oserror(errno.EISDIR, path)
        try:
            return host.open("rb")
        except FileNotFoundError:
            raise _oserror(errno.ENOENT, path) from None

    def read_bytes(self, path: str, cwd: str = "/") -> bytes:
        with self.open_read(path, cwd) as handle:
            return handle.read()

    def open_write(self, path: str, cwd: str = "/", *, append: bool = False, mode: int = 0o644) -> BinaryIO:
        path = self.normalize(path, cwd)
        if path == DEV_NULL:
            return open(os.devnull, "wb")
        self._check_writable(path)
        host = self.host_path(path)
        if host.is_dir():
            raise _oserror(errno.EISDIR, path)
        if not host.parent.is_dir():
            raise _oserror(errno.ENOENT, path)
        existed = host.exists()
        handle = host.open("ab" if append else "wb")
        if not existed:
            os.chmod(host, mode & 0o7777)
        return handle

    def write_bytes(self, path: str, data: bytes, cwd: str = "/") -> None:
        with self.open_write(path, cwd) as handle:
            handle.write(data)

    def stat(self, path: str, cwd: str = "/") -> os.stat_result:
        path = self.normalize(path, cwd)
        try:
            return os.stat(self.host_path(path))
        except FileNotFoundError:
            raise _oserror(errno.ENOENT, path) from None

    def exists(self, path: str, cwd: str = "/") -> bool:
        return self.host_path(path, cwd).exists()

    def is_dir(self, path: str, cwd: str = "/") -> bool:
        return self.host_path(path, cwd).is_dir()

    def listdir(self, path: str, cwd: str = "/") -> list[str]:
        path = self.normalize(path, cwd)
        host = self.host_path(path)
        if not host.exists():
            raise _oserror(errno.ENOENT, path)
        if not host.is_dir():
            raise _oserror(errno.ENOTDIR, path)
        return sorted(os.listdir(host))

    def walk_glob(self, pattern: str, cwd: str = "/") -> list[str]:
        """Device paths matching a shell glob (``*``, ``?``, ``[...]`` in any component), sorted."""
        import fnmatch

        absolute = pattern.startswith("/")
        parts = [p for p in pattern.split("/") if p]
        bases = ["/" if absolute else ""]
        for part in parts:
            nxt: list[str] = []
            for base in bases:
                folder = self.normalize(base or ".", cwd)
                if not any(ch in part for ch in "*?["):
                    candidate = posixpath.join(base, part) if base else part
                    if self.exists(candidate, cwd):
                        nxt.append(candidate)
                    continue
                with contextlib.suppress(OSError):
                    for name in self.listdir(folder):
                        if fnmatch.fnmatchcase(name, part) and (
                            part.startswith(".") or not name.startswith(".")
                        ):
                            nxt.append(posixpath.join(base, name) if base else name)
            bases = nxt
        return sorted(bases)

    def mkdir(self, path: str, cwd: str = "/", *, parents: bool = False) -> None:
        path = self.normalize(path, cwd)
        self._check_writable(path)
        host = self.host_path(path)
        if host.exists() and not parents:
            raise _oserror(errno.EEXIST, path)
        if not parents and not host.parent.is_dir():
            raise _oserror(errno.ENOENT, path)
        host.mkdir(parents=parents, exist_ok=parents)

    def remove(self, path: str, cwd: str = "/", *, recursive: bool = False) -> None:
        path = self.normalize(path, cwd)
        self._check_writable(path)
        host = self.host_path(path)
        if not host.exists() and not host.is_symlink():
            raise _oserror(errno.ENOENT, path)
        if host.is_dir():
            if not recursive:
                raise _oserror(errno.EISDIR, path)
            shutil.rmtree(host)
        else:
            host.unlink()

    def rename(self, src: str, dst: str, cwd: str = "/") -> None:
        src, dst = self.normalize(src, cwd), self.normalize(dst, cwd)
        self._check_writable(src)
        self._check_writable(dst)
        if not self.exists(src):
            raise _oserror(errno.ENOENT, src)
        target = self.host_path(dst)
        if target.is_dir():
            target = target / self.host_path(src).name
        os.replace(self.host_path(src), target)

    def chmod(self, path: str, mode: int, cwd: str = "/") -> None:
        path = self.normalize(path, cwd)
        self._check_writable(path)
        host = self.host_path(path)
        if not host.exists():
            raise _oserror(errno.ENOENT, path)
        os.chmod(host, mode & 0o7777)

    def set_mtime(self, path: str, mtime_s: int, cwd: str = "/") -> None:
        host = self.host_path(path, cwd)
        os.utime(host, (mtime_s, mtime_s))

    def is_executable(self, path: str, cwd: str = "/") -> bool:
        host = self.host_path(path, cwd)
        return host.is_file() and os.access(host, os.X_OK)
