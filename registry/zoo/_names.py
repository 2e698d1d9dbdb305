"""Validation of every user-chosen identifier: model names, aliases, tag keys and values, report kinds.

Why so strict: names travel into references (``resnet50@prod``), SQL parameters, JSON, CLI tables
and log lines. Objects on disk are addressed by sha256, never by name, so a name can never become a
path; the pattern is a second wall, not the only one. It is ASCII-only so that look-alikes
(Cyrillic ``а`` for Latin ``a``, fullwidth digits, the Kelvin sign) cannot create a second model
that reads like the first, and it excludes ``/``, ``\\``, ``%``, ``:``, ``@``, NUL and whitespace
so that ``../x``, ``%2e%2e``, absolute paths and reference separators are refused outright.

Patterns (full match, ASCII):

- model name, alias, tag key, report kind: ``[a-z0-9][a-z0-9._-]{0,63}``
- alias, additionally: not all digits (``@3`` is version 3) and not ``latest`` (implicit)
- tag value: printable text (no control or format characters), at most 256 characters

Every refusal raises :class:`~zoo.errors.InvalidName` whose message ends with the value received.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidName

NAME_PATTERN = "[a-z0-9][a-z0-9._-]{0,63}"
MAX_NAME_LENGTH = 64
MAX_TAG_VALUE_LENGTH = 256
LATEST = "latest"

_NAME_RE = re.compile(NAME_PATTERN, re.ASCII)


def received(value: Any) -> str:
    """``repr`` of a user value for an error message, shortened when very long."""
    if isinstance(value, str) and len(value) > 100:
        return f"{value[:64]!r}... ({len(value)} characters)"
    return repr(value)


def _fail(kind: str, expectation: str, value: Any, hint: str | None = None) -> InvalidName:
    return InvalidName(f"Expected {kind} {expectation}. Received: {received(value)}", hint=hint)


def _hint_for(value: Any) -> str | None:
    if not isinstance(value, str):
        return "give a string"
    if value.lower() != value and _NAME_RE.fullmatch(value.lower()):
        return f"names are lowercase: {value.lower()!r}"
    if len(value) > MAX_NAME_LENGTH:
        return f"use at most {MAX_NAME_LENGTH} characters"
    if not value.isascii():
        return "names are ASCII only: letters a-z, digits, '.', '_', '-'"
    return "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"


def validate_name(value: Any, *, kind: str = "a model name") -> str:
    """Return ``value`` if it matches :data:`NAME_PATTERN`, else raise :class:`InvalidName`."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise _fail(kind, f"matching {NAME_PATTERN}", value, _hint_for(value))
    return value


def validate_alias(value: Any) -> str:
    """An alias is a name that cannot be mistaken for a version number or for ``latest``."""
    validate_name(value, kind="an alias")
    if value.isdigit():
        raise _fail("an alias", "that is not all digits (NAME@3 means version 3)", value, "e.g. 'prod', 'v3', 'candidate'")
    if value == LATEST:
        raise _fail("an alias", f"other than {LATEST!r} (reserved: it always means the newest version)", value,
                    "e.g. 'prod', 'stable', 'candidate'")
    return value


def validate_tag_key(value: Any) -> str:
    return validate_name(value, kind="a tag key")


def validate_tag_value(value: Any, *, key: str = "") -> str:
    """Tag values are free text for people, but printable and bounded (no NUL, newlines, bidi controls)."""
    kind = f"the value of tag {key!r}" if key else "a tag value"
    if not isinstance(value, str):
        raise _fail(kind, "to be a string", value, "tags are text: KEY=VALUE")
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise _fail(kind, f"of at most {MAX_TAG_VALUE_LENGTH} characters", value)
    if not value.isprintable():
        raise _fail(kind, "of printable characters (no control characters, newlines or NUL)", value)
    return value


def validate_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Validate every key and value; returns a plain dict copy."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidName(f"Expected tags as a mapping of KEY to VALUE. Received: {received(tags)}")
    return {validate_tag_key(k): validate_tag_value(v, key=k) for k, v in tags.items()}


def validate_kind(value: Any) -> str:
    """Report kinds (``parity``, ``bench``, ``fp16-parity``) follow the name pattern."""
    return validate_name(value, kind="a report kind")
