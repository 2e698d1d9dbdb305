"""The base of every record: ``to_dict()`` for JSON output and storage (below records, labels, transforms)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Record:
    """Mixin: ``to_dict()`` for JSON output and storage."""

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)
