"""Gated aliases: a policy of requirements a version's reports must meet before an alias may point at it.

A policy is a list of requirement strings, kept in the store per (model, alias). Each is one of:

- ``KIND`` — the candidate's newest report of that kind passed: ``parity``, ``fp16-parity``, ``int8-parity``.
- ``METRIC OP VALUE`` — an absolute bound: ``eval.top1 >= 0.75`` (or ``75%``), ``bench.p50 <= 12``.
- ``METRIC OP ALIAS [+|- NUMBER[%]]`` or ``METRIC OP NUMBER * ALIAS`` — relative to the version the alias
  points at now (``ALIAS`` is the alias's own name or ``current``): ``eval.top1 >= prod - 0.5%``,
  ``bench.p50 <= 1.1 * prod``. A percent sign divides by 100 (``0.5%`` is 0.005: half a point of accuracy).

Metrics: ``eval.top1``, ``eval.top5`` (fractions, from ``zoo eval``; a relative bound compares the two
versions on the same data set, by its digest), ``bench.p50``, ``bench.p90``, ``bench.p99`` (ms) and
``bench.throughput`` (images/s), from ``zoo bench`` at the smallest batch size both versions were timed at.
The invariant: :func:`check` reads reports only, decides nothing from anything else, and names every unmet
requirement with the figures it compared; a relative requirement with no current version is met.
"""
from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput
from .records import ModelVersion, Report

__all__ = ["BENCH_ROWS", "BENCH_SIDE", "GateResult", "Policy", "Requirement", "check", "parse_requirement", "parse_search"]

METRICS = {
    "eval.top1": ("eval", "top1"), "eval.top5": ("eval", "top5"),
    "bench.p50": ("bench", "p50_ms"), "bench.p90": ("bench", "p90_ms"), "bench.p99": ("bench", "p99_ms"),
    "bench.throughput": ("bench", "throughput"),
}
PASS_KINDS = ("parity", "fp16-parity", "int8-parity")
# Where a figure lives in its report: eval reports hold it at the top (``payload[field]``); bench reports in the row
# of ``payload[BENCH_ROWS]`` for a batch size, under ``BENCH_SIDE`` (the store's search reads the same places).
BENCH_ROWS, BENCH_SIDE = "results", "onnxruntime"
OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
MAX_REQUIREMENTS = 32

_NUMBER = r"[0-9]+(?:\.[0-9]+)?%?"
_COMPARE = re.compile(r"^(?P<metric>[a-z0-9]+\.[a-z0-9]+)\s*(?P<op>>=|<=|>|<)\s*(?P<rhs>.+)$")
_ABSOLUTE = re.compile(rf"^(?P<n>{_NUMBER})$")
_OFFSET = re.compile(rf"^(?P<ref>[A-Za-z][A-Za-z0-9_.-]*)\s*(?:(?P<sign>[+-])\s*(?P<n>{_NUMBER}))?$")
_FACTOR = re.compile(rf"^(?P<n>{_NUMBER})\s*\*\s*(?P<ref>[A-Za-z][A-Za-z0-9_.-]*)$")
_SYNTAX = ("parity | eval.top1 >= 0.75 | eval.top1 >= prod - 0.5% | bench.p50 <= 1.1 * prod "
           f"(metrics: {', '.join(METRICS)}; kinds: {', '.join(PASS_KINDS)})")


def _number(text: str) -> float:
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


@dataclass(frozen=True)
class Requirement:
    """One parsed requirement; ``text`` is what the user wrote (normalised spacing)."""

    text: str
    kind: str  # a report kind that must have passed, or the metric's report kind
    metric: str | None = None  # "eval.top1"; None for a pass/fail kind
    op: str | None = None
    mode: str = "pass"  # pass | absolute | offset | factor
    value: float = 0.0

    def bound(self, current: float | None) -> float | None:
        """The figure the candidate is compared with (None: nothing to compare, the requirement is met)."""
        if self.mode == "absolute":
            return self.value
        if current is None:
            return None
        return current + self.value if self.mode == "offset" else current * self.value


