"""Content digests: the sha256 of a file's bytes, streamed (artifacts and weight files run to 0.5 GB)."""
from __future__ import annotations

import hashlib
import os

CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["CHUNK", "file_sha256"]
