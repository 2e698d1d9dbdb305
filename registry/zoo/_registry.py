"""The registry: numbered, immutable model versions over a metadata store and a blob store.

Promises (each proved by a test named in SECURITY.md):

- *Validated before touched*: names, aliases and tags are checked before anything is read or written.
- *Content-addressed and deduplicated*: identical bytes under one name are one version.
- *A store knows it is a store*: its identity (``store.json`` and the same id in the metadata) is
  checked on open and before every write; metadata that is missing, empty or another store's next
  to existing artifacts is a :class:`~zoo.errors.StoreError`, and nothing is deleted on its word.
- *Reads write nothing*: opening creates nothing; a missing store is :class:`~zoo.errors.NotFound`
  for reads and is created by the first write; a read-only store serves every read.
- *Atomic*: a registration is complete or leaves no trace, even if the process is SIGKILLed at
  any step or the commit fails (disk full); leftovers of a crashed writer are cleaned under the
  write lock by the next write. :meth:`Registry.verify` deletes nothing; :meth:`Registry.gc`
  deletes unreferenced artifacts only when asked, and only those older than the crash window.
- *Concurrent*: any number of processes may register into one model; version numbers are
  unique, gapless as assigned (1, 2, 3, ...) and never reused after a removal.
- *Verified*: :meth:`Registry.path` and :meth:`Registry.load` check the sha256 of every file
  before handing it out; a mismatch raises :class:`~zoo.errors.IntegrityError`.
- *Immutable*: nothing changes a version's bytes or recorded facts; only aliases and tags
  move, and :meth:`Registry.remove` is an explicit delete.
- *Accountable*: every alias set, move and delete appends an :class:`~zoo.records.AliasEvent` in the
  transaction of the move (the database refuses to change or delete one); :meth:`Registry.alias_history`
  lists them and ``resolve(ref, at=...)`` answers what an alias meant at a past time.
"""
from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._artifact_meta import check_meta, json_prop, metadata_props, strip_zoo_keys
from ._names import received, validate_alias, validate_kind, validate_name, validate_tag_key, validate_tags
from ._refs import Ref, parse_digest, parse_ref, parse_time
from ._resolve import no_model, resolve
from ._store_guard import StoreGuard
from .errors import Conflict, IntegrityError, InvalidInput, NotFound
from .records import AliasEvent, ModelVersion, Record, Report, VersionMeta, VersionRow, _jsonable
from .store import BlobStore, Filters, MetadataStore, MetadataTxn, Orphan, Staged, open_local

if TYPE_CHECKING:
    from .gates import GateResult, Policy
    from .runtime import InferenceModel

__all__ = ["CRASH_WINDOW_S", "Registry", "RegisterResult", "VerifyResult", "metadata_props"]

CRASH_WINDOW_S = 3600.0  # gc keeps unreferenced artifacts younger than this: a writer may still be committing


@dataclass(frozen=True)
class RegisterResult(Record):
    version: ModelVersion
    created: bool  # False: these exact bytes were already a version of this model


@dataclass(frozen=True)
class VerifyResult(Record):
    name: str
    version: int
    ok: bool
    problem: str | None
    path: Path


def _reason(reason: str | None) -> str | None:
    """Why an alias moved, as recorded: printable text of at most 500 characters (None: not given)."""
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > 500 or not reason.isprintable():
        raise InvalidInput(f"Expected a reason as printable text of at most 500 characters. Received: {received(reason)}",
                           hint="one line, e.g. --reason 'eval top-1 +0.4 on the holdout set'")
    return reason


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _filters(name: str | None, *, framework: str | None, arch: str | None, tags: Mapping[str, str] | None,
             alias: str | None, precision: str | None, require: Sequence[str]) -> Filters:
    """:meth:`Registry.list`'s arguments, checked, as the store's query filters."""
    from .gates import parse_search

    if name is not None:
        validate_name(name)
    if framework is not None:
        from .plugins import canonical_name

        framework = canonical_name(framework)
    requirements = [require] if isinstance(require, str) else require
    return Filters(
        name=name, framework=framework, arch=None if arch is None else validate_name(arch, kind="an architecture name"),
        tags=tuple(sorted(validate_tags(tags).items())), alias=None if alias is None else validate_alias(alias),
        precision=None if precision is None else validate_name(precision, kind="a precision"),
        reports=tuple({r.text: r for r in map(parse_search, requirements)}.values()))


