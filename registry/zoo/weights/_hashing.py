"""sha256 of weight files and of canonical states: the identity a version's provenance records."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._digest import file_sha256
from ._canonical import as_canonical

METADATA_KEY = "zoo"  # one key only: safetensors writes metadata from a hash map, so >1 key has no stable order


def canonical_bytes(state: Mapping[str, np.ndarray], *, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The exact bytes :func:`~zoo.weights.save_weights` writes: equal states and metadata give equal bytes."""
    from safetensors.numpy import save

    header = {METADATA_KEY: json.dumps(dict(metadata), sort_keys=True, default=str)} if metadata else None
    return save(as_canonical(state, source="<state>"), metadata=header)


def state_sha256(state: Mapping[str, np.ndarray], *, metadata: Mapping[str, Any] | None = None) -> str:
    """sha256 of the file :func:`~zoo.weights.save_weights` would write for ``state``, without writing it."""
    return hashlib.sha256(canonical_bytes(state, metadata=metadata)).hexdigest()


__all__ = ["METADATA_KEY", "canonical_bytes", "file_sha256", "state_sha256"]
