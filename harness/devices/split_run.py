"""A device stage of a split run with the stock ``benchmark_model`` (no ``jointdnn_chain_runner`` needed).

Recent ``benchmark_model`` builds read an input tensor's raw bytes from a device file and write every
output tensor's raw bytes at benchmark end::

    benchmark_model --graph=segment_003.tflite --num_runs=1 --warmup_runs=0 --min_secs=0 \
        --warmup_min_secs=0 --input_layer=NAME --input_layer_shape=1,28,28,8 \
        --input_layer_value_files=NAME:in.bin --output_filepath=out.bin

(upstream: the file must hold exactly the tensor's bytes, else the tool aborts; ``--input_layer`` and
``--input_layer_shape`` must name the input for the value file to be used; a ``:`` inside a tensor name
is written ``::``). A stage of several segments is one ``sh`` command line: one invocation per segment,
each reading the file the previous one wrote, joined with ``&&`` and separated by ``echo`` markers so
the output of each invocation can be told apart (one adb round trip per stage). The segment chain is
cut where an int8 hand-over needs requantizing (producer's output parameters differ from the consumer's
input parameters): the host requantizes between command lines, exactly as
:func:`models.runtime.hand_over` does.

Whether a binary has the flags is read from its own ``--help`` (``tflite::Flags::Usage``).
"""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass

from models.bundle import BundleManifest
from models.errors import DeviceError

__all__ = [
    "SPLIT_FLAGS",
    "SegmentCall",
    "input_tensor_name",
    "parse_stage_output",
    "split_groups",
    "stage_command",
    "supports_split_flags",
]

SPLIT_FLAGS = ("--input_layer_value_files", "--output_filepath")
_MARKER = "@@jointdnn-segment"


def supports_split_flags(help_text: str) -> bool:
    """Whether ``benchmark_model --help`` lists both split-run flags (``--name=default`` usage rows)."""
    return all(f"{flag}=" in help_text for flag in SPLIT_FLAGS)


def split_groups(manifest: BundleManifest, indices: list[int]) -> list[list[int]]:
    """``indices`` cut into runs whose hand-overs need no requantizing (int8 parameters equal)."""
    groups: list[list[int]] = [[indices[0]]]
    for k in indices[1:]:
        producer, consumer = manifest.segments[k - 1].output, manifest.segments[k].input
        same = producer.dtype == consumer.dtype and producer.quant == consumer.quant
        if same:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


@dataclass(frozen=True)
class SegmentCall:
    """One ``benchmark_model`` invocation of a stage: which graph, its input, where its output goes."""

    index: int  # segment index
    graph: str  # device path of the segment's .tflite
    input_name: str  # the model's input tensor name (``serving_default_boundary:0``)
    input_shape: list[int]  # (N, H, W, C) of the input tensor
    input_path: str  # device file with the input's raw bytes
    output_path: str  # device file the output's raw bytes go to


def stage_command(
    binary: str, calls: list[SegmentCall], *, threads: int, warmup_runs: int, taskset_mask: str = ""
) -> str:
    """The ``sh`` command line of one stage (every argument shell-quoted)."""
    parts: list[str] = []
    for call in calls:
        args = [
            binary,
            f"--graph={call.graph}",
            f"--num_threads={threads}",
            "--num_runs=1",
            f"--warmup_runs={warmup_runs}",
            "--min_secs=0",
            "--warmup_min_secs=0",
            f"--input_layer={call.input_name}",
            f"--input_layer_shape={','.join(str(d) for d in call.input_shape)}",
            f"--input_layer_value_files={call.input_name.replace(':', '::')}:{call.input_path}",
            f"--output_filepath={call.output_path}",
        ]
        if taskset_mask:
            args = ["taskset", taskset_mask, *args]
        parts.append(f"echo {_MARKER}:{call.index} && {shlex.join(args)} 2>&1")
    return " && ".join(parts)


def parse_stage_output(stdout: str, indices: list[int]) -> dict[int, str]:
    """Each invocation's log (stdout + stderr) by segment index, split at the ``echo`` markers."""
    logs: dict[int, list[str]] = {}
    current: int | None = None
    for line in stdout.splitlines():
        if line.startswith(_MARKER + ":"):
            current = int(line.partition(":")[2])
            logs[current] = []
        elif current is not None:
            logs[current].append(line)
    missing = [k for k in indices if k not in logs]
    if missing:
        raise DeviceError(f"benchmark_model printed nothing for segments {missing}: {stdout.strip()[-300:]}")
    return {k: "\n".join(lines) for k, lines in logs.items()}


@functools.lru_cache(maxsize=256)
def input_tensor_name(path: str, sha256: str) -> str:
    """The input tensor name of a ``.tflite`` file (read on the host with LiteRT; cached by path and sha256)."""
    from models.runtime import interpreter_class

    interpreter = interpreter_class()(model_path=path)
    return str(interpreter.get_input_details()[0]["name"])
