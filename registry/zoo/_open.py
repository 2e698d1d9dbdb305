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
    """``$ZOO_STORE`` if set (and not empty), else ``./artifacts`` in the working directory; absolute."""
    return Path(os.environ.get(STORE_ENV) or "artifacts").absolute()


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

    where = store if store is not None else (os.environ.get(STORE_ENV) or None)
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
