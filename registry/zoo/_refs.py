"""Model references: the one string users type to mean "that model version".

Grammar (no whitespace; every part is ASCII)::

    ref        ::= name [ ":" framework ] [ "@" selector ]
    name       ::= [a-z0-9][a-z0-9._-]{0,63}              (see zoo._names)
    framework  ::= [a-z0-9][a-z0-9_-]{0,31}               a plugin name: torch, tensorflow, ...
    selector   ::= version | "latest" | alias | digest
    version    ::= [1-9][0-9]{0,8}                        a version number
    alias      ::= a name that is not all digits and not "latest"
    digest     ::= "sha256:" [0-9a-f]{12,64}              a prefix of the artifact's sha256 (any case)

Examples: ``resnet50`` (latest), ``resnet50@3``, ``resnet50@prod``, ``resnet50@latest``,
``resnet50:tensorflow`` (the newest version built by the TensorFlow plugin),
``resnet50:torch@prod`` (the version ``prod`` points at, which must have been built by torch),
``resnet50@sha256:9f86d081884c`` (the version whose artifact digest starts with those 12+ hex
digits: pins content, so it means the same bytes in every store, whatever their version numbers).
The framework part also accepts the spellings ``pytorch``, ``tf`` and ``keras``.

Parsing is pure; what a reference points at is decided by :meth:`zoo._registry.Registry.resolve`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ._names import LATEST, NAME_PATTERN, received, validate_alias, validate_name
from .errors import InvalidName, InvalidReference

FRAMEWORK_PATTERN = "[a-z0-9][a-z0-9_-]{0,31}"
GRAMMAR = ("NAME[:FRAMEWORK][@VERSION|@ALIAS|@latest|@sha256:HEX], e.g. resnet50, resnet50@3, resnet50@prod, "
           "resnet50:torch@latest, resnet50@sha256:9f86d081884c")
DIGEST_PREFIX = "sha256:"
MIN_DIGEST_HEX = 12  # 48 bits: enough to name one artifact among many; the full 64 is the strong pin

_FRAMEWORK_RE = re.compile(FRAMEWORK_PATTERN, re.ASCII)
_VERSION_RE = re.compile("[1-9][0-9]{0,8}", re.ASCII)
_DIGEST_RE = re.compile(f"[0-9a-f]{{{MIN_DIGEST_HEX},64}}", re.ASCII)
_MAX_REF_LENGTH = 64 + 1 + 32 + 1 + len(DIGEST_PREFIX) + 64


@dataclass(frozen=True)
class Digest:
    """A ``@sha256:`` selector: a lower-case hex prefix (12 to 64 digits) of an artifact's sha256."""

    prefix: str

    def matches(self, sha256: str) -> bool:
        return sha256.startswith(self.prefix)

    def __str__(self) -> str:
        return DIGEST_PREFIX + self.prefix


@dataclass(frozen=True)
class Ref:
    """A parsed reference. ``selector`` is a version number (int), an alias, ``"latest"``, or a :class:`Digest`."""

    name: str
    selector: int | str | Digest = LATEST
    framework: str | None = None

    @property
    def version(self) -> int | None:
        return self.selector if isinstance(self.selector, int) else None

    @property
    def alias(self) -> str | None:
        return self.selector if isinstance(self.selector, str) and self.selector != LATEST else None

    @property
    def digest(self) -> Digest | None:
        return self.selector if isinstance(self.selector, Digest) else None

    @property
    def is_latest(self) -> bool:
        return self.selector == LATEST

    def __str__(self) -> str:
        fw = f":{self.framework}" if self.framework else ""
        sel = "" if self.is_latest else f"@{self.selector}"
        return f"{self.name}{fw}{sel}"


def _invalid(what: str, ref: object) -> InvalidReference:
    return InvalidReference(f"Expected a model reference {what}. Received: {received(ref)}", hint=f"references look like {GRAMMAR}")


