"""The .npy wire format: round trips, compression, and refusal of everything that is not a plain tensor."""

from __future__ import annotations

import io

import numpy as np
import pytest

from server import wire


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "uint8", "int32", "bool"])
def test_round_trip_keeps_shape_dtype_and_values(dtype: str) -> None:
    x = (np.arange(2 * 3 * 5) % 7).reshape(2, 3, 5).astype(dtype)
    y = wire.decode_npy(wire.encode_npy(x))
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, x)


def test_reads_what_numpy_writes_including_fortran_order() -> None:
    x = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    buffer = io.BytesIO()
    np.save(buffer, x)
    np.testing.assert_array_equal(wire.decode_npy(buffer.getvalue()), x)


def test_numpy_reads_what_we_write() -> None:
    x = np.linspace(0, 1, 10, dtype=np.float32).reshape(1, 10)
    np.testing.assert_array_equal(np.load(io.BytesIO(wire.encode_npy(x)), allow_pickle=False), x)


def test_wire_overhead_is_the_header_only() -> None:
    x = np.zeros((1, 14, 14, 64), np.int8)
    assert len(wire.encode_npy(x)) - x.nbytes == 80  # one .npy v1.0 header padded to 16 bytes


def test_zero_dim_and_empty_tensors_round_trip() -> None:
    for x in (np.float64(2.5) * np.ones(()), np.zeros((0, 3), np.float32)):
        y = wire.decode_npy(wire.encode_npy(x))
        assert y.shape == x.shape and y.dtype == x.dtype
        np.testing.assert_array_equal(y, x)


def test_pickled_object_array_is_refused() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(wire.WireFormatError, match="not allowed"):
        wire.decode_npy(buffer.getvalue())
    with pytest.raises(wire.WireFormatError):
        wire.encode_npy(np.array([None], dtype=object))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "magic"),
        (b"not a tensor at all", "magic"),
        (b"\x93NUMPY\x09\x00\x10\x00{}", "version"),
        (b"\x93NUMPY\x01\x00\xff\x00{'descr'", "truncated"),
        (b"\x93NUMPY\x01\x00\x10\x00__import__('os')", "dict"),
        (b"\x93NUMPY\x01\x00\x1d\x00{'descr': '<f4', 'shape': ()}", "exactly"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, match: str) -> None:
    with pytest.raises(wire.WireFormatError, match=match):
        wire.decode_npy(body)


def test_truncated_and_padded_data_are_refused() -> None:
    good = wire.encode_npy(np.ones((4, 4), np.float32))
    with pytest.raises(wire.WireFormatError, match="needs 64"):
        wire.decode_npy(good[:-1])
    with pytest.raises(wire.WireFormatError, match="needs 64"):
        wire.decode_npy(good + b"\x00")


def test_structured_and_big_endian_dtypes_are_refused() -> None:
    with pytest.raises(wire.WireFormatError):
        wire.decode_npy(wire.encode_npy(np.zeros(2, dtype=[("a", "<f4")])))
    with pytest.raises(wire.WireFormatError, match="big-endian"):
        wire.decode_npy(wire.encode_npy(np.zeros(2, dtype=">f4")))


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compression_round_trip_and_bomb_limit(encoding: str) -> None:
    payload = wire.encode_npy(np.zeros((256, 256), np.float32))  # 256 KiB of zeros
    packed = wire.compress(payload, encoding)
    assert len(packed) < len(payload) // 10
    assert wire.decompress(packed, encoding, max_bytes=len(payload)) == payload
    with pytest.raises(wire.PayloadTooLargeError):
        wire.decompress(packed, encoding, max_bytes=len(payload) - 1)
    with pytest.raises(wire.WireFormatError):
        wire.decompress(b"definitely not compressed", encoding, max_bytes=1 << 20)


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(wire.UnsupportedEncodingError):
        wire.decompress(b"x", "br", max_bytes=10)
    with pytest.raises(wire.UnsupportedEncodingError):
        wire.compress(b"x", "br")
