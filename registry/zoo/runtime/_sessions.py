"""ONNX Runtime sessions: made once per (file content, provider, options), quietly, and cached.

Invariant: a cached session is returned only for the same file identity (resolved path, sha256,
mtime, size), the same ORT provider list and equal :class:`RuntimeOptions`; a changed file or
option makes a new session. Creating a session prints nothing: ORT's log goes through
:mod:`._ort_log`, and what matters for speed comes back as short notes for the provider line.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelFile, NotFound
from ..records import Signature, TensorSpec
from . import _ort_log
from ._libraries import clean_error
from ._options import GRAPH_LEVELS, RuntimeOptions, physical_cores, provider_options, trt_cache_dir
from ._providers import ProviderChoice, preload_cuda_libraries

if TYPE_CHECKING:
    import onnxruntime

ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16", "tensor(int64)": "int64", "tensor(int32)": "int32",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}


@dataclass(frozen=True)
class Made:
    """A session and what ORT said that matters while making it."""

    session: onnxruntime.InferenceSession
    options: RuntimeOptions  # the options in force (cuda_graph is dropped where the graph cannot use it)
    notes: tuple[str, ...] = ()


def _session_options(opts: RuntimeOptions) -> onnxruntime.SessionOptions:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_LEVELS[opts.graph_optimization])
    so.intra_op_num_threads = opts.intra_op_threads or physical_cores()
    so.log_severity_level = opts.log_severity
    if opts.optimized_model_path:
        Path(opts.optimized_model_path).parent.mkdir(parents=True, exist_ok=True)
        so.optimized_model_filepath = opts.optimized_model_path
    return so


def create_session(path: Path, choice: ProviderChoice, opts: RuntimeOptions) -> Made:
    """A new session for ``path`` on ``choice``; InvalidModelFile (first line of ORT's error) if it cannot load.

    With ``cuda_graph`` on a graph that ORT cannot capture whole on the GPU (some nodes on the
    CPU), the session is made again without it and a note says so.
    """
    import onnxruntime as ort

    gpu = choice.device == "cuda"
    _ort_log.quiet(opts.log_severity, gpu=gpu)
    if gpu:
        preload_cuda_libraries()
    if "TensorrtExecutionProvider" in choice.providers:
        Path(trt_cache_dir(opts)).mkdir(parents=True, exist_ok=True)
    providers = [(ep, provider_options(ep, opts)) for ep in choice.providers]
    notes: list[str] = []
    try:
        with _ort_log.capture() as messages, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = ort.InferenceSession(os.fspath(path), _session_options(opts), providers=providers,
                                           enable_fallback=0)
    except Exception as exc:
        if gpu and opts.cuda_graph and "graph" in str(exc).lower():
            made = create_session(path, choice, replace(opts, cuda_graph=False))
            return replace(made, notes=(*made.notes, "CUDA graph not used: " + clean_error(str(exc), limit=80)))
        raise InvalidModelFile(
            f"ONNX Runtime cannot load {os.fspath(path)!r} on {choice.name}: {clean_error(str(exc))}",
            hint="check the file (`zoo register` runs onnx.checker), or re-export it; --debug shows ORT's full error",
        ) from exc
    notes.extend(_ort_log.summarise(messages))
    return Made(session, opts, tuple(notes))


_CACHE_SIZE = 8  # sessions hold the weights: VGG19 is ~0.55 GB each
_cache: OrderedDict[tuple, Made] = OrderedDict()
_cache_lock = threading.Lock()


def clear_session_cache() -> None:
    """Drop every cached session (frees their memory once no InferenceModel holds them)."""
    with _cache_lock:
        _cache.clear()


def session_for(path: Path, sha256: str | None, choice: ProviderChoice, opts: RuntimeOptions, *, cache: bool) -> Made:
    """A session from the per-process cache, keyed by (file, its content identity, provider, options)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFound(f"Model file not found: {os.fspath(path)!r}",
                       hint="give the path of an .onnx file, or a registry reference to zoo.load()") from None
    key = (os.fspath(path.resolve()), sha256, st.st_mtime_ns, st.st_size, choice.providers, opts)
    if cache:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    made = create_session(path, choice, opts)
    if cache:
        with _cache_lock:
            _cache[key] = made
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return made


def signature_of(session: Any) -> Signature:
    def spec(node: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else (d or None) for d in (node.shape or ()))
        return TensorSpec(name=node.name, dtype=ORT_DTYPES.get(node.type, node.type), shape=shape)

    return Signature(inputs=tuple(spec(n) for n in session.get_inputs()), outputs=tuple(spec(n) for n in session.get_outputs()))


__all__ = ["Made", "clear_session_cache", "create_session", "session_for", "signature_of"]
