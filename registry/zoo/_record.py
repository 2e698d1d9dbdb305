"""The base of every record: ``to_dict()`` for JSON output and storage (below records, labels, transforms)."""
from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float)) or value is None:  # most values (1,000 class names a version)
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Record:
    """Mixin: ``to_dict()`` for JSON output and storage."""

    def to_dict(self, *, omit: Collection[str] = ()) -> dict[str, Any]:
        """The record as JSON-ready dicts and lists, without the fields named in ``omit``."""
        fields = dataclasses.fields(self)  # type: ignore[arg-type]  # every Record is a dataclass
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields if f.name not in omit}
