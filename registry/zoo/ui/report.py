"""``zoo report`` and ``zoo parity --html``: the evidence card as one self-contained HTML file.

Invariant: the file needs nothing but itself: no script, font, stylesheet or image is fetched (charts
are inline SVG from :mod:`zoo.ui.svg`, the style and the script are inline), and its
Content-Security-Policy meta tag forbids every request, so a browser opening it offline, or a CI
artifact viewer, shows it whole. It is written atomically (:func:`zoo._atomic.write_file`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import card
from ._html import esc, page


def render_report(registry: Any, ref: str, *, against: str | None = None) -> str:
    """The card of ``ref`` (with ``against``: both versions compared side by side, then both cards)."""
    from .pages import compare_body

    v = registry.resolve(ref)
    reports = registry.reports(v)
    siblings = registry.list(v.name)
    variants = [x for x in siblings if card.source_of(x)[1] == v.sha256]
    where = f"store {registry.location}"
    if against is None:
        return page(f"{v.ref} - zoo report", card.version_card(v, reports, variants=variants), where=where, standalone=True)
    w = registry.resolve(against)
    w_reports = registry.reports(w)
    body = (f"<h1>{esc(v.ref)} against {esc(w.ref)}</h1>" + compare_body([v, w], [reports, w_reports], link=None)
            + '<hr>' + card.version_card(v, reports, variants=variants) + "<hr>" + card.version_card(w, w_reports))
    return page(f"{v.ref} vs {w.ref} - zoo report", body, where=where, standalone=True)


def render_parity(payloads: Sequence[Mapping[str, Any]]) -> str:
    """A report of parity runs that may have registered nothing (a failing gate registers nothing)."""
    parts = []
    for p in payloads:
        status = "passed" if p.get("passed") else "FAILED"
        registered = p.get("versions") or {}
        parts.append(f"<h1>parity: {esc(p.get('arch'))} {esc(status)}</h1>")
        if registered:
            parts.append("<p>Registered: " + ", ".join(f"{esc(ref)} ({esc(fw)})" for fw, ref in registered.items()) + "</p>")
        elif not p.get("passed"):
            parts.append('<p class="mute">nothing registered: an artifact that fails parity never enters the registry</p>')
        parts.append(card.parity_section(p))
    title = "parity " + ", ".join(str(p.get("arch")) for p in payloads)
    return page(title, "".join(parts), where="zoo parity", standalone=True)


def write_report(path: str | os.PathLike[str], *, registry: Any = None, ref: str | None = None, against: str | None = None,
                 parity: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Write one self-contained HTML file: the card of ``ref`` in ``registry`` (optionally ``against`` another
    version), or the ``parity`` payloads (:meth:`zoo.parity.ParityReport.payload`). Returns the path."""
    from .._atomic import check_destination, write_file
    from ..errors import InvalidInput

    check_destination(path, what="the report")
    if parity is not None:
        text = render_parity(parity)
    elif registry is not None and ref is not None:
        text = render_report(registry, ref, against=against)
    else:
        raise InvalidInput("Expected a version (registry and ref) or parity payloads to report on. Received: neither",
                           hint="e.g. zoo report resnet50@1 -o report.html")
    return write_file(path, text.encode("utf-8"))


__all__ = ["render_parity", "render_report", "write_report"]
