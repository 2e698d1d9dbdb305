"""The UI's pages over a registry: models (search, filters, paging), a model, a version, a comparison.

Invariant: pages only read (``list``, ``resolve``, ``reports`` and
``alias_history``); their cost is the page shown, not the store: the models page filters an in-memory
:class:`Index` of version records (built once, refreshed by the server) and renders one page of rows.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidInput
from ..records import AliasEvent, ModelVersion, Report
from . import card
from ._html import as_float, badges, esc, fmt_size, grid, href, plain_text
from .svg import Series, bar_chart, line_chart

MODELS_PER_PAGE = 50
VERSIONS_PER_PAGE = 100
MAX_COMPARE = 8
TIMELINE_POINTS = 200


def link(name: str, version: int) -> str:
    return href("v", name, str(version))


@dataclass
class Index:
    """Every version's record, grouped for the pages; ``build_s`` says what reading them took.

    Pages that list (models, a model's versions, derived variants) read it; a version's card and a
    comparison resolve their versions and reports live.
    """

    versions: list[ModelVersion]
    built_at: float = field(default_factory=time.time)
    build_s: float = 0.0
    by_model: dict[str, list[ModelVersion]] = field(default_factory=dict)
    variants: dict[str, list[ModelVersion]] = field(default_factory=dict)  # source sha256 -> converted versions

    def __post_init__(self) -> None:
        for v in self.versions:
            self.by_model.setdefault(v.name, []).append(v)
            _, sha = card.source_of(v)
            if sha:
                self.variants.setdefault(sha, []).append(v)

    @classmethod
    def build(cls, registry: Any) -> "Index":
        start = time.perf_counter()
        versions = registry.list()
        return cls(versions, build_s=time.perf_counter() - start)


@dataclass(frozen=True)
class Filters:
    q: str = ""
    arch: str = ""
    framework: str = ""
    precision: str = ""
    tag: str = ""
    alias: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "Filters":
        return cls(**{f.name: query.get(f.name, "").strip()[:200] for f in dataclasses.fields(cls)})

    def keep(self, v: ModelVersion) -> bool:
        if self.q and self.q.lower() not in v.name:
            return False
        if self.arch and (v.arch or "") != self.arch:
            return False
        if self.framework and (v.framework or "external") != self.framework:
            return False
        if self.precision and card.precision(v) != self.precision:
            return False
        if self.tag:
            key, eq, value = self.tag.partition("=")
            if key not in v.tags or (eq and v.tags[key] != value):
                return False
        return not self.alias or self.alias in v.aliases

    def query(self) -> dict[str, str]:
        return {k: val for k, val in dataclasses.asdict(self).items() if val}


def _clock(index: Index) -> str:
    return datetime.fromtimestamp(index.built_at).strftime("%H:%M:%S")


def _page_number(query: Mapping[str, str]) -> int:
    raw = query.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"Expected a page number >= 1. Received: {raw[:40]!r}", hint="e.g. ?page=2")
    return int(raw)


def _pager(page: int, pages: int, make: Callable[[int], str]) -> str:
    if pages <= 1:
        return ""
    prev = f'<a href="{make(page - 1)}" rel="prev">previous</a>' if page > 1 else "<span>previous</span>"
    nxt = f'<a href="{make(page + 1)}" rel="next">next</a>' if page < pages else "<span>next</span>"
    return f'<div class="pager">{prev}<span>page {page} of {pages:,}</span>{nxt}</div>'


# ---------------------------------------------------------------------------------------------- models

def models_page(index: Index, query: Mapping[str, str]) -> str:
    f = Filters.from_query(query)
    page = _page_number(query)
    sort = query.get("sort", "name")
    groups: dict[str, list[ModelVersion]] = {}
    for name, versions in index.by_model.items():
        kept = [v for v in versions if f.keep(v)] if f.query() else versions
        if kept:
            groups[name] = kept
    order = sorted(groups)
    if sort == "versions":
        order.sort(key=lambda n: -len(groups[n]))
    elif sort == "updated":
        order.sort(key=lambda n: max(v.created_at for v in groups[n]), reverse=True)
    matched = sum(len(g) for g in groups.values())
    pages = max(1, -(-len(order) // MODELS_PER_PAGE))
    page = min(page, pages)
    rows = []
    for name in order[(page - 1) * MODELS_PER_PAGE: page * MODELS_PER_PAGE]:
        vs = groups[name]
        latest = vs[-1]
        aliases = [f"{a}→{v.version}" for v in index.by_model[name] for a in v.aliases]
        rows.append([
            f'<a href="{href("m", name)}">{esc(name)}</a>', f"{len(vs):,} / {len(index.by_model[name]):,}",
            f'<a href="{link(name, latest.version)}">{esc(latest.ref)}</a>',
            esc(", ".join(sorted({v.arch or "-" for v in vs}))), esc(", ".join(sorted({v.framework or "external" for v in vs}))),
            esc(", ".join(sorted({card.precision(v) for v in vs}))), badges(aliases, "alias"),
            esc(max(v.created_at for v in vs)[:19]),
        ])
    inputs = "".join(
        f'<label>{esc(label)}<input name="{key}" value="{esc(getattr(f, key))}" placeholder="{esc(hint)}"></label>'
        for key, label, hint in (("q", "name contains", "resnet"), ("arch", "architecture", "resnet50"),
                                 ("framework", "framework", "torch"), ("precision", "precision", "fp16"),
                                 ("tag", "tag", "team=vision"), ("alias", "alias", "prod")))
    form = (f'<form class="filters" method="get" action="/">{inputs}<input type="hidden" name="sort" value="{esc(sort)}">'
            '<button type="submit">filter</button> <a href="/">clear</a></form>')
    sorts = " · ".join(f'<a href="{href("", **f.query(), sort=s)}">{label}</a>' if s != sort else f"<b>{label}</b>"
                       for s, label in (("name", "name"), ("versions", "most versions"), ("updated", "recently updated")))
    head = (f"<h1>Models</h1>{form}<p><b>{len(order):,}</b> models, <b>{matched:,}</b> of {len(index.versions):,} versions match. "
            f'Sort: {sorts}. <span class="mute">Index of {len(index.versions):,} versions read in {index.build_s * 1000:.0f} ms '
            f'at {_clock(index)}.</span></p>')

    def make(n: int) -> str:
        return href("", **f.query(), sort=sort if sort != "name" else None, page=n)

    table = grid(["model", "versions (match / all)", "latest", "architecture", "framework", "precision", "aliases", "updated (UTC)"],
                 rows, numeric=[False, True], cls="models") if rows else '<p class="mute">no versions match these filters</p>'
    return head + _pager(page, pages, make) + table + _pager(page, pages, make)


# ----------------------------------------------------------------------------------------------- model

def _timeline(versions: Sequence[ModelVersion]) -> str:
    stamps = []
    for v in versions:
        try:
            stamps.append(datetime.fromisoformat(v.created_at.replace("Z", "+00:00")).timestamp())
        except ValueError:
            continue
    if not stamps:
        return ""
    stamps.sort()
    first = stamps[0]
    idx = list(range(len(stamps)))
    if len(idx) > TIMELINE_POINTS:
        step = len(idx) / TIMELINE_POINTS
        idx = sorted({int(i * step) for i in range(TIMELINE_POINTS)} | {len(stamps) - 1})
    span = stamps[-1] - first
    unit, seconds = next((u, s) for u, s, upto in (("seconds", 1, 120), ("minutes", 60, 7200), ("hours", 3600, 172800),
                                                     ("days", 86400, float("inf"))) if span < upto)
    points = [((stamps[i] - first) / seconds, float(i + 1)) for i in idx]
    day = datetime.fromtimestamp(first, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return line_chart([Series("versions", points)], x_label=f"{unit} since the first version ({day} UTC)", y_label="versions",
                      title=f"versions over time ({len(stamps):,})")


def _history_rows(events: Sequence[AliasEvent]) -> list[list[str]]:
    """The newest 500 moves, newest first: when, alias, what, from, to, who, why, the gate's verdict."""
    def gate(e: AliasEvent) -> str:
        return "-" if e.policy is None else "met" if e.policy.get("passed") else "overridden" if e.forced else "not met"

    return [[esc(e.at[:19].replace("T", " ")), esc(e.alias), esc(e.action), esc(plain_text(e.from_version)),
             esc(plain_text(e.to_version)), esc(e.actor), esc(e.reason or "-"), esc(gate(e))]
            for e in list(reversed(events))[:500]]


def model_page(registry: Any, index: Index, name: str, query: Mapping[str, str]) -> str:
    from .._names import validate_name

    validate_name(name)
    versions = index.by_model.get(name, [])  # the index: O(page) per request, whatever the model's size
    if not versions:
        from ..errors import NotFound

        raise NotFound(f"No model named {name!r} in this store (as of {_clock(index)})",
                       hint="the models page lists them; a model registered since appears within seconds")
    page = _page_number(query)
    newest = list(reversed(versions))
    pages = max(1, -(-len(newest) // VERSIONS_PER_PAGE))
    page = min(page, pages)
    rows = []
    for v in newest[(page - 1) * VERSIONS_PER_PAGE: page * VERSIONS_PER_PAGE]:
        src, _ = card.source_of(v)
        rows.append([f'<input type="checkbox" name="ref" value="{esc(v.ref)}" aria-label="compare {esc(v.ref)}">',
                     f'<a href="{link(v.name, v.version)}">{esc(v.version)}</a>', esc(v.created_at[:19]), esc(v.framework or "external"),
                     esc(v.arch or "-"), esc(card.precision(v)) + (f" from {card.ref_link(src, link)}" if src else ""),
                     esc(fmt_size(v.size_bytes)), f'<code>{esc(v.sha256[:12])}</code>', badges(v.aliases, "alias"),
                     badges(f"{k}={val}" for k, val in v.tags.items())])
    aliases = [(a, v) for v in versions for a in v.aliases]
    alias_html = grid(["alias", "points at", "version created (UTC)"],
                      [[esc(a), f'<a href="{link(v.name, v.version)}">{esc(v.ref)}</a>', esc(v.created_at[:19])]
                       for a, v in sorted(aliases, key=lambda x: x[0])]) if aliases else '<p class="mute">no aliases</p>'
    hrows = _history_rows(registry.alias_history(name)) if versions else []
    history_html = "<h2>Alias history</h2>" + (
        grid(["at (UTC)", "alias", "action", "from", "to", "who", "reason", "gate"], hrows) if hrows
        else '<p class="mute">no alias moves recorded</p>')
    shas = {v.sha256 for v in versions}
    derived = [v for s in shas for v in index.variants.get(s, [])]
    derived += [v for v in versions if card.source_of(v)[0] and v not in derived]
    variants_html = ""
    if derived:
        variants_html = "<h2>Derived variants</h2>" + grid(["variant", "precision", "from"], [
            [f'<a href="{link(v.name, v.version)}">{esc(v.ref)}</a>', esc(card.precision(v)),
             card.ref_link(card.source_of(v)[0] or "-", link)] for v in sorted(derived, key=lambda x: (x.name, x.version))])

    def make(n: int) -> str:
        return href("m", name, page=n)

    return (f"<h1>{esc(name)}</h1><p>{len(versions):,} versions (as of {_clock(index)}).</p><figure>{_timeline(versions)}</figure>"
            f"<h2>Aliases</h2>{alias_html}{history_html}{variants_html}<h2>Versions</h2>"
            f'<form method="get" action="/compare">{_pager(page, pages, make)}'
            + grid(["", "version", "created (UTC)", "framework", "arch", "precision", "size", "sha256", "aliases", "tags"], rows,
                   numeric=[False, True]) + '<button type="submit">compare selected</button></form>' + _pager(page, pages, make))


def version_page(registry: Any, index: Index, name: str, number: str) -> str:
    from .._names import validate_name

    validate_name(name)
    if not number.isdigit():
        raise InvalidInput(f"Expected a version number. Received: {number[:40]!r}", hint=f"e.g. /v/{name}/1")
    v = registry.resolve(f"{name}@{int(number)}")
    variants = index.variants.get(v.sha256, [])
    return card.version_card(v, registry.reports(v), link=link, variants=variants) + \
        f'<p><a href="{href("m", name)}">all versions of {esc(name)}</a></p>'


# --------------------------------------------------------------------------------------------- compare

def compare_body(versions: Sequence[ModelVersion], reports: Sequence[Sequence[Report]], *, link: card.Link | None) -> str:
    """Side by side: facts (differing rows highlighted and marked ≠), then reports of each kind on shared axes."""
    heads = [card.ref_link(v.ref, link) for v in versions]
    table_rows = []
    all_facts = [dict(card.facts(v)) for v in versions]
    extra = [("aliases", [", ".join(v.aliases) or "-" for v in versions]),
             ("tags", [", ".join(f"{k}={val}" for k, val in v.tags.items()) or "-" for v in versions]),
             ("reports", [", ".join(r.kind for r in rs) or "-" for rs in reports])]
    differing = 0
    for key, values in [(k, [f[k] for f in all_facts]) for k in all_facts[0]] + extra:
        diff = len(set(values)) > 1
        differing += diff
        mark = ' <span class="mark" title="differs">≠</span>' if diff else ""
        table_rows.append(f'<tr{" class=diff" if diff else ""}><th>{esc(key)}{mark}</th>'
                          + "".join(f"<td>{esc(val)}</td>" for val in values) + "</tr>")
    facts_html = (f'<p>{differing} of {len(table_rows)} facts differ (highlighted, marked ≠).</p>'
                  '<table class="facts compare"><thead><tr><th>fact</th>' + "".join(f"<th>{h}</th>" for h in heads)
                  + "</tr></thead><tbody>" + "".join(table_rows) + "</tbody></table>")
    parts = ["<h2>Facts</h2>", facts_html]

    def latest(rs: Sequence[Report], want: Callable[[str], bool]) -> Report | None:
        found = [r for r in rs if want(r.kind)]
        return found[-1] if found else None

    parity = [(v, latest(rs, lambda k: k == "parity")) for v, rs in zip(versions, reports, strict=True)]
    if any(r for _, r in parity):
        parts.append("<section data-kind=parity><h2>Parity (same colour scale: error relative to each run's rtol)</h2><div class=cols>")
        parts += [f"<figure>{card.parity_matrix(r.payload, title=f'{v.ref}: max relative error')}</figure>"
                  for v, r in parity if r is not None]
        parts.append("</div></section>")
    bench = [(v.ref, r.payload) for v, rs in zip(versions, reports, strict=True) if (r := latest(rs, lambda k: k == "bench"))]
    if bench:
        parts += ["<section data-kind=bench><h2>Latency (one chart, shared axes)</h2>", card.bench_section(bench), "</section>"]
    conv = [(v.ref, r) for v, rs in zip(versions, reports, strict=True) if (r := latest(rs, lambda k: k.endswith("-parity")))]
    if conv:
        bars = [(f"{ref} ({r.kind})", as_float(r.payload.get("max_rel_error")) or 0.0) for ref, r in conv]
        parts += ["<section data-kind=conversion><h2>Error vs the fp32 source (shared axis)</h2>",
                  "<figure>" + bar_chart(bars, title="max relative error vs source", x_label="max relative error (log)", log=True)
                  + "</figure></section>"]
    evals = [(v.ref, r.payload) for v, rs in zip(versions, reports, strict=True) if (r := latest(rs, lambda k: k == "eval"))]
    if evals:
        base = as_float(evals[0][1].get("top1", evals[0][1].get("top1_accuracy")))
        rows = []
        for ref, p in evals:
            t1 = as_float(p.get("top1", p.get("top1_accuracy")))
            delta = "-" if t1 is None or base is None else f"{(t1 - base) * 100:+.2f} pt"
            rows.append([esc(ref), esc(card._pct(t1)), esc(card._pct(p.get("top5", p.get("top5_accuracy")))), esc(delta)])
        parts += ["<section data-kind=eval><h2>Accuracy</h2>",
                  grid(["version", "top-1", "top-5", "top-1 vs first"], rows, numeric=[False, True, True, True])]
        parts += [f"<h3>{esc(ref)}</h3>" + card.eval_section(p) for ref, p in evals] + ["</section>"]
    return "".join(parts)


def compare_page(registry: Any, refs: Sequence[str]) -> str:
    refs = [r for r in refs if r]
    if not 2 <= len(refs) <= MAX_COMPARE:
        raise InvalidInput(f"Expected 2 to {MAX_COMPARE} versions to compare. Received: {len(refs)}",
                           hint="tick versions on a model page, or /compare?ref=a@1&ref=a@2")
    versions = [registry.resolve(r) for r in refs]
    reports = [registry.reports(v) for v in versions]
    return f"<h1>Compare {esc(', '.join(v.ref for v in versions))}</h1>" + compare_body(versions, reports, link=link)


__all__ = ["Filters", "Index", "compare_body", "compare_page", "model_page", "models_page", "version_page"]
