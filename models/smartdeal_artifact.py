"""The compact SmartDeal artifact of a mobile half, and the exact rebuild of its dense segment files.

Per SD layer the artifact stores

    mask     1 bit per coefficient of C (G*S*b bits, numpy ``packbits`` order): where the nonzeros are
    codes    one sign/exponent code per nonzero, in mask order: ``sign << (bits-1) | (e - exp_min)``,
             two per byte (high nibble first) when ``bits <= 4``, else one per byte
    basis    B as float16, (G, b, b)

and per segment a **skeleton**: the segment's ``.tflite`` with the bytes of every SD kernel cut out.
:func:`rebuild_segments` decodes C and B, rebuilds each kernel with :func:`models.smartdeal.reconstruct`,
lays it out the way TFLite stores it (Conv2D ``(out, kh, kw, in)``, DepthwiseConv2D ``(1, kh, kw, in*m)``,
FullyConnected ``(out, in)``) and splices it back: the result equals the exported file byte for byte
(sha256 checked). File layout: ``b"SDW1"``, uint32 little-endian header length, JSON header, blobs.
Pure numpy: the emulated device's reconstruction program imports it without TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import BundleError
from models.smartdeal import LayerShape, from_matrix, reconstruct

__all__ = [
    "ArtifactLayer",
    "SizeReport",
    "build_artifact",
    "decode_layer",
    "encode_layer",
    "encoded_layer_bytes",
    "read_artifact",
    "rebuild_segments",
    "segment_savings",
    "tflite_kernel_bytes",
]

MAGIC = b"SDW1"


def encoded_layer_bytes(shape: LayerShape, nonzeros: int, code_bits: int) -> int:
    """Bytes of one encoded layer: mask bitmap + sign/exponent codes + float16 bases."""
    entries = shape.groups * shape.rows * shape.basis
    codes = (nonzeros + 1) // 2 if code_bits <= 4 else nonzeros
    return (entries + 7) // 8 + codes + shape.groups * shape.basis * shape.basis * 2


def encode_layer(c: np.ndarray, basis: np.ndarray, exp_min: int, code_bits: int) -> bytes:
    """``C`` (G, S, b) on the power-of-two grid and ``B`` (G, b, b) float16 values -> payload bytes."""
    flat = c.reshape(-1)
    nz = flat != 0
    values = flat[nz]
    mantissa, exponent = np.frexp(np.abs(values))  # |v| = 0.5 * 2^exponent exactly
    if np.any(mantissa != 0.5):
        raise BundleError("SmartDeal coefficients are not powers of two; fold the trained model first")
    e = exponent.astype(np.int64) - 1 - exp_min
    if np.any(e < 0) or np.any(e >= 1 << (code_bits - 1)):
        raise BundleError("SmartDeal exponent outside the configured range")
    codes = ((values < 0).astype(np.int64) << (code_bits - 1) | e).astype(np.uint8)
    if code_bits <= 4:
        if len(codes) % 2:
            codes = np.append(codes, np.uint8(0))
        codes = (codes[0::2] << 4 | codes[1::2]).astype(np.uint8)
    b16 = basis.astype(np.float16)
    if not np.array_equal(b16.astype(np.float32), basis.astype(np.float32)):
        raise BundleError("SmartDeal basis values are not float16; fold the trained model first")
    return np.packbits(nz).tobytes() + codes.tobytes() + b16.astype("<f2").tobytes()


def decode_layer(
    payload: bytes, shape: LayerShape, exp_min: int, code_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_layer`: float32 ``(C, B)``."""
    entries = shape.groups * shape.rows * shape.basis
    mask_len = (entries + 7) // 8
    nz = np.unpackbits(np.frombuffer(payload, np.uint8, mask_len))[:entries].astype(bool)
    count = int(nz.sum())
    code_len = (count + 1) // 2 if code_bits <= 4 else count
    raw = np.frombuffer(payload, np.uint8, code_len, offset=mask_len)
    if code_bits <= 4:
        codes = np.empty(2 * len(raw), np.uint8)
        codes[0::2], codes[1::2] = raw >> 4, raw & 0x0F
        codes = codes[:count]
    else:
        codes = raw
    sign = np.where(codes >> (code_bits - 1) & 1, np.float32(-1.0), np.float32(1.0))
    e = (codes & ((1 << (code_bits - 1)) - 1)).astype(np.int32) + exp_min
    flat = np.zeros(entries, np.float32)
    flat[nz] = sign * np.ldexp(np.float32(1.0), e).astype(np.float32)
    b_len = shape.groups * shape.basis * shape.basis * 2
    basis = np.frombuffer(payload, "<f2", b_len // 2, offset=mask_len + code_len).astype(np.float32)
    return flat.reshape(shape.groups, shape.rows, shape.basis), basis.reshape(
        shape.groups, shape.basis, shape.basis
    )


def tflite_kernel_bytes(kernel: np.ndarray, kind: str) -> bytes:
    """A Keras kernel in the layout TFLite stores it, as little-endian float32 bytes."""
    if kind == "conv2d":
        arr = np.transpose(kernel, (3, 0, 1, 2))  # (out, kh, kw, in)
    elif kind == "depthwise":
        kh, kw, cin, mult = kernel.shape
        arr = kernel.reshape(1, kh, kw, cin * mult)
    else:
        arr = kernel.T  # (out, in)
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


@dataclass
class ArtifactLayer:
    """One SD layer's exact parts (from :func:`models.smartdeal.folded_parts`) and its shape."""

    name: str
    shape: LayerShape
    c: np.ndarray
    basis: np.ndarray


@dataclass
class SizeReport:
    """Sizes of a mobile half in bytes: dense segment files vs skeletons + SD payloads."""

    dense_tflite_bytes: int = 0  # the exported segment files
    skeleton_bytes: int = 0  # those files without the SD kernels (graph, biases, other weights)
    sd_payload_bytes: int = 0  # masks + codes + bases of the SD kernels
    kernel_fp32_bytes: int = 0  # the SD kernels as float32 (what the payload replaces)
    layers: int = 0
    layers_left_dense: list[str] = field(default_factory=list)  # not found verbatim in the .tflite

    @property
    def artifact_bytes(self) -> int:
        return self.skeleton_bytes + self.sd_payload_bytes

    @property
    def ratio(self) -> float:
        return self.dense_tflite_bytes / max(1, self.artifact_bytes)


def build_artifact(
    segments: list[tuple[str, bytes, list[ArtifactLayer]]], *, exp_min: int, code_bits: int
) -> tuple[bytes, SizeReport]:
    """Pack ``(file name, .tflite bytes, SD layers in it)`` per segment into one artifact; with its sizes."""
    report = SizeReport()
    header: dict[str, Any] = {"exp_min": exp_min, "code_bits": code_bits, "segments": []}
    blobs: list[bytes] = []
    position = 0

    def add(blob: bytes) -> list[int]:
        nonlocal position
        blobs.append(blob)
        span = [position, len(blob)]
        position += len(blob)
        return span

    for file, data, layers in segments:
        report.dense_tflite_bytes += len(data)
        cuts: list[tuple[int, int, dict[str, Any]]] = []
        for layer in layers:
            kernel = from_matrix(reconstruct(layer.c, layer.basis), layer.shape)
            dense = tflite_kernel_bytes(kernel, layer.shape.kind)
            at = data.find(dense)
            if at < 0 or data.find(dense, at + 1) >= 0:
                report.layers_left_dense.append(layer.name)
                continue
            payload = encode_layer(layer.c, layer.basis, exp_min, code_bits)
            s = layer.shape
            entry = {
                "name": layer.name,
                "kind": s.kind,
                "kernel_shape": list(s.kernel_shape),
                "out": s.out,
                "fan_in": s.fan_in,
                "basis": s.basis,
                "rows": s.rows,
                "payload": add(payload),
            }
            cuts.append((at, len(dense), entry))
            report.sd_payload_bytes += len(payload)
            report.kernel_fp32_bytes += len(dense)
            report.layers += 1
        cuts.sort(key=lambda item: item[0])
        pieces, start, entries = [], 0, []
        for at, length, entry in cuts:
            pieces.append(data[start:at])
            entry["offset"] = at
            entries.append(entry)
            start = at + length
        pieces.append(data[start:])
        skeleton = b"".join(pieces)
        report.skeleton_bytes += len(skeleton)
        header["segments"].append(
            {
                "file": file,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "skeleton": add(skeleton),
                "layers": entries,
            }
        )
    head = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + b"".join(blobs), report


def read_artifact(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Header and blob area of an artifact (BundleError if it is not one)."""
    if data[:4] != MAGIC or len(data) < 8:
        raise BundleError(
            "not a SmartDeal artifact (missing SDW1 magic); write one with `jointdnn export --smartdeal`"
        )
    (length,) = struct.unpack("<I", data[4:8])
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError:
        raise BundleError("corrupt SmartDeal artifact header") from None
    return header, data[8 + length :]


def rebuild_segments(data: bytes, *, verify: bool = True) -> dict[str, bytes]:
    """Decode an artifact into ``{file name: dense .tflite bytes}``; sha256-checked when ``verify``."""
    header, blobs = read_artifact(data)
    exp_min, code_bits = int(header["exp_min"]), int(header["code_bits"])
    out: dict[str, bytes] = {}
    for seg in header["segments"]:
        start, length = seg["skeleton"]
        skeleton = blobs[start : start + length]
        pieces: list[bytes] = []
        taken = 0  # bytes of the skeleton already copied
        written = 0  # bytes of the rebuilt file so far
        for layer in seg["layers"]:
            shape = LayerShape(
                layer["kind"],
                tuple(layer["kernel_shape"]),
                layer["out"],
                layer["fan_in"],
                layer["basis"],
                layer["rows"],
            )
            p_start, p_len = layer["payload"]
            c, basis = decode_layer(blobs[p_start : p_start + p_len], shape, exp_min, code_bits)
            dense = tflite_kernel_bytes(from_matrix(reconstruct(c, basis), shape), shape.kind)
            gap = layer["offset"] - written
            pieces.append(skeleton[taken : taken + gap])
            pieces.append(dense)
            taken += gap
            written = layer["offset"] + len(dense)
        pieces.append(skeleton[taken:])
        rebuilt = b"".join(pieces)
        if verify and hashlib.sha256(rebuilt).hexdigest() != seg["sha256"]:
            raise BundleError(f"rebuilt {seg['file']} does not match its sha256; the artifact is corrupt")
        out[seg["file"]] = rebuilt
    return out


def segment_savings(data: bytes) -> dict[int, int]:
    """Per bundle segment index (from ``segment_NNN.tflite``): float32 kernel bytes minus SD payload bytes.

    What a phone holding the artifact reads less per pass of that segment (the planner's weight term).
    """
    header, _ = read_artifact(data)
    savings: dict[int, int] = {}
    for seg in header["segments"]:
        stem = str(seg["file"]).removesuffix(".tflite")
        if not stem.startswith("segment_") or not stem[8:].isdigit():
            raise BundleError(f"SmartDeal artifact names an unexpected segment file {seg['file']!r}")
        savings[int(stem[8:])] = sum(4 * x["out"] * x["fan_in"] - x["payload"][1] for x in seg["layers"])
    return savings


def write_rebuilt(data: bytes, out_dir: Path) -> list[Path]:
    """Rebuild every segment of an artifact into ``out_dir``; returns the written paths."""
    paths = []
    for name, content in rebuild_segments(data).items():
        path = out_dir / name
        path.write_bytes(content)
        paths.append(path)
    return paths
