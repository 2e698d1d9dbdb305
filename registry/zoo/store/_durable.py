"""Durable-write primitives the file-backed stores share: write everything, fsync, seal read-only."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "seal", "write_all"]


def fsync_dir(path: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def seal(fd: int) -> None:
    """Flush to disk and make read-only: published bytes never change in place."""
    os.fsync(fd)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o444)
