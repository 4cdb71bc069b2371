"""Fixtures of the server tests: a bundle directory with small_cnn fp32 + int8, and live uvicorn servers.

Servers are real: :class:`server.background.BackgroundServer` runs uvicorn on a free loopback port in a
thread of the test process, so every request crosses TCP and HTTP parsing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from models.runtime import SegmentChain, SegmentRunner
from server.background import BackgroundServer
from server.client import CloudClient
from server.settings import Settings

TOKEN = "test-token-s3cret"
MODELS = ("small_cnn-fp32", "small_cnn-int8")


@pytest.fixture(scope="session")
def served_root(bundle_factory: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle directory holding exactly small_cnn-fp32 and small_cnn-int8 (copies of the session's)."""
    root = tmp_path_factory.mktemp("served")
    for quant in ("fp32", "int8"):
        shutil.copytree(bundle_factory("small_cnn", quant), root / f"small_cnn-{quant}")
    return root


@pytest.fixture(scope="session")
def live_server(served_root: Path) -> Iterator[BackgroundServer]:
    """An open server (no token), 2 chains per model."""
    with BackgroundServer(Settings(bundle_dir=served_root, pool_size=2, max_queue=64)) as server:
        yield server


@pytest.fixture(scope="session")
def client(live_server: BackgroundServer) -> Iterator[CloudClient]:
    with CloudClient(live_server.base_url) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def auth_server(served_root: Path) -> Iterator[BackgroundServer]:
    """A server that needs ``Authorization: Bearer TOKEN``."""
    with BackgroundServer(Settings(bundle_dir=served_root, token=TOKEN, pool_size=1)) as server:
        yield server


@pytest.fixture(scope="session")
def local_chains(served_root: Path) -> dict[str, SegmentChain]:
    """In-process chains of the served bundles: the reference the server's answers must equal."""
    return {name: SegmentChain(served_root / name) for name in MODELS}


@pytest.fixture(scope="session")
def whole_runners(served_root: Path) -> dict[str, SegmentRunner]:
    return {name: SegmentRunner(served_root / name / "whole.tflite") for name in MODELS}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
