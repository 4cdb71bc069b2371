"""The JPEG input codec: a real app uploads its photo as a JPEG, the server decodes it to the model input.

The device side encodes the float input image (H, W, 3) in [0, 1] with :func:`encode_jpeg` (Pillow,
quality 1-95, Pillow's default 4:2:0 chroma subsampling); the server's infer route accepts the bytes as
an ``image/jpeg`` body for segment 0 and turns them into the model's input tensor with
:func:`decode_jpeg`: Pillow's decode, RGB, ``uint8 / 255`` as float32 (1, H, W, 3) — exactly what the
client computes as the reference input of a JPEG execution, so the two ends cannot disagree.
"""

from __future__ import annotations

import io
import warnings
from typing import Final

import numpy as np

__all__ = ["CONTENT_TYPE", "DEFAULT_QUALITY", "JpegError", "decode_jpeg", "encode_jpeg"]

CONTENT_TYPE: Final = "image/jpeg"
DEFAULT_QUALITY: Final = 90  # what a camera app typically stores


class JpegError(ValueError):
    """The body is not a decodable JPEG of the model's input size (the server answers 400)."""


def encode_jpeg(image: np.ndarray, quality: int = DEFAULT_QUALITY) -> bytes:
    """A float image (H, W, 3) or (1, H, W, 3) in [0, 1] as JPEG bytes at ``quality`` (1-95)."""
    from PIL import Image

    if not 1 <= int(quality) <= 95:
        raise ValueError(f"JPEG quality must be between 1 and 95, got {quality}")
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"a JPEG needs an RGB image (H, W, 3), got shape {array.shape}")
    pixels = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)  # (H, W, 3)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(out, format="JPEG", quality=int(quality))
    return out.getvalue()


def decode_jpeg(body: bytes, shape: tuple[int, ...] | list[int] | None = None) -> np.ndarray:
    """JPEG bytes -> float32 (1, H, W, 3) in [0, 1]; :class:`JpegError` if not a JPEG of ``shape``.

    ``shape`` is the model input (1, H, W, 3); the image size is checked from the header before the
    pixels are decoded (no decompression bombs: a wrong size never gets decoded).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(body))
            if picture.format != "JPEG":
                raise JpegError(f"body is a {picture.format or 'unknown'} image, not a JPEG")
            if shape is not None:
                want_h, want_w = int(shape[-3]), int(shape[-2])
                if picture.size != (want_w, want_h):
                    raise JpegError(
                        f"JPEG is {picture.size[0]}x{picture.size[1]} pixels; the model input is "
                        f"{want_w}x{want_h} (resize before encoding)"
                    )
            pixels = np.asarray(picture.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise JpegError(f"body is not a decodable JPEG image: {exc}") from None
    except JpegError:
        raise
    except Exception as exc:  # Pillow's parsers raise many types on corrupt input (OSError, SyntaxError, EOFError, struct.error, ...)
        raise JpegError(f"body is not a decodable JPEG image (truncated or corrupt): {exc}") from None
    return (pixels.astype(np.float32) / 255.0)[None]
