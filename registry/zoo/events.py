"""Registry events as CloudEvents 1.0 (structured JSON), and their delivery to webhooks.

Types: ``version.created``, ``alias.moved`` (set, moved or deleted), ``report.attached``, ``gate.refused``.
Each event is written to the store's append-only event log in the same transaction as the change it
describes (a refused gate changes nothing: its event is written alone), with one delivery row per
configured webhook. Delivery is at-least-once: a receiver that is down is retried with exponential
back-off (:data:`BACKOFF_S`, up to :data:`MAX_ATTEMPTS`), and a writer that dies after its commit leaves
the delivery pending for the next ``zoo events deliver`` (or the next write) to send. Receivers
de-duplicate by the event's ``id``. Each POST carries the body's HMAC-SHA256 under the webhook's secret
in ``X-Zoo-Signature-256: sha256=<hex>`` (GitHub's scheme), so a receiver can check who sent it.
Redirects are not followed: a 3xx answer is a failed attempt (retried like any other), so a receiver cannot
send the writer's host on to another address (with the event's headers) by answering with a ``Location``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from typing import Any

__all__ = ["EVENT_TYPES", "SIGNATURE_HEADER", "backoff_s", "make_event", "post", "sign", "verify_signature"]

EVENT_TYPES = ("version.created", "alias.moved", "report.attached", "gate.refused")
SIGNATURE_HEADER = "X-Zoo-Signature-256"
CONTENT_TYPE = "application/cloudevents+json"
BACKOFF_S = (1, 2, 5, 15, 60, 300)  # then 300 s between attempts
MAX_ATTEMPTS = 20
POST_TIMEOUT_S = 5.0


def make_event(type_: str, *, source: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    """A CloudEvents 1.0 event in structured JSON mode (``type`` is one of :data:`EVENT_TYPES`)."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "type": type_, "subject": subject,
            "time": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "datacontenttype": "application/json", "data": data}


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(payload: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def verify_signature(payload: bytes, secret: str, header: str | None) -> bool:
    """What a receiver does: constant-time comparison of the header with the body's HMAC."""
    return header is not None and hmac.compare_digest(sign(payload, secret), header)


def backoff_s(attempts: int) -> int:
    """Seconds to wait after ``attempts`` failed deliveries."""
    return BACKOFF_S[min(max(attempts, 1), len(BACKOFF_S)) - 1]


def post(url: str, event: dict[str, Any], secret: str | None, *, timeout: float = POST_TIMEOUT_S) -> str | None:
    """POST ``event`` to ``url``; None when the receiver answered 2xx, else why not (never raises).
    A redirect is not followed: it is ``HTTP 3xx``, a failed attempt."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # urllib then raises HTTPError with the 3xx code

    data = body(event)
    headers = {"Content-Type": CONTENT_TYPE, "User-Agent": "zoo-events", "ce-id": event["id"]}
    if secret:
        headers[SIGNATURE_HEADER] = sign(data, secret)
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        opener = urllib.request.build_opener(NoRedirect)  # http(s) only: the scheme is checked when the webhook is added
        with opener.open(request, timeout=timeout) as response:
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
