"""A version's evidence card: its facts and every attached report, as HTML (the UI's version page and ``zoo report``).

Invariant: the card reads only what :meth:`Registry.resolve` / :meth:`Registry.reports` return (never an
artifact's bytes), and shows every fact as text in the page, charts being a second view of figures that
are also in a table. Report payloads are user data: unknown kinds and unknown fields are shown as escaped
JSON, missing fields as a dash, never an error.

Report kinds drawn:

- ``parity`` (:class:`zoo.parity.ParityReport` payload): a matrix of every framework/export pair coloured
  by max relative error against the run's ``rtol``, the pair table, and the first diverging layer group;
- ``bench`` (:func:`zoo.bench.bench_artifact` payload): latency vs batch per engine, p50/p90/p99, one chart;
- ``fp16-parity``, ``int8-parity`` (:func:`zoo.convert.report.conversion_report`): the error vs the source;
- ``eval`` (:mod:`zoo.evaluation`'s payload): top-1/top-5, the data set (path, digest, images, skipped),
  per-class accuracy bars, the confusion heatmap, and the comparison with ``against`` when present.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..records import ModelVersion, Report
from ._html import as_float, badges, esc, flatten, fmt_int, fmt_num, fmt_size, grid, kv_table, plain_text
from .svg import Series, bar_chart, count_colour, error_colour, heatmap, line_chart

Link = Callable[[str, int], str | None]  # (name, version) -> an escaped URL, or None (a standalone report)
MAX_CONFUSION = 40  # classes drawn in a confusion matrix; larger ones show the most confused classes


def precision(v: ModelVersion) -> str:
    return str(v.tags.get("precision") or v.provenance.get("precision") or "fp32")


def source_of(v: ModelVersion) -> tuple[str | None, str | None]:
    """(ref, sha256) of the version ``v`` was converted from, if it was."""
    origin = v.provenance.get("converted_from")
    if isinstance(origin, Mapping):
        return (str(origin["ref"]) if origin.get("ref") else None), (str(origin["sha256"]) if origin.get("sha256") else None)
    return None, None


def ref_link(ref: str, link: Link | None) -> str:
    """``name@N`` as a link when it parses and ``link`` gives one; escaped text otherwise."""
    name, _, number = ref.rpartition("@")
    url = link(name, int(number)) if link is not None and name and number.isdigit() else None
    return f'<a href="{url}">{esc(ref)}</a>' if url else esc(ref)


def _shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def facts(v: ModelVersion) -> list[tuple[str, str]]:
    """The version's facts as (name, text): the card's table, and what ``compare`` diffs."""
    size = v.input_size
    return [
        ("architecture", v.arch or "-"),
        ("framework", f"{v.framework} {v.framework_version or ''}".strip() if v.framework else "external"),
        ("precision", precision(v)),
        ("exporter", f"{v.exporter} {v.exporter_version or ''}".strip() if v.exporter else "-"),
        ("opset", str(v.opset)),
        ("inputs", "; ".join(f"{t.name} {t.dtype} {_shape(t.shape)}" for t in v.signature.inputs)),
        ("outputs", "; ".join(f"{t.name} {t.dtype} {_shape(t.shape)}" for t in v.signature.outputs)),
        ("params (trainable)", fmt_int(v.params.trainable) if v.params else "-"),
        ("params (non-trainable)", fmt_int(v.params.non_trainable) if v.params else "-"),
        ("params (ONNX initializers)", fmt_int(v.onnx_params)),
        ("MACs per sample", "-" if v.macs is None else f"{v.macs / 1e9:.3f} G ({v.macs:,})" if v.macs >= 1e6 else f"{v.macs:,}"),
        ("size", f"{fmt_size(v.size_bytes)} ({v.size_bytes:,} bytes)"),
        ("num classes", fmt_int(v.num_classes)),
        ("transform", v.transform.describe() if v.transform else "none recorded"),
        ("input size", "-" if size is None else f"{size[0]}x{size[1]}"),
        ("labels", "-" if v.labels is None else f"{v.labels.name}: {len(v.labels):,} classes, sha256 {v.labels.sha256[:12]}"),
        ("sha256", v.sha256),
        ("created (UTC)", v.created_at),
        ("weights", weights_line(v)),
    ]


def weights_line(v: ModelVersion) -> str:
    """Where the weights came from and their digest, in one line."""
    p = v.provenance
    pre = p.get("pretrained")
    if isinstance(pre, Mapping):
        source = pre.get("source") or pre.get("url") or pre.get("name") or "published checkpoint"
        digest = pre.get("sha256") or p.get("weights_sha256")
        return f"{source}" + (f", sha256 {digest}" if digest else "")
    init = p.get("weights_init")
    seeded = f"{init.get('kind', 'seeded')} (seed {init.get('seed')})" if isinstance(init, Mapping) else None
    source = p.get("weights_source") or seeded or (f"seeded init (seed {p['init_seed']})" if "init_seed" in p else None)
    digest = p.get("weights_sha256")
    if source is None and digest is None:
        return "-"
    return f"{source or 'weights'}" + (f", sha256 {digest}" if digest else "")


# ------------------------------------------------------------------------------------------------ card

def version_card(v: ModelVersion, reports: Sequence[Report], *, link: Link | None = None,
                 variants: Iterable[ModelVersion] = ()) -> str:
    """The whole card (markup). ``variants``: versions converted from this one (fp16/int8), linked."""
    src_ref, src_sha = source_of(v)
    head = [f"<h1>{esc(v.ref)}</h1><p>", badges(v.aliases, "alias"),
            badges(f"{k}={val}" for k, val in v.tags.items()), badges([precision(v)]), "</p>"]
    derived = ""
    if src_ref:
        derived += f'<p>Converted ({esc(precision(v))}) from {ref_link(src_ref, link)}' \
                   f'{" (sha256 " + esc(src_sha[:12]) + ")" if src_sha else ""}.</p>'
    kids = list(variants)
    if kids:
        derived += "<p>Derived variants: " + ", ".join(
            f"{ref_link(k.ref, link)} ({esc(precision(k))})" for k in kids) + ".</p>"
    labels = ""
    if v.labels is not None:
        items = "".join(f"<li>{esc(c)}</li>" for c in v.labels.classes)
        labels = (f'<details class="labels"><summary>labels: {esc(v.labels.name)}, {len(v.labels):,} classes '
                  f'(click to show)</summary><ol start="0">{items}</ol></details>')
    prov = kv_table(flatten(v.provenance), cls="prov") if v.provenance else '<p class="mute">no provenance recorded</p>'
    parts = ["".join(head), derived, "<h2>Facts</h2>", kv_table(facts(v)), labels, "<h2>Provenance</h2>", prov,
             f"<h2>Reports ({len(reports)})</h2>"]
    if not reports:
        parts.append('<p class="mute">no reports attached (zoo parity, zoo bench and zoo convert attach them)</p>')
    for r in reports:
        parts.append(report_section(r))
    return "".join(parts)


def report_section(r: Report) -> str:
    title = f'<h3>{esc(r.kind)} <span class="mute">({esc(r.created_at[:19])} UTC)</span></h3>'
    p = r.payload if isinstance(r.payload, Mapping) else {}
    try:
        if r.kind == "parity":
            body = parity_section(p)
        elif r.kind == "bench":
            body = bench_section([("", p)])
        elif r.kind.endswith("-parity"):
            body = conversion_section(p)
        elif r.kind == "eval":
            body = eval_section(p)
        else:
            body = raw_section(p)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):  # a payload of another shape: show it as data
        body = '<p class="mute">this report has an unexpected shape; its data:</p>' + raw_section(p)
    return f'<section class="report" data-kind="{esc(r.kind)}">{title}{body}</section>'


def raw_section(p: Any) -> str:
    text = json.dumps(p, indent=1, sort_keys=True, default=str)
    if len(text) > 20000:
        text = text[:20000] + "\n... (truncated)"
    return f"<details><summary>data</summary><pre>{esc(text)}</pre></details>"


# ---------------------------------------------------------------------------------------------- parity

def parity_matrix(p: Mapping[str, Any], title: str = "max relative error per pair") -> str:
    pairs = p.get("pairs") or []
    rtol = as_float((p.get("tolerances") or {}).get("rtol")) or 1e-4
    names: list[str] = []
    for fw in p.get("frameworks") or []:
        names.append(str(fw))
    for fw in p.get("frameworks") or []:
        names.append(f"{fw}-onnx")
    for pair in pairs:
        for side in (pair["a"], pair["b"]):
            if str(side) not in names:
                names.append(str(side))
    present = {str(s) for pair in pairs for s in (pair["a"], pair["b"])}
    names = [n for n in names if n in present]
    err: dict[tuple[str, str], float | None] = {}
    for pair in pairs:
        e = as_float(pair.get("max_rel_error"))
        err[(str(pair["a"]), str(pair["b"]))] = err[(str(pair["b"]), str(pair["a"]))] = e
    cells, colours, labels = [], [], []
    for a in names:
        row_c, row_l, row_v = [], [], []
        for b in names:
            e = err.get((a, b))
            row_v.append(e)
            row_c.append("#eef0f4" if a == b else error_colour(e, rtol))
            row_l.append("-" if a == b else ("not compared" if (a, b) not in err else fmt_num(e, 2)))
        cells.append(row_v)
        colours.append(row_c)
        labels.append(row_l)
    return heatmap(names, names, cells, title=title, colours=colours, labels=labels, cell=74,
                   y_label=f"green < rtol/100, light < rtol/10, amber <= rtol, red > rtol ({rtol:g})")


def parity_section(p: Mapping[str, Any]) -> str:
    tol = p.get("tolerances") or {}
    passed = p.get("passed")
    status = '<span class="pass">passed</span>' if passed else '<span class="fail">FAILED</span>' if passed is False else "-"
    summary = kv_table([
        ("result", status), ("architecture", esc(p.get("arch"))), ("frameworks", esc(", ".join(map(str, p.get("frameworks") or [])))),
        ("run", esc(f"{p.get('num_classes')} classes, {p.get('input_size')} px, batch {p.get('batch')}, seed {p.get('seed')}, "
                    f"opset {p.get('opset')}, ONNX Runtime {p.get('provider')}")),
        ("tolerances", esc(f"rtol {fmt_num(as_float(tol.get('rtol')))}, top-1 >= {fmt_num(as_float(tol.get('top1')))}")),
        ("weights", esc(f"{p.get('weights_source', '-')}, sha256 {p.get('weights_sha256', '-')}")),
    ], raw=True)
    rows = []
    for pair in p.get("pairs") or []:
        ok = pair.get("passed")
        rows.append([esc(f"{pair['a']} vs {pair['b']}"), esc(pair.get("kind")), esc(fmt_num(as_float(pair.get("max_abs_error")), 2)),
                     esc(fmt_num(as_float(pair.get("max_rel_error")), 2)), esc(fmt_num(as_float(pair.get("cosine_min")), 8)),
                     esc(fmt_num(as_float(pair.get("top1_agreement")))), esc(fmt_num(as_float(pair.get("top5_agreement")))),
                     '<span class="pass">ok</span>' if ok else f'<span class="fail">FAIL</span> {esc(pair.get("reason") or "")}'])
    table = grid(["pair", "kind", "max abs", "max rel", "cos min", "top-1", "top-5", "status"], rows,
                 numeric=[False, False, True, True, True, True, True, False])
    extra = ""
    div = p.get("divergence")
    if isinstance(div, Mapping) and div:
        extra += (f'<div class="note warn"><b>First diverging layer group:</b> <code>{esc(div.get("group"))}</code> '
                  f'({esc(div.get("a"))} vs {esc(div.get("b"))}, max relative error {esc(fmt_num(as_float(div.get("max_rel_error")), 2))}'
                  f'{", " + esc(div.get("detail")) if div.get("detail") else ""})</div>')
        groups = div.get("groups")  # per-group errors, when a plugin reports every group
        if isinstance(groups, Mapping) and groups:
            extra += bar_chart([(str(k), as_float(val) or 0.0) for k, val in groups.items()], title="divergence per layer group",
                               x_label="max relative error (log)", log=True, limit=as_float(tol.get("rtol")))
    for line in p.get("diagnosis") or []:
        extra += f'<div class="note warn">diagnosis: {esc(line)}</div>'
    for label, message in (p.get("errors") or {}).items():
        extra += f'<div class="note warn">{esc(label)}: {esc(message)}</div>'
    for note in p.get("notes") or []:
        extra += f'<div class="note">{esc(note)}</div>'
    return summary + f"<figure>{parity_matrix(p)}</figure>" + table + extra


# ----------------------------------------------------------------------------------------------- bench

PERCENTILES = (("p50", "p50_ms", 0), ("p90", "p90_ms", 1), ("p99", "p99_ms", 2))


def bench_series(p: Mapping[str, Any], prefix: str = "", colour: int = 0) -> list[Series]:
    """One series per engine and percentile (p50 solid, p90 dashed, p99 dotted), x = batch."""
    engines: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in p.get("results") or []:
        batch = float(row["batch"])
        for key in ("onnxruntime", "native"):
            stats = row.get(key)
            if not isinstance(stats, Mapping):
                continue
            name = "onnxruntime" if key == "onnxruntime" else str(stats.get("framework") or "native")
            for label, field, _ in PERCENTILES:
                value = as_float(stats.get(field))
                if value is not None:
                    engines.setdefault(name, {}).setdefault(label, []).append((batch, value))
    out = []
    for i, (engine, by_pct) in enumerate(engines.items()):
        for label, _, style in PERCENTILES:
            if label in by_pct:
                out.append(Series(f"{prefix}{engine} {label}", by_pct[label], color=colour + i, style=style))
    return out


def bench_section(payloads: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Latency vs batch for one or more bench payloads on one chart (shared axes); and the figures as a table."""
    series: list[Series] = []
    rows = []
    for i, (label, p) in enumerate(payloads):
        prefix = f"{label} " if label else ""
        series += bench_series(p, prefix, colour=2 * i)
        for row in p.get("results") or []:
            for key in ("onnxruntime", "native"):
                s = row.get(key)
                if not isinstance(s, Mapping):
                    continue
                engine = "onnxruntime" if key == "onnxruntime" else str(s.get("framework") or "native")
                rows.append([esc(label or p.get("ref") or "-"), esc(fmt_int(row.get("batch"))), esc(engine),
                             esc(s.get("device") or (p.get("provider") or {}).get("name") or "-"),
                             esc(s.get("precision") or p.get("precision") or "-"),
                             *(esc(fmt_num(as_float(s.get(f)))) for f in ("p50_ms", "p90_ms", "p99_ms", "throughput"))])
    chart = line_chart(series, x_label="batch size (log scale)", y_label="latency ms",
                       title="latency vs batch (p50 solid, p90 dashed, p99 dotted)", log_x=True)
    first = payloads[0][1] if payloads else {}
    machine = first.get("machine") or {}
    about = ""
    if machine:
        shown = ", ".join(f"{k} {plain_text(val)}" for k, val in list(machine.items())[:10])
        about = f'<p class="mute">machine: {esc(shown)}</p>'
    table = grid(["version", "batch", "engine", "device", "precision", "p50 ms", "p90 ms", "p99 ms", "samples/s"], rows,
                 numeric=[False, True, False, False, False, True, True, True, True])
    return f"<figure>{chart}</figure>{table}{about}"