def parse_requirement(text: str, alias: str) -> Requirement:
    """``text`` as a :class:`Requirement` of the policy on ``alias``; InvalidInput names the part that is wrong."""
    if not isinstance(text, str) or not text.strip() or len(text) > 200:
        raise InvalidInput(f"Expected a requirement of at most 200 characters. Received: {text!r}", hint=f"e.g. {_SYNTAX}")
    clean = " ".join(text.split())
    if clean in PASS_KINDS:
        return Requirement(clean, kind=clean)
    match = _COMPARE.match(clean)
    if not match:
        raise InvalidInput(f"Expected a requirement like {_SYNTAX}. Received: {text!r}", hint="quote it on the command line")
    metric, op, rhs = match["metric"], match["op"], match["rhs"].strip()
    if metric not in METRICS:
        raise InvalidInput(f"Expected a metric among {', '.join(METRICS)}. Received: {metric!r} in {text!r}",
                           hint="e.g. eval.top1 >= prod - 0.5%")
    kind = METRICS[metric][0]
    if m := _ABSOLUTE.match(rhs):
        return Requirement(clean, kind, metric, op, "absolute", _number(m["n"]))
    for pattern, mode in ((_OFFSET, "offset"), (_FACTOR, "factor")):
        if (m := pattern.match(rhs)) is not None:
            if m["ref"] not in (alias, "current"):
                raise InvalidInput(f"Expected a relative bound on {alias!r} (or 'current'), the version the alias points "
                                   f"at. Received: {m['ref']!r} in {text!r}", hint=f"e.g. {metric} {op} {alias} - 0.5%")
            if mode == "factor":
                return Requirement(clean, kind, metric, op, mode, _number(m["n"]))
            n = _number(m["n"]) if m["n"] else 0.0
            return Requirement(clean, kind, metric, op, mode, -n if m["sign"] == "-" else n)
    raise InvalidInput(f"Expected the right-hand side as NUMBER[%], {alias} [+|- NUMBER[%]] or NUMBER * {alias}. "
                       f"Received: {rhs!r} in {text!r}", hint=f"e.g. {_SYNTAX}")


def parse_search(text: str) -> Requirement:
    """A requirement a search selects versions by (``zoo list --require``): a pass/fail kind or an absolute bound,
    read from the version's newest report of the kind, as a policy reads it."""
    match = _COMPARE.match(" ".join(text.split())) if isinstance(text, str) else None
    if match is not None and match["metric"] in METRICS and not _ABSOLUTE.match(match["rhs"].strip()):
        raise InvalidInput(f"Expected an absolute bound (NUMBER[%]) in a search. Received: {match['rhs'].strip()!r} in "
                           f"{text!r}", hint="e.g. --require parity --require 'eval.top1 >= 75%'; bounds relative to "
                                             "another version are for `zoo policy`")
    return parse_requirement(text, "current")


@dataclass(frozen=True)
class Policy:
    """The requirements on one alias of one model (stored as their texts)."""

    name: str
    alias: str
    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, name: str, alias: str, texts: Sequence[str]) -> "Policy":
        texts = list(texts)
        if len(texts) > MAX_REQUIREMENTS:
            raise InvalidInput(f"Expected at most {MAX_REQUIREMENTS} requirements. Received: {len(texts)}")
        parsed = tuple(parse_requirement(t, alias) for t in texts)
        return cls(name, alias, tuple({r.text: r for r in parsed}.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "alias": self.alias, "require": [r.text for r in self.requirements]}

    @property
    def kinds(self) -> list[str]:
        """The report kinds the policy reads (what ``zoo promote`` must produce)."""
        return sorted({r.kind for r in self.requirements})


@dataclass(frozen=True)
class GateResult:
    """Each requirement with whether it was met and the figures compared (``why`` says it in words)."""

    candidate: str
    current: str | None
    checks: tuple[dict[str, Any], ...]

    @property
    def passed(self) -> bool:
        return all(c["met"] for c in self.checks)

    @property
    def unmet(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["met"]]

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "current": self.current, "passed": self.passed, "checks": list(self.checks)}


