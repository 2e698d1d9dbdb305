"""zoo's public Python API for downstream apps.

    import zoo
    model = zoo.load("resnet50@prod")               # verified, cached ONNX Runtime session
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
    from collections.abc import Mapping

    from ._exporting import ExportResult
    from ._registry import Registry
    from .labels import Labels
    from .runtime import InferenceModel
    from .transforms import Transform

__all__ = [
    "open_registry", "load", "register_model", "default_store", "Registry", "ModelVersion", "ParamCounts",
    "Preprocessing", "Signature", "TensorSpec", "VersionMeta", "ZooError", "Labels", "Transform",
]

STORE_ENV = "ZOO_STORE"


def default_store() -> Path:
    """``$ZOO_STORE`` if set, else ``./artifacts`` in the working directory; absolute. ``ZOO_STORE=''`` is
    refused like ``--store ''`` (:class:`~zoo.errors.InvalidInput`): an empty value is not "."."""
    return Path(_store_env() or "artifacts").absolute()


def _store_env() -> str | None:
    value = os.environ.get(STORE_ENV)
    if value == "":
        from .errors import InvalidInput

        raise InvalidInput(f"Expected {STORE_ENV} to name a store folder or a postgresql:// URL. Received: ''",
                           hint=f"unset {STORE_ENV} for the default ./artifacts, or give it a folder")
    return value


def _check_store(store: object) -> None:
    """``store`` is a folder path or a ``postgresql://`` URL: anything else is InvalidInput, never a raw TypeError,
    and another URL scheme (``s3://``) is not a folder named ``s3:``."""
    from .errors import InvalidInput

    if not isinstance(store, (str, os.PathLike)):
        from ._names import received

        raise InvalidInput(f"Expected store as a folder path or a postgresql:// URL. Received: {received(store)}",
                           hint="e.g. store='./artifacts' or store='postgresql://user@host/db'")
    text = os.fspath(store)
    if isinstance(text, str):
        from .store.location import is_database_url

        scheme = text.split("://", 1)[0] if "://" in text else ""
        if scheme and scheme.isascii() and len(scheme) > 1 and scheme.replace("+", "").replace(".", "").replace("-", "") \
                .isalnum() and not is_database_url(text):
            raise InvalidInput(f"Expected --store / {STORE_ENV} as a folder or postgresql://user@host:port/db. "
                               f"Received: {scheme}://...",
                               hint="a folder store, or a PostgreSQL store; S3 holds a PostgreSQL store's artifacts: "
                                    "--store postgresql://... --artifacts s3://BUCKET/PREFIX")


def open_registry(store: str | os.PathLike[str] | None = None, *, artifacts: str | None = None,
                  read_only: bool | None = None) -> "Registry":
    """Open the registry at ``store`` (default: :func:`default_store`), touching nothing on disk.

    ``store`` is a folder (the embedded store) or a ``postgresql://`` URL (a shared store, see
    :mod:`zoo.store.shared`), whose artifacts are where the store recorded them unless ``artifacts``
    (``s3://bucket/prefix`` or a folder) or ``$ZOO_ARTIFACTS`` says otherwise. Reads on a store that
    does not exist raise :class:`~zoo.errors.NotFound` naming it; the first write creates an embedded
    one. A store we cannot write opens read-only (``read_only=None``): every read works, writes raise
    :class:`~zoo.errors.StoreError`. An empty string is refused (it is not ".").
    """
    from ._registry import Registry

    where = store if store is not None else _store_env()
    if where is not None:
        _check_store(where)
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
    return Registry.open(where if where is not None else default_store(), read_only=read_only)


def load(ref: str, *, store: str | os.PathLike[str] | None = None, artifacts: str | None = None,
         provider: str | None = None, sha256: str | None = None, allow_stale: bool | None = None,
         **options: Any) -> "InferenceModel":
    """Resolve ``ref``, verify the artifact's sha256, and return a ready-to-run model (reads only).

    ``sha256`` pins the content an app was tested with (the full digest, or 12+ hex digits of it):
    if ``ref`` now resolves to any other artifact (an alias moved, another store numbers versions
    differently), :class:`~zoo.errors.IntegrityError` names both digests. ``ref`` may itself pin by
    content: ``"resnet50@sha256:9f86d081884c"``.

    With a shared store's PostgreSQL or S3 unreachable, the local cache still serves a content-pinned
    ref whose bytes it holds, and an alias's last resolution when ``allow_stale=True`` (default: the
    ``ZOO_OFFLINE`` variable, which also skips contacting the services) with a
    :class:`~zoo.errors.StaleResolution` warning; anything else is :class:`~zoo.errors.StoreUnavailable`.
    """
    where = store if store is not None else _store_env()
    if where is not None:
        _check_store(where)
    if isinstance(where, str):
        from .store.location import is_database_url

        if is_database_url(where):
            from . import _offline
            from ._refs import parse_digest
            from .errors import StoreUnavailable
            from .store._network import OFFLINE_ENV, offline
            from .store.cache import ArtifactCache
            from .store.location import parse_database

            shown = parse_database(where).shown
            pinned = parse_digest(sha256, ref=sha256) if sha256 is not None else None
            try:
                if offline():
                    raise StoreUnavailable(f"{OFFLINE_ENV} is set: the services of {shown} were not contacted",
                                           hint=f"load it once with {OFFLINE_ENV} unset, so that the cache holds it")
                registry = open_registry(where, artifacts=artifacts)
            except StoreUnavailable as exc:
                return _offline.load_offline(ArtifactCache(), shown, ref, pinned=pinned, allow_stale=allow_stale,
                                             cause=exc, provider=provider, options=options)
            return registry.load(ref, provider=provider, sha256=sha256, allow_stale=allow_stale, **options)
    return open_registry(store, artifacts=artifacts).load(ref, provider=provider, sha256=sha256, **options)


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
    if name == "Transform":
        from .transforms import Transform

        return Transform
    raise AttributeError(name)
