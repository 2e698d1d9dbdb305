"""Where the registry keeps things: the two interfaces (:mod:`.base`) and the embedded pair behind them.

Layout of an embedded store folder::

    store.json                                    the store's identity: format and random store id
    registry.db                                   SQLite (WAL): versions, aliases, tags, reports (+ the same id)
    objects/<sha[:2]>/<sha>/model.onnx            immutable, content-addressed artifacts
    objects/<sha[:2]>/<sha>/<external data>       ONNX external-data files, beside their model
    tmp/                                          in-flight writes (cleaned after a crash)

Nothing outside this package touches SQLite or object paths directly.
"""
from __future__ import annotations

import os
from pathlib import Path

from ._sql import Filters
from .base import (
    LEGACY_STORE_ID,
    MODEL_FILE,
    STORE_FORMAT_VERSION,
    Abandoned,
    BlobStore,
    MetadataStore,
    MetadataTxn,
    Orphan,
    Staged,
    StoreIdentity,
)

__all__ = [
    "LEGACY_STORE_ID", "MODEL_FILE", "STORE_FORMAT_VERSION", "Abandoned", "BlobStore", "Filters", "MetadataStore", "MetadataTxn",
    "Orphan", "Staged", "StoreIdentity", "open_local",
]

DATABASE_FILE = "registry.db"


def _cannot_write(root: Path) -> bool:
    """Whether an existing store folder cannot be written by us (read-only mount, or permissions)."""
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return True
    except (OSError, AttributeError):
        pass
    db = root / DATABASE_FILE
    return not os.access(root, os.W_OK | os.X_OK) or (db.exists() and not os.access(db, os.W_OK))


def open_local(root: Path, *, read_only: bool | None = None) -> tuple[MetadataStore, BlobStore]:
    """The embedded pair: SQLite metadata and content-addressed files, both under ``root``.

    Touches nothing on disk. ``read_only=None`` decides from the folder: an existing store that we
    cannot write is opened read-only.
    """
    from .files import FileBlobStore
    from .sqlite import SQLiteMetadataStore

    root = Path(root)
    if read_only is None:
        read_only = root.is_dir() and _cannot_write(root)
    return SQLiteMetadataStore(root / DATABASE_FILE, read_only=read_only), FileBlobStore(root, read_only=read_only)
