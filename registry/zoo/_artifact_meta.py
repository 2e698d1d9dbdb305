"""What a registered artifact says about itself: the ``zoo.*`` metadata_props embedded in its ONNX file.

Deterministic and free of registry facts (name, version number, time), so that the same model and
meta always give the same bytes and re-registration dedupes; checked before anything is written.
"""
from __future__ import annotations

import json
import re
from typing import Any

from . import _distribution
from ._names import received, validate_name
from ._refs import FRAMEWORK_PATTERN
from .errors import InvalidInput
from .records import VersionMeta, _jsonable

__all__ = ["ZOO_KEY_PREFIX", "check_meta", "json_prop", "metadata_props", "strip_zoo_keys", "zoo_version"]

ZOO_KEY_PREFIX = "zoo."


def zoo_version() -> str:
    return _distribution.version()


def json_prop(value: Any, what: str) -> str:
    try:
        return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Expected {what} to be JSON-serialisable. Received: {received(value)}",
                           hint=f"use str, int, float, bool, lists and dicts ({exc})") from None


def metadata_props(meta: VersionMeta) -> dict[str, str]:
    """The ``zoo.*`` metadata_props embedded in a registered artifact.

    Deterministic, and free of registry facts (name, version number, time): the same model and
    meta always give the same bytes, which is what makes re-registration dedupe.
    """
    props: dict[str, str] = {}
    for field in ("arch", "framework", "framework_version", "plugin_version", "exporter", "exporter_version"):
        value = getattr(meta, field)
        if value is not None:
            props[ZOO_KEY_PREFIX + field] = str(value)
    if meta.params is not None:
        props["zoo.params"] = json_prop(meta.params, "params")
    if meta.num_classes is not None:
        props["zoo.num_classes"] = str(int(meta.num_classes))
    if meta.provenance:
        props["zoo.provenance"] = json_prop(meta.provenance, "provenance")
    if meta.transform is not None:
        props["zoo.transform"] = json_prop(meta.transform, "transform")
    if meta.labels is not None:
        props["zoo.labels"] = json_prop(meta.labels, "labels")
    props["zoo.version"] = zoo_version()
    return props


def check_meta(meta: VersionMeta) -> None:
    if meta.framework is not None and not (isinstance(meta.framework, str) and re.fullmatch(FRAMEWORK_PATTERN, meta.framework, re.ASCII)):
        raise InvalidInput(f"Expected a framework (plugin) name matching {FRAMEWORK_PATTERN}. Received: {received(meta.framework)}",
                           hint="use the plugin's name, e.g. 'torch' or 'tensorflow'")
    if meta.arch is not None:
        validate_name(meta.arch, kind="an architecture name")
    if meta.num_classes is not None and (not isinstance(meta.num_classes, int) or meta.num_classes < 1):
        raise InvalidInput(f"Expected num_classes >= 1. Received: {received(meta.num_classes)}")


def strip_zoo_keys(model: Any) -> None:
    """Drop stale ``zoo.*`` entries (a file copied out of a store) so the bytes say only what we record."""
    entries = [(e.key, e.value) for e in model.metadata_props]
    kept = [(k, v) for k, v in entries if not k.startswith(ZOO_KEY_PREFIX)]
    if len(kept) != len(entries):
        del model.metadata_props[:]
        for key, value in kept:
            model.metadata_props.add(key=key, value=value)
