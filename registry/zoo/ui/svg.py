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


@dataclass(frozen=True)
class _Frame:
    """A line chart's plot area and scales: the margins round it, and data (x, y) to SVG coordinates."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    log_x: bool
    x0: float  # the x range, after the log2 of a log axis
    x1: float
    y0: float
    y1: float

    @classmethod
    def fit(cls, pts: Sequence[tuple[float, float]], *, legend: bool, log_x: bool, width: int, height: int) -> _Frame:
        """The frame whose ranges hold every point (y from 0, or below, to 8% over the top)."""
        left, right, top, bottom = 62, 190 if legend else 16, 26, 44  # the legend sits right of the plot
        xs = [_scale_x(x, log_x) for x, _ in pts]
        ys = [y for _, y in pts]
        x0, x1 = min(xs), max(xs)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        y0, y1 = min(0.0, min(ys)), max(ys) * 1.08 or 1.0
        return cls(width, height, left, right, top, bottom, log_x, x0, x1, y0, y1)

    @property
    def pw(self) -> int:
        return self.width - self.left - self.right

    @property
    def ph(self) -> int:
        return self.height - self.top - self.bottom

    def px(self, x: float) -> float:
        return self.left + (_scale_x(x, self.log_x) - self.x0) / (self.x1 - self.x0) * self.pw

    def py(self, y: float) -> float:
        return self.top + self.ph - (y - self.y0) / (self.y1 - self.y0) * self.ph


def _scale_x(v: float, log_x: bool) -> float:
    return (math.log2(v) if v > 0 else 0.0) if log_x else v


def _y_grid(f: _Frame) -> list[str]:
    """A gridline and a label per y tick."""
    out = []
    for t in _ticks(f.y0, f.y1):
        y = f.py(t)
        out.append(f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ec"/>'
                   f'<text x="{f.left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt_num(t))}</text>')
    return out


def _x_labels(f: _Frame, pts: Sequence[tuple[float, float]], x_is_time: Sequence[str] | None) -> list[str]:
    """The x tick labels: ``x_is_time`` spread evenly; else every x value when few (or on a log axis); else round ticks."""
    y = f.height - f.bottom + 16
    if x_is_time:
        n = len(x_is_time)
        return [f'<text x="{f.left + (i / max(1, n - 1)) * f.pw:.1f}" y="{y}" text-anchor="middle">{esc(label)}</text>'
                for i, label in enumerate(x_is_time)]
    values = {x for x, _ in pts}
    if f.log_x or len(values) <= 12:
        return [f'<text x="{f.px(t):.1f}" y="{y}" text-anchor="middle">{esc(fmt_num(t))}</text>' for t in sorted(values)]
    return [f'<text x="{f.left + (t - f.x0) / (f.x1 - f.x0) * f.pw:.1f}" y="{y}" text-anchor="middle">{esc(fmt_num(t))}</text>'
            for t in _ticks(f.x0, f.x1)]


def _axes(f: _Frame, x_label: str, y_label: str) -> str:
    """The two axis lines and their labels."""
    return (f'<line x1="{f.left}" x2="{f.left}" y1="{f.top}" y2="{f.top + f.ph}" stroke="#888"/>'
            f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{f.top + f.ph}" y2="{f.top + f.ph}" stroke="#888"/>'
            f'<text x="{f.left + f.pw / 2:.0f}" y="{f.height - 8}" text-anchor="middle">{esc(x_label)}</text>'
            f'<text transform="translate(14 {f.top + f.ph / 2:.0f}) rotate(-90)" text-anchor="middle">{esc(y_label)}</text>')


def _stroke(s: Series) -> tuple[str, str]:
    """A series' colour and its stroke-dasharray attribute ("" when solid)."""
    dash = DASHES[s.style % 3]
    return PALETTE[s.color % len(PALETTE)], f' stroke-dasharray="{dash}"' if dash else ""


def _series_group(f: _Frame, s: Series) -> str:
    """One series: its line through the points in x order, and a dot with a tooltip per point."""
    color, dash = _stroke(s)
    ordered = sorted(s.points)
    path = " ".join(f"{'M' if i == 0 else 'L'}{f.px(x):.1f},{f.py(y):.1f}" for i, (x, y) in enumerate(ordered))
    dots = "".join(f'<circle class="pt" cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="3" fill="{color}">'
                   f'<title>{esc(s.name)}: {esc(fmt_num(x))}, {esc(fmt_num(y))}</title></circle>' for x, y in ordered)
    return (f'<g class="series" data-name="{esc(s.name)}"><path d="{path}" fill="none" stroke="{color}" '
            f'stroke-width="1.8"{dash}/>{dots}</g>')


def _legend_entry(f: _Frame, s: Series, y: int) -> str:
    """A series' stroke sample and name, right of the plot at height ``y``."""
    color, dash = _stroke(s)
    x = f.width - f.right
    return (f'<line x1="{x + 10}" x2="{x + 30}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{x + 34}" y="{y + 4}">{esc(s.name[:26])}</text>')


def line_chart(series: Sequence[Series], *, x_label: str, y_label: str, title: str, log_x: bool = False,
               width: int = 760, height: int = 320, x_is_time: Sequence[str] | None = None) -> str:
    """Lines with points. ``log_x``: a log2 x axis (batch sizes); ``x_is_time``: tick labels for x (dates)."""
    pts = [p for s in series for p in s.points]
    if not pts:
        return '<p class="mute">no data to plot</p>'
    legend = len(series) > 1
    f = _Frame.fit(pts, legend=legend, log_x=log_x, width=width, height=height)
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg" data-chart="line"><title>{esc(title)}</title>',
           f'<text x="{f.left}" y="16" font-weight="600">{esc(title)}</text>']
    out += _y_grid(f)
    out += _x_labels(f, pts, x_is_time)
    out.append(_axes(f, x_label, y_label))
    for i, s in enumerate(series):
        out.append(_series_group(f, s))
        if legend:
            out.append(_legend_entry(f, s, f.top + 4 + 14 * i))
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
