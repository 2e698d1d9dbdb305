"""HTML building blocks shared by the web UI and the self-contained report: escaping, the page shell, formats.

Invariant: every value that came from a store (names, tags, labels, provenance, report payloads) reaches
the page only through :func:`esc` (text and attribute values, quotes included) or :func:`href` (URL
parts, percent-encoded, then escaped); markup is assembled from constants and escaped values only.
The shell's Content-Security-Policy allows no network request at all: the one stylesheet and the one
script are inline and allowed by their sha256, images only as ``data:`` URIs.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode


def esc(value: Any) -> str:
    """``value`` as HTML text, safe in element content and in double- or single-quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def href(*segments: str, **query: Any) -> str:
    """A site-relative URL from path segments (each percent-encoded, ``/`` included) and a query, escaped."""
    path = "/" + "/".join(quote(str(s), safe="") for s in segments)
    pairs = [(k, v) for k, v in query.items() if v not in (None, "", ())]
    flat: list[tuple[str, str]] = []
    for k, v in pairs:
        for item in v if isinstance(v, (list, tuple)) else [v]:
            flat.append((k, str(item)))
    return esc(path + ("?" + urlencode(flat) if flat else ""))


CSS = """
:root{--fg:#1d2330;--mute:#5b6475;--line:#d9dde5;--bg:#fff;--soft:#f4f6f9;--acc:#2456a6;--bad:#b3261e;--ok:#1e7a34;--diff:#fff1c2}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0}
header.top{background:#1d2330;color:#fff;padding:8px 20px;display:flex;gap:20px;align-items:baseline}
header.top a{color:#fff;text-decoration:none;font-weight:600}
header.top .where{color:#aab3c5;font-size:12px}
main{padding:16px 20px;max-width:1400px}
h1{font-size:22px;margin:4px 0 12px}
h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
a{color:var(--acc)}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0 10px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{width:220px}
table.compare td{overflow-wrap:anywhere;max-width:420px}
tr.diff td,tr.diff th{background:var(--diff)}
.mark{color:#8a6100;font-weight:700}
.badge{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 7px;margin:0 3px 2px 0;
font-size:12px;background:var(--soft)}
.alias{border-color:#9db5e0;background:#e9f0fc}
.pass{color:var(--ok);font-weight:600}
.fail{color:var(--bad);font-weight:600}
.mute{color:var(--mute)}
.note{background:var(--soft);border-left:3px solid var(--acc);padding:6px 10px;margin:8px 0}
.warn{border-left-color:var(--bad)}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:10px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--mute)}
form.filters input{padding:3px 6px;width:140px}
.pager{margin:8px 0}
.pager a,.pager span{margin-right:10px}
figure{margin:8px 0}
figcaption{font-size:12px;color:var(--mute)}
svg.chart{max-width:100%;height:auto;border:1px solid var(--line);background:#fff}
svg.chart.zoomed{width:100%}
svg text{font:11px system-ui,sans-serif;fill:#1d2330}
.cols{display:flex;flex-wrap:wrap;gap:24px}
details>summary{cursor:pointer}
th[data-sort]{cursor:pointer}
pre{background:var(--soft);padding:8px;overflow:auto;max-height:320px}
"""

# Progressive enhancement only: click a column head to sort a table, click a chart to widen it.
JS = """
document.addEventListener('click',function(e){
var th=e.target.closest('th[data-sort]');
if(th){var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
var num=th.getAttribute('data-sort')==='num',dir=th.getAttribute('data-dir')==='asc'?-1:1;th.setAttribute('data-dir',dir>0?'asc':'desc');
var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){var a=x.cells[i].getAttribute('data-v')||x.cells[i].textContent,
c=y.cells[i].getAttribute('data-v')||y.cells[i].textContent;if(num){a=parseFloat(a);c=parseFloat(c);
a=isNaN(a)?-Infinity:a;c=isNaN(c)?-Infinity:c;return dir*(a-c);}
  return dir*a.localeCompare(c);});rows.forEach(function(r){b.appendChild(r);});return;}
var svg=e.target.closest('svg.chart');if(svg){svg.classList.toggle('zoomed');}
});
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP_META = ("default-src 'none'; img-src data:; style-src " + _csp_hash(CSS) + "; script-src " + _csp_hash(JS)
            + "; base-uri 'none'; form-action 'self'")  # a report file's (a meta tag cannot say frame-ancestors)
CSP = CSP_META + "; frame-ancestors 'none'"  # the server's header


def page(title: str, body: str, *, where: str = "", standalone: bool = False) -> str:
    """A whole HTML document. ``standalone`` (a report file): the CSP travels in a meta tag, links are not site links."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP_META)}">' if standalone else ""
    home = '<span>zoo report</span>' if standalone else '<a href="/">zoo</a>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'{meta}<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{esc(title)}</title><style>{CSS}</style></head>'
        f'<body><header class="top">{home}<span class="where">{esc(where)}</span></header>'
        f'<main>{body}</main><script>{JS}</script></body></html>\n'
    )


# ---------------------------------------------------------------------------------------------- formats

def fmt_int(n: Any) -> str:
    return "-" if n is None else f"{int(n):,}"


def fmt_size(n: Any) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def fmt_num(x: Any, digits: int = 3) -> str:
    """Numbers for people: errors in scientific notation, others with ``digits`` significant digits; text as is."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e6):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def as_float(x: Any) -> float | None:
    """A payload number (``"inf"``/``"nan"`` strings included: parity writes them so); None if not one."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def plain_text(value: Any) -> str:
    """A nested payload value as one line of text (JSON for dicts and lists)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return fmt_num(value)


def kv_table(rows: Iterable[tuple[str, Any]], *, cls: str = "facts", raw: bool = False) -> str:
    """A two-column table; values are escaped unless ``raw`` (then they are markup built here)."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v if raw else esc(plain_text(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def grid(columns: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[bool] = (), sortable: bool = True,
         cls: str = "") -> str:
    """A table whose cells are markup built here (escape values first); ``numeric`` right-aligns and sorts by number."""
    num = list(numeric) + [False] * (len(columns) - len(numeric))
    head = "".join(
        f'<th{" class=num" if n else ""}{(" data-sort=" + ("num" if n else "text")) if sortable else ""}>{esc(c)}</th>'
        for c, n in zip(columns, num, strict=True))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if n else ""}>{cell}</td>' for cell, n in zip(row, num, strict=False))
                   + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def badges(items: Iterable[str], cls: str = "") -> str:
    return "".join(f'<span class="badge {cls}">{esc(i)}</span>' for i in items)


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted keys (``pretrained.sha256``), lists kept whole."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += flatten(value, name + ".")
        else:
            out.append((name, value))
    return out


__all__ = ["CSP", "CSP_META", "CSS", "JS", "as_float", "badges", "esc", "flatten", "fmt_int", "fmt_num", "fmt_size", "grid", "href",
           "kv_table", "page", "plain_text"]
