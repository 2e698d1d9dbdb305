"""zoo's public Python API for downstream apps.

    import zoo
    model = zoo.load("resnet50@prod")               # verified, cached ONNX Runtime session
    logits = model.predict(batch)                     # NCHW float32 numpy -> [N, classes]

``open_registry()`` gives the full :class:`Registry` (list, resolve, register, alias, verify).
Importing this package imports no deep-learning framework and not even onnx: those load on use.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._open import STORE_ENV as STORE_ENV  # the variable `zoo --store` reads
from ._open import default_store, open_registry
from .errors import ZooError
from .records import ModelVersion, ParamCounts, Signature, TensorSpec, Transform, VersionMeta

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._exporting import ExportResult
    from ._registry import Registry
    from .labels import Labels
    from .runtime import InferenceModel

__all__ = [
    "open_registry", "load", "register_model", "default_store", "Registry", "ModelVersion", "ParamCounts",
    "Signature", "TensorSpec", "VersionMeta", "ZooError", "Labels", "Transform", "serve",
]

def load(ref: str, *, store: str | os.PathLike[str] | None = None, artifacts: str | None = None,
         provider: str | None = None, sha256: str | None = None, at: str | None = None,
         **options: Any) -> "InferenceModel":
    """Resolve ``ref``, verify the artifact's sha256, and return a ready-to-run model (reads only).

    ``sha256`` pins the content an app was tested with (the full digest, or 12+ hex digits of it):
    if ``ref`` now resolves to any other artifact (an alias moved, another store numbers versions
    differently), :class:`~zoo.errors.IntegrityError` names both digests. ``ref`` may itself pin by
    content: ``"resnet50@sha256:9f86d081884c"``. ``at`` (ISO 8601, e.g. ``"2026-12-01T12:00Z"``) loads what
    ``ref`` meant then: an alias through its recorded history.
    """
    return open_registry(store, artifacts=artifacts).load(ref, provider=provider, sha256=sha256, at=at, **options)


def register_model(model: Any, *, name: str, example: Any, labels: Any = None,
                   transform: "Transform | Mapping[str, Any] | None" = None,
                   registry: "Registry | str | os.PathLike[str] | None" = None, framework: str | None = None,
                   tags: "Mapping[str, str] | None" = None, **options: Any) -> "ExportResult":
    """Export your trained ``torch.nn.Module`` or ``keras.Model`` to ONNX, verify it, and register it
    with its labels and transform (see :func:`zoo._register_model.register_model` for every option)::

        result = zoo.register_model(net, name="defects", example=batch, labels="classes.txt",
                                    transform=zoo.Transform(resize=36, crop=(32, 32)))
        zoo.load(result.version.ref).predict(batch)
    """
    from ._register_model import register_model as _register_model

    return _register_model(model, name=name, example=example, labels=labels, transform=transform, registry=registry,
                           framework=framework, tags=tags, **options)


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from ._registry import Registry

        return Registry
    if name == "Labels":
        from .labels import Labels

        return Labels
    if name == "serve":  # the subpackage, callable: zoo.serve(["resnet50@prod"], ...) (see zoo.serve.serve)
        import importlib

        return importlib.import_module(".serve", __name__)
    if name == "Preprocessing":  # deprecated: one record of how to feed a model, Transform
        from .records import Preprocessing

        return Preprocessing
    raise AttributeError(name)
