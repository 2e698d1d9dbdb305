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


OPTIONAL_FIELDS = ("labels",)  # what --json leaves out unless --fields asks for it


def fields_option(command):
    """``--fields labels``: what ``--json`` adds to each version (default: the label count and sha256, not the names)."""
    import click

    return click.option("--fields", "fields", default="", metavar="labels",
                        help="With --json, also include: labels (every class name; by default only the labels' name, "
                             "count and sha256).")(command)


def parse_fields(text: str) -> frozenset[str]:
    fields = frozenset(f.strip() for f in text.split(",") if f.strip())
    unknown = sorted(fields - set(OPTIONAL_FIELDS))
    if unknown:
        raise InvalidInput(f"Expected --fields from: {', '.join(OPTIONAL_FIELDS)}. Received: {', '.join(unknown)}",
                           hint="e.g. --json --fields labels")
    return fields


def version_json(v, fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The one JSON shape of a version, in every command's ``--json``: the record's fields, with ``labels``
    as {name, count, sha256} (plus ``classes``, every name, when ``fields`` has "labels")."""
    data = v.to_dict(omit=("labels",))
    data["labels"] = None if v.labels is None else {
        "name": v.labels.name, "count": len(v.labels), "sha256": v.labels.sha256,
        **({"classes": list(v.labels.classes)} if "labels" in fields else {})}
    return data
