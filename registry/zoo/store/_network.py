"""How long zoo waits for the shared store's services (PostgreSQL, S3), and how often it retries.

One set of settings for both services, so that an outage answers in seconds, not minutes:

    ZOO_CONNECT_TIMEOUT   seconds to open a connection (default 5)
    ZOO_READ_TIMEOUT      seconds an S3 request (or a PostgreSQL socket) may wait for the next bytes (default 10)
    ZOO_RETRIES           retries after a failed attempt, with exponential back-off (default 2)
    ZOO_OFFLINE=1         contact neither service: serve what the local cache holds (stale aliases allowed)

A bad value is :class:`~zoo.errors.InvalidInput` naming the variable (never silently the default).
"""
from __future__ import annotations

import math
import os

from ..errors import InvalidInput

__all__ = ["CONNECT_TIMEOUT_ENV", "OFFLINE_ENV", "READ_TIMEOUT_ENV", "RETRIES_ENV", "backoff", "connect_timeout",
           "offline", "read_timeout", "retries"]

CONNECT_TIMEOUT_ENV = "ZOO_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "ZOO_READ_TIMEOUT"
RETRIES_ENV = "ZOO_RETRIES"
OFFLINE_ENV = "ZOO_OFFLINE"
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
MAX_RETRIES = 10


def _seconds(env: str, default: float) -> float:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value <= 3600):
        raise InvalidInput(f"Expected {env} in seconds, > 0 and <= 3600. Received: {text!r}",
                           hint=f"unset it for the default {default:g} s")
    return value


def connect_timeout() -> float:
    return _seconds(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S)


def read_timeout() -> float:
    return _seconds(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT_S)


def retries() -> int:
    text = os.environ.get(RETRIES_ENV, "").strip()
    if not text:
        return DEFAULT_RETRIES
    if not text.isdigit() or int(text) > MAX_RETRIES:
        raise InvalidInput(f"Expected {RETRIES_ENV} as a whole number from 0 to {MAX_RETRIES}. Received: {text!r}",
                           hint=f"unset it for the default {DEFAULT_RETRIES}")
    return int(text)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): 0.25, 0.5, 1, 2, 2, ..."""
    return float(min(2.0, 0.25 * 2 ** attempt))


def offline() -> bool:
    """``ZOO_OFFLINE`` set to 1/true/yes: contact no service; the cache answers (stale answers allowed)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
