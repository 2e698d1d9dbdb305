"""What a reference means now (or at a past time): ``NAME``, ``@N``, ``@ALIAS``, ``:FRAMEWORK``, ``@sha256:HEX``.

With ``at`` (ISO 8601 UTC, see :func:`zoo._refs.parse_time`), an alias means the version its history
says it pointed at then, ``latest`` the newest version created by then, and a version that did not
exist yet is not found.

Pure lookups in one read transaction; every miss is a :class:`~zoo.errors.NotFound` that says what
the model does have (versions, aliases, frameworks, close names), so the fix is in the message.
"""
from __future__ import annotations

import difflib

from ._refs import Digest, Ref
from .errors import InvalidReference, NotFound
from .records import ModelVersion
from .store import MetadataTxn

__all__ = ["describe_framework", "no_model", "resolve"]


def resolve(txn: MetadataTxn, ref: Ref, *, location: str, at: str | None = None) -> ModelVersion:
    found = _resolve_now(txn, ref, location=location, at=at)
    if at is not None and found.created_at > at:
        raise NotFound(f"{found.ref} did not exist at {at} (it was registered at {found.created_at})",
                       hint="give a later time, or leave the time out")
    return found


def _resolve_now(txn: MetadataTxn, ref: Ref, *, location: str, at: str | None) -> ModelVersion:
    name, fw = ref.name, ref.framework
    if ref.digest is not None:
        return _resolve_digest(txn, ref, ref.digest, location=location)
    if ref.alias is not None and at is not None:
        return _resolve_alias_at(txn, ref, ref.alias, location=location, at=at)
    if ref.version is not None:
        version = txn.get(name, ref.version)
        if version is None:
            known = _known(txn, name, location=location)
            raise NotFound(f"Model {name!r} has no version {ref.version}",
                           hint="it has versions " + ", ".join(str(v.version) for v in known))
        if fw is not None and version.framework != fw:
            raise NotFound(f"{version.ref} was built by {describe_framework(version.framework)}, not by {fw!r}",
                           hint=f"use {version.ref} without ':{fw}', or {name}:{fw} for the newest {fw} version")
        return version
    if ref.alias is not None:
        number = txn.alias_target(name, ref.alias)
        if number is None:
            known = _known(txn, name, location=location)
            aliases = sorted({a for v in known for a in v.aliases})
            raise NotFound(f"Model {name!r} has no alias {ref.alias!r}",
                           hint=("its aliases: " + ", ".join(aliases)) if aliases else
                           f"set one with `zoo alias {name}@N {ref.alias}`")
        version = txn.get(name, number)
        assert version is not None  # the foreign key guarantees it
        if fw is not None and version.framework != fw:
            raise NotFound(
                f"Alias {name}@{ref.alias} points at {version.ref}, built by {describe_framework(version.framework)}, not by {fw!r}",
                hint=f"use {name}@{ref.alias}, or {name}:{fw} for the newest {fw} version",
            )
        return version
    version = txn.latest(name, framework=fw, created_until=at)
    if version is None:
        known = _known(txn, name, location=location)
        if at is not None:
            raise NotFound(f"Model {name!r} had no version{f' built by {fw!r}' if fw else ''} at {at}",
                           hint=f"its first version was registered at {known[0].created_at}")
        frameworks = sorted({describe_framework(v.framework) for v in known})
        raise NotFound(f"Model {name!r} has no version built by {fw!r}", hint="it has versions built by " + ", ".join(frameworks))
    return version

def _resolve_alias_at(txn: MetadataTxn, ref: Ref, alias: str, *, location: str, at: str) -> ModelVersion:
    """The version the alias's history says it pointed at, at ``at``."""
    name = ref.name
    last = txn.alias_history(name, alias, until=at, last=True)
    if not last or last[0].to_version is None:
        _known(txn, name, location=location)
        history = txn.alias_history(name, alias)
        said = "had been deleted" if last else "was not set"
        raise NotFound(f"Alias {name}@{alias} {said} at {at}",
                       hint=(f"its first recorded move was at {history[0].at}; `zoo alias --history {name} {alias}` "
                             "lists them") if history else f"{name}@{alias} has no recorded history")
    number = last[0].to_version
    version = txn.get(name, number)
    if version is None:
        raise NotFound(f"Alias {name}@{alias} pointed at {name}@{number} at {at}, and that version was removed since",
                       hint=f"`zoo alias --history {name} {alias}` lists its moves")
    if ref.framework is not None and version.framework != ref.framework:
        raise NotFound(f"Alias {name}@{alias} pointed at {version.ref} at {at}, built by "
                       f"{describe_framework(version.framework)}, not by {ref.framework!r}",
                       hint=f"use {name}@{alias} without ':{ref.framework}'")
    return version


def _resolve_digest(txn: MetadataTxn, ref: Ref, digest: Digest, *, location: str) -> ModelVersion:
    """The one version of ``ref.name`` whose artifact sha256 starts with ``digest`` (a full digest is
    one indexed lookup; a prefix scans the model's versions), else whose registered source file's does
    (``source_sha256``). Ambiguous: InvalidReference listing them."""
    name, fw = ref.name, ref.framework
    if len(digest.prefix) == 64:
        found = txn.find(name, digest.prefix)
        matches = [found] if found is not None else []
    else:
        matches = [v for v in txn.versions(name) if digest.matches(v.sha256)]
    if not matches:  # the file the user registered (`zoo register FILE` records its sha256 as source_sha256)
        matches = [v for v in txn.versions(name) if digest.matches(str((v.provenance or {}).get("source_sha256") or ""))]
    if not matches:
        known = _known(txn, name, location=location)
        raise NotFound(f"Model {name!r} has no version whose sha256 starts with {digest.prefix}",
                       hint="its versions: " + ", ".join(f"{v.ref} (sha256:{v.sha256[:12]})" for v in known[-10:])
                            + ("" if len(known) <= 10 else f" and {len(known) - 10} earlier"))
    if len(matches) > 1:
        raise InvalidReference(
            f"Expected a sha256 prefix that names one version of {name!r}. Received: {digest}, which "
            f"{len(matches)} versions start with: " + ", ".join(f"{v.ref} (sha256:{v.sha256[:16]})" for v in matches),
            hint="give more hex digits of the sha256 (`zoo list " + name + "` shows them)")
    version = matches[0]
    if fw is not None and version.framework != fw:
        raise NotFound(f"{name}@{digest} is {version.ref}, built by {describe_framework(version.framework)}, not by {fw!r}",
                       hint=f"use {name}@{digest} without ':{fw}'")
    return version

def _known(txn: MetadataTxn, name: str, *, location: str) -> list[ModelVersion]:
    """The versions of ``name``, to explain a miss; NotFound (with close names) if the model does not exist."""
    known = txn.versions(name)
    if not known:
        raise no_model(txn, name, location=location)
    return known


def no_model(txn: MetadataTxn, name: str, *, location: str) -> NotFound:
    close = difflib.get_close_matches(name, txn.models(), n=3)
    hint = ("did you mean " + " or ".join(repr(c) for c in close) + "?") if close else "`zoo list` shows the registered models"
    return NotFound(f"No model named {name!r} in the registry at {location!r}", hint=hint)


def describe_framework(framework: str | None) -> str:
    return repr(framework) if framework else "no framework (external ONNX)"
