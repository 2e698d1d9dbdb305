"""The ONNX Runtime executor: provider choice, cached sessions, input checks, I/O binding.

Decisions that change results or timings, in one place:

- **Providers**: TensorRT, then CUDA, then CPU, keeping only those that really load here.
  ``onnxruntime-gpu`` lists CUDA even where its libraries or the GPU are missing, so each
  provider is *probed* once per process (a session on a one-node in-memory model, ORT's logs
  captured, not printed) and the choice says in one line why faster providers were skipped,
  naming the missing library and its pip package (``_libraries``).
- **ORT's own log**: quiet during zoo's sessions (``_ort_log``): the default logger gets the
  session's severity (3, errors only), known noise such as cuDNN's frontend plan search is
  counted instead of printed, and warnings that matter for speed (Memcpy nodes: ops on the CPU)
  are appended to the provider line.
- **Graph optimisation**: ``ORT_ENABLE_ALL`` on every provider (ORT applies the hardware-specific
  fusions only to the nodes its own CPU/CUDA kernels run, so it is safe under TensorRT too).
- **CPU threads**: one intra-op thread per *physical* core this process may use; SMT siblings
  share the FMA units, and oversubscribing them makes latency noisy rather than lower.
- **CUDA**: NHWC conv kernels preferred (``prefer_nhwc``); cuDNN's conv algorithm search
  ``HEURISTIC`` by default (``EXHAUSTIVE`` times every algorithm on the first run of every new
  input shape, a latency spike an app with varying batch sizes pays again and again; ``zoo bench``
  asks for it, the warm-up amortises it); CUDA graphs only when asked (``cuda_graph=True``: fixed
  shapes and bound I/O, as ``zoo bench`` and a serving loop over ``bind()`` have).
- **TF32**: off by default (``use_tf32=False``): TF32 convs carry ~1e-3 relative error, which
  would break parity against the fp32 native model. Turn it on for throughput.
- **TensorRT**: engines and timing cache kept under ``$ZOO_CACHE/tensorrt`` (the platform cache
  folder by default; ``trt_cache_dir``), fp16 kernels only with ``trt_fp16=True``.
- **Input dtype**: the artifact contract is float32. Other float dtypes (float64 from numpy
  arithmetic, float16) are cast with a ``UserWarning`` (lossless for the fp32 model; the
  warning says the copy costs time); ``bind()`` casts once instead. Integer, bool and other
  dtypes are refused with :class:`~zoo.errors.InvalidInput`: uint8 pixels are un-normalised
  images, and casting them would silently give garbage logits.
- **Non-finite inputs**: NaN/Inf in a batch is a ``RuntimeWarning`` naming the count, not an
  error: the other samples' logits are still valid.

Importing this package imports neither onnx nor onnxruntime; they load on first use.
"""
from __future__ import annotations

from ._inputs import check_input
from ._model import BoundRun, InferenceModel, runtime_versions
from ._options import CACHE_ENV, RuntimeOptions, cache_dir, physical_cores, provider_options
from ._providers import (
    EXECUTION_PROVIDERS,
    PREFERENCE,
    ProviderChoice,
    choose_provider,
    normalize_provider,
    probe,
    provider_report,
    reset_probes,
)
from ._sessions import clear_session_cache

__all__ = [
    "CACHE_ENV", "EXECUTION_PROVIDERS", "PREFERENCE", "BoundRun", "InferenceModel", "ProviderChoice", "RuntimeOptions",
    "cache_dir", "check_input", "choose_provider", "clear_session_cache", "normalize_provider", "physical_cores",
    "probe", "provider_options", "provider_report", "reset_probes", "runtime_versions",
]
