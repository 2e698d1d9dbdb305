"""The embedded store's identity marker, ``store.json``: written once when the store is created, read on open."""
from __future__ import annotations

import json
import os
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..errors import StoreError
from ._durable import fsync_dir, seal, write_all
from .base import STORE_FORMAT_VERSION, StoreIdentity

__all__ = ["MARKER_FILE", "MARKER_KIND", "read_marker", "write_marker"]

MARKER_FILE = "store.json"
MARKER_KIND = "zoo-store"


def read_marker(root: Path, marker: Path, location: str) -> StoreIdentity | None:
    """The identity in ``marker`` (``store.json``), read only; None when the folder or the marker is missing."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"Cannot read the store folder {location!r}: {exc.strerror}",
                         hint="check the path and its permissions") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"The store path {location!r} exists and is not a folder",
                         hint="choose a folder with --store DIR or the ZOO_STORE environment variable")
    try:
        fd = os.open(marker, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"Cannot read the store marker {str(marker)!r}: {exc.strerror}",
                         hint="it must be a regular file readable by you") from None
    try:
        with os.fdopen(fd, "rb") as fh:
            body = json.loads(fh.read(65536))
        if body.get("kind") != MARKER_KIND:
            raise ValueError(f"kind {body.get('kind')!r}")
        store_id, version = body["store_id"], int(body["format_version"])
        if not (isinstance(store_id, str) and len(store_id) == 32 and all(c in "0123456789abcdef" for c in store_id)):
            raise ValueError(f"store_id {store_id!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"The store marker {str(marker)!r} is corrupt ({exc})",
                         hint="restore store.json from a backup; its store_id must match registry.db's") from None
    if version > STORE_FORMAT_VERSION:
        raise StoreError(f"The store {location!r} has format {version}; this zoo understands up to {STORE_FORMAT_VERSION}",
                         hint="upgrade zoo (pip install -U zoo-registry)")
    return StoreIdentity(store_id=store_id, format_version=version)


def write_marker(root: Path, marker: Path, location: str, identity: StoreIdentity, folders: tuple[Path, ...]) -> StoreIdentity:
    """Create ``folders`` and write ``marker`` unless one exists (the first creator's id wins); return it as recorded."""
    try:
        for folder in (root, *folders):
            folder.mkdir(parents=True, exist_ok=True)
        existing = read_marker(root, marker, location)
        if existing is not None:
            return existing
        body = {"kind": MARKER_KIND, "format_version": identity.format_version, "store_id": identity.store_id,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".store.", suffix=".tmp")
        try:
            write_all(fd, (json.dumps(body, indent=2) + "\n").encode())
            seal(fd)
            os.close(fd)
            fd = -1
            try:
                os.link(tmp, marker)  # atomic and exclusive: the first creator's id wins
            except FileExistsError:
                pass
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
        fsync_dir(root)
    except FileExistsError:
        raise StoreError(f"The store path {location!r} exists and is not a folder",
                         hint="choose a folder with --store DIR or the ZOO_STORE environment variable") from None
    except OSError as exc:
        raise StoreError(f"Cannot create the store {location!r}: {exc}",
                         hint="choose a writable folder with --store DIR or ZOO_STORE; check free space") from None
    recorded = read_marker(root, marker, location)
    assert recorded is not None
    return recorded
