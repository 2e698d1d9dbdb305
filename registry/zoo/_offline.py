"""Degraded mode: what a shared store's local cache serves while PostgreSQL or S3 is unreachable.

Invariant: nothing is served that the caller did not allow, and no byte unverified.

- A *content-pinned* reference (``name@sha256:HEX`` or ``sha256=``) loads from the cache whenever the
  cache holds a remembered record of that digest whose files add up to it and whose bytes hash right:
  the pin, not the database, says which bytes are meant.
- Any other reference (an alias, ``latest``, a number) loads from the cache's last resolution of it
  only when the caller allows a stale answer (``allow_stale=True``, or ``ZOO_OFFLINE=1``), with a
  :class:`~zoo.errors.StaleResolution` warning that says how old the answer is.
- Otherwise the outage's own :class:`~zoo.errors.StoreUnavailable` is raised (exit 7), with a hint
  that says what would have worked.

The cache remembers resolutions when :meth:`zoo._registry.Registry.load` succeeds (see
:meth:`zoo.store.cache.ArtifactCache.remember`).
"""
from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._refs import Digest, parse_ref
from .errors import InvalidReference, StoreUnavailable
from .records import ModelVersion
from .store import MODEL_FILE
from .store._network import OFFLINE_ENV, offline
from .store.cache import ArtifactCache
from .store.files import manifest_digest

__all__ = ["degraded", "remember", "stale_allowed"]


def stale_allowed(allow_stale: bool | None) -> bool:
    return offline() if allow_stale is None else bool(allow_stale)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _age(when: str) -> str:
    try:
        seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(when)).total_seconds()
    except (ValueError, TypeError):
        return "at an unknown time"
    if seconds < 120:
        return f"{max(0, seconds):.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def remember(cache: ArtifactCache | None, store: str, ref: str | ModelVersion, version: ModelVersion) -> None:
    """After a load that the services answered: keep the answer for degraded mode (best effort)."""
    if cache is not None:
        cache.remember(store, None if isinstance(ref, ModelVersion) else str(parse_ref(ref)), version, _now())


def degraded(cache: ArtifactCache | None, store: str, ref: str | ModelVersion, pinned: Digest | None,
             allow_stale: bool | None, cause: StoreUnavailable, *, stacklevel: int = 3) -> tuple[ModelVersion, Path]:
    """The version and verified model path the cache can serve for ``ref`` now that ``cause`` happened."""
    if cache is None:
        raise cause
    if isinstance(ref, ModelVersion):
        version, path = ref, _verified(cache, ref)
        if path is None:
            raise cause
        return version, path
    parsed = parse_ref(ref)
    digest = parsed.digest or pinned
    if digest is not None:
        found = [v for v in cache.recall_digest(store, parsed.name, digest.prefix)
                 if (pinned is None or pinned.matches(v.sha256)) and (parsed.digest is None or parsed.digest.matches(v.sha256))
                 and parsed.framework in (None, v.framework) and v.files and manifest_digest(v.files) == v.sha256]
        if len({v.sha256 for v in found}) > 1:
            raise InvalidReference(f"Expected a sha256 prefix that names one cached version of {parsed.name!r}. "
                                   f"Received: {digest}, which {len(found)} cached versions start with",
                                   hint="give more hex digits of the sha256")
        for version in found:
            path = _verified(cache, version)
            if path is not None:
                return version, path
        raise StoreUnavailable(f"{cause.message}; and the local cache {str(cache.root)!r} holds no verified copy of "
                               f"{parsed.name}@{digest}", hint=cause.hint, service=cause.service)
    key = str(parsed)
    last = cache.recall(store, key)
    if not stale_allowed(allow_stale):
        hint = (f"the local cache knows what {key} meant {_age(last[1])} ({last[0].ref}, sha256:{last[0].sha256[:12]}): "
                f"allow that stale answer with allow_stale=True or {OFFLINE_ENV}=1, or pin by content "
                f"({last[0].name}@sha256:{last[0].sha256[:12]})") if last else cause.hint
        raise StoreUnavailable(cause.message, hint=hint, service=cause.service)
    if last is None:
        raise StoreUnavailable(f"{cause.message}; and the local cache {str(cache.root)!r} has never resolved {key}",
                               hint=cause.hint, service=cause.service)
    version, when = last
    path = _verified(cache, version)
    if path is None:
        raise StoreUnavailable(f"{cause.message}; and the local cache {str(cache.root)!r} no longer holds the bytes of "
                               f"{version.ref} (what {key} meant {_age(when)})", hint=cause.hint, service=cause.service)
    from .errors import StaleResolution

    warnings.warn(f"{key} is {version.ref} (sha256:{version.sha256[:12]}) as this machine last saw it "
                  f"{_age(when)} (at {when}), a stale answer; the registry could not be asked: {cause.message}",
                  StaleResolution, stacklevel=stacklevel)
    return version, path


def _verified(cache: ArtifactCache, version: ModelVersion) -> Path | None:
    folder = cache.get(version.sha256, version.files)
    return None if folder is None else folder / MODEL_FILE


def load_offline(cache: ArtifactCache, store: str, ref: str, *, pinned: Digest | None, allow_stale: bool | None,
                 cause: StoreUnavailable, provider: str | None, options: dict[str, Any]) -> Any:
    """An :class:`~zoo.runtime.InferenceModel` from the cache alone (the store could not even be opened)."""
    version, path = degraded(cache, store, ref, pinned, allow_stale, cause, stacklevel=4)
    from .runtime import InferenceModel

    return InferenceModel(path, provider=provider, version=version, **options)
