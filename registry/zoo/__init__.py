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


def open_registry(store: str | os.PathLike[str] | None = None, *, artifacts: str | None = None) -> "Registry":
    """Open the registry at ``store`` (default: :func:`default_store`): a folder (the embedded store, created
    if needed) or a ``postgresql://`` URL (a shared store, see :mod:`zoo.store.shared`), whose artifacts are
    where the store recorded them unless ``artifacts`` (``s3://bucket/prefix`` or a folder) or ``$ZOO_ARTIFACTS`` says otherwise."""
    from ._registry import Registry

    where = store if store is not None else (os.environ.get(STORE_ENV) or None)
    if isinstance(where, str):
        from .store.location import is_database_url

        if is_database_url(where):
            from .store.shared import open_shared

            return open_shared(where, artifacts=artifacts)
    if artifacts is not None:
        from .errors import InvalidInput

        raise InvalidInput(f"Expected --artifacts only with a PostgreSQL store. Received: --artifacts {artifacts!r} "
                           f"with the folder store {str(where or default_store())!r}",
                           hint="a folder store keeps its artifacts inside it; drop --artifacts")
    return Registry.open(Path(where) if where is not None else default_store())


def load(ref: str, *, store: str | os.PathLike[str] | None = None, artifacts: str | None = None,
         provider: str | None = None, **options: Any) -> "InferenceModel":
    """Resolve ``ref``, verify the artifact's sha256, and return a ready-to-run model."""
    return open_registry(store, artifacts=artifacts).load(ref, provider=provider, **options)


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from ._registry import Registry

        return Registry
    raise AttributeError(name)