# ---------------------------------------------------------------------------------- conversion, eval

def conversion_section(p: Mapping[str, Any]) -> str:
    return kv_table([(k, p[k]) for k in ("reference", "max_rel_error", "max_abs_error", "top1_agreement", "top5_agreement",
                                         "batch", "seed", "input_size", "provider") if k in p]
                    + [(k, val) for k, val in p.items() if k not in {"reference", "max_rel_error", "max_abs_error", "top1_agreement",
                                                                       "top5_agreement", "batch", "seed", "input_size", "provider"}])


def _pct(x: Any) -> str:
    f = as_float(x)
    if f is None:
        return "-"
    return f"{f * 100:.2f}%" if f <= 1.0 else f"{f:.2f}%"


def eval_section(p: Mapping[str, Any]) -> str:
    found = p.get("data")
    data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    rows = [("top-1 accuracy", _pct(p.get("top1"))), (f"top-{p.get('k', 5)} accuracy", _pct(p.get("top5"))),
            ("images", fmt_num(data.get("images"))), ("images/s", fmt_num(as_float(p.get("images_per_s")))),
            ("data set", plain_text(data.get("path", "-"))), ("data digest", plain_text(data.get("digest", "-"))),
            ("skipped", plain_text(data.get("skipped") or "-"))]
    against = p.get("against")
    if isinstance(against, Mapping):
        rows += [("against", plain_text(against.get("ref", "-"))), ("against top-1", _pct(against.get("top1"))),
                 ("top-1 delta", f"{(as_float(against.get('top1_delta')) or 0) * 100:+.2f} points"),
                 ("top-1 agreement", _pct(against.get("top1_agreement")))]
    out = kv_table(rows)
    per_class = [c for c in p.get("per_class") or [] if isinstance(c, Mapping)]
    if per_class:
        bars = [(str(c.get("class")), (as_float(c.get("top1")) or 0.0) * 100) for c in per_class]
        shown = bars if len(bars) <= 40 else sorted(bars, key=lambda b: b[1])[:40]
        out += "<figure>" + bar_chart(shown, title="per-class accuracy" + ("" if len(bars) <= 40 else " (40 lowest)"),
                                      x_label="accuracy %") + "</figure>"
    matrix = p.get("confusion")
    if isinstance(matrix, Mapping) and isinstance(matrix.get("matrix"), list) and matrix["matrix"]:
        names = [str(c) for c in matrix.get("labels") or []]
        cells = [row[:len(matrix["matrix"])] for row in matrix["matrix"]]  # the square part: "other" is a column only
        out += confusion(cells, names[:len(cells)])
    return out