class Registry(StoreGuard):
    """A model registry over a :class:`MetadataStore` and a :class:`BlobStore` (see :mod:`zoo.store`)."""

    def __init__(self, root: Path, *, metadata: MetadataStore, blobs: BlobStore, location: str | None = None):
        self.root = Path(root).absolute() if location is None else Path(root)
        self.location = location or str(self.root)  # how messages name the store (a redacted URL for a shared one)
        self._meta = metadata
        self._blobs = blobs
        self._identity = self._check_identity()

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, read_only: bool | None = None, create: bool = False) -> "Registry":
        """Open the embedded store at ``root``, touching nothing on disk.

        The store's identity is checked now (:class:`~zoo.errors.StoreError` if its database is
        missing, empty or foreign next to existing artifacts). A store that does not exist yet is
        created by the first write (or now, with ``create=True``); until then reads raise
        :class:`~zoo.errors.NotFound` naming the path. ``read_only=None`` opens an existing store we
        cannot write as read-only: reads work, writes raise ``StoreError``.
        """
        if os.fspath(root) == "":
            raise InvalidInput("Expected a store folder. Received: ''",
                               hint="give --store DIR or ZOO_STORE a folder; unset it for the default ./artifacts")
        root = Path(root).absolute()
        metadata, blobs = open_local(root, read_only=read_only)
        registry = cls(root, metadata=metadata, blobs=blobs)
        if create:
            registry._prepare_write()
        return registry

    @classmethod
    def open_shared(cls, url: str, *, artifacts: str | None = None,
                    cache: str | os.PathLike[str] | None = None) -> "Registry":
        """Open the shared store at the ``postgresql://`` ``url`` (see :mod:`zoo.store.shared`): its artifacts
        are where the store recorded them unless ``artifacts`` or ``$ZOO_ARTIFACTS`` says otherwise;
        ``cache`` is the local read-through cache folder (default ``$ZOO_CACHE``)."""
        from .store.shared import open_shared

        metadata, blobs, location = open_shared(url, artifacts=artifacts, cache=cache)
        return cls(Path(location), metadata=metadata, blobs=blobs, location=location)

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def close(self) -> None:
        self._meta.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _read(self, looking_for: str | None = None) -> Iterator[MetadataTxn]:
        self._need_store(looking_for)
        with self._meta.read() as txn:
            yield txn

    @contextmanager
    def _write(self) -> Iterator[MetadataTxn]:
        """An exclusive write transaction that first clears what crashed writers left behind."""
        self._prepare_write()
        with self._meta.write() as txn:
            for item in self._blobs.abandoned():
                try:
                    if item.digest and not txn.digest_in_use(item.digest):
                        self._blobs.delete(item.digest)
                finally:
                    self._blobs.clear(item)
            yield txn
        if getattr(txn, "emitted", None):  # after the commit: the webhooks hear of it now, or from their outbox later
            from ._promotion import INLINE_BUDGET_S, deliver

            deliver(self._write, events=list(txn.emitted), budget_s=INLINE_BUDGET_S)

    # ------------------------------------------------------------------ register

    def register(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        meta: VersionMeta | None = None,
        tags: Mapping[str, str] | None = None,
        input_size: int | None = None,
    ) -> RegisterResult:
        """Check an ONNX file, embed ``meta`` into it, store it content-addressed, and number it.

        Registering bytes this model already has returns that version (``created=False``); new
        ``tags`` are applied to it. The source file is never modified.
        """
        validate_name(name)
        tag_map = validate_tags(tags)
        meta = meta or VersionMeta()
        check_meta(meta)
        meta = replace(meta, provenance=_jsonable(dict(meta.provenance)))
        props = metadata_props(meta)

        from . import onnx as onnx_tools

        checked = onnx_tools.check_model_file(path)
        facts = onnx_tools.inspect(checked, input_size=input_size)
        strip_zoo_keys(checked.model)
        onnx_tools.embed_metadata(checked.model, props)
        data = checked.model.SerializeToString(deterministic=True)
        # Copied through fds of the very files checked (see zoo.onnx.ExternalFile), not by path.
        extra = {f.relpath: f.open for f in checked.external}
        del checked

        self._prepare_write()
        staged = self._blobs.stage(data, extra)
        del data
        with self._commit_staged(staged) as txn:  # for an existing version, publishing repairs a corrupt copy, if any
            existing = txn.find(name, staged.digest)
            if existing is not None:
                if tag_map:
                    txn.set_tags(existing.name, existing.version, tag_map)
                    existing = txn.get(existing.name, existing.version) or existing
                return RegisterResult(version=existing, created=False)
            version = txn.add_version(ModelVersion(
                **{f.name: getattr(meta, f.name) for f in fields(VersionMeta)},
                name=name, version=0, sha256=staged.digest, size_bytes=staged.size, created_at=_now(),
                signature=facts.signature, opset=facts.opset, onnx_params=facts.onnx_params, macs=facts.macs,
                files=staged.files, tags=tag_map,
            ))
        return RegisterResult(version=version, created=True)

    @contextmanager
    def _commit_staged(self, staged: "Staged | None") -> Iterator[MetadataTxn]:
        """The one ingest step of ``register`` and ``zoo copy``: a write transaction in which ``staged`` (if any)
        is published before the caller adds the rows that reference it. If the commit fails (disk full, I/O
        error, a crash of the caller's body), the object is taken back unless a version uses it; the staging
        area is cleared either way (its intent is kept when the take-back failed too, for the next sweep)."""
        published, orphaned = False, False
        try:
            with self._write() as txn:
                if staged is not None:
                    published = True  # from here on a failure may leave the object in place: see below
                    self._blobs.publish(staged)
                yield txn
        except BaseException:
            if published and staged is not None:
                orphaned = not self._unpublish(staged.digest)
            raise
        finally:
            if staged is not None:
                self._blobs.discard(staged, keep_intent=orphaned)

    def _unpublish(self, digest: str) -> bool:
        """Delete ``digest`` under the write lock unless a version uses it; False if that failed too
        (the scratch space's intent then stays, and the next write's sweep deletes it)."""
        try:
            with self._write() as txn:
                if not txn.digest_in_use(digest):
                    self._blobs.delete(digest)
            return True
        except Exception:
            return False

    # ------------------------------------------------------------------ read

    def list(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None,
             tags: Mapping[str, str] | None = None, alias: str | None = None,
             precision: str | None = None, require: Sequence[str] = ()) -> list[ModelVersion]:
        """Versions sorted by name and number; each filter given must match, in the store's query:
        one model, framework, architecture, every ``tags`` KEY=VALUE, carrying ``alias``, ``precision``
        ("fp32", "fp16", "int8": the version's ``precision`` tag or provenance, else fp32), and each of
        ``require``, read from the version's newest report of its kind as a policy reads it (``"parity"``,
        ``"eval.top1 >= 75%"``, ``"bench.p50 <= 12"``: :mod:`zoo.gates`, absolute bounds only)."""
        filters = _filters(name, framework=framework, arch=arch, tags=tags, alias=alias, precision=precision, require=require)
        if self._unborn():
            return []
        with self._read() as txn:
            return txn.versions(filters=filters)

    def rows(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None,
             tags: Mapping[str, str] | None = None, alias: str | None = None, precision: str | None = None,
             require: Sequence[str] = ()) -> builtins.list[VersionRow]:
        """What :meth:`list` selects, as the columns a listing shows (ref, framework, arch, params, size, sha256,
        aliases, created), read without parsing each version's record: the table of ``zoo list``."""
        filters = _filters(name, framework=framework, arch=arch, tags=tags, alias=alias, precision=precision, require=require)
        if self._unborn():
            return []
        with self._read() as txn:
            return txn.rows(filters)

    def models(self) -> builtins.list[str]:
        if self._unborn():
            return []
        with self._read() as txn:
            return txn.models()

    def resolve(self, ref: str, *, framework: str | None = None, at: str | datetime | None = None) -> ModelVersion:
        """The version ``ref`` means now (see :mod:`zoo._refs` for the grammar), or meant at time ``at``
        (ISO 8601, e.g. ``"2026-12-01T12:00Z"``, or a datetime; naive is UTC): an alias resolves
        through its history, ``latest`` to the newest version registered by then."""
        parsed = self._parse(ref, framework)
        when = None if at is None else parse_time(at)
        with self._read(str(parsed)) as txn:
            return resolve(txn, parsed, location=self.location, at=when)

    def _parse(self, ref: str | ModelVersion, framework: str | None = None) -> Ref:
        if isinstance(ref, ModelVersion):
            return Ref(name=ref.name, selector=ref.version)
        parsed = parse_ref(ref)
        if framework is not None:
            from .plugins import canonical_name

            framework = canonical_name(framework)
            if parsed.framework not in (None, framework):
                raise InvalidInput(
                    f"Reference {ref!r} selects framework {parsed.framework!r} but framework={framework!r} was also given",
                    hint="give the framework once",
                )
            parsed = replace(parsed, framework=framework)
        return parsed

    def path(self, ref: str | ModelVersion, *, verify: bool = True) -> Path:
        """The model file inside the store, its sha256 (and its external data's) checked unless ``verify=False``."""
        version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        if verify:
            problems = self._blobs.problems(version.sha256, version.files)
            if problems:
                raise IntegrityError(
                    f"{version.ref} is corrupt: " + "; ".join(problems),
                    hint=f"the stored bytes changed after registration; re-register the original file to repair it, "
                         f"or delete the version with `zoo rm {version.ref} --yes`",
                )
        return self._blobs.locate(version.sha256)

    def load(self, ref: str | ModelVersion, *, provider: str | None = None, sha256: str | None = None,
             at: str | datetime | None = None, allow_stale: bool | None = None, **options: Any) -> "InferenceModel":
        """A ready-to-run ONNX Runtime model for ``ref``, after checking its sha256.

        ``sha256`` pins the content: the full digest (or a prefix of 12+ hex digits, optionally after
        ``sha256:``) that the artifact ``ref`` resolves to must have; any other artifact is refused with
        :class:`~zoo.errors.IntegrityError` naming both digests, before a session is created.
        ``at`` loads what ``ref`` meant at that time (see :meth:`resolve`).

        When a shared store's service is unreachable (:class:`~zoo.errors.StoreUnavailable`), the local
        cache serves a content-pinned ref, and other refs only with ``allow_stale=True`` (default:
        ``ZOO_OFFLINE``), as :mod:`zoo._offline` describes.
        """
        from . import _offline
        from .errors import StoreUnavailable

        pinned = parse_digest(sha256, ref=sha256) if sha256 is not None else None
        cache = getattr(self._blobs, "cache", None)
        try:
            version = ref if isinstance(ref, ModelVersion) else self.resolve(ref, at=at)
            if pinned is not None and not pinned.matches(version.sha256):
                raise IntegrityError(
                    f"{version.ref} is not the pinned artifact: expected sha256 {pinned.prefix}"
                    f"{'' if len(pinned.prefix) == 64 else '...'}. Received: sha256 {version.sha256}",
                    hint=f"load the pinned content by digest ({version.name}@{pinned}), or update the pin if "
                         f"{version.ref} is the artifact you now want")
            path = self.path(version)
        except StoreUnavailable as exc:
            version, path = _offline.degraded(cache, self.location, ref, pinned, allow_stale, exc)
        else:
            _offline.remember(cache, self.location, ref, version)
        from .runtime import InferenceModel

        return InferenceModel(path, provider=provider, version=version, **options)

    # ------------------------------------------------------------------ aliases and tags: the only things that move

    def set_alias(self, ref: str, alias: str, *, reason: str | None = None, force: bool = False) -> ModelVersion:
        """Point ``alias`` of the model at the version ``ref`` means (moving it if it pointed elsewhere).

        The move is appended to the alias's history (who, when, from, to, ``reason``) in the same
        transaction; setting it where it already points records nothing. A gated alias (see
        :meth:`set_policy`) moves only to a version whose reports meet its policy: otherwise
        :class:`~zoo.errors.GateRefused` names each unmet requirement, and a ``gate.refused`` event is
        logged. ``force`` (with a ``reason``) overrides; the history records both and the verdict.
        """
        validate_alias(alias)
        from ._promotion import gate, refusal

        why = _reason(reason)
        if force and not why:
            raise InvalidInput("Expected a reason for a forced move. Received: none",
                               hint="e.g. --force --reason 'hotfix: prod model crashes on grayscale input'")
        parsed = self._parse(ref)
        with self._write() as txn:
            version = resolve(txn, parsed, location=self.location)
            verdict = gate(txn, version, alias)
            refused = verdict if verdict is not None and not verdict.passed and not force else None
            if refused is not None:  # nothing moves; the refusal is logged (committed) and then raised
                txn.add_event("gate.refused", f"{version.name}@{alias}", {"name": version.name, "alias": alias, **refused.to_dict()})
            else:
                txn.set_alias(version.name, alias, version.version, reason=why, forced=verdict is not None and force
                              and not verdict.passed, policy=None if verdict is None else verdict.to_dict())
                moved = txn.get(version.name, version.version) or version
        if refused is not None:
            raise refusal(refused, alias)
        return moved

    def set_policy(self, name: str, alias: str, require: "Sequence[str] | None") -> "Policy | None":
        """Gate ``name@alias``: the requirements (:mod:`zoo.gates` syntax) a version's reports must meet
        before the alias may point at it. None or ``[]`` removes the gate."""
        from .gates import Policy

        validate_name(name)
        validate_alias(alias)
        if require is not None and (isinstance(require, str) or not isinstance(require, Sequence)):
            raise InvalidInput(f"Expected the requirements as a list of strings. Received: {received(require)}",
                               hint="e.g. ['parity', 'eval.top1 >= prod - 0.5%']")
        policy = Policy.parse(name, alias, require) if require else None
        with self._write() as txn:
            if not txn.versions(name):
                raise no_model(txn, name, location=self.location)
            txn.set_policy(name, alias, [r.text for r in policy.requirements] if policy else None)
        return policy

    def policies(self, name: str | None = None) -> "builtins.list[Policy]":
        """Every alias policy (of model ``name``), by model and alias."""
        from .gates import Policy

        with self._read() as txn:
            return [Policy.parse(n, a, r) for n, a, r in txn.policies(name)]

    def check_gate(self, ref: str | ModelVersion, alias: str) -> "GateResult | None":
        """What moving ``alias`` to ``ref`` would meet and miss now (None: the alias has no policy); moves nothing."""
        validate_alias(alias)
        from ._promotion import gate

        parsed = self._parse(ref)
        with self._read() as txn:
            return gate(txn, resolve(txn, parsed, location=self.location), alias)

    # ------------------------------------------------------------------ events and webhooks

    def events(self, *, after: int = 0, limit: int = 1000) -> "builtins.list[tuple[int, dict[str, Any]]]":
        """The event log after log id ``after``: (log id, CloudEvent), oldest first."""
        with self._read() as txn:
            return txn.events(after=after, limit=limit)

    def add_webhook(self, url: str, *, secret: str | None = None, types: "Sequence[str]" = ()) -> int:
        """POST every later event (of ``types``; default all) to ``url``, signed with ``secret``; its id."""
        from ._promotion import check_webhook_url
        from .events import EVENT_TYPES

        bad = [t for t in types if t not in EVENT_TYPES]
        if bad:
            raise InvalidInput(f"Expected event types among {', '.join(EVENT_TYPES)}. Received: {', '.join(map(repr, bad))}")
        with self._write() as txn:
            return txn.add_webhook(check_webhook_url(url), secret or None, list(dict.fromkeys(types)))

    def webhooks(self) -> "builtins.list[dict[str, Any]]":
        with self._read() as txn:
            return txn.webhooks()

    def remove_webhook(self, number: int) -> None:
        with self._write() as txn:
            if not txn.delete_webhook(number):
                raise NotFound(f"No webhook {number} in {self.location}", hint="`zoo events webhooks` lists them")

    def deliver(self, *, budget_s: float | None = None) -> dict[str, int]:
        """Send every due webhook delivery (retries wait for their back-off); counts delivered and failed."""
        from ._promotion import deliver

        return deliver(self._write, budget_s=budget_s)

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every move of ``alias`` of model ``name`` (or of all its aliases), oldest first: append-only,
        written in the transaction of the move. A model with no version and no history is NotFound."""
        validate_name(name)
        if alias is not None:
            validate_alias(alias)
        with self._read(name) as txn:
            events = txn.alias_history(name, alias)
            if not events and not txn.versions(name):
                raise no_model(txn, name, location=self.location)
            return events

    def remove_alias(self, name: str, alias: str, *, version: int | None = None, reason: str | None = None) -> None:
        """Remove ``alias`` of model ``name``; with ``version``, only if the alias points at that version
        (:class:`~zoo.errors.Conflict` otherwise, naming where it points). Recorded in its history."""
        validate_name(name)
        validate_alias(alias)
        why = _reason(reason)
        with self._write() as txn:
            target = txn.alias_target(name, alias)
            if target is None:
                if not txn.versions(name):
                    raise no_model(txn, name, location=self.location)
                raise NotFound(f"Model {name!r} has no alias {alias!r}", hint=f"`zoo show {name}` lists its aliases")
            if version is not None and target != version:
                raise Conflict(f"Alias {name}@{alias} points at {name}@{target}, not at {name}@{version}; it was kept",
                               hint=f"zoo alias {name}@{target} {alias} --delete removes it")
            txn.delete_alias(name, alias, reason=why)

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> ModelVersion:
        tag_map = validate_tags(tags)
        parsed = self._parse(ref)
        with self._write() as txn:
            version = resolve(txn, parsed, location=self.location)
            if tag_map:
                txn.set_tags(version.name, version.version, tag_map)
            return txn.get(version.name, version.version) or version

    def remove_tag(self, ref: str, key: str) -> ModelVersion:
        validate_tag_key(key)
        parsed = self._parse(ref)
        with self._write() as txn:
            version = resolve(txn, parsed, location=self.location)
            if not txn.delete_tag(version.name, version.version, key):
                raise NotFound(f"{version.ref} has no tag {key!r}",
                               hint=("its tags: " + ", ".join(sorted(version.tags))) if version.tags else "it has no tags")
            return txn.get(version.name, version.version) or version

    # ------------------------------------------------------------------ delete (explicit)

    def remove(self, ref: str, *, force: bool = False) -> ModelVersion:
        """Delete one version (with its tags and reports). Its bytes go only when no version of any model
        uses them. The number is not reused. While aliases point at it, :class:`~zoo.errors.Conflict`
        names them, unless ``force`` (which removes them with it)."""
        parsed = self._parse(ref)
        with self._write() as txn:
            version = resolve(txn, parsed, location=self.location)
            if version.aliases and not force:
                names = ", ".join(f"{version.name}@{a}" for a in version.aliases)
                raise Conflict(f"{version.ref} is what {names} point{'s' if len(version.aliases) == 1 else ''} at; "
                               "it was not deleted", hint=f"move or delete the alias first (zoo alias {version.name}@N "
                               f"{version.aliases[0]}), or pass --force to delete the version and its aliases")
            txn.delete_version(version.name, version.version)
        # A second transaction: deleting bytes before the row's removal is committed could leave a row
        # without bytes after a crash; this way a crash leaves at most an orphan object, which
        # `zoo gc` lists.
        with self._write() as txn:
            if not txn.digest_in_use(version.sha256):
                self._blobs.delete(version.sha256)
        return version

    # ------------------------------------------------------------------ integrity

    def verify(self, ref: str | None = None) -> builtins.list[VerifyResult]:
        """Recompute the sha256 of every file of every version (or of ``ref`` only), ignoring any cache.

        Reads only: it repairs and deletes nothing (so it works on a read-only store). Artifacts no
        version references are listed by :meth:`gc`.
        """
        versions = self.list() if ref is None else [self.resolve(ref)]
        results = []
        for v in versions:
            problems = self._blobs.problems(v.sha256, v.files, use_cache=False)
            results.append(VerifyResult(name=v.name, version=v.version, ok=not problems,
                                        problem="; ".join(problems) or None, path=self._blobs.locate(v.sha256)))
        return results

    def gc(self, *, older_than_s: float = CRASH_WINDOW_S, delete: bool = False) -> builtins.list[Orphan]:
        """Artifacts no version references, published more than ``older_than_s`` seconds ago.

        Lists only, unless ``delete``: then, under the write lock and after the store's identity
        check, exactly the artifacts found unreferenced at that moment are deleted and returned.
        """
        if not older_than_s >= 0:
            raise InvalidInput(f"Expected a minimum age >= 0 seconds. Received: {received(older_than_s)}",
                               hint=f"the default is {CRASH_WINDOW_S:.0f} s")
        if not delete:
            with self._read() as txn:
                in_use = txn.digests()
            return self._blobs.orphans(in_use, older_than_s=older_than_s)
        with self._write() as txn:
            found = self._blobs.orphans(txn.digests(), older_than_s=older_than_s)
            for orphan in found:
                self._blobs.delete(orphan.digest)
        return found

    # ------------------------------------------------------------------ reports (append-only)

    def attach(self, ref: str | ModelVersion, kind: str, payload: dict) -> Report:
        """Append a result (parity, bench, ...) to a version; never changes the version itself."""
        validate_kind(kind)
        if not isinstance(payload, Mapping):
            raise InvalidInput(f"Expected a report payload as a dict. Received: {received(payload)}")
        body = json.loads(json_prop(payload, "the report payload"))
        parsed = self._parse(ref)
        with self._write() as txn:
            version = resolve(txn, parsed, location=self.location)
            return txn.add_report(Report(name=version.name, version=version.version, kind=kind, created_at=_now(), payload=body))

    def reports(self, ref: str | ModelVersion, kind: str | None = None) -> builtins.list[Report]:
        if kind is not None:
            validate_kind(kind)
        parsed = self._parse(ref)
        with self._read() as txn:
            version = resolve(txn, parsed, location=self.location)
            return txn.reports(version.name, version.version, kind)
