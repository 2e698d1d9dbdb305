"""Where the registry keeps things: the two interfaces (:mod:`.base`) and the embedded pair behind them.

Layout of an embedded store folder::

    registry.db                                   SQLite (WAL): versions, aliases, tags, reports
    objects/<sha[:2]>/<sha>/model.onnx            immutable, content-addressed artifacts
    objects/<sha[:2]>/<sha>/<external data>       ONNX external-data files, beside their model
    tmp/                                          in-flight writes (cleaned after a crash)

Nothing outside this package touches SQLite or object paths directly.
"""
from __future__ import annotations

from pathlib import Path

from .base import MODEL_FILE, Abandoned, BlobStore, MetadataStore, MetadataTxn, Staged

__all__ = ["MODEL_FILE", "Abandoned", "BlobStore", "MetadataStore", "MetadataTxn", "Staged", "open_local"]

DATABASE_FILE = "registry.db"


def open_local(root: Path) -> tuple[MetadataStore, BlobStore]:
    """The embedded pair: SQLite metadata and content-addressed files, both under ``root``."""
    from .files import FileBlobStore
    from .sqlite import SQLiteMetadataStore

    blobs = FileBlobStore(root)
    return SQLiteMetadataStore(Path(root) / DATABASE_FILE), blobs
