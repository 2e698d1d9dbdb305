"""Model references: the one string users type to mean "that model version".

Grammar (no whitespace; every part is ASCII)::

    ref        ::= name [ ":" framework ] [ "@" selector ]
    name       ::= [a-z0-9][a-z0-9._-]{0,63}              (see zoo._names)
    framework  ::= [a-z0-9][a-z0-9_-]{0,31}               a plugin name: torch, tensorflow, ...
    selector   ::= version | "latest" | alias
    version    ::= [1-9][0-9]{0,8}                        a version number
    alias      ::= a name that is not all digits and not "latest"

Examples: ``resnet50`` (latest), ``resnet50@3``, ``resnet50@prod``, ``resnet50@latest``,
``resnet50:tensorflow`` (the newest version built by the TensorFlow plugin),
``resnet50:torch@prod`` (the version ``prod`` points at, which must have been built by torch).
The framework part also accepts the spellings ``pytorch``, ``tf`` and ``keras``.

Parsing is pure; what a reference points at is decided by :meth:`zoo._registry.Registry.resolve`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ._names import LATEST, NAME_PATTERN, received, validate_alias, validate_name
from .errors import InvalidName, InvalidReference

FRAMEWORK_PATTERN = "[a-z0-9][a-z0-9_-]{0,31}"
GRAMMAR = "NAME[:FRAMEWORK][@VERSION|@ALIAS|@latest], e.g. resnet50, resnet50@3, resnet50@prod, resnet50:torch@latest"

_FRAMEWORK_RE = re.compile(FRAMEWORK_PATTERN, re.ASCII)
_VERSION_RE = re.compile("[1-9][0-9]{0,8}", re.ASCII)
_MAX_REF_LENGTH = 64 + 1 + 32 + 1 + 64


@dataclass(frozen=True)
class Ref:
    """A parsed reference. ``selector`` is a version number (int), an alias, or ``"latest"``."""

    name: str
    selector: int | str = LATEST
    framework: str | None = None

    @property
    def version(self) -> int | None:
        return self.selector if isinstance(self.selector, int) else None

    @property
    def alias(self) -> str | None:
        return self.selector if isinstance(self.selector, str) and self.selector != LATEST else None

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
    selector: int | str = LATEST
    if at:
        if _VERSION_RE.fullmatch(selector_text):
            selector = int(selector_text)
        elif selector_text == LATEST:
            selector = LATEST
        elif selector_text.isdigit():
            raise _invalid("whose VERSION after '@' is a number from 1 without leading zeros", ref)
        else:
            try:
                selector = validate_alias(selector_text)
            except InvalidName:
                raise _invalid(f"whose ALIAS after '@' matches {NAME_PATTERN}", ref) from None
    return Ref(name=name, selector=selector, framework=framework or None)
