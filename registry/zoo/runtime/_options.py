"""Runtime options: what a caller may set, what each execution provider is told, where caches live.

Invariant: :class:`RuntimeOptions` is frozen and hashable (it is part of the session-cache key),
and :func:`provider_options` is a pure function of it: the same options always give the same
provider configuration, on any machine (tested on the CPU build).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

CACHE_ENV = "ZOO_CACHE"
GRAPH_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                "all": "ORT_ENABLE_ALL"}
CONV_SEARCH = ("HEURISTIC", "EXHAUSTIVE", "DEFAULT")


@dataclass(frozen=True)
class RuntimeOptions:
    """Keyword options of :class:`~zoo.runtime.InferenceModel` (and ``zoo.load``). Hashable: part of the cache key.

    GPU options are ignored on the CPU provider, so one set of options serves every machine.
    """

    intra_op_threads: int | None = None  # None: physical cores available to this process
    graph_optimization: str = "all"  # disable | basic | extended | all
    optimized_model_path: str | None = None  # write the optimised graph here (inspect it with Netron)
    cudnn_conv_algo_search: str = "HEURISTIC"  # HEURISTIC | EXHAUSTIVE | DEFAULT (see zoo.runtime)
    use_tf32: bool = False  # CUDA: TF32 convs/matmuls (~1e-3 relative error); off for parity
    prefer_nhwc: bool = True  # CUDA: channels-last conv kernels (tensor-core friendly; same results within fp tolerance)
    cuda_graph: bool = False  # CUDA/TensorRT: replay one captured CUDA graph per bound shape (bind() only)
    device_id: int = 0  # CUDA / TensorRT device
    trt_fp16: bool = False  # TensorRT: allow fp16 kernels in an fp32 model (changes results)
    trt_cache_dir: str | None = None  # TensorRT engine + timing cache; None: <zoo cache>/tensorrt
    log_severity: int = 3  # ORT log level for zoo's sessions: 0 verbose .. 3 error, 4 fatal

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> RuntimeOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(
                f"Unknown runtime option(s): {', '.join(map(repr, unknown))}",
                hint=f"valid options: {', '.join(sorted(known))}",
            )
        values = dict(options)
        for key in ("optimized_model_path", "trt_cache_dir"):
            if values.get(key) is not None:
                values[key] = os.fspath(values[key])
        if isinstance(values.get("cudnn_conv_algo_search"), str):  # one spelling: one cache entry
            values["cudnn_conv_algo_search"] = values["cudnn_conv_algo_search"].upper()
        opts = cls(**values)
        if opts.graph_optimization not in GRAPH_LEVELS:
            raise InvalidInput(
                f"Expected graph_optimization in {', '.join(GRAPH_LEVELS)}. Received: {opts.graph_optimization!r}"
            )
        if opts.cudnn_conv_algo_search not in CONV_SEARCH:
            raise InvalidInput(
                f"Expected cudnn_conv_algo_search in {', '.join(CONV_SEARCH)}. Received: {opts.cudnn_conv_algo_search!r}"
            )
        if opts.intra_op_threads is not None and (not isinstance(opts.intra_op_threads, int) or opts.intra_op_threads < 1):
            raise InvalidInput(f"Expected intra_op_threads >= 1 (or None). Received: {opts.intra_op_threads!r}")
        if opts.log_severity not in range(5):
            raise InvalidInput(f"Expected log_severity between 0 and 4. Received: {opts.log_severity!r}")
        if not isinstance(opts.device_id, int) or opts.device_id < 0:
            raise InvalidInput(f"Expected device_id >= 0. Received: {opts.device_id!r}")
        for flag in ("use_tf32", "prefer_nhwc", "cuda_graph", "trt_fp16"):
            if not isinstance(getattr(opts, flag), bool):
                raise InvalidInput(f"Expected {flag}=True or False. Received: {getattr(opts, flag)!r}")
        return opts


def physical_cores() -> int:
    """Physical cores this process may run on: psutil's count, capped by the CPU affinity mask."""
    import psutil

    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = physical
    return max(1, min(physical, allowed))


def cache_dir() -> Path:
    """zoo's cache folder: ``$ZOO_CACHE``, else the platform's user cache folder + ``zoo``.

    Linux ``$XDG_CACHE_HOME/zoo`` (default ``~/.cache/zoo``), macOS ``~/Library/Caches/zoo``,
    Windows ``%LOCALAPPDATA%\\zoo\\Cache``. Not created here: its users create what they write.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "zoo" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "zoo"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "zoo"


def trt_cache_dir(opts: RuntimeOptions) -> str:
    """Where TensorRT keeps built engines and its timing cache (first load builds them: minutes)."""
    return opts.trt_cache_dir or os.fspath(cache_dir() / "tensorrt")


def provider_options(ep: str, opts: RuntimeOptions) -> dict[str, Any]:
    """The options ONNX Runtime's execution provider ``ep`` (its ORT name) gets for ``opts``.

    CUDA: cuDNN algorithm search as asked, TF32 off unless asked, NHWC kernels preferred, CUDA
    graphs only when asked (they need fixed shapes and bound I/O). TensorRT: an engine and timing
    cache folder always (rebuilding engines takes minutes), fp16 and CUDA graphs by option.
    """
    if ep == "CUDAExecutionProvider":
        return {
            "device_id": opts.device_id,
            "cudnn_conv_algo_search": opts.cudnn_conv_algo_search,
            "use_tf32": int(opts.use_tf32),
            "prefer_nhwc": int(opts.prefer_nhwc),
            "enable_cuda_graph": int(opts.cuda_graph),
            "do_copy_in_default_stream": 1,
        }
    if ep == "TensorrtExecutionProvider":
        folder = trt_cache_dir(opts)
        return {
            "device_id": opts.device_id,
            "trt_fp16_enable": int(opts.trt_fp16),
            "trt_engine_cache_enable": 1,
            "trt_engine_cache_path": folder,
            "trt_timing_cache_enable": 1,
            "trt_timing_cache_path": folder,
            "trt_cuda_graph_enable": int(opts.cuda_graph),
        }
    return {}


__all__ = ["CACHE_ENV", "RuntimeOptions", "cache_dir", "physical_cores", "provider_options", "trt_cache_dir"]
