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
"""
from __future__ import annotations

import builtins
import difflib
import json
import os
import re
import signal
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _distribution
from ._names import received, validate_alias, validate_kind, validate_name, validate_tag_key, validate_tags
from ._refs import FRAMEWORK_PATTERN, Digest, Ref, parse_digest, parse_ref
from .errors import Conflict, IntegrityError, InvalidInput, InvalidReference, NotFound, StoreError
from .records import ModelVersion, Record, Report, VersionMeta, _jsonable
from .store import LEGACY_STORE_ID, BlobStore, MetadataStore, MetadataTxn, Orphan, StoreIdentity, open_local

if TYPE_CHECKING:
    from .runtime import InferenceModel

__all__ = ["CRASH_WINDOW_S", "Registry", "RegisterResult", "VerifyResult", "metadata_props"]

CRASH_ENV = "ZOO_TEST_CRASH_AT"  # test-only: SIGKILL ourselves at a named step of register()
CRASH_POINTS = ("after_tmp_write", "after_rename", "before_commit", "after_commit")
ZOO_KEY_PREFIX = "zoo."
CRASH_WINDOW_S = 3600.0  # gc keeps unreferenced artifacts younger than this: a writer may still be committing
_RECOVER_HINT = ("restore registry.db from a backup of this store; zoo refuses to start a new database over existing "
                 "artifacts, and `zoo verify` / `zoo gc` delete nothing while this is unresolved")


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


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def zoo_version() -> str:
    return _distribution.version()


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Expected {what} to be JSON-serialisable. Received: {received(value)}",
                           hint=f"use str, int, float, bool, lists and dicts ({exc})") from None


def metadata_props(meta: VersionMeta) -> dict[str, str]:
    """The ``zoo.*`` metadata_props embedded in a registered artifact.

    Deterministic, and free of registry facts (name, version number, time): the same model and
    meta always give the same bytes, which is what makes re-registration dedupe.
    """
    props: dict[str, str] = {}
    for field in ("arch", "framework", "framework_version", "plugin_version", "exporter", "exporter_version"):
        value = getattr(meta, field)
        if value is not None:
            props[ZOO_KEY_PREFIX + field] = str(value)
    if meta.params is not None:
        props["zoo.params"] = _json(meta.params, "params")
    if meta.num_classes is not None:
        props["zoo.num_classes"] = str(int(meta.num_classes))
    if meta.preprocessing is not None:
        props["zoo.preprocessing"] = _json(meta.preprocessing, "preprocessing")
    if meta.provenance:
        props["zoo.provenance"] = _json(meta.provenance, "provenance")
    if meta.transform is not None:
        props["zoo.transform"] = _json(meta.transform, "transform")
    if meta.labels is not None:
        props["zoo.labels"] = _json(meta.labels, "labels")
    props["zoo.version"] = zoo_version()
    return props


def _check_meta(meta: VersionMeta) -> None:
    if meta.framework is not None and not (isinstance(meta.framework, str) and re.fullmatch(FRAMEWORK_PATTERN, meta.framework, re.ASCII)):
        raise InvalidInput(f"Expected a framework (plugin) name matching {FRAMEWORK_PATTERN}. Received: {received(meta.framework)}",
                           hint="use the plugin's name, e.g. 'torch' or 'tensorflow'")
    if meta.arch is not None:
        validate_name(meta.arch, kind="an architecture name")
    if meta.num_classes is not None and (not isinstance(meta.num_classes, int) or meta.num_classes < 1):
        raise InvalidInput(f"Expected num_classes >= 1. Received: {received(meta.num_classes)}")


def _strip_zoo_keys(model: Any) -> None:
    """Drop stale ``zoo.*`` entries (a file copied out of a store) so the bytes say only what we record."""
    entries = [(e.key, e.value) for e in model.metadata_props]
    kept = [(k, v) for k, v in entries if not k.startswith(ZOO_KEY_PREFIX)]
    if len(kept) != len(entries):
        del model.metadata_props[:]
        for key, value in kept:
            model.metadata_props.add(key=key, value=value)


class Registry:
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

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def close(self) -> None:
        self._meta.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ identity

    def _check_identity(self) -> StoreIdentity | None:
        """The store's identity; None when no store exists here yet. Raises StoreError when the two
        halves disagree, or metadata is missing or empty next to artifacts (never "a new registry")."""
        return self._inspect()[0]

    def _inspect(self) -> tuple[StoreIdentity | None, bool]:
        """(identity, complete): ``complete`` is False while the marker or the metadata's record of the
        id is missing (a store to create, a legacy store to stamp, a lost marker to rewrite)."""
        marker = self._blobs.identity()
        recorded = self._meta.identity()
        if recorded is None:
            if self._has_objects():
                raise StoreError(
                    f"The store {self.location!r} holds artifacts, but its database {self._meta.location!r} is "
                    f"missing or empty" + (f" (store id {marker.store_id})" if marker else ""), hint=_RECOVER_HINT)
            return None, False  # nothing to lose: a store being created, or no store at all
        if recorded.store_id == LEGACY_STORE_ID:
            if self._has_objects():
                with self._meta.read() as txn:
                    empty = not txn.models()
                if empty:
                    raise StoreError(
                        f"The store {self.location!r} holds artifacts, but its database {self._meta.location!r} "
                        "has no version at all (was it recreated?)", hint=_RECOVER_HINT)
            return marker or recorded, False
        if marker is None:
            return recorded, False  # the marker was lost: the database vouches; the next write rewrites it
        if recorded.store_id != marker.store_id:
            raise StoreError(
                f"The database {self._meta.location!r} belongs to store {recorded.store_id}, but the artifacts at "
                f"{self._blobs.location!r} to store {marker.store_id}", hint=_RECOVER_HINT)
        return marker, True

    def _has_objects(self) -> bool:
        return next(iter(self._blobs.digests()), None) is not None

    def _unborn(self) -> bool:
        """True for an existing folder where no store has been created yet (the clone's empty
        ``artifacts/``): listings show it as empty. A path that does not exist stays NotFound, so a
        typo in ``--store`` / ``ZOO_STORE`` is never mistaken for an empty registry."""
        return self._identity is None and self.root.is_dir() and self._check_identity() is None

    def _need_store(self, looking_for: str | None = None) -> None:
        """Before a read: a store must exist (a write by another process may have created it since open)."""
        if self._identity is None:
            self._identity = self._check_identity()
            if self._identity is None:
                wanted = f" (looking for {looking_for!r})" if looking_for else ""
                raise NotFound(f"No zoo store at {self.location!r}{wanted}",
                               hint="check --store / ZOO_STORE (default ./artifacts); `zoo export` or `zoo register` "
                                    "creates a store")

    def _prepare_write(self) -> None:
        """Before a write: the store is writable, is what it says it is, and exists (created if not)."""
        self.ensure_writable()
        identity, complete = self._inspect()
        if not complete:
            wanted = identity if identity is not None and identity.store_id != LEGACY_STORE_ID else StoreIdentity(uuid.uuid4().hex)
            self._meta.create(self._blobs.create(wanted))
            identity, complete = self._inspect()
            assert complete, "a store just created must be complete"
        self._identity = identity

    @property
    def read_only(self) -> bool:
        """True for a store opened read-only (reads work; writes raise StoreError)."""
        return self._meta.read_only or self._blobs.read_only

    def ensure_writable(self) -> None:
        """Raise :class:`~zoo.errors.StoreError` now if a write would be refused (a read-only store, a
        missing or foreign database): lets long work (an export) fail before it starts. Writes nothing."""
        if self.read_only:
            why = getattr(self._meta, "read_only_reason", None)  # a store that can say what is missing says it
            raise StoreError(why or f"The store {self.location!r} is read-only: it serves reads, not writes",
                             hint="run this command where the store is writable, or on a writable copy of it")
        self._check_identity()

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
        _check_meta(meta)
        props = metadata_props(meta)

        from . import onnx as onnx_tools

        checked = onnx_tools.check_model_file(path)
        facts = onnx_tools.inspect(checked, input_size=input_size)
        _strip_zoo_keys(checked.model)
        onnx_tools.embed_metadata(checked.model, props)
        data = checked.model.SerializeToString(deterministic=True)
        # Copied through fds of the very files checked (see zoo.onnx.ExternalFile), not by path.
        extra = {f.relpath: f.open for f in checked.external}
        del checked

        self._prepare_write()
        staged = self._blobs.stage(data, extra)
        del data
        published, orphaned = False, False
        try:
            _crash_point("after_tmp_write")
            with self._write() as txn:
                existing = txn.find(name, staged.digest)
                published = True  # from here on a failure may leave the object in place: see below
                self._blobs.publish(staged)  # for an existing version: repairs a corrupt copy, if any
                if existing is not None:
                    if tag_map:
                        txn.set_tags(existing.name, existing.version, tag_map)
                        existing = txn.get(existing.name, existing.version) or existing
                    return RegisterResult(version=existing, created=False)
                _crash_point("after_rename")
                version = txn.add_version(ModelVersion(
                    name=name, version=0, sha256=staged.digest, size_bytes=staged.size, created_at=_now(),
                    signature=facts.signature, opset=facts.opset, onnx_params=facts.onnx_params, macs=facts.macs,
                    arch=meta.arch, framework=meta.framework, framework_version=meta.framework_version,
                    plugin_version=meta.plugin_version, exporter=meta.exporter, exporter_version=meta.exporter_version,
                    params=meta.params, num_classes=meta.num_classes, preprocessing=meta.preprocessing,
                    provenance=_jsonable(dict(meta.provenance)), files=staged.files, tags=tag_map,
                    transform=meta.transform, labels=meta.labels,
                ))
                _crash_point("before_commit")
            _crash_point("after_commit")
            return RegisterResult(version=version, created=True)
        except BaseException:
            if published:  # the commit failed (disk full, I/O error): take the object back unless a version uses it
                orphaned = not self._unpublish(staged.digest)
            raise
        finally:
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

    def list(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None) -> list[ModelVersion]:
        """Versions sorted by name and number, optionally of one model, framework and/or architecture."""
        if name is not None:
            validate_name(name)
        if framework is not None:
            from .plugins import canonical_name

            framework = canonical_name(framework)
        if self._unborn():
            return []
        with self._read() as txn:
            return txn.versions(name, framework=framework, arch=arch)

    def models(self) -> builtins.list[str]:
        if self._unborn():
            return []
        with self._read() as txn:
            return txn.models()

    def resolve(self, ref: str, *, framework: str | None = None) -> ModelVersion:
        """The version ``ref`` means now (see :mod:`zoo._refs` for the grammar)."""
        parsed = self._parse(ref, framework)
        with self._read(str(parsed)) as txn:
            return self._resolve(txn, parsed)

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

    def _resolve(self, txn: MetadataTxn, ref: Ref) -> ModelVersion:
        name, fw = ref.name, ref.framework
        if ref.digest is not None:
            return self._resolve_digest(txn, ref, ref.digest)
        if ref.version is not None:
            version = txn.get(name, ref.version)
            if version is None:
                known = txn.versions(name)
                if not known:
                    raise self._no_model(txn, name)
                raise NotFound(f"Model {name!r} has no version {ref.version}",
                               hint="it has versions " + ", ".join(str(v.version) for v in known))
            if fw is not None and version.framework != fw:
                raise NotFound(f"{version.ref} was built by {_fw(version.framework)}, not by {fw!r}",
                               hint=f"use {version.ref} without ':{fw}', or {name}:{fw} for the newest {fw} version")
            return version
        if ref.alias is not None:
            number = txn.alias_target(name, ref.alias)
            if number is None:
                known = txn.versions(name)
                if not known:
                    raise self._no_model(txn, name)
                aliases = sorted({a for v in known for a in v.aliases})
                raise NotFound(f"Model {name!r} has no alias {ref.alias!r}",
                               hint=("its aliases: " + ", ".join(aliases)) if aliases else
                               f"set one with `zoo alias {name}@N {ref.alias}`")
            version = txn.get(name, number)
            assert version is not None  # the foreign key guarantees it
            if fw is not None and version.framework != fw:
                raise NotFound(
                    f"Alias {name}@{ref.alias} points at {version.ref}, built by {_fw(version.framework)}, not by {fw!r}",
                    hint=f"use {name}@{ref.alias}, or {name}:{fw} for the newest {fw} version",
                )
            return version
        version = txn.latest(name, framework=fw)
        if version is None:
            known = txn.versions(name)
            if not known:
                raise self._no_model(txn, name)
            frameworks = sorted({_fw(v.framework) for v in known})
            raise NotFound(f"Model {name!r} has no version built by {fw!r}", hint="it has versions built by " + ", ".join(frameworks))
        return version

    def _resolve_digest(self, txn: MetadataTxn, ref: Ref, digest: Digest) -> ModelVersion:
        """The one version of ``ref.name`` whose artifact sha256 starts with ``digest`` (a full digest is
        one indexed lookup; a prefix scans the model's versions). Ambiguous: InvalidReference listing them."""
        name, fw = ref.name, ref.framework
        if len(digest.prefix) == 64:
            found = txn.find(name, digest.prefix)
            matches = [found] if found is not None else []
        else:
            matches = [v for v in txn.versions(name) if digest.matches(v.sha256)]
        if not matches:
            known = txn.versions(name)
            if not known:
                raise self._no_model(txn, name)
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
            raise NotFound(f"{name}@{digest} is {version.ref}, built by {_fw(version.framework)}, not by {fw!r}",
                           hint=f"use {name}@{digest} without ':{fw}'")
        return version

    def _no_model(self, txn: MetadataTxn, name: str) -> NotFound:
        close = difflib.get_close_matches(name, txn.models(), n=3)
        hint = ("did you mean " + " or ".join(repr(c) for c in close) + "?") if close else "`zoo list` shows the registered models"
        return NotFound(f"No model named {name!r} in the registry at {self.location!r}", hint=hint)

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
             **options: Any) -> "InferenceModel":
        """A ready-to-run ONNX Runtime model for ``ref``, after checking its sha256.

        ``sha256`` pins the content: the full digest (or a prefix of 12+ hex digits, optionally after
        ``sha256:``) that the artifact ``ref`` resolves to must have; any other artifact is refused with
        :class:`~zoo.errors.IntegrityError` naming both digests, before a session is created.
        """
        pinned = parse_digest(sha256, ref=sha256) if sha256 is not None else None
        version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        if pinned is not None and not pinned.matches(version.sha256):
            raise IntegrityError(
                f"{version.ref} is not the pinned artifact: expected sha256 {pinned.prefix}"
                f"{'' if len(pinned.prefix) == 64 else '...'}. Received: sha256 {version.sha256}",
                hint=f"load the pinned content by digest ({version.name}@{pinned}), or update the pin if "
                     f"{version.ref} is the artifact you now want")
        path = self.path(version)
        from .runtime import InferenceModel

        return InferenceModel(path, provider=provider, version=version, **options)

    # ------------------------------------------------------------------ aliases and tags: the only things that move

    def set_alias(self, ref: str, alias: str) -> ModelVersion:
        """Point ``alias`` of the model at the version ``ref`` means (moving it if it pointed elsewhere)."""
        validate_alias(alias)
        parsed = self._parse(ref)
        with self._write() as txn:
            version = self._resolve(txn, parsed)
            txn.set_alias(version.name, alias, version.version)
            return txn.get(version.name, version.version) or version

    def remove_alias(self, name: str, alias: str, *, version: int | None = None) -> None:
        """Remove ``alias`` of model ``name``; with ``version``, only if the alias points at that version
        (:class:`~zoo.errors.Conflict` otherwise, naming where it points)."""
        validate_name(name)
        validate_alias(alias)
        with self._write() as txn:
            target = txn.alias_target(name, alias)
            if target is None:
                if not txn.versions(name):
                    raise self._no_model(txn, name)
                raise NotFound(f"Model {name!r} has no alias {alias!r}", hint=f"`zoo show {name}` lists its aliases")
            if version is not None and target != version:
                raise Conflict(f"Alias {name}@{alias} points at {name}@{target}, not at {name}@{version}; it was kept",
                               hint=f"zoo alias {name}@{target} {alias} --delete removes it")
            txn.delete_alias(name, alias)

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> ModelVersion:
        tag_map = validate_tags(tags)
        parsed = self._parse(ref)
        with self._write() as txn:
            version = self._resolve(txn, parsed)
            if tag_map:
                txn.set_tags(version.name, version.version, tag_map)
            return txn.get(version.name, version.version) or version

    def remove_tag(self, ref: str, key: str) -> ModelVersion:
        validate_tag_key(key)
        parsed = self._parse(ref)
        with self._write() as txn:
            version = self._resolve(txn, parsed)
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
            version = self._resolve(txn, parsed)
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
        body = json.loads(_json(payload, "the report payload"))
        parsed = self._parse(ref)
        with self._write() as txn:
            version = self._resolve(txn, parsed)
            return txn.add_report(Report(name=version.name, version=version.version, kind=kind, created_at=_now(), payload=body))

    def reports(self, ref: str | ModelVersion, kind: str | None = None) -> builtins.list[Report]:
        if kind is not None:
            validate_kind(kind)
        parsed = self._parse(ref)
        with self._read() as txn:
            version = self._resolve(txn, parsed)
            return txn.reports(version.name, version.version, kind)


def _fw(framework: str | None) -> str:
    return repr(framework) if framework else "no framework (external ONNX)"