def confusion(matrix: list[list[Any]], classes: list[str]) -> str:
    n = len(matrix)
    names = classes if len(classes) == n else [str(i) for i in range(n)]
    keep = list(range(n))
    note = ""
    if n > MAX_CONFUSION:
        off = [sum(float(x) for j, x in enumerate(matrix[i]) if j != i) + sum(float(matrix[j][i]) for j in range(n) if j != i)
               for i in range(n)]
        keep = sorted(sorted(range(n), key=lambda i: -off[i])[:MAX_CONFUSION])
        note = f'<p class="mute">{n:,} classes: the {MAX_CONFUSION} most confused are drawn; the data holds all.</p>'
    values = [[float(matrix[i][j]) for j in keep] for i in keep]
    top = max((x for row in values for x in row), default=1.0)
    cell = 64 if len(keep) <= 8 else max(12, 560 // len(keep))
    labels = [[fmt_num(int(x) if float(x).is_integer() else x) for x in row] for row in values]
    colours = [[count_colour(x, top) for x in row] for row in values]
    return note + "<figure>" + heatmap([names[i] for i in keep], [names[i] for i in keep], values, title="confusion matrix",
                                       colours=colours, labels=labels, cell=cell,
                                       x_label="columns: predicted class", y_label="rows: true class") + "</figure>"


__all__ = ["Link", "bench_section", "bench_series", "confusion", "conversion_section", "eval_section", "facts", "parity_matrix",
           "parity_section", "precision", "raw_section", "ref_link", "report_section", "source_of", "version_card", "weights_line"]
