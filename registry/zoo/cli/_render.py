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
    """A :class:`~zoo.records.VersionRow` as ``zoo list`` draws it (:data:`VERSION_COLUMNS`)."""
    return [
        v.ref, v.framework or "external", v.arch, fmt_int(v.params), fmt_size(v.size_bytes), v.sha256[:12],
        ",".join(v.aliases) or None, v.created_at[:19].replace("T", " "),
    ]


VERSION_COLUMNS = ["ref", "framework", "arch", "params", "size", "sha256", "aliases", "created (UTC)"]


def _version_fields() -> tuple[str, ...]:
    import dataclasses

    from ..records import ModelVersion

    return ("ref", *(f.name for f in dataclasses.fields(ModelVersion)))


def fields_option(command):
    """``--fields ref,sha256,labels``: which fields ``--json`` prints for each version (default: all, with the labels'
    name, count and sha256; ``labels`` named here brings every class name; ``all`` is every field so)."""
    import click

    return click.option("--fields", "fields", default="", metavar="NAMES",
                        help="With --json, print only these fields of each version, comma-separated (ref, name, version, "
                             "sha256, aliases, tags, ...; `all` for every one); `labels` here includes every class name "
                             "(by default only the labels' name, count and sha256).")(command)


def parse_fields(text: str) -> tuple[str, ...]:
    """The fields ``--fields`` names, in its order (empty: the default shape); InvalidInput names an unknown one."""
    fields = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    known = _version_fields()
    unknown = [f for f in fields if f not in (*known, "all")]
    if unknown:
        raise InvalidInput(f"Expected --fields from: {', '.join(known)}, all. Received: {', '.join(unknown)}",
                           hint="e.g. --json --fields ref,sha256,aliases (or --fields all for every field with the "
                                "class names)")
    return known if "all" in fields else fields


def version_json(v, fields: Sequence[str] = ()) -> dict[str, Any]:
    """The one JSON shape of a version, in every command's ``--json``: the record's fields, with ``labels``
    as {name, count, sha256}; ``fields`` (from :func:`parse_fields`) keeps only those, in that order, and
    ``labels`` among them carries ``classes``, every name."""
    data = v.to_dict(omit=("labels",))
    data["labels"] = None if v.labels is None else {
        "name": v.labels.name, "count": len(v.labels), "sha256": v.labels.sha256,
        **({"classes": list(v.labels.classes)} if "labels" in fields else {})}
    if not fields:
        return data
    data["ref"] = v.ref
    return {f: data[f] for f in fields}
