"""Import TensorFlow and Keras once, quietly, before any module of ``models`` uses them.

TensorFlow prints absl/oneDNN banners on fd 2 at import time, before ``TF_CPP_MIN_LOG_LEVEL`` takes
effect for some of them; users of the CLI should not see them. Call :func:`ensure_tensorflow` in a
function before ``import tensorflow`` / ``import keras``: the first call imports both with fd 2 sent
to /dev/null (real errors still raise), later calls cost nothing.
"""

from __future__ import annotations

import os
import sys
from functools import cache

__all__ = ["ensure_tensorflow"]


@cache
def ensure_tensorflow() -> None:
    """Import TensorFlow and Keras with their import-time log lines silenced (once per process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
