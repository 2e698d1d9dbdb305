"""The benchmark engine: timing, percentiles, memory, and the machine a figure was measured on.

How a figure is made, so that two figures are comparable:

- Each engine (ONNX Runtime; with ``native=True`` also the framework that built the artifact)
  is loaded once, warmed up at each batch size, then timed until it has run for at least
  ``min_time`` seconds *and* ``min_iters`` iterations. Engines are timed **interleaved** in
  ``rounds`` slices (A, B, A, B, ...) in one process, so that a neighbour's load on a shared
  machine hits both and the ORT/native ratio stays meaningful. The GC is off while timing.
- Latency is per batch: p50/p90/p99 in ms. ``throughput`` (samples/s) and ``gflops`` use the
  *mean* latency, i.e. the sustained rate: throughput = batch / mean, GFLOP/s = 2 x MACs x
  batch / mean. The speed-up ORT/native is the ratio of the *medians* (robust to outliers).
- ONNX Runtime is timed through I/O binding (inputs and outputs stay on the device between
  runs, as in a serving loop; on CPU it is the same as ``predict`` less an allocation) unless
  ``io_binding=False`` (numpy in, numpy out, copies included, as the native ``predict`` is).
- Memory: ``load_rss_mb`` is what creating the engine added to the process RSS (weights,
  session); ``peak_rss_mb`` adds the peak RSS its warm-up at that batch reached above the RSS
  just before it (activations, arena growth). Allocators keep memory between batches, so the
  figure for a larger batch after a smaller one is a lower bound. On CUDA, ``device_memory_mb``
  is this process' GPU memory after the warm-up (ORT's arena does not shrink: ~ its peak).
"""
from __future__ import annotations

import dataclasses
import gc
import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInput
from .records import ModelVersion, Record

Runner = Callable[[], Any]
Progress = Callable[[str], None]

DEFAULT_WARMUP = 3
DEFAULT_MIN_TIME = 2.0
DEFAULT_MIN_ITERS = 10
DEFAULT_ROUNDS = 5
_MB = 1024 * 1024


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class LatencyStats(Record):
    """One engine at one batch size."""

    batch: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    throughput: float  # samples/s, from the mean latency
    gflops: float | None  # achieved 2*MACs*batch / mean latency; None when MACs are unknown


def summarize(seconds: Sequence[float], *, batch: int, macs: int | None = None) -> LatencyStats:
    """Percentiles and rates of per-batch latencies given in seconds."""
    if len(seconds) == 0:
        raise InvalidInput("Expected at least one timed run. Received none", hint="raise --min-iters or --min-time")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    throughput = batch / (mean / 1e3)
    return LatencyStats(
        batch=batch, iterations=int(ms.size), p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99),
        mean_ms=mean, min_ms=float(ms.min()), max_ms=float(ms.max()), std_ms=float(ms.std()),
        throughput=throughput, gflops=None if not macs else 2.0 * macs * throughput / 1e9,
    )


# --------------------------------------------------------------------------- timing


def _check_settings(warmup: int, min_time: float, min_iters: int, rounds: int) -> None:
    if warmup < 0:
        raise InvalidInput(f"Expected --warmup >= 0. Received: {warmup}")
    if not min_time >= 0 or math.isinf(min_time):
        raise InvalidInput(f"Expected --min-time >= 0 seconds. Received: {min_time}")
    if min_iters < 1:
        raise InvalidInput(f"Expected --min-iters >= 1. Received: {min_iters}")
    if rounds < 1:
        raise InvalidInput(f"Expected rounds >= 1. Received: {rounds}")


@contextmanager
def _gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def measure(runners: Mapping[str, Runner], *, min_time: float = DEFAULT_MIN_TIME, min_iters: int = DEFAULT_MIN_ITERS,
            rounds: int = DEFAULT_ROUNDS) -> dict[str, list[float]]:
    """Per-call seconds of each runner, timed interleaved in slices until each has ``min_time`` s and ``min_iters`` runs.

    Warm-up is the caller's job (it is also where memory is measured).
    """
    _check_settings(0, min_time, min_iters, rounds)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    spent = {name: 0.0 for name in runners}
    slice_time = min_time / rounds
    slice_iters = max(1, math.ceil(min_iters / rounds))
    clock = time.perf_counter
    with _gc_off():
        while True:
            pending = [n for n in runners if spent[n] < min_time or len(samples[n]) < min_iters]
            if not pending:
                return samples
            for name in pending:
                run, out = runners[name], samples[name]
                start, n = clock(), 0
                while n < slice_iters or clock() - start < slice_time:
                    t0 = clock()
                    run()
                    t1 = clock()
                    out.append(t1 - t0)
                    spent[name] += t1 - t0
                    n += 1


# --------------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class MemoryWindow:
    """RSS before a block, and the peak RSS inside it (exact on Linux; end-of-block RSS elsewhere)."""

    before: int = 0
    after: int = 0
    peak: int = 0

    @property
    def delta_mb(self) -> float:
        return (self.after - self.before) / _MB

    @property
    def peak_delta_mb(self) -> float:
        return max(0, self.peak - self.before) / _MB


