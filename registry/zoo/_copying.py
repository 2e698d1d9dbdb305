"""Copy versions between stores (e.g. a CI job's scratch folder -> the team's shared registry).

A copy keeps everything a version is: the exact artifact bytes (checked by sha256 when read from the
source, when staged in the target and again, end to end, from the target's own storage afterwards),
the recorded facts (signature, params, provenance, created time...), tags, reports, and the aliases
that point at it. Version *numbers* are the target's own (gapless per store), so ``resnet50@3`` may
arrive as ``resnet50@1``. Repeating a copy changes nothing: a version whose bytes the target model
already has is matched by digest, and only missing tags, reports and aliases are added.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ._names import validate_name
from .errors import IntegrityError, InvalidInput, NotFound
from .records import ModelVersion, Record, Report
from .store import MODEL_FILE

if TYPE_CHECKING:
    from ._registry import Registry
    from .store import MetadataTxn

__all__ = ["CopyResult", "copy_versions", "select_versions"]


@dataclass(frozen=True)
class CopyResult(Record):
    source: str  # the ref in the source store
    target: str  # the ref in the target store
    sha256: str
    created: bool  # False: the target already had these bytes under this name
    reports_added: int
    tags_added: int
    aliases_set: tuple[str, ...]


def select_versions(source: "Registry", *, refs: Sequence[str] = (), model: str | None = None,
                    everything: bool = False, gated: bool = False,
                    held_back: list[ModelVersion] | None = None) -> list[ModelVersion]:
    """The versions a copy means: some refs, every version of one model, or the whole store. With ``gated``,
    only those whose latest parity report passed (:func:`zoo.parity.gated`); the others go to ``held_back``."""
    chosen = _select(source, refs=refs, model=model, everything=everything)
    if not gated:
        return chosen
    from .parity import gated as passed_parity

    kept = [v for v in chosen if passed_parity(source, v)]
    if held_back is not None:
        held_back.extend(v for v in chosen if v not in kept)
    return kept


def _select(source: "Registry", *, refs: Sequence[str], model: str | None, everything: bool) -> list[ModelVersion]:
    if sum((bool(refs), model is not None, everything)) != 1:
        raise InvalidInput("Expected exactly one of: references, a model name, everything. Received: "
                           + (", ".join(filter(None, [" ".join(refs) if refs else "", f"model {model}" if model else "",
                                                      "everything" if everything else ""])) or "none"),
                           hint="choose versions by reference (resnet50@3), every version of one model, or the whole store")
    if everything:
        return source.list()
    if model is not None:
        validate_name(model)
        found = source.list(model)
        if not found:
            raise NotFound(f"No model named {model!r} in the registry at {source.location!r}",
                           hint="`zoo list` shows the registered models")
        return found
    chosen: dict[tuple[str, int], ModelVersion] = {}
    for ref in refs:
        v = source.resolve(ref)
        chosen[(v.name, v.version)] = v
    return sorted(chosen.values(), key=lambda v: (v.name, v.version))


def _report_key(r: Report) -> tuple[str, str, str]:
    return (r.kind, r.created_at, json.dumps(r.payload, sort_keys=True))


def copy_versions(source: "Registry", target: "Registry", versions: Sequence[ModelVersion], *, aliases: bool = True,
                  on_copied: Callable[[CopyResult], None] | None = None) -> list[CopyResult]:
    """Copy ``versions`` (from :func:`select_versions`) into ``target`` (created if it is a new folder); idempotent."""
    if versions:
        target._prepare_write()
    results = []
    for v in versions:
        result = _copy_one(source, target, v, aliases=aliases)
        results.append(result)
        if on_copied is not None:
            on_copied(result)
    return results


def _add_or_find(txn: "MetadataTxn", v: ModelVersion) -> tuple[ModelVersion, bool, int]:
    """``v`` added to the target (new, True, its tag count), or the target's version with the same bytes and
    the tags it lacked added (it, False, how many)."""
    existing = txn.find(v.name, v.sha256)
    if existing is None:
        return txn.add_version(replace(v, version=0, aliases=())), True, len(v.tags)
    missing = {k: val for k, val in v.tags.items() if existing.tags.get(k) != val}
    if missing:
        txn.set_tags(existing.name, existing.version, missing)
    return existing, False, len(missing)


def _copy_one(source: "Registry", target: "Registry", v: ModelVersion, *, aliases: bool) -> CopyResult:
    reports = source.reports(v)
    with target._meta.read() as txn:
        present = txn.find(v.name, v.sha256)
    staged = None
    if present is None:
        folder = source.path(v).parent  # sha256 of every file checked here (and fetched, for a remote source)
        extra = {f.relpath: folder / f.relpath for f in v.files if f.relpath != MODEL_FILE}
        staged = target._blobs.stage((folder / MODEL_FILE).read_bytes(), extra)
    if staged is not None and (staged.digest != v.sha256 or staged.files != v.files):
        target._blobs.discard(staged)
        raise IntegrityError(f"Copying {v.ref} produced digest {staged.digest}, expected {v.sha256}",
                             hint="the source changed while it was read; run the copy again")
    with target._commit_staged(staged) as txn:  # as Registry.register: a failed commit takes back what it published
        new, created, tags_added = _add_or_find(txn, v)
        have = {_report_key(r) for r in txn.reports(new.name, new.version)}
        fresh = [r for r in reports if _report_key(r) not in have]
        for r in fresh:
            txn.add_report(replace(r, version=new.version))
        added = len(fresh)
        moved = []
        for alias in v.aliases if aliases else ():
            if txn.alias_target(new.name, alias) != new.version:
                txn.set_alias(new.name, alias, new.version)
                moved.append(alias)
    problems = target._blobs.problems(v.sha256, v.files, use_cache=staged is None)  # a new copy: reread from the target
    if problems:
        raise IntegrityError(f"The copy of {v.ref} in {target.location!r} is corrupt: " + "; ".join(problems),
                             hint="run the copy again; if it persists, check the target's storage")
    return CopyResult(source=v.ref, target=new.ref, sha256=v.sha256, created=created, reports_added=added,
                      tags_added=tags_added, aliases_set=tuple(moved))
