"""Gated alias moves and webhook delivery, for :class:`zoo._registry.Registry` (its only caller; this module
knows transactions, not the registry).

A gated move is decided inside the write transaction that makes it, so the verdict is about the
reports and the alias as they are at that moment; a refusal commits only its ``gate.refused`` event.
Delivery claims due rows of the outbox (leasing them so a concurrent worker skips them), POSTs outside
any transaction, then records each result: at-least-once, never lost by a crash at any point.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ._names import received
from .errors import GateRefused, InvalidInput
from .gates import GateResult, Policy, check

if TYPE_CHECKING:
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


def deliver(write: Callable[[], AbstractContextManager["MetadataTxn"]], *, events: list[int] | None = None,
            budget_s: float | None = None) -> dict[str, int]:
    """Send due webhook deliveries (of ``events`` only, if given) until none is due or ``budget_s`` is spent:
    counts of ``delivered`` and ``failed`` attempts."""
    from .events import MAX_ATTEMPTS, backoff_s, post

    counts = {"delivered": 0, "failed": 0}
    deadline = None if budget_s is None else time.monotonic() + budget_s
    while deadline is None or time.monotonic() < deadline:
        now = _now()
        with write() as txn:
            due = txn.claim_deliveries(_iso(now), _iso(now + timedelta(seconds=LEASE_S)), events=events, limit=20)
        if not due:
            break
        results: list[tuple[int, int, str | None, int]] = []
        for event_id, hook, url, secret, event, attempts in due:
            timeout = 5.0 if deadline is None else max(0.1, min(5.0, deadline - time.monotonic()))
            error = post(url, event, secret, timeout=timeout)
            results.append((event_id, hook, error, attempts + 1))
            counts["failed" if error else "delivered"] += 1
        with write() as txn:
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

