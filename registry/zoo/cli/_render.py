"""Formatting shared by the commands: tags, integers, sizes, shapes, version rows."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput


def parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"Expected a tag as KEY=VALUE. Received: {pair!r}", hint="e.g. --tag team=vision")
        tags[key] = value
    return tags


def fmt_int(n: int | None) -> str | None:
    return None if n is None else f"{n:,}"


def fmt_size(n: int | None) -> str | None:
    if n is None:
        return None
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}"
    return None


def fmt_shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def version_row(v) -> list[Any]:
    return [
        v.ref, v.framework or "external", v.arch, fmt_int(v.params.trainable if v.params else v.onnx_params),
        fmt_size(v.size_bytes), v.sha256[:12], ",".join(v.aliases) or None, v.created_at[:19].replace("T", " "),
    ]


VERSION_COLUMNS = ["ref", "framework", "arch", "params", "size", "sha256", "aliases", "created (UTC)"]