@contextmanager
def memory_window() -> Iterator[MemoryWindow]:
    window = MemoryWindow(before=_rss_bytes())
    exact = _reset_peak()
    try:
        yield window
    finally:
        window.after = _rss_bytes()
        peak = _peak_bytes() if exact else None
        window.peak = max(window.after, peak or 0)


def _gpu_memory_mb(pid: int | None = None) -> float | None:
    """This process' GPU memory via nvidia-smi, or None where it cannot be read."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    pid = os.getpid() if pid is None else pid
    try:
        out = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total = [float(used) for p, used in (ln.split(",")[:2] for ln in out.splitlines() if "," in ln) if p.strip() == str(pid)]
    return sum(total) if total else None


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_names() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def describe_machine(*, provider: Any = None, frameworks: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """What a benchmark figure was measured on: CPU, cores, memory, GPU, provider, library versions."""
    import psutil

    from .runtime import physical_cores, runtime_versions

    gpus = _gpu_names()
    try:
        load = round(os.getloadavg()[0], 2)  # a busy machine explains noisy figures
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": _cpu_model(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(),
        "cores_usable": physical_cores(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_avg_1m": load,
        "gpu": ", ".join(gpus) or None,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "provider": getattr(provider, "name", provider),
        "provider_reason": getattr(provider, "reason", None),
        "versions": {**runtime_versions(), **dict(frameworks or {})},
    }


def machine_line(machine: Mapping[str, Any]) -> str:
    """The machine in one line, for table captions."""
    versions = machine.get("versions") or {}
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ""
    load = f", load avg {machine['load_avg_1m']}" if machine.get("load_avg_1m") is not None else ""
    return (f"{machine.get('cpu')} ({machine.get('cores_physical')} physical / {machine.get('cores_logical')} logical cores"
            f"{gpu}{load}); {libs}")


# --------------------------------------------------------------------------- engines


@dataclass
class Engine:
    """Something that runs a batch: ONNX Runtime, or a native framework through its plugin."""

    name: str  # "onnxruntime", "torch", "tensorflow"
    prepare: Callable[[np.ndarray], Runner]  # bind a batch; returns a zero-argument runner
    load_s: float
    load_rss_mb: float
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able facts about the engine
    model: Any = None  # the loaded model (InferenceModel, nn.Module, keras.Model)
    device_memory: Callable[[], float | None] = lambda: None


def ort_engine(path: str | os.PathLike[str], *, version: ModelVersion | None = None, provider: str | None = None,
               io_binding: bool = True, name: str = "onnxruntime", **options: Any) -> Engine:
    """ONNX Runtime on a private (uncached) session, so that load time and memory are really measured.

    cuDNN's conv algorithm search is EXHAUSTIVE here unless ``options`` say otherwise: the
    warm-up pays for the search, the timed runs get the fastest algorithms.
    """
    from .runtime import InferenceModel

    options.setdefault("cudnn_conv_algo_search", "EXHAUSTIVE")
    with memory_window() as mem:
        t0 = time.perf_counter()
        model = InferenceModel(Path(path), provider=provider, version=version, cache=False, **options)
        load_s = time.perf_counter() - t0

    def prepare(images: np.ndarray) -> Runner:
        if io_binding:
            return model.bind(images).run
        x = model.check(images)
        return lambda: model.predict(x)

    on_gpu = model.provider.name != "cpu"
    return Engine(
        name=name, prepare=prepare, load_s=load_s, load_rss_mb=mem.delta_mb,
        info={"provider": model.provider.to_dict(), "io": "device" if io_binding else "host",
              "options": dataclasses.asdict(model.options)},
        model=model, device_memory=_gpu_memory_mb if on_gpu else (lambda: None),
    )


def native_engine(version: ModelVersion) -> Engine:
    """The framework that built ``version``, through its plugin (randomly initialised: timing only)."""
    from .plugins import get_plugin

    if not version.framework or not version.arch:
        raise InvalidInput(
            f"{version.ref} was registered from an external ONNX file: there is no native framework to time",
            hint="drop --native, or bench a version made by `zoo export`",
        )
    plugin = get_plugin(version.framework)
    options: dict[str, Any] = {"num_classes": version.num_classes or 1000}
    if version.arch == "googlenet":
        options["aux_logits"] = False  # the exported graph has no auxiliary heads either
    with memory_window() as mem:
        t0 = time.perf_counter()
        model = plugin.build(version.arch, **options)
        load_s = time.perf_counter() - t0

    def prepare(images: np.ndarray) -> Runner:
        return lambda: plugin.predict(model, images)

    return Engine(name=plugin.name, prepare=prepare, load_s=load_s, load_rss_mb=mem.delta_mb,
                  info={"display_name": plugin.display_name, "framework_version": plugin.framework_version(),
                        "io": "host"}, model=model)


def bench_batch(engines: Sequence[Engine], images: np.ndarray, *, macs: int | None = None, warmup: int = DEFAULT_WARMUP,
                min_time: float = DEFAULT_MIN_TIME, min_iters: int = DEFAULT_MIN_ITERS,
                rounds: int = DEFAULT_ROUNDS) -> dict[str, dict[str, Any]]:
    """Warm up each engine on ``images`` (measuring its memory), then time them all interleaved."""
    _check_settings(warmup, min_time, min_iters, rounds)
    batch = int(images.shape[0])
    runners: dict[str, Runner] = {}
    memory: dict[str, dict[str, Any]] = {}
    for engine in engines:
        if engine.name in runners:
            raise InvalidInput(f"Two engines are named {engine.name!r}", hint="give each engine its own name")
        with memory_window() as mem:
            run = engine.prepare(images)
            for _ in range(max(1, warmup)):  # at least one: the first run allocates, and may fail
                run()
        runners[engine.name] = run
        memory[engine.name] = {
            "load_s": engine.load_s,
            "load_rss_mb": engine.load_rss_mb,
            "peak_rss_mb": engine.load_rss_mb + mem.peak_delta_mb,
            "device_memory_mb": engine.device_memory(),
        }
    samples = measure(runners, min_time=min_time, min_iters=min_iters, rounds=rounds)
    return {name: {**summarize(samples[name], batch=batch, macs=macs).to_dict(), **memory[name]} for name in runners}


def input_size_of(version: ModelVersion | None, signature: Any, default: int = 224) -> int:
    """The square input size to bench at: the version's preprocessing, else fixed dims of the graph."""
    if version is not None and version.preprocessing is not None:
        return int(version.preprocessing.input_size[0])
    shape: tuple[Any, ...] = tuple(signature.inputs[0].shape) if signature is not None and signature.inputs else ()
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return int(shape[2])
    return default


