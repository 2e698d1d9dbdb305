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
import json
import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._artifact_meta import check_meta, json_prop, metadata_props, strip_zoo_keys
from ._names import received, validate_alias, validate_kind, validate_name, validate_tag_key, validate_tags
from ._refs import Ref, parse_digest, parse_ref
from ._resolve import no_model, resolve
from ._store_guard import StoreGuard
from .errors import Conflict, IntegrityError, InvalidInput, NotFound
from .records import ModelVersion, Record, Report, VersionMeta, _jsonable
from .store import BlobStore, MetadataStore, MetadataTxn, Orphan, open_local

if TYPE_CHECKING:
    from .runtime import InferenceModel

__all__ = ["CRASH_WINDOW_S", "Registry", "RegisterResult", "VerifyResult", "metadata_props"]

CRASH_ENV = "ZOO_TEST_CRASH_AT"  # test-only: SIGKILL ourselves at a named step of register()
CRASH_POINTS = ("after_tmp_write", "after_rename", "before_commit", "after_commit")
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


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


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
            return resolve(txn, parsed, location=self.location)

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
             allow_stale: bool | None = None, **options: Any) -> "InferenceModel":
        """A ready-to-run ONNX Runtime model for ``ref``, after checking its sha256.

        ``sha256`` pins the content: the full digest (or a prefix of 12+ hex digits, optionally after
        ``sha256:``) that the artifact ``ref`` resolves to must have; any other artifact is refused with
        :class:`~zoo.errors.IntegrityError` naming both digests, before a session is created.

        When a shared store's service is unreachable (:class:`~zoo.errors.StoreUnavailable`), the local
        cache serves a content-pinned ref, and other refs only with ``allow_stale=True`` (default:
        ``ZOO_OFFLINE``), as :mod:`zoo._offline` describes.
        """
        from . import _offline
        from .errors import StoreUnavailable

        pinned = parse_digest(sha256, ref=sha256) if sha256 is not None else None
        cache = getattr(self._blobs, "cache", None)
        try:
            version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
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

    def set_alias(self, ref: str, alias: str) -> ModelVersion:
        """Point ``alias`` of the model at the version ``ref`` means (moving it if it pointed elsewhere)."""
        validate_alias(alias)
        parsed = self._parse(ref)
        with self._write() as txn:
            version = resolve(txn, parsed, location=self.location)
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
                    raise no_model(txn, name, location=self.location)
                raise NotFound(f"Model {name!r} has no alias {alias!r}", hint=f"`zoo show {name}` lists its aliases")
            if version is not None and target != version:
                raise Conflict(f"Alias {name}@{alias} points at {name}@{target}, not at {name}@{version}; it was kept",
                               hint=f"zoo alias {name}@{target} {alias} --delete removes it")
            txn.delete_alias(name, alias)

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