Reports = Callable[[ModelVersion, str], Sequence[Report]]  # (version, kind) -> its reports, oldest first


def _bench_figure(report: Report, field: str, batch: int) -> float | None:
    for row in report.payload.get(BENCH_ROWS, ()):
        if row.get("batch") == batch:
            value = (row.get(BENCH_SIDE) or {}).get(field)
            return float(value) if isinstance(value, (int, float)) else None
    return None


def _batches(report: Report) -> set[int]:
    return {row["batch"] for row in report.payload.get(BENCH_ROWS, ()) if isinstance(row.get("batch"), int)}


def _figures(req: Requirement, mine: Sequence[Report], theirs: Sequence[Report] | None) -> tuple[float | None, float | None, str]:
    """(candidate's figure, current's figure, on what): the newest comparable pair of reports."""
    field = METRICS[req.metric or ""][1]
    if req.kind == "eval":
        if theirs is None:
            return (float(mine[-1].payload[field]) if mine else None), None, "newest eval"
        digests = {r.payload["data"]["digest"]: r for r in theirs}
        for report in reversed(mine):
            if (other := digests.get(report.payload["data"]["digest"])) is not None:
                return float(report.payload[field]), float(other.payload[field]), f"data {report.payload['data']['digest'][:12]}"
        return None, None, "no eval of both versions on one data set"
    if not mine:
        return None, None, "no bench report"
    if theirs is None:
        batch = min(_batches(mine[-1]), default=1)
        return _bench_figure(mine[-1], field, batch), None, f"batch {batch}"
    for report in reversed(mine):
        for other in reversed(theirs):
            common = _batches(report) & _batches(other)
            if common:
                batch = min(common)
                return _bench_figure(report, field, batch), _bench_figure(other, field, batch), f"batch {batch}"
    return None, None, "no bench of both versions at one batch size"


def _check_one(req: Requirement, candidate: ModelVersion, current: ModelVersion | None, reports: Reports) -> dict[str, Any]:
    out: dict[str, Any] = {"requirement": req.text}
    if req.mode == "pass":
        found = reports(candidate, req.kind)
        passed = bool(found) and found[-1].payload.get("passed") is True
        why = (f"no {req.kind} report" if not found else "passed" if passed else f"the newest {req.kind} report failed")
        return {**out, "met": passed, "why": why}
    relative = req.mode != "absolute" and current is not None
    mine, theirs = reports(candidate, req.kind), (reports(current, req.kind) if relative and current else None)
    if req.mode != "absolute" and current is None:
        return {**out, "met": True, "why": "no current version to compare with"}
    value, other, basis = _figures(req, mine, theirs)
    bound = req.bound(other)
    out.update(value=value, current_value=other, bound=bound, basis=basis)
    if value is None or bound is None or not math.isfinite(value):
        return {**out, "met": False, "why": f"{req.metric}: {basis}" if value is None else f"{req.metric}: nothing to compare"}
    met = OPS[req.op or ">="](value, bound)
    return {**out, "met": met, "why": f"{req.metric} {value:.6g} {req.op} {bound:.6g}" + ("" if met else ": not met") + f" ({basis})"}


def check(policy: Policy, candidate: ModelVersion, current: ModelVersion | None, reports: Reports) -> GateResult:
    """Every requirement of ``policy`` against ``candidate``'s reports (and ``current``'s, for relative bounds)."""
    same = current is not None and (current.name, current.version) == (candidate.name, candidate.version)
    checks = tuple(_check_one(r, candidate, None if same else current, reports) for r in policy.requirements)
    return GateResult(candidate.ref, current.ref if current else None, checks)
