"""Gated alias moves and webhook delivery, for :class:`zoo._registry.Registry` (its only caller).

A gated move is decided inside the write transaction that makes it, so the verdict is about the
reports and the alias as they are at that moment; a refusal commits only its ``gate.refused`` event.
Delivery claims due rows of the outbox (leasing them so a concurrent worker skips them), POSTs outside
any transaction, then records each result: at-least-once, never lost by a crash at any point.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ._names import received, validate_alias, validate_name
from ._resolve import resolve
from .errors import GateRefused, InvalidInput, NotFound
from .gates import GateResult, Policy, check

if TYPE_CHECKING:
    from ._registry import Registry
    from .records import ModelVersion
    from .store import MetadataTxn

LEASE_S = 60  # a claimed delivery is retried by another worker only after this long
INLINE_BUDGET_S = 5.0  # how long a write may spend delivering its own events before returning


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")


def gate(txn: "MetadataTxn", version: "ModelVersion", alias: str) -> GateResult | None:
    """The verdict of ``alias``'s policy on moving it to ``version`` (None: the alias has no policy)."""
    require = txn.policy(version.name, alias)
    if not require:
        return None
    policy = Policy.parse(version.name, alias, require)
    target = txn.alias_target(version.name, alias)
    current = txn.get(version.name, target) if target is not None else None
    return check(policy, version, current, lambda v, kind: txn.reports(v.name, v.version, kind))


def refusal(result: GateResult, alias: str) -> GateRefused:
    lines = "; ".join(f"{c['requirement']}: {c['why']}" for c in result.unmet)
    return GateRefused(f"Expected {result.candidate} to meet the policy on alias {alias!r}. Received: "
                       f"{len(result.unmet)} unmet requirement(s): {lines}",
                       hint=f"attach the missing reports (`zoo promote {result.candidate} {alias}` runs them), or override "
                            f"with --force --reason TEXT (recorded in the alias history)")


def move_alias(registry: "Registry", ref: str, alias: str, *, reason: str | None, force: bool) -> "ModelVersion":
    """Registry.set_alias: check the gate, move (or refuse and log the refusal), in one transaction."""
    if force and not reason:
        raise InvalidInput("Expected a reason with --force. Received: none",
                           hint="e.g. --force --reason 'hotfix: prod model crashes on grayscale input'")
    parsed = registry._parse(ref)
    refused: GateResult | None = None
    with registry._write() as txn:
        version = resolve(txn, parsed, location=registry.location)
        result = gate(txn, version, alias)
        if result is not None and not result.passed and not force:
            txn.add_event("gate.refused", f"{version.name}@{alias}", {"name": version.name, "alias": alias, **result.to_dict()})
            refused = result
        else:
            txn.set_alias(version.name, alias, version.version, reason=reason,
                          forced=bool(result is not None and not result.passed and force),
                          policy=None if result is None else result.to_dict())
            return txn.get(version.name, version.version) or version
    assert refused is not None
    raise refusal(refused, alias)


def set_policy(registry: "Registry", name: str, alias: str, require: Sequence[str] | None) -> Policy | None:
    validate_name(name)
    validate_alias(alias)
    if require is not None and (isinstance(require, str) or not isinstance(require, Sequence)):
        raise InvalidInput(f"Expected the requirements as a list of strings. Received: {received(require)}",
                           hint="e.g. ['parity', 'eval.top1 >= prod - 0.5%']")
    policy = Policy.parse(name, alias, require) if require else None
    with registry._write() as txn:
        if not txn.versions(name):
            raise NotFound(f"No model named {name!r} in {registry.location}", hint="register a version first: `zoo list` shows the models")
        txn.set_policy(name, alias, [r.text for r in policy.requirements] if policy else None)
    return policy


def deliver(registry: "Registry", *, events: list[int] | None = None, budget_s: float | None = None) -> dict[str, int]:
    """Send due webhook deliveries (of ``events`` only, if given) until none is due or ``budget_s`` is spent:
    counts of ``delivered`` and ``failed`` attempts."""
    from .events import MAX_ATTEMPTS, backoff_s, post

    counts = {"delivered": 0, "failed": 0}
    deadline = None if budget_s is None else time.monotonic() + budget_s
    while deadline is None or time.monotonic() < deadline:
        now = _now()
        with registry._write() as txn:
            due = txn.claim_deliveries(_iso(now), _iso(now + timedelta(seconds=LEASE_S)), events=events, limit=20)
        if not due:
            break
        results: list[tuple[int, int, str | None, int]] = []
        for event_id, hook, url, secret, event, attempts in due:
            timeout = 5.0 if deadline is None else max(0.1, min(5.0, deadline - time.monotonic()))
            error = post(url, event, secret, timeout=timeout)
            results.append((event_id, hook, error, attempts + 1))
            counts["failed" if error else "delivered"] += 1
        with registry._write() as txn:
            for event_id, hook, error, tried in results:
                wait = backoff_s(tried) if tried < MAX_ATTEMPTS else 10 * 365 * 86400  # given up: kept, never due
                txn.delivery_result(event_id, hook, at=_iso(_now()), error=error,
                                    next_at=_iso(_now() + timedelta(seconds=wait)))
        if events is not None:
            break  # inline delivery: one attempt each; what failed waits for its back-off
    return counts


def check_webhook_url(url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2000 or not url.isprintable():
        raise InvalidInput(f"Expected a webhook URL starting with http:// or https://. Received: {received(url)}",
                           hint="e.g. https://ci.example.com/zoo-events")
    return url


def promote(registry: "Registry", ref: str, alias: str, *, data: str | None = None, reason: str | None = None,
            min_time: float = 2.0, progress: Any = None) -> tuple["ModelVersion", list[str]]:
    """Produce the reports ``alias``'s policy reads that ``ref`` lacks (eval on ``data`` against the current
    version, an interleaved bench of both), then move the alias through its gate. Returns the version and
    what was run; GateRefused when the candidate still falls short."""
    validate_alias(alias)
    candidate = registry.resolve(ref)
    with registry._read() as txn:
        require = txn.policy(candidate.name, alias)
        target = txn.alias_target(candidate.name, alias)
        current = txn.get(candidate.name, target) if target is not None else None
        result = gate(txn, candidate, alias)
    ran: list[str] = []
    missing = {c["requirement"] for c in result.unmet} if result is not None else set()
    policy = Policy.parse(candidate.name, alias, require or [])
    kinds = {r.kind for r in policy.requirements if r.text in missing}
    same = current is not None and current.version == candidate.version
    if "eval" in kinds:
        if data is None:
            raise InvalidInput(f"Expected --data DIR: the policy on {candidate.name}@{alias} reads eval figures and "
                               f"{candidate.ref} has none to compare. Received: no data set",
                               hint=f"zoo promote {ref} {alias} --data val/ (a folder of class folders, or a CSV)")
        from .evaluation import evaluate

        evaluate(candidate.ref, data, against=None if current is None or same else current.ref, registry=registry)
        ran.append("eval")
    if "bench" in kinds:
        from .bench import bench_artifacts

        subjects = [candidate] + ([current] if current is not None and not same else [])
        payloads = bench_artifacts([(registry.path(v), v) for v in subjects], batches=[1], min_time=min_time,
                                   progress=progress)
        for version, payload in zip(subjects, payloads, strict=True):
            registry.attach(version, "bench", payload)
        ran.append("bench")
    return registry.set_alias(candidate.ref, alias, reason=reason), ran
