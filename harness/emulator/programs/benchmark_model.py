"""``/data/local/tmp/benchmark_model`` on the emulated device: TFLite's benchmark tool, run on LiteRT.

It accepts the real tool's flags (``--graph``, ``--num_threads``, ``--num_runs``, ``--warmup_runs``,
``--min_secs``, ``--max_secs``, ``--warmup_min_secs``, ``--run_delay``, ``--use_xnnpack``,
``--enable_op_profiling`` ... unknown ones fail with "Unconsumed cmdline flags") and prints what
``tensorflow/lite/tools/benchmark`` prints, on **stderr** like the real tool (its ``TFLITE_LOG`` writes
to stderr):

    INFO: Initialized session in 3.282ms.
    INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
    INFO: count=32 first=33164 curr=15530 min=15266 max=33164 avg=15843.2 std=3051 p5=15300 median=15500 p95=16000

    INFO: Inference timings in us: Init: 3282, First inference: 33164, Warmup (avg): 15843.2, Inference (avg): 15590.3

The run loop is the real one: each phase runs until it has done at least ``runs`` iterations *and* spent
at least ``min_secs``, but stops starting new iterations after ``max_secs``. A phase whose timings are
all equal prints ``count=N curr=X`` only (the real ``Stat`` does the same). While the loop runs, the
device's battery sees the profile's compute power (idle + active), except during ``--run_delay`` sleeps.

The device profile's ``compute_slowdown`` emulates a phone slower than the host: every invoke's measured
time ``t`` is padded to ``slowdown * t`` by sleeping (battery still drawing compute power), and the padded
times are what the log reports (see :mod:`harness.devices.slowdown`).

Per-operator profiling (``--enable_op_profiling=true``) is accepted but cannot be reproduced: LiteRT's
Python API exposes no op profiler; the tool says so in its log instead of inventing numbers.

Split runs (what recent upstream builds offer, and what :meth:`harness.devices.adb.AdbDevice.run_chain`
uses on a phone without ``jointdnn_chain_runner``):

* ``--input_layer=NAMES --input_layer_shape=SHAPES --input_layer_value_files=NAME:PATH,...`` feeds raw
  tensor bytes from device files. As upstream: every name in the value files must be listed in
  ``--input_layer`` (else ``FATAL: Cannot find the corresponding input_layer name(...)``), names and
  shapes must pair up, ``::`` escapes a ``:`` inside a name, a name that differs from the model's tensor
  name only warns, and a file whose size is not the tensor's byte size aborts the tool
  (``FATAL: The size of PATH is N bytes. It should be M bytes.``, exit status 134 = SIGABRT);
* ``--output_filepath=PATH`` writes, at benchmark end, the raw bytes of every output tensor of the last
  invoke, concatenated in output order (upstream's ``OutputSaver`` listener);
* ``--help`` prints ``tflite::Flags::Usage`` (``--name=default  type  optional  help``) on stderr with an
  ``ERROR:`` prefix and exits 1, as upstream does, so a harness can detect the flags a build supports.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from harness.devices.slowdown import ComputePadding
from harness.emulator.process import Process
from harness.emulator.programs.flags import Flag, FlagError, parse_flags, usage
from models.benchmark import LoopListener, LoopSettings, run_loop

__all__ = ["FLAGS", "benchmark_model", "format_stat"]

FLAGS = [  # upstream's order: BenchmarkModel's flags, BenchmarkTfLiteModel's, then the delegates'
    Flag("num_runs", int, 50, "expected number of runs, see also min_secs, max_secs"),
    Flag(
        "min_secs",
        float,
        1.0,
        "minimum number of seconds to rerun for, potentially making the actual number of runs to be greater than num_runs",
    ),
    Flag(
        "max_secs",
        float,
        150.0,
        "maximum number of seconds to rerun for, potentially making the actual number of runs to be less than num_runs",
    ),
    Flag("run_delay", float, -1.0, "delay between runs in seconds"),
    Flag("num_threads", int, -1, "number of threads (-1: the runtime's default, 1 on this device)"),
    Flag("use_caching", bool, False, "enable caching of prepacked weights matrices in matrix multiplication"),
    Flag("benchmark_name", str, "", "benchmark name"),
    Flag("output_prefix", str, "", "benchmark output prefix"),
    Flag("warmup_runs", int, 1, "minimum number of runs performed on initialization"),
    Flag("warmup_min_secs", float, 0.5, "minimum number of seconds to rerun for during warm-up"),
    Flag("verbose", bool, False, "whether to log parameters whose values are not set"),
    Flag("report_peak_memory_footprint", bool, False, "report the peak memory footprint"),
    Flag("graph", str, "", "graph file name"),
    Flag("input_layer", str, "", "input layer names"),
    Flag("input_layer_shape", str, "", "input layer shape"),
    Flag(
        "input_layer_value_range",
        str,
        "",
        "value ranges of integer input layers: name,low,high items separated by ':'",
    ),
    Flag(
        "input_layer_value_files",
        str,
        "",
        "raw value files of input layers: name:path items separated by ','; '::' escapes a ':' in a name; a file holds exactly the tensor's bytes",
    ),
    Flag("allow_fp16", bool, False, "allow fp16"),
    Flag("require_full_delegation", bool, False, "require delegate to run the entire graph"),
    Flag("enable_op_profiling", bool, False, "enable op profiling"),
    Flag("max_profiling_buffer_entries", int, 1024, "max initial profiling buffer entries"),
    Flag("profiling_output_csv_file", str, "", "file path to export profile data as CSV"),
    Flag("print_preinvoke_state", bool, False, "print the interpreter state before invoking"),
    Flag("print_postinvoke_state", bool, False, "print the interpreter state after the runs"),
    Flag("output_filepath", str, "", "file path to export the output tensors to as raw binary data"),
    Flag("signature_to_run_for", str, "", "signature to benchmark when the model has several"),
    Flag("enable_platform_tracing", bool, False, "enable platform-wide tracing"),
    Flag("help", bool, False, "print out all supported flags if true"),
    Flag(
        "use_xnnpack", bool, False, "explicitly apply the XNNPACK delegate (false disables the default one)"
    ),
    Flag("use_gpu", bool, False, "use the GPU delegate (not available on this device)"),
    Flag("use_nnapi", bool, False, "use NNAPI (not available on this device)"),
]
_LOGGED_PARAMS = [  # flag -> log label, in the real tool's order (logged when set or with --verbose)
    ("num_runs", "Min num runs"),
    ("min_secs", "Min runs duration (seconds)"),
    ("max_secs", "Max runs duration (seconds)"),
    ("run_delay", "Inter-run delay (seconds)"),
    ("num_threads", "Num threads"),
    ("benchmark_name", "Benchmark name"),
    ("output_prefix", "Output prefix"),
    ("warmup_runs", "Min warmup runs"),
    ("warmup_min_secs", "Min warmup runs duration (seconds)"),
    ("graph", "Graph"),
    ("input_layer", "Input layers"),
    ("input_layer_shape", "Input shapes"),
    ("input_layer_value_files", "Input value files"),
    ("enable_op_profiling", "Enable op profiling"),
    ("output_filepath", "File path to export outputs layer to"),
    ("use_xnnpack", "Use xnnpack"),
]


def _num(value: float) -> str:
    """A double as C++ ``ostream`` prints it by default (6 significant digits: 15843.2, 1.04176e+06)."""
    return f"{value:.6g}"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return _num(value)
    return str(value)


def format_stat(samples_us: list[int]) -> str:
    """tensorflow::Stat::OutputToStream (with the percentiles of recent versions)."""
    if not samples_us:
        return "count=0"
    count = len(samples_us)
    low, high = min(samples_us), max(samples_us)
    if low == high:
        return f"count={count} curr={samples_us[-1]}" + ("(all same)" if count > 1 else "")
    avg = sum(samples_us) / count
    std = int(math.sqrt(max(0.0, sum(s * s for s in samples_us) / count - avg * avg)))
    ordered = sorted(samples_us)

    def pct(p: float) -> int:
        return ordered[min(count - 1, int(p / 100 * count))]

    return (
        f"count={count} first={samples_us[0]} curr={samples_us[-1]} min={low} max={high} avg={_num(avg)} "
        f"std={std} p5={pct(5)} median={pct(50)} p95={pct(95)}"
    )


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class _Abort(Exception):
    """The tool stops: ``ERROR`` returns 1 after "Benchmarking failed."; ``FATAL`` aborts (status 134)."""

    def __init__(self, message: str, level: str = "ERROR"):
        super().__init__(message)
        self.level = level


@dataclass
class _InputLayer:
    """One ``--input_layer`` entry with its shape and, from ``--input_layer_value_files``, its file."""

    name: str
    shape: list[int]
    value_file: str = ""


def _split_name_and_file(item: str) -> tuple[str, str]:
    """``NAME:PATH`` with ``::`` standing for a ``:`` inside either part (upstream's splitting rule)."""
    delim = -1
    i = 0
    while i < len(item) - 1:
        if item[i] == ":":
            if item[i + 1] == ":":
                i += 1
            elif delim == -1:
                delim = i
            else:
                raise _Abort(f"{item} contains more than one delimiter.")
        i += 1
    if delim == -1:
        raise _Abort(f"{item} doesn't contain any delimiter.")
    return item[:delim].replace("::", ":"), item[delim + 1 :].replace("::", ":")


def _input_layers(values: dict[str, Any]) -> list[_InputLayer]:
    """``--input_layer``/``--input_layer_shape``/``--input_layer_value_files`` as upstream pairs them."""
    names_text, shapes_text = values["input_layer"], values["input_layer_shape"]
    names = names_text.split(",") if names_text else []
    shapes = shapes_text.split(":") if shapes_text else []
    if len(names) != len(shapes):
        raise _Abort(
            f"The number of items in --input_layer_shape ({shapes_text}, with {len(shapes)} items) must match "
            f"the number of items in --input_layer ({names_text}, with {len(names)} items). For example "
            "--input_layer=input1,input2 --input_layer_shape=1,224,224,4:1,20"
        )
    layers: list[_InputLayer] = []
    for name, shape_text in zip(names, shapes, strict=True):
        try:
            shape = [int(d) for d in shape_text.split(",")] if shape_text else []
        except ValueError:
            raise _Abort(f"Incorrect size string specified: {shape_text}", "FATAL") from None
        if -1 in shape:
            raise _Abort(
                "Any unknown sizes in the shapes (-1's) must be replaced with the size you want to benchmark with."
            )
        layers.append(_InputLayer(name, shape))
    files_text = values["input_layer_value_files"]
    for item in files_text.split(",") if files_text else []:
        try:
            name, path = _split_name_and_file(item)
        except _Abort as exc:
            raise _Abort(f"{exc}\nERROR: Wrong input value file item specified: {item}\nERROR: 1") from None
        match = next((layer for layer in layers if layer.name == name), None)
        if match is None:
            raise _Abort(
                f"Cannot find the corresponding input_layer name({name}) in --input_layer as {names_text}",
                "FATAL",
            )
        match.value_file = path
    return layers


class _Runner:
    """One loaded model, inputs from value files or random (:func:`models.benchmark.random_tensor`)."""

    def __init__(self, model: bytes, threads: int, use_default_delegates: bool):
        from models.runtime import interpreter_class

        cls = interpreter_class()
        kwargs: dict[str, Any] = {"model_content": model, "num_threads": threads}
        resolver = getattr(sys.modules.get(cls.__module__), "OpResolverType", None)
        if not use_default_delegates and resolver is not None:  # LiteRT and tf.lite have it
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interpreter = cls(**kwargs)

    def prepare(self, layers: list[_InputLayer], read: Any, log: Any) -> None:
        """Check and apply ``--input_layer*`` (upstream's Init + PrepareInputData), then set the inputs."""
        import numpy as np

        from models.benchmark import random_tensor

        details = self.interpreter.get_input_details()
        if layers and len(layers) != len(details):
            raise _Abort(f"Inputs mismatch: Model inputs #:{len(layers)} expected: {len(details)}", "FATAL")
        for layer, detail in zip(layers, details, strict=False):
            if layer.name != detail["name"]:
                log(
                    f"Tensor # {detail['index']} is named {detail['name']} but flags call it {layer.name}",
                    "WARN",
                )
            if len(layer.shape) != len(detail["shape"]):
                raise _Abort(
                    f"Input tensor #{detail['index']} should have {len(detail['shape'])} dimensions!"
                )
        for layer, detail in zip(layers, details, strict=False):
            self.interpreter.resize_tensor_input(detail["index"], layer.shape)
        self.interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for position, detail in enumerate(self.interpreter.get_input_details()):
            shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
            path = layers[position].value_file if layers else ""
            if not path:
                self.interpreter.set_tensor(detail["index"], random_tensor(shape, dtype, rng))
                continue
            try:
                data = read(path)
            except OSError:
                raise _Abort(f"Failed to read the input_layer_value_file:{path}", "FATAL") from None
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if len(data) != nbytes:
                raise _Abort(
                    f"The size of {path} is {len(data)} bytes. It should be {nbytes} bytes.", "FATAL"
                )
            self.interpreter.set_tensor(detail["index"], np.frombuffer(data, dtype).reshape(shape))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output_bytes(self) -> bytes:
        """Raw bytes of every output tensor, concatenated in output order (upstream's ``OutputSaver``)."""
        return b"".join(
            self.interpreter.get_tensor(detail["index"]).tobytes()
            for detail in self.interpreter.get_output_details()
        )


class _ToolListener(LoopListener):
    """What the real tool does around each phase: log its header and stats line; the CPU draws compute
    power for the whole phase (not only inside invoke), except while ``--run_delay`` sleeps."""

    def __init__(self, p: Process, threads: int):
        self.p, self.threads = p, threads
        self.token = 0  # the battery's compute token of the running phase
        self.log = _logger(p)
        self.phases: dict[str, list[int]] = {}

    def phase_started(self, phase: str, runs: int, min_secs: float, max_secs: float) -> None:
        self.log(
            f"Running benchmark for at least {runs} iterations and at least {_num(min_secs)} seconds but "
            f"terminate if exceeding {_num(max_secs)} seconds."
        )
        self.token = self.p.system.battery.begin_compute(self.threads)

    def phase_ended(self, phase: str, samples_us: list[float]) -> None:
        self.p.system.battery.end_compute(self.token)
        self.phases[phase] = [round(v) for v in samples_us]  # the tool prints whole µs
        self.log(format_stat(self.phases[phase]) + "\n")

    def delay(self, seconds: float) -> None:
        """``--run_delay``: the tool sleeps between runs and the CPU idles meanwhile."""
        self.p.system.battery.end_compute(self.token)
        self.p.cancel.wait(seconds)
        self.token = self.p.system.battery.begin_compute(self.threads)


def _logger(p: Process) -> Any:
    def log(message: str, level: str = "INFO") -> None:
        p.err(f"{level}: {message}\n")

    return log


def benchmark_model(p: Process) -> int:
    """The program's entry point: ``benchmark_model --graph=model.tflite [--flags]``."""
    log = _logger(p)
    log("STARTING!")
    help_asked = p.argv[1:2] == ["--help"]  # upstream: a bare --help as first argument, or --help=true
    try:
        values, given = parse_flags([a for a in p.argv[1:] if a != "--help"], FLAGS)
    except FlagError as exc:
        log(str(exc), "ERROR")
        if str(exc).startswith("Unconsumed"):
            log("Benchmarking failed.", "ERROR")
            return 1
        values, given, help_asked = {}, set(), True  # a value that does not parse: upstream prints usage
    if help_asked or values.get("help"):
        log(usage(p.argv[0], FLAGS).rstrip("\n"), "ERROR")
        log("Benchmarking failed.", "ERROR")
        return 1
    try:
        layers = _input_layers(values)
    except _Abort as exc:
        return _abort(p, exc)
    log(f"Log parameter values verbosely: [{int(values['verbose'])}]")
    for name, label in _LOGGED_PARAMS:
        if name in given or values["verbose"]:
            log(f"{label}: [{_param(values[name])}]")
    graph = values["graph"]
    if not graph:
        log("Please specify the name of your TF Lite input file with --graph", "ERROR")
        log("Benchmarking failed.", "ERROR")
        return 1
    threads = values["num_threads"] if values["num_threads"] > 0 else 1
    if p.cpu_mask is not None:
        threads = min(threads, max(1, bin(p.cpu_mask).count("1")))
    log(f"#threads used for CPU inference: [{threads}]")
    if values["use_gpu"] or values["use_nnapi"]:
        which = "GPU" if values["use_gpu"] else "NNAPI"
        log(f"{which} acceleration is unsupported on this platform.", "WARN")
    rss_start = _rss_mb()
    t_init = time.perf_counter_ns()
    try:
        model = p.system.fs.read_bytes(graph, p.cwd)
    except OSError:
        log(f"Failed to mmap model {graph}", "ERROR")
        log("Benchmarking failed.", "ERROR")
        return 1
    log(f"Loaded model {graph}")
    from models.errors import BackendError

    use_default_delegates = values["use_xnnpack"] or "use_xnnpack" not in given
    try:
        runner = _Runner(model, threads, use_default_delegates)
    except (BackendError, ValueError, RuntimeError) as exc:
        log(f"Failed to construct interpreter: {str(exc).splitlines()[0] if str(exc) else exc!r}", "ERROR")
        log("Benchmarking failed.", "ERROR")
        return 1
    try:
        runner.prepare(layers, lambda path: p.system.fs.read_bytes(path, p.cwd), log)
    except _Abort as exc:
        return _abort(p, exc)
    except (ValueError, RuntimeError) as exc:
        log("Failed to allocate tensors!" + (f" ({str(exc).splitlines()[0]})" if str(exc) else ""), "ERROR")
        log("Benchmarking failed.", "ERROR")
        return 1
    log("Initialized TensorFlow Lite runtime.")
    if use_default_delegates:
        log("Created TensorFlow Lite XNNPACK delegate for CPU.")
    init_us = (time.perf_counter_ns() - t_init) // 1000
    rss_init = _rss_mb()
    log(f"The input model file size (MB): {_num(len(model) / 1e6)}")
    log(f"Initialized session in {_num(init_us / 1e3)}ms.")
    settings = LoopSettings(
        runs=values["num_runs"],
        warmup_runs=values["warmup_runs"],
        warmup_min_secs=values["warmup_min_secs"],
        min_secs=values["min_secs"],
        max_secs=values["max_secs"],
        run_delay_s=max(0.0, values["run_delay"]),
    )
    listener = _ToolListener(p, threads)
    padding = ComputePadding(p.system.battery.compute_slowdown, sleep=p.cancel.wait)
    run_loop(
        runner.invoke,
        settings,
        pad=padding.pad,
        sleep=listener.delay,
        cancelled=p.cancel.is_set,
        listener=listener,
    )
    warmup, inference = listener.phases.get("warmup", []), listener.phases.get("measured", [])
    if p.cancel.is_set():
        return 130
    if values["output_filepath"]:  # OutputSaver: at benchmark end; a file it cannot open is skipped
        with contextlib.suppress(OSError):
            p.system.fs.write_bytes(values["output_filepath"], runner.output_bytes(), p.cwd)
    if values["enable_op_profiling"]:
        log(
            "Op profiling was requested, but the emulated device's LiteRT runtime has no op profiler; "
            "only whole-model timings are reported.",
            "WARN",
        )
    warm_avg = sum(warmup) / len(warmup) if warmup else 0.0
    inf_avg = sum(inference) / len(inference) if inference else 0.0
    log(
        f"Inference timings in us: Init: {init_us}, First inference: {warmup[0] if warmup else 0}, "
        f"Warmup (avg): {_num(warm_avg)}, Inference (avg): {_num(inf_avg)}"
    )
    log(
        "Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to "
        "the actual memory footprint of the model at runtime. Take the information at your discretion."
    )
    log(
        f"Memory footprint delta from the start of the tool (MB): init={_num(rss_init - rss_start)} "
        f"overall={_num(_rss_mb() - rss_start)}"
    )
    return 0


def _abort(p: Process, exc: _Abort) -> int:
    """Log how the tool stops: ``FATAL`` aborts (SIGABRT, status 134), ``ERROR`` fails with 1."""
    _logger(p)(str(exc), exc.level)
    if exc.level == "FATAL":
        return 134  # 128 + SIGABRT, as the shell reports std::abort()
    _logger(p)("Benchmarking failed.", "ERROR")
    return 1
