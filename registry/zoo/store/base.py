"""The two interfaces the registry is built on: metadata (rows) and blobs (content-addressed bytes).

:class:`zoo._registry.Registry` talks only to these, so a PostgreSQL metadata store or an object-store
blob store can replace the embedded SQLite + files pair without touching any caller.

The reliability promises rest on one rule that every implementation pair must keep:
**a blob is published only inside a metadata write transaction, and that transaction commits the row
that references it.** So while a writer holds the write transaction, any published blob that no
committed row references is an orphan of a crashed writer and may be deleted.

That rule is only as good as the metadata it trusts, so a store **knows it is a store**: when it is
created, both halves record the same :class:`StoreIdentity` (a random id and a format version), and
:class:`~zoo._registry.Registry` compares them on open and under every write lock. A metadata store
that is missing, empty or another store's, next to published blobs, is a :class:`~zoo.errors.StoreError`,
never "a new, empty registry": nothing is deleted on the word of metadata the store cannot vouch for.

Alias moves are history: every set, move and delete of an alias appends an :class:`~zoo.records.AliasEvent`
row in the transaction that moves it (``MetadataTxn.set_alias`` / ``delete_alias`` / ``delete_version``
write it; nothing else can move an alias), and the database refuses UPDATE and DELETE of those rows.
On PostgreSQL the same transaction sends ``NOTIFY zoo_alias, '<json>'`` (the event's fields plus
``schema``; delivered at commit, never for a rolled-back move): a server following an alias
``LISTEN``s on channel ``zoo_alias`` and filters on ``schema``, ``name`` and ``alias``.

Reads never create or write anything. A store that cannot be written (a read-only mount, another
user's folder) is opened with ``read_only`` set: it serves every read, and writes raise
:class:`~zoo.errors.StoreError` saying it is read-only.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..records import AliasEvent, ModelVersion, Report, StoredFile, VersionRow

if TYPE_CHECKING:
    from ._sql import Filters

MODEL_FILE = "model.onnx"  # the model's name inside its object folder; external data sits beside it
STORE_FORMAT_VERSION = 1
LEGACY_STORE_ID = ""  # metadata written before store identities existed (adopted by the next write)


@dataclass(frozen=True)
class StoreIdentity:
    """What a store is: recorded once by both halves when the store is created, compared on every open.

    ``store_id`` is 32 random hex digits; :data:`LEGACY_STORE_ID` marks a registry made before
    identities existed, which the next write stamps with the blob store's id.
    """

    store_id: str
    format_version: int = STORE_FORMAT_VERSION


@dataclass(frozen=True)
class Orphan:
    """A published artifact no version references (see :meth:`BlobStore.orphans`)."""

    digest: str
    size: int  # bytes, all files of the artifact
    age_s: float  # seconds since it was published
    location: str  # where it lives, for people

# An external-data source to copy: a path, or a callable returning a read-only fd of it (stage closes it).
Source = Path | Callable[[], int]


class MetadataTxn(Protocol):
    """One transaction on the metadata store. Write methods exist only inside ``MetadataStore.write()``.

    Versions come back with their current ``aliases`` and ``tags`` filled in.
    """

    def get(self, name: str, version: int) -> ModelVersion | None: ...

    def find(self, name: str, sha256: str) -> ModelVersion | None:
        """The version of ``name`` whose artifact digest is ``sha256`` (dedupe)."""

    def latest(self, name: str, *, framework: str | None = None, created_until: str | None = None) -> ModelVersion | None:
        """The highest-numbered version (built by ``framework``; created at or before ``created_until``)."""

    def versions(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None,
                 filters: Filters | None = None) -> list[ModelVersion]:
        """Sorted by name, then version number; every filter is part of the database query."""

    def rows(self, filters: Filters) -> list[VersionRow]:
        """What :meth:`versions` selects with ``filters``, as a listing's columns: the same versions in the
        same order, read without parsing their records."""

    def models(self) -> list[str]:
        """Names that have at least one version, sorted."""

    def alias_target(self, name: str, alias: str) -> int | None: ...

    def digest_in_use(self, sha256: str) -> bool:
        """Whether any version of any model references this artifact digest."""

    def digests(self) -> set[str]: ...

    def reports(self, name: str, version: int, kind: str | None = None) -> list[Report]:
        """In the order they were attached."""

    def alias_history(self, name: str, alias: str | None = None, *, until: str | None = None,
                      last: bool = False) -> list[AliasEvent]:
        """Events in commit order; ``until``: at or before that ISO time; ``last``: the newest only."""

    # -- writes
    def add_version(self, record: ModelVersion) -> ModelVersion:
        """Insert ``record`` as the next version number of its model (``record.version`` is ignored).

        Numbers start at 1, increase by one, and are never reused, even after a removal.
        """

    def delete_version(self, name: str, version: int, *, reason: str | None = None) -> None:
        """Delete the row and everything hanging off it (tags, reports, aliases: each recorded as deleted)."""

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None, forced: bool = False,
                  policy: Mapping[str, Any] | None = None) -> AliasEvent | None:
        """Point the alias at ``version`` and append its event; None (nothing recorded) if it already did."""

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None, forced: bool = False,
                     policy: Mapping[str, Any] | None = None) -> AliasEvent | None:
        """Delete the alias and append its event; None if there was no such alias."""

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None: ...

    def delete_tag(self, name: str, version: int, key: str) -> bool: ...

    def add_report(self, report: Report) -> Report: ...

    # Gated aliases and events (schema 3; an older schema reads as "no policies, no events, no webhooks").
    # Every write above appends its event (version.created, alias.moved, report.attached) to the append-only
    # log in the same transaction, with one pending delivery per webhook that wants its type; ``emitted``
    # holds the log ids this transaction queued for delivery, for the caller to deliver after the commit.
    emitted: list[int]

    def policy(self, name: str, alias: str) -> list[str] | None: ...

    def policies(self, name: str | None = None) -> list[tuple[str, str, list[str]]]: ...

    def set_policy(self, name: str, alias: str, require: list[str] | None) -> None: ...

    def add_event(self, type_: str, subject: str, data: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def events(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]: ...

    def add_webhook(self, url: str, secret: str | None, types: list[str]) -> int: ...

    def webhooks(self) -> list[dict[str, Any]]: ...

    def delete_webhook(self, number: int) -> bool: ...

    def claim_deliveries(self, now: str, lease_until: str, *, events: list[int] | None = None,
                         limit: int = 100) -> list[tuple[int, int, str, str | None, dict[str, Any], int]]: ...

    def delivery_result(self, event: int, webhook: int, *, at: str, error: str | None, next_at: str) -> None: ...


class MetadataStore(Protocol):
    """Versions, aliases, tags and reports, with transactions that are safe across processes.

    Constructing one touches nothing: no file, table or connection is created until :meth:`create`
    (or a transaction on a store that exists). ``read_only`` is True when the metadata cannot be
    written (read-only mount, another user's files); :meth:`read` works then, :meth:`write` and
    :meth:`create` raise :class:`~zoo.errors.StoreError`, and nothing (no journal, no lock file) is
    written. Driver errors become ``StoreError``; a full disk says "no space left on device"; a
    change refused by the store's own immutability guard (e.g. SQL ``UPDATE`` of a version) becomes
    :class:`~zoo.errors.ImmutableError`; a row that cannot be decoded is a ``StoreError`` naming it.
    """

    location: str

    @property
    def read_only(self) -> bool: ...

    def identity(self) -> StoreIdentity | None:
        """The identity recorded by :meth:`create`, read without writing anything.

        ``None``: no registry here at all (missing, or an empty file). A registry from before
        identities exists returns ``StoreIdentity(LEGACY_STORE_ID)``. Anything else (another
        application's database, a corrupt file, a newer format) raises :class:`~zoo.errors.StoreError`.
        """

    def create(self, identity: StoreIdentity) -> None:
        """Create an empty registry recording ``identity``, or record it in a legacy registry.

        Safe against concurrent creators; a no-op when ``identity`` is recorded already; a
        :class:`~zoo.errors.StoreError` when a different identity is.
        """

    def read(self) -> AbstractContextManager[MetadataTxn]:
        """A consistent snapshot for reading."""

    def write(self) -> AbstractContextManager[MetadataTxn]:
        """An exclusive write transaction (one writer at a time across processes); commits when the
        block exits normally, rolls back on an exception. Waiting for the lock is the store's job:
        a timeout raises :class:`~zoo.errors.StoreError`, never a driver error."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Staged:
    """Bytes written to scratch space, flushed to disk and hashed, waiting to be published."""

    token: str  # identifies the scratch area
    digest: str  # the artifact digest (see BlobStore.stage)
    files: tuple[StoredFile, ...]  # the model file first

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Abandoned:
    """Scratch space left by a writer that died; ``digest`` is what it may have published (or None)."""

    token: str
    digest: str | None


class BlobStore(Protocol):
    """Immutable, content-addressed artifacts: one folder (or prefix) per digest.

    Constructing one touches nothing. ``read_only`` as for :class:`MetadataStore`: reads
    (:meth:`digests`, :meth:`locate`, :meth:`problems`, :meth:`orphans`) work, everything else raises
    :class:`~zoo.errors.StoreError`.
    """

    location: str

    @property
    def read_only(self) -> bool: ...

    def identity(self) -> StoreIdentity | None:
        """The identity marker written by :meth:`create` (``None`` if there is none); read only.

        A marker that cannot be read or is not a zoo store's raises :class:`~zoo.errors.StoreError`.
        """

    def create(self, identity: StoreIdentity) -> StoreIdentity:
        """Create the blob space and write the identity marker unless one exists; return the marker
        as recorded (a concurrent creator may have written its own first: that one wins)."""

    def orphans(self, in_use: AbstractSet[str], *, older_than_s: float) -> list[Orphan]:
        """Published artifacts whose digest is not in ``in_use`` and that were published more than
        ``older_than_s`` seconds ago, oldest first. Lists only; deleting is the caller's decision
        (:meth:`delete`, under the metadata write lock)."""

    def stage(self, model: bytes, extra: Mapping[str, Source]) -> Staged:
        """Write ``model`` as :data:`MODEL_FILE` and copy each ``extra`` source file to its relative
        path beside it, durably, hashing the written bytes. Called *outside* any transaction. A
        callable source is called once and read through the fd it returns (no path is reopened).

        The digest of a single-file artifact is the file's sha256; with extra files, it is the sha256
        of the manifest ``"<sha256>  <relpath>\\n"`` over all files sorted by relpath (``sha256sum`` format).
        """

    def publish(self, staged: Staged) -> None:
        """Move staged bytes under their digest (inside a metadata write transaction). If the digest
        is already present, its files are checked and any corrupt or missing file is replaced.

        If the transaction then fails (a full disk at commit), the caller deletes the digest again
        under a new write lock unless a version uses it; if even that fails, the scratch space's
        recorded intent lets the next writer's :meth:`abandoned` sweep find it."""

    def discard(self, staged: Staged, *, keep_intent: bool = False) -> None:
        """Release the scratch space (after publish, or when the bytes were not needed). With
        ``keep_intent``, leave its record of the digest so that the next writer's :meth:`abandoned`
        sweep deletes that digest if no version uses it (when the caller could not)."""

    def abandoned(self) -> Iterator[Abandoned]:
        """Scratch spaces whose writer is gone (call inside a metadata write transaction)."""

    def clear(self, item: Abandoned) -> None: ...

    def digests(self) -> Iterable[str]:
        """Every published digest."""

    def delete(self, digest: str) -> None:
        """Remove a published artifact (the caller checked that no version uses it)."""

    def locate(self, digest: str, relpath: str = MODEL_FILE) -> Path:
        """Local path of one published file (for ONNX Runtime, which wants a path)."""

    def problems(self, digest: str, files: Sequence[StoredFile], *, use_cache: bool = True) -> list[str]:
        """Recompute hashes; one line per missing or corrupt file naming the file, expected and actual
        sha256. ``use_cache`` allows skipping files already verified whose (size, mtime, ctime, inode)
        are unchanged since; ``False`` always rereads every byte."""
