"""The two interfaces the registry is built on: metadata (rows) and blobs (content-addressed bytes).

:class:`zoo._registry.Registry` talks only to these, so a PostgreSQL metadata store or an object-store
blob store can replace the embedded SQLite + files pair without touching any caller.

The reliability promises rest on one rule that every implementation pair must keep:
**a blob is published only inside a metadata write transaction, and that transaction commits the row
that references it.** So while a writer holds the write transaction, any published blob that no
committed row references is an orphan of a crashed writer and may be deleted.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..records import ModelVersion, Report, StoredFile

MODEL_FILE = "model.onnx"  # the model's name inside its object folder; external data sits beside it
# An external-data source to copy: a path, or a callable returning a read-only fd of it (stage closes it).
Source = Path | Callable[[], int]


class MetadataTxn(Protocol):
    """One transaction on the metadata store. Write methods exist only inside ``MetadataStore.write()``.

    Versions come back with their current ``aliases`` and ``tags`` filled in.
    """

    def get(self, name: str, version: int) -> ModelVersion | None: ...

    def find(self, name: str, sha256: str) -> ModelVersion | None:
        """The version of ``name`` whose artifact digest is ``sha256`` (dedupe)."""

    def latest(self, name: str, *, framework: str | None = None) -> ModelVersion | None: ...

    def versions(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None) -> list[ModelVersion]:
        """Sorted by name, then version number."""

    def models(self) -> list[str]:
        """Names that have at least one version, sorted."""

    def alias_target(self, name: str, alias: str) -> int | None: ...

    def digest_in_use(self, sha256: str) -> bool:
        """Whether any version of any model references this artifact digest."""

    def digests(self) -> set[str]: ...

    def reports(self, name: str, version: int, kind: str | None = None) -> list[Report]:
        """In the order they were attached."""

    # -- writes
    def add_version(self, record: ModelVersion) -> ModelVersion:
        """Insert ``record`` as the next version number of its model (``record.version`` is ignored).

        Numbers start at 1, increase by one, and are never reused, even after a removal.
        """

    def delete_version(self, name: str, version: int) -> None:
        """Delete the row and everything hanging off it (aliases, tags, reports)."""

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_alias(self, name: str, alias: str) -> bool: ...

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None: ...

    def delete_tag(self, name: str, version: int, key: str) -> bool: ...

    def add_report(self, report: Report) -> Report: ...


class MetadataStore(Protocol):
    """Versions, aliases, tags and reports, with transactions that are safe across processes."""

    location: str

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
    """Immutable, content-addressed artifacts: one folder (or prefix) per digest."""

    location: str

    def stage(self, model: bytes, extra: Mapping[str, Source]) -> Staged:
        """Write ``model`` as :data:`MODEL_FILE` and copy each ``extra`` source file to its relative
        path beside it, durably, hashing the written bytes. Called *outside* any transaction. A
        callable source is called once and read through the fd it returns (no path is reopened).

        The digest of a single-file artifact is the file's sha256; with extra files, it is the sha256
        of the manifest ``"<sha256>  <relpath>\\n"`` over all files sorted by relpath (``sha256sum`` format).
        """

    def publish(self, staged: Staged) -> None:
        """Move staged bytes under their digest (inside a metadata write transaction). If the digest
        is already present, its files are checked and any corrupt or missing file is replaced."""

    def discard(self, staged: Staged) -> None:
        """Release the scratch space (after publish, or when the bytes were not needed)."""

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
