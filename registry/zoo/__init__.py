"""zoo's public Python API for downstream apps.

    import zoo
    model = zoo.load("resnet50@prod")               # verified, cached ONNX Runtime session
    logits = model.predict(batch)                     # NCHW float32 numpy -> [N, classes]

``open_registry()`` gives the full :class:`Registry` (list, resolve, register, alias, verify);
:func:`export` builds a reference architecture and :func:`register_model` takes your own trained
model, both through the one ingestion pipeline (export, I/O contract, verify, register).

The public API is exactly ``__all__`` (and the members of the types it names): it follows semantic
versioning. Modules and names starting with ``_`` are private and change without notice.
Importing this package imports no deep-learning framework and not even onnx: those load on use.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._open import STORE_ENV as STORE_ENV  # the variable `zoo --store` reads
from ._open import _check_store, _store_env, default_store, open_registry
from .errors import ZooError
from .records import ModelVersion, ParamCounts, Signature, TensorSpec, Transform, VersionMeta, VersionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import numpy as np

    from ._exporting import ExportResult
    from ._registry import Registry
    from .labels import Labels
    from .runtime import InferenceModel

__all__ = [
    "open_registry", "load", "export", "register_model", "default_store", "Registry", "InferenceModel", "ExportResult",
    "ModelVersion", "ParamCounts", "Signature", "TensorSpec", "VersionMeta", "ZooError", "Labels", "Transform", "serve",
    "VersionRow",
]

_LAZY = {  # public names whose modules import numpy or more: loaded on first use
    "Registry": "._registry", "InferenceModel": ".runtime", "ExportResult": "._exporting", "Labels": ".labels",
    "Preprocessing": ".records",  # deprecated: Transform is the one record of how to feed a model
}


def load(ref: str, *, store: str | os.PathLike[str] | None = None, artifacts: str | None = None,
         provider: str | None = None, sha256: str | None = None, intra_op_threads: int | None = None,
         graph_optimization: str = "all", optimized_model_path: str | None = None,
         cudnn_conv_algo_search: str = "HEURISTIC", use_tf32: bool = False, prefer_nhwc: bool = True,
         cuda_graph: bool = False, device_id: int = 0, trt_fp16: bool = False, trt_cache_dir: str | None = None,
         log_severity: int = 3, cache: bool = True, at: str | None = None,
         allow_stale: bool | None = None) -> "InferenceModel":
    """Resolve ``ref``, verify the artifact's sha256, and return a ready-to-run model (reads only).

    ``sha256`` pins the content an app was tested with (the full digest, or 12+ hex digits of it):
    if ``ref`` now resolves to any other artifact (an alias moved, another store numbers versions
    differently), :class:`~zoo.errors.IntegrityError` names both digests. ``ref`` may itself pin by
    content: ``"resnet50@sha256:9f86d081884c"``. ``provider`` forces "cpu", "cuda" or "tensorrt"
    (default: the best that loads). The session options are those of
    :class:`zoo.runtime.RuntimeOptions` (threads, graph optimisation level, CUDA/TensorRT settings,
    ONNX Runtime's log level); ``cache=False`` makes a session of its own instead of sharing one. ``at``
    (ISO 8601, e.g. ``"2026-12-01T12:00Z"``) loads what ``ref`` meant then: an alias through its recorded history.

    With a shared store's PostgreSQL or S3 unreachable, the local cache still serves a content-pinned
    ref whose bytes it holds, and an alias's last resolution when ``allow_stale=True`` (default: the
    ``ZOO_OFFLINE`` variable, which also skips contacting the services) with a
    :class:`~zoo.errors.StaleResolution` warning; anything else is :class:`~zoo.errors.StoreUnavailable`.
    """
    options: dict[str, Any] = {
        "intra_op_threads": intra_op_threads, "graph_optimization": graph_optimization,
        "optimized_model_path": optimized_model_path, "cudnn_conv_algo_search": cudnn_conv_algo_search,
        "use_tf32": use_tf32, "prefer_nhwc": prefer_nhwc, "cuda_graph": cuda_graph, "device_id": device_id,
        "trt_fp16": trt_fp16, "trt_cache_dir": trt_cache_dir, "log_severity": log_severity, "cache": cache,
    }
    where = store if store is not None else _store_env()
    if where is not None:
        _check_store(where)
    if isinstance(where, str):
        from .store.location import is_database_url

        if is_database_url(where):
            return _load_shared(where, ref, artifacts=artifacts, provider=provider, sha256=sha256, at=at,
                                allow_stale=allow_stale, options=options)
    return open_registry(store, artifacts=artifacts).load(ref, provider=provider, sha256=sha256, at=at, **options)


def _load_shared(url: str, ref: str, *, artifacts: str | None, provider: str | None, sha256: str | None, at: str | None,
                 allow_stale: bool | None, options: dict[str, Any]) -> "InferenceModel":
    """:func:`load` from a shared store, from the local cache alone when its services cannot be reached."""
    from . import _offline
    from ._refs import parse_digest
    from .errors import StoreUnavailable
    from .store._network import OFFLINE_ENV, offline
    from .store.cache import ArtifactCache
    from .store.location import parse_database

    shown = parse_database(url).shown
    pinned = parse_digest(sha256, ref=sha256) if sha256 is not None else None
    try:
        if offline():
            raise StoreUnavailable(f"{OFFLINE_ENV} is set: the services of {shown} were not contacted",
                                   hint=f"load it once with {OFFLINE_ENV} unset, so that the cache holds it")
        registry = open_registry(url, artifacts=artifacts)
    except StoreUnavailable as exc:
        model: InferenceModel = _offline.load_offline(ArtifactCache(), shown, ref, pinned=pinned, allow_stale=allow_stale,
                                                      cause=exc, provider=provider, options=options)
        return model
    return registry.load(ref, provider=provider, sha256=sha256, at=at, allow_stale=allow_stale, **options)


def export(arch: str, *, framework: str | None = None, name: str | None = None, num_classes: int = 1000,
           input_size: int = 224, opset: int | None = None, seed: int = 0,
           weights: "str | os.PathLike[str] | Mapping[str, np.ndarray] | None" = None,
           labels: "str | os.PathLike[str] | Labels | None" = None, transform: "Transform | None" = None,
           tags: "Mapping[str, str] | None" = None, registry: "Registry | str | os.PathLike[str] | None" = None,
           progress: "Callable[[str], None] | None" = None) -> "ExportResult":
    """Build the reference architecture ``arch`` with one framework plugin, export, verify and register it
    (what ``zoo export`` does, through the same pipeline)::

        result = zoo.export("resnet50", framework="torch")
        zoo.load(result.version.ref)

    ``framework``: the plugin's name (default: the first by priority that builds ``arch``). The
    weights are zoo's seeded weights (``seed``; the same in every framework) unless ``weights`` gives
    a torchvision-layout checkpoint (a ``.safetensors``/``.pth`` path, or a state mapping of numpy
    arrays), whose sha256 is recorded. ``labels`` and ``transform`` default to ImageNet's labels (1000
    classes) and torchvision's eval transform at ``input_size``. ``registry``: a :class:`Registry`, a
    store path, or None for :func:`default_store`. ``opset`` None is the default opset.
    """
    from ._exporting import check_options, export_and_register
    from .plugins import DEFAULT_OPSET, by_priority, resolve_frameworks

    check_options(num_classes, input_size, opset or DEFAULT_OPSET)
    plugins = resolve_frameworks(framework or "all", arch=arch)
    plugin = by_priority(plugins)[0] if framework is None else plugins[0]
    state, weights_sha256 = None, None
    if weights is not None and not hasattr(weights, "items"):
        from .weights import load_weights

        state, weights_sha256 = load_weights(Path(os.fspath(weights)))
    elif weights is not None:
        from .weights import state_sha256

        state = dict(weights)  # type: ignore[arg-type]
        weights_sha256 = state_sha256(state)
    from ._registry import Registry

    store = registry if isinstance(registry, Registry) else open_registry(registry)
    try:
        return export_and_register(store, plugin, arch, name=name, num_classes=num_classes, opset=opset or DEFAULT_OPSET,
                                   input_size=input_size, state=state, weights_sha256=weights_sha256,
                                   seed=None if state is not None else seed, tags=tags, transform=transform,
                                   labels=labels, progress=progress)
    finally:
        if store is not registry:
            store.close()


def register_model(model: Any, *, name: str, example: Any, labels: Any = None,
                   transform: "Transform | Mapping[str, Any] | None" = None,
                   registry: "Registry | str | os.PathLike[str] | None" = None, framework: str | None = None,
                   tags: "Mapping[str, str] | None" = None, opset: int | None = None, rtol: float | None = None,
                   provenance: "Mapping[str, Any] | None" = None,
                   progress: "Callable[[str], None] | None" = None) -> "ExportResult":
    """Export your trained ``torch.nn.Module`` or ``keras.Model`` to ONNX, verify it, and register it
    with its labels and transform (see :func:`zoo._register_model.register_model` for every parameter;
    ``opset`` and ``rtol`` None are the defaults, 18 and 1e-4)::

        result = zoo.register_model(net, name="defects", example=batch, labels="classes.txt",
                                    transform=zoo.Transform(resize=36, crop=(32, 32)))
        zoo.load(result.version.ref).predict(batch)
    """
    from ._exporting import VERIFY_RTOL
    from ._register_model import register_model as _register_model
    from .plugins import DEFAULT_OPSET

    return _register_model(model, name=name, example=example, labels=labels, transform=transform, registry=registry,
                           framework=framework, tags=tags, opset=DEFAULT_OPSET if opset is None else opset,
                           rtol=VERIFY_RTOL if rtol is None else rtol, provenance=provenance, progress=progress)


def __getattr__(name: str) -> Any:
    if name == "serve":  # the subpackage, callable: zoo.serve(["resnet50@prod"], ...) (see zoo.serve.serve)
        import importlib

        return importlib.import_module(".serve", __name__)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)
