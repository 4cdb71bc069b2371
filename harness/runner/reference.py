"""The whole model's output, the yardstick every split execution is checked against.

The reference runs ``whole.tflite`` of the bundle in-process (LiteRT, same quantization as the
segments); bundles without it fall back to the in-process segment chain. A split output *matches* when
it is within the tolerance of the bundle's quantization:

* fp32: ``|y - ref| <= 1e-4 + 1e-4 * max|ref|`` (segment boundaries change nothing but float rounding);
* fp16: ``1e-3 + 1e-2 * max|ref|``;
* int8: ``3 output steps + 5 % of max|ref|``: every requantized boundary may round one step differently
  from the fused whole model, and the error grows by a few steps through later layers.

Both the largest absolute error and whether the top-1 class agrees are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.bundle import BundleManifest
from models.runtime import SegmentChain, SegmentRunner, convert_tensor, to_float

__all__ = ["OutputCheck", "check_output", "reference_output"]


@dataclass(frozen=True)
class OutputCheck:
    """How a split execution's output compares with the whole model's."""

    max_abs_err: float
    tolerance: float
    matches: bool
    argmax_matches: bool


def reference_output(bundle_dir: Path, manifest: BundleManifest, x: np.ndarray) -> np.ndarray:
    """Float32 output of the whole model on the float input ``x``."""
    if manifest.whole_file and (Path(bundle_dir) / manifest.whole_file).is_file():
        runner = SegmentRunner(Path(bundle_dir) / manifest.whole_file)
        y = runner.run(convert_tensor(x, None, runner.input_dtype, runner.input_quant))
        return to_float(y, runner.output_quant)
    return SegmentChain(Path(bundle_dir), manifest=manifest).run_float(x).output


def tolerance(manifest: BundleManifest, reference: np.ndarray) -> float:
    """Absolute tolerance for this bundle's quantization (see the module docstring)."""
    peak = float(np.max(np.abs(reference))) if reference.size else 0.0
    if manifest.quant == "int8":
        quant = manifest.segments[-1].output.quant
        step = quant.scale if quant is not None else 0.0
        return 3 * step + 0.05 * peak
    if manifest.quant == "fp16":
        return 1e-3 + 1e-2 * peak
    return 1e-4 + 1e-4 * peak


def check_output(manifest: BundleManifest, output: np.ndarray, reference: np.ndarray) -> OutputCheck:
    """Compare a split execution's float output with the whole model's."""
    tol = tolerance(manifest, reference)
    if output.shape != reference.shape:
        return OutputCheck(float("inf"), tol, False, False)
    err = float(np.max(np.abs(output.astype(np.float64) - reference.astype(np.float64))))
    same_top1 = bool(np.argmax(output.reshape(-1)) == np.argmax(reference.reshape(-1)))
    return OutputCheck(max_abs_err=err, tolerance=tol, matches=err <= tol, argmax_matches=same_top1)
