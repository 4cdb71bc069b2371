"""The JPEG input body: the server decodes exactly as Pillow does, and refuses what it cannot decode."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from models.datasets import load_photos
from models.errors import ServerRejectedError
from models.runtime import SegmentChain
from server import jpeg
from server.background import BackgroundServer
from server.client import CloudClient


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_photos((32, 32))[1]  # (32, 32, 3) float32: sklearn's flower, fitted to small_cnn


def test_encode_decode_round_trip_equals_pillow(photo: np.ndarray) -> None:
    data = jpeg.encode_jpeg(photo, quality=90)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "JPEG" and picture.size == (32, 32)
        pillow = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    decoded = jpeg.decode_jpeg(data, (1, 32, 32, 3))
    assert decoded.shape == (1, 32, 32, 3) and decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded[0], pillow)
    assert 0 < np.abs(decoded[0] - photo).max() < 0.5  # lossy, but the same picture
    assert len(jpeg.encode_jpeg(photo, quality=30)) < len(data)
    with pytest.raises(jpeg.JpegError, match="model input is 64x64"):
        jpeg.decode_jpeg(data, (1, 64, 64, 3))
    with pytest.raises(ValueError, match="between 1 and 95"):
        jpeg.encode_jpeg(photo, quality=0)


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_server_decodes_jpeg_like_pillow(
    client: CloudClient, local_chains: dict[str, SegmentChain], photo: np.ndarray, quant: str
) -> None:
    name = f"small_cnn-{quant}"
    data = jpeg.encode_jpeg(photo)
    result = client.infer_jpeg(name, data, to_segment=3, dequantize=True)
    chain = local_chains[name]
    expected = chain.run_float(jpeg.decode_jpeg(data), 0, 3).output  # Pillow's decode, run locally
    np.testing.assert_array_equal(result.output, expected)
    assert result.request_bytes == len(data)  # the upload is the encoded file, nothing more
    assert result.decode_ms > 0 and result.server_ms > result.decode_ms


def test_bad_jpeg_bodies_get_4xx(
    live_server: BackgroundServer, client: CloudClient, photo: np.ndarray
) -> None:
    good = jpeg.encode_jpeg(photo)
    png = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png, format="PNG")
    url = f"{live_server.base_url}/v1/models/small_cnn-int8/infer?from_segment=0"
    cases = {
        b"not a picture": (400, "not a decodable JPEG"),
        good[: len(good) // 2]: (400, "truncated or corrupt"),
        png.getvalue(): (400, "PNG image, not a JPEG"),
        jpeg.encode_jpeg(np.zeros((16, 16, 3), np.float32)): (400, "model input is 32x32"),
    }
    for body, (status, text) in cases.items():
        response = httpx.post(url, content=body, headers={"Content-Type": "image/jpeg"})
        assert response.status_code == status, response.text
        assert text in response.json()["detail"]
    later = httpx.post(
        url.replace("from_segment=0", "from_segment=2"), content=good, headers={"Content-Type": "image/jpeg"}
    )
    assert later.status_code == 415 and "only from_segment=0" in later.json()["detail"]
    with pytest.raises(ServerRejectedError, match="400"):
        client.infer_jpeg("small_cnn-int8", b"\xff\xd8\xff garbage")
