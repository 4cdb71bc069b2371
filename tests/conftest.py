"""Session fixtures shared by every test package: one artifact cache and memoized bundles.

Converting ImageNet-size models takes tens of seconds, so bundles are exported once per session (and
reused across sessions through ``JOINTDNN_CACHE_DIR`` when it is set, as tox does).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BundleFactory = Callable[..., Path]


def pytest_configure(config: pytest.Config) -> None:
    """A terminated test run (SIGTERM: a CI timeout, ``kill``) tears down like Ctrl-C.

    Without this, SIGTERM ends the process at once and fixtures never stop what they started: the
    uvicorn servers, link relays and network namespaces of shaped-link tests outlive the run.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _children() -> list[str]:
    """Command lines of this process's live child processes (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def private_adb_server() -> Iterator[int]:
    """Every adb call of the session (and of its child processes) goes to a private adb server.

    The user's adb server on 5037 is neither used nor stopped. At the end the private server is
    stopped, and the session fails if an adb server or a child process (an emulated device started
    with ``jointdnn emulator start``, a server) is left running.
    """
    from harness.devices.adb_server import DEFAULT_ADB_PORT, port_open, private_adb_server

    default_was_running = port_open(DEFAULT_ADB_PORT)
    with private_adb_server() as port:
        yield port
    assert not port_open(port), f"the session's adb server on port {port} is still running"
    assert default_was_running or not port_open(DEFAULT_ADB_PORT), "the tests started an adb server on 5037"
    left = [c for c in _children() if c]
    assert not left, (
        f"child processes left running: {left}"
    )  # (model_name, quant, cuts=None, *, include_whole=True) -> bundle dir


@pytest.fixture(scope="session")
def artifact_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's artifact cache: ``$JOINTDNN_CACHE_DIR`` if set, else a fresh temp directory.

    While the session runs, ``JOINTDNN_CACHE_DIR`` points at it, so CLI calls share it too.
    """
    configured = os.environ.get("JOINTDNN_CACHE_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("artifact-cache")
    path.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("JOINTDNN_CACHE_DIR")
    os.environ["JOINTDNN_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("JOINTDNN_CACHE_DIR", None)
    else:
        os.environ["JOINTDNN_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def bundle_factory(tmp_path_factory: pytest.TempPathFactory, artifact_cache_dir: Path) -> BundleFactory:
    """``bundle_factory(model_name, quant, cuts=None, *, include_whole=True) -> bundle dir``: exports a zoo model once per session.

    The directory is named ``<model>-<quant>`` (as ``jointdnn export`` names it) inside a session temp
    folder; treat it as read-only, it is shared by every test that asks for the same bundle. ``cuts``
    (a tuple of cut layers) exports a coarser chain, which is much cheaper for ImageNet-size models.
    """
    root = tmp_path_factory.mktemp("bundles")
    made: dict[tuple[str, str, tuple[str, ...] | None, bool], Path] = {}

    def factory(
        model_name: str, quant: str, cuts: tuple[str, ...] | None = None, *, include_whole: bool = True
    ) -> Path:
        key = (model_name, quant, tuple(cuts) if cuts else None, include_whole)
        if key not in made:
            from models.export import export_bundle

            suffix = f"-{len(made)}" if cuts or not include_whole else ""
            out = root / f"{model_name}-{quant}{suffix}"
            export_bundle(
                model_name, quant, out, cache_dir=artifact_cache_dir, cuts=cuts, include_whole=include_whole
            )
            made[key] = out
        return made[key]

    return factory
