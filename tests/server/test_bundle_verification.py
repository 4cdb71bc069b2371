"""A bundle whose files are not the ones its manifest names is refused at load, not served."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.devices.local import LocalDevice
from models.bundle import MANIFEST_NAME, file_sha256, read_manifest
from models.errors import BundleError
from models.runtime import SegmentChain
from server.background import BackgroundServer
from server.settings import Settings


def _swapped(source: Path, into: Path) -> Path:
    """A copy of ``source`` whose segment 1 file was replaced by segment 0 (another valid .tflite)."""
    shutil.copytree(source, into)
    manifest = read_manifest(into)
    shutil.copyfile(into / manifest.segments[0].file, into / manifest.segments[1].file)
    return into


def test_the_server_refuses_a_swapped_segment_and_says_why_in_healthz(
    bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    good = bundle_factory("small_cnn", "int8")
    root = tmp_path / "served"
    root.mkdir()
    shutil.copytree(good, root / "good-int8")
    _swapped(good, root / "swapped-int8")
    with BackgroundServer(Settings(bundle_dir=root, pool_size=1)) as server:
        health = httpx.get(server.base_url + "/healthz").json()
        assert health["models"] == ["good-int8"]
        assert "not the file its manifest names" in health["failed"]["swapped-int8"]
        x = np.zeros(read_manifest(good).input.shape, np.float32)
        response = httpx.post(
            server.base_url + "/v1/models/swapped-int8/infer",
            content=_npy(x),
            headers={"Content-Type": "application/x-npy"},
        )
        assert response.status_code == 404


def test_a_matching_hash_with_the_wrong_tensors_is_refused_too(
    bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = _swapped(bundle_factory("small_cnn", "fp32"), tmp_path / "b")
    data = json.loads((bundle / MANIFEST_NAME).read_text())
    data["segments"][1]["sha256"] = file_sha256(bundle / data["segments"][1]["file"])  # hash "fixed" by hand
    (bundle / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"input is .* but the manifest says"):
        SegmentChain(bundle)


def test_devices_refuse_a_modified_bundle(bundle_factory: Callable[..., Path], tmp_path: Path) -> None:
    bundle = _swapped(bundle_factory("small_cnn", "fp32"), tmp_path / "b")
    x = np.zeros(read_manifest(bundle).input.shape, np.float32)
    with pytest.raises(BundleError, match="not the file its manifest names"):
        LocalDevice().run_chain(bundle, [0, 1], x)


def _npy(x: np.ndarray) -> bytes:
    from server import wire

    return wire.encode_npy(x)
