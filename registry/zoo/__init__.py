"""zoo's public Python API for downstream apps.

    import zoo
    model = registry.load("resnet50@prod")          # verified, cached ONNX Runtime session
    logits = model.predict(batch)                     # NCHW float32 numpy -> [N, classes]

``open_registry()`` gives the full :class:`Registry` (list, resolve, register, alias, verify).
Importing this package imports no deep-learning framework and not even onnx: those load on use.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ZooError
from .records import ModelVersion, ParamCounts, Preprocessing, Signature, TensorSpec, VersionMeta

if TYPE_CHECKING:
    from ._registry import Registry
    from .runtime import InferenceModel

__all__ = [
    "open_registry", "load", "default_store", "Registry", "ModelVersion", "ParamCounts",
    "Preprocessing", "Signature", "TensorSpec", "VersionMeta", "ZooError",
]

STORE_ENV = "ZOO_STORE"


def default_store() -> Path:
    """``$ZOO_STORE`` if set, else ``./artifacts`` in the working directory."""
    return Path(os.environ.get(STORE_ENV) or "artifacts")


def open_registry(store: str | os.PathLike[str] | None = None) -> "Registry":
    """Open (creating if needed) the embedded registry at ``store`` (default: :func:`default_store`)."""
    from ._registry import Registry

    return Registry.open(Path(store) if store is not None else default_store())


def load(ref: str, *, store: str | os.PathLike[str] | None = None, provider: str | None = None, **options: Any) -> "InferenceModel":
    """Resolve ``ref``, verify the artifact's sha256, and return a ready-to-run model."""
    return open_registry(store).load(ref, provider=provider, **options)


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from ._registry import Registry

        return Registry
    raise AttributeError(name)
