"""``metadata_props``: where the registry embeds what it knows into the artifact itself."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import InvalidInput, InvalidModelFile
from ._check import ModelLike, unwrap
from ._files import open_model_bytes
from ._wire import check_wire, message_fields


def embed_metadata(model: ModelLike, props: Mapping[str, str]) -> None:
    """Set or replace ``metadata_props`` keys in place; untouched keys keep their order."""
    proto, _ = unwrap(model)
    for key, value in props.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidInput(
                f"Expected metadata as non-empty str keys and str values. Received: {key!r}: {type(value).__name__}",
                hint="serialise values (json.dumps) before embedding them",
            )
    pending = dict(props)
    kept = []
    for entry in proto.metadata_props:
        if entry.key in pending:
            kept.append((entry.key, pending.pop(entry.key)))
        elif entry.key in props:
            continue  # a duplicate of a key already replaced
        else:
            kept.append((entry.key, entry.value))
    kept.extend(pending.items())
    del proto.metadata_props[:]
    for key, value in kept:
        proto.metadata_props.add(key=key, value=value)


def read_metadata(path_or_model: "str | os.PathLike[str] | ModelLike") -> dict[str, str]:
    """``metadata_props`` as a dict. From a path, only the top-level fields are read: the graph
    and its weights are skipped, so this is instant even for a 2 GB model."""
    import onnx

    if isinstance(path_or_model, (str, os.PathLike)):
        p = Path(path_or_model)
        f, mm, _ = open_model_bytes(p)
        try:
            check_wire(mm, p)
            out: dict[str, str] = {}
            for field, wire, start, end in message_fields(mm):
                if field == 14 and wire == 2:
                    try:
                        entry = onnx.StringStringEntryProto.FromString(mm[start:end])
                    except Exception as exc:
                        raise InvalidModelFile(f"'{p}' has a corrupt metadata entry: {exc}", hint="re-export the model") from None
                    out[entry.key] = entry.value
            return out
        finally:
            del mm
            f.close()
    proto, _ = unwrap(path_or_model)
    return {entry.key: entry.value for entry in proto.metadata_props}