def parse_ref(ref: str) -> Ref:
    """Parse ``ref`` per the grammar above; :class:`InvalidReference` (with the grammar as hint) if it does not fit."""
    if not isinstance(ref, str):
        raise _invalid("as a string", ref)
    if not ref:
        raise _invalid("(it is empty)", ref)
    if len(ref) > _MAX_REF_LENGTH:
        raise _invalid(f"of at most {_MAX_REF_LENGTH} characters", ref)
    head, at, selector_text = ref.partition("@")
    name, colon, framework = head.partition(":")
    try:
        validate_name(name)
    except InvalidName:
        raise _invalid(f"whose NAME matches {NAME_PATTERN}", ref) from None
    if colon:
        if not _FRAMEWORK_RE.fullmatch(framework):
            raise _invalid(f"whose FRAMEWORK after ':' matches {FRAMEWORK_PATTERN}", ref)
        from .plugins import canonical_name  # light: no framework import

        framework = canonical_name(framework)
    selector = _selector(selector_text, ref) if at else LATEST
    return Ref(name=name, selector=selector, framework=framework or None)


def _selector(text: str, ref: str) -> int | str | Digest:
    """What follows ``@``: a content digest, a version number, ``latest``, or an alias."""
    if text[:len(DIGEST_PREFIX)].lower() == DIGEST_PREFIX:
        return parse_digest(text[len(DIGEST_PREFIX):], ref=ref)
    if _VERSION_RE.fullmatch(text):
        return int(text)
    if text == LATEST:
        return LATEST
    if text.isdigit():
        raise _invalid("whose VERSION after '@' is a number from 1 without leading zeros", ref)
    try:
        return validate_alias(text)
    except InvalidName:
        raise _invalid(f"whose ALIAS after '@' matches {NAME_PATTERN}", ref) from None


def parse_digest(text: str, *, ref: object = None) -> Digest:
    """A sha256 prefix of 12 to 64 hex digits (any case; ``sha256:`` before it is accepted) -> :class:`Digest`.

    :class:`InvalidReference` otherwise: a shorter prefix could name many artifacts, and only hex is a digest.
    """
    if not isinstance(text, str):
        raise _invalid_digest(f"as a string of {MIN_DIGEST_HEX} to 64 hex digits", text)
    if text[:len(DIGEST_PREFIX)].lower() == DIGEST_PREFIX:
        text = text[len(DIGEST_PREFIX):]
    hex_digits = text.lower()
    if not _DIGEST_RE.fullmatch(hex_digits):
        if re.fullmatch("[0-9a-f]*", hex_digits, re.ASCII) and len(hex_digits) < MIN_DIGEST_HEX:
            what = f"of at least {MIN_DIGEST_HEX} hex digits (got {len(hex_digits)})"
        else:
            what = f"of {MIN_DIGEST_HEX} to 64 hex digits (0-9, a-f)"
        raise _invalid_digest(what, ref if ref is not None else text)
    return Digest(hex_digits)


def _invalid_digest(what: str, value: object) -> InvalidReference:
    return InvalidReference(f"Expected a sha256 prefix {what}. Received: {received(value)}",
                            hint="copy at least the first 12 hex digits of the artifact's sha256 from `zoo list` or "
                                 "`zoo show`, e.g. resnet50@sha256:9f86d081884c")


AT_EXAMPLE = "2026-12-01T12:00Z"


def parse_time(value: object) -> str:
    """A point in time for ``at=`` (what a reference meant then) -> ISO 8601 UTC as the store records it.

    Accepts an ISO 8601 string (``2026-12-01T12:00Z``, ``2026-12-01 12:00:00+01:00``, ``2026-12-01``;
    without an offset it is UTC) or a ``datetime`` (naive: UTC). :class:`InvalidReference` otherwise.
    """
    from datetime import datetime, timezone

    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and 0 < len(value) <= 64:
        text = value.strip()
        text = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidReference(f"Expected a time as ISO 8601, e.g. {AT_EXAMPLE}. Received: {received(value)}",
                                   hint="write YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]; a time without an offset is UTC") from None
    else:
        raise InvalidReference(f"Expected a time as ISO 8601, e.g. {AT_EXAMPLE}. Received: {received(value)}",
                               hint="write YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]; a time without an offset is UTC")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
