"""Where the registry is, and opening it: :func:`zoo.open_registry` and :func:`zoo.default_store` live here,
below the public package, so the registry's own modules (``_register_model``) never import ``zoo`` itself."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["STORE_ENV", "default_store", "open_registry"]

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
    :class:`~zoo.errors.StoreError`. An empty string is refused (it is not "."), and so is any URL scheme
    but ``postgresql://``.
    """
    from ._registry import Registry

    where = store if store is not None else _store_env()
    if where is not None:
        _check_store(where)
    if isinstance(where, str):
        from .store.location import is_database_url

        if is_database_url(where):
            return Registry.open_shared(where, artifacts=artifacts)
    if artifacts is not None:
        from .errors import InvalidInput

        raise InvalidInput(f"Expected --artifacts only with a PostgreSQL store. Received: --artifacts {artifacts!r} "
                           f"with the folder store {str(where or default_store())!r}",
                           hint="a folder store keeps its artifacts inside it; drop --artifacts")
    return Registry.open(where if where is not None else default_store(), read_only=read_only)