def bench_artifact(
    path: str | os.PathLike[str],
    *,
    version: ModelVersion | None = None,
    batches: Sequence[int] = (1,),
    provider: str | None = None,
    native: bool = False,
    warmup: int = DEFAULT_WARMUP,
    min_time: float = DEFAULT_MIN_TIME,
    min_iters: int = DEFAULT_MIN_ITERS,
    rounds: int = DEFAULT_ROUNDS,
    io_binding: bool = True,
    seed: int = 0,
    input_size: int | None = None,
    macs: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Benchmark one artifact at each batch size; the payload ``zoo bench`` prints and attaches.

    With ``native=True`` the framework that built ``version`` is timed in the same run,
    interleaved, and each batch gets ``speedup`` = native p50 / ORT p50.
    """
    _check_settings(warmup, min_time, min_iters, rounds)
    batches = sorted({int(b) for b in batches})
    if not batches or batches[0] < 1:
        raise InvalidInput(f"Expected batch sizes >= 1. Received: {list(batches)}", hint="e.g. --batch 1,8,32")
    step = progress or (lambda _msg: None)
    if native and version is None:
        raise InvalidInput("native=True needs the registry version (to know the framework and architecture)")
    step("loading onnxruntime")
    engines = [ort_engine(path, version=version, provider=provider, io_binding=io_binding, **dict(options or {}))]
    ort_model = engines[0].model
    frameworks: dict[str, str | None] = {}
    if native:
        assert version is not None
        step(f"building {version.framework} {version.arch}")
        engines.append(native_engine(version))
        frameworks[engines[1].name] = engines[1].info["framework_version"]
    size = input_size or input_size_of(version, ort_model.signature)
    macs = macs if macs is not None else (version.macs if version is not None else None)
    rng = np.random.default_rng(seed)
    results = []
    for batch in batches:
        step(f"batch {batch}: warm-up and timing ({', '.join(e.name for e in engines)})")
        images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
        figures = bench_batch(engines, images, macs=macs, warmup=warmup, min_time=min_time,
                              min_iters=min_iters, rounds=rounds)
        row: dict[str, Any] = {"batch": batch, "onnxruntime": figures["onnxruntime"], "native": None, "speedup": None}
        if native:
            nat = figures[engines[1].name]
            row["native"] = {"framework": engines[1].name, **nat}
            row["speedup"] = nat["p50_ms"] / figures["onnxruntime"]["p50_ms"]
        results.append(row)
    choice = ort_model.provider
    return {
        "ref": version.ref if version is not None else None,
        "sha256": version.sha256 if version is not None else None,
        "arch": version.arch if version is not None else None,
        "framework": version.framework if version is not None else None,
        "macs_per_sample": macs,
        "input_size": size,
        "provider": choice.to_dict(),
        "settings": {
            "warmup": warmup, "min_time_s": min_time, "min_iters": min_iters, "rounds": rounds,
            "interleaved": len(engines) > 1, "ort_io": "device" if io_binding else "host", "seed": seed,
            "session_options": engines[0].info["options"],
        },
        "machine": describe_machine(provider=choice, frameworks=frameworks),
        "results": results,
    }


__all__ = [
    "LatencyStats", "summarize", "measure", "memory_window", "describe_machine", "machine_line", "Engine",
    "ort_engine", "native_engine", "bench_batch", "bench_artifact", "input_size_of",
]
