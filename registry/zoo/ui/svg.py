"""Charts as inline SVG, generated here: no chart library, nothing fetched, identical headless or not.

Why plain SVG: the report must be one file that opens offline and passes a strict CSP, and the UI
must show every fact with JavaScript off; a JS charting library (Plotly ~3.5 MB, Vega ~800 KB) would
be bundled into every report and draw nothing without JS. The three charts zoo needs (lines over a
few points, a heatmap, horizontal bars) are ~200 lines of SVG.

Invariant: every label passes through :func:`~zoo.ui._html.esc`; each chart is ``<svg class="chart">``
with one ``<g class="series" data-name=...>`` per series and one ``class="pt"`` element per data point
(tests count them), and a ``<title>`` on each point carrying its exact value (a tooltip, and text for
screen readers).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._html import esc, fmt_num

PALETTE = ("#2456a6", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d6a9f", "#30638e", "#b5651d", "#444e5e", "#c25b9b")
DASHES = ("", "6 3", "2 3")


@dataclass(frozen=True)
class Series:
    """One line: ``points`` as (x, y); ``style`` picks a dash pattern (0 solid, 1 dashed, 2 dotted); ``color`` an index."""

    name: str
    points: Sequence[tuple[float, float]]
    color: int = 0
    style: int = 0


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def line_chart(series: Sequence[Series], *, x_label: str, y_label: str, title: str, log_x: bool = False,
               width: int = 760, height: int = 320, x_is_time: Sequence[str] | None = None) -> str:
    """Lines with points. ``log_x``: a log2 x axis (batch sizes); ``x_is_time``: tick labels for x (dates)."""
    pts = [p for s in series for p in s.points]
    if not pts:
        return '<p class="mute">no data to plot</p>'
    left, right, top, bottom = 62, 190 if len(series) > 1 else 16, 26, 44  # the legend sits right of the plot
    fx = (lambda v: math.log2(v) if v > 0 else 0.0) if log_x else (lambda v: v)
    xs = [fx(x) for x, _ in pts]
    ys = [y for _, y in pts]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.08 or 1.0
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (fx(x) - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg" data-chart="line"><title>{esc(title)}</title>',
           f'<text x="{left}" y="16" font-weight="600">{esc(title)}</text>']
    for t in _ticks(y0, y1):
        y = py(t)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ec"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt_num(t))}</text>')
    xticks = sorted({x for x, _ in pts}) if (log_x or len({x for x, _ in pts}) <= 12) and not x_is_time else []
    if x_is_time:
        n = len(x_is_time)
        for i, label in enumerate(x_is_time):
            x = left + (i / max(1, n - 1)) * pw
            out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{esc(label)}</text>')
    elif xticks:
        for t in xticks:
            out.append(f'<text x="{px(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">{esc(fmt_num(t))}</text>')
    else:
        for t in _ticks(x0, x1):
            out.append(f'<text x="{left + (t - x0) / (x1 - x0) * pw:.1f}" y="{height - bottom + 16}" '
                       f'text-anchor="middle">{esc(fmt_num(t))}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#888"/>'
               f'<line x1="{left}" x2="{width - right}" y1="{top + ph}" y2="{top + ph}" stroke="#888"/>'
               f'<text x="{left + pw / 2:.0f}" y="{height - 8}" text-anchor="middle">{esc(x_label)}</text>'
               f'<text transform="translate(14 {top + ph / 2:.0f}) rotate(-90)" text-anchor="middle">{esc(y_label)}</text>')
    legend_y = top + 4
    for s in series:
        color = PALETTE[s.color % len(PALETTE)]
        dash = f' stroke-dasharray="{DASHES[s.style % 3]}"' if DASHES[s.style % 3] else ""
        ordered = sorted(s.points)
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(ordered))
        dots = "".join(f'<circle class="pt" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
                       f'<title>{esc(s.name)}: {esc(fmt_num(x))}, {esc(fmt_num(y))}</title></circle>' for x, y in ordered)
        out.append(f'<g class="series" data-name="{esc(s.name)}"><path d="{path}" fill="none" stroke="{color}" '
                   f'stroke-width="1.8"{dash}/>{dots}</g>')
        if len(series) > 1:
            out.append(f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{legend_y}" y2="{legend_y}" '
                       f'stroke="{color}" stroke-width="2"{dash}/><text x="{width - right + 34}" y="{legend_y + 4}">'
                       f'{esc(s.name[:26])}</text>')
            legend_y += 14
    out.append("</svg>")
    return "".join(out)


def error_colour(err: float | None, rtol: float) -> str:
    """Green well inside the tolerance, amber near it, red past it; grey when unknown."""
    if err is None or math.isnan(err):
        return "#c9ced8"
    if err > rtol or math.isinf(err):
        return "#d9534f"
    if err == 0:
        return "#2e8b57"
    ratio = math.log10(err / rtol)  # <= 0 inside the tolerance
    if ratio <= -2:
        return "#2e8b57"
    if ratio <= -1:
        return "#8fbc5a"
    return "#f0ad4e"


def heatmap(rows: Sequence[str], cols: Sequence[str], cells: Sequence[Sequence[float | None]], *, title: str,
            colours: Sequence[Sequence[str]], labels: Sequence[Sequence[str]], cell: int = 64,
            x_label: str = "", y_label: str = "") -> str:
    """A matrix of coloured cells with their value as text; ``colours``/``labels`` per cell (precomputed)."""
    label_w = min(220, 12 + 7 * max((len(r) for r in rows), default=4))
    head_h = min(160, 20 + 6 * max((len(c) for c in cols), default=4))
    width, height = max(label_w + cell * len(cols) + 10, 6 * len(y_label) + 10), head_h + cell * len(rows) + 30
    small = cell < 40
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg" data-chart="heatmap"><title>{esc(title)}</title>',
           f'<text x="4" y="14" font-weight="600">{esc(title)}</text>']
    for j, c in enumerate(cols):
        x = label_w + j * cell + cell / 2
        out.append(f'<text transform="translate({x:.1f} {head_h - 4}) rotate(-45)">{esc(c[:24])}</text>')
    for i, r in enumerate(rows):
        y = head_h + i * cell
        out.append(f'<text x="{label_w - 4}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{esc(r[:30])}</text>')
        out.append(f'<g class="series" data-name="{esc(r)}">')
        for j, _ in enumerate(cols):
            x = label_w + j * cell
            value = cells[i][j]
            tip = f"{r} / {cols[j]}: {labels[i][j]}"
            out.append(f'<rect class="pt" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{colours[i][j]}">'
                       f'<title>{esc(tip)}</title></rect>')
            if not small and value is not None:
                out.append(f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle">'
                           f'{esc(labels[i][j])}</text>')
        out.append("</g>")
    if x_label:
        out.append(f'<text x="{label_w}" y="{height - 8}">{esc(x_label)}</text>')
    if y_label:
        out.append(f'<text x="4" y="{height - 8}" class="mute">{esc(y_label)}</text>')
    out.append("</svg>")
    return "".join(out)


def count_colour(value: float, top: float) -> str:
    """White to deep blue by ``value / top`` (a confusion matrix's counts)."""
    t = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    r, g, b = (int(255 + (c - 255) * t) for c in (36, 86, 166))
    return f"#{r:02x}{g:02x}{b:02x}"


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, x_label: str, log: bool = False, limit: float | None = None,
              width: int = 560) -> str:
    """Horizontal bars (one series, one ``pt`` per bar); ``limit`` draws a tolerance line; ``log`` a log10 axis."""
    if not bars:
        return '<p class="mute">no data to plot</p>'
    left, right, top, row = 180, 60, 26, 22
    height = top + row * len(bars) + 34
    values = [v for _, v in bars if v is not None and math.isfinite(v)] + ([limit] if limit else [])
    if log:
        pos = [v for v in values if v > 0] or [1e-9]
        lo, hi = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos))) or 1

        def f(v: float) -> float:
            return 0.0 if v <= 0 else (math.log10(v) - lo) / max(1e-9, hi - lo)
    else:
        top_v = max(values or [1.0]) or 1.0

        def f(v: float) -> float:
            return v / top_v
    pw = width - left - right
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg" data-chart="bar"><title>{esc(title)}</title>',
           f'<text x="4" y="16" font-weight="600">{esc(title)}</text><g class="series" data-name="{esc(title)}">']
    for i, (name, v) in enumerate(bars):
        y = top + i * row
        w = 0.0 if v is None or not math.isfinite(v) else max(1.0, f(v) * pw)
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{esc(name[:30])}</text>'
                   f'<rect class="pt" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
                   f'<title>{esc(name)}: {esc(fmt_num(v))}</title></rect>'
                   f'<text x="{left + w + 4:.1f}" y="{y + 14}">{esc(fmt_num(v))}</text>')
    out.append("</g>")
    if limit:
        x = left + f(limit) * pw
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 30}" stroke="#d9534f" stroke-dasharray="4 3"/>'
                   f'<text x="{x:.1f}" y="{height - 18}" text-anchor="middle">tolerance {esc(fmt_num(limit))}</text>')
    out.append(f'<text x="{left}" y="{height - 4}">{esc(x_label)}</text></svg>')
    return "".join(out)


__all__ = ["PALETTE", "Series", "bar_chart", "count_colour", "error_colour", "heatmap", "line_chart"]
