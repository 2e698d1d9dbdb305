"""The benchmark engine: timing, percentiles, memory, and the machine a figure was measured on.

How a figure is made, so that two figures are comparable:

- Each engine (ONNX Runtime; with ``native=True`` also the framework that built the artifact,
  on the device ORT runs on and at the artifact's precision) is loaded once, warmed up at each
  batch size, then timed until it has run for at least ``min_time`` seconds *and* ``min_iters``
  iterations. Engines are timed **interleaved** in ``rounds`` slices (A, B, A, B, ...) in one
  process, so that a neighbour's load on a shared machine hits both and the ORT/native ratio
  stays meaningful. Several artifacts (``bench_artifacts``, ``zoo bench --compare``) are loaded
  first and then all their engines are timed interleaved the same way, so the ratios between
  them (int8 / fp32, TF-built / torch-built) come from one run. The GC is off while timing. A
  cross-device comparison is refused.
- Latency is per batch: p50/p90/p99 in ms. ``throughput`` (samples/s) and ``gflops`` use the
  *mean* latency, i.e. the sustained rate: throughput = batch / mean, GFLOP/s = 2 x MACs x
  batch / mean. The speed-up ORT/native is the ratio of the *medians* (robust to outliers).
- ONNX Runtime is timed through I/O binding (inputs and outputs stay on the device between
  runs, as in a serving loop; on CPU it is the same as ``predict`` less an allocation; on a GPU
  with CUDA graphs, one per batch size) unless ``io_binding=False`` (numpy in, numpy out, copies
  included, as the native ``predict`` is). A native runner that can keep its batch on the device
  (``runner.bind``) is timed the same way.
- Memory: ``load_rss_mb`` is what creating the engine added to the process RSS (weights,
  session); ``peak_rss_mb`` adds the peak RSS its warm-up at that batch reached above the RSS
  just before it (activations, arena growth). Allocators keep memory between batches, so the
  figure for a larger batch after a smaller one is a lower bound. On CUDA, ``device_memory_mb``
  is this process' GPU memory after the warm-up (ORT's arena does not shrink: ~ its peak).

Modules: ``_stats`` (percentiles), ``_timing`` (interleaved timing), ``_memory``, ``_machine``,
``_engines`` (ORT and native engines), ``_run`` (a benchmark and its payload).
"""
from __future__ import annotations

from ._engines import Engine, check_native_device, native_engine, ort_engine
from ._machine import describe_machine, machine_line
from ._memory import MemoryWindow, memory_window
from ._run import Artifact, Progress, bench_artifact, bench_artifacts, bench_batch, input_size_of
from ._stats import LatencyStats, summarize
from ._timing import DEFAULT_MIN_ITERS, DEFAULT_MIN_TIME, DEFAULT_ROUNDS, DEFAULT_WARMUP, Runner, measure

__all__ = [
    "Artifact", "DEFAULT_MIN_ITERS", "DEFAULT_MIN_TIME", "DEFAULT_ROUNDS", "DEFAULT_WARMUP", "Engine",
    "LatencyStats", "MemoryWindow", "Progress", "Runner", "bench_artifact", "bench_artifacts", "bench_batch",
    "check_native_device", "describe_machine", "input_size_of", "machine_line", "measure", "memory_window",
    "native_engine", "ort_engine", "summarize",
]
