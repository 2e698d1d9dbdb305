"""The shared pair: PostgreSQL metadata + S3 (or shared-folder) artifacts, opened from a URL.

``zoo store init URL --artifacts s3://bucket/prefix`` creates the schema, gives the store a random
id, records the artifacts location in the database and writes the same id beside the artifacts
(``zoo-store.json``). Opening checks both halves carry the same id, so a database is never paired
with another store's artifacts. Consumers then need only the database URL: the artifacts location
comes from the database unless ``--artifacts`` / ``ZOO_ARTIFACTS`` overrides it (a mirror, or a
shared folder mounted elsewhere).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import InvalidInput, StoreError, StoreUnavailable
from .base import BlobStore
from .cache import ArtifactCache
from .location import ArtifactsURL, parse_artifacts, parse_database
from .postgres import PostgresMetadataStore, StoreInfo

__all__ = ["ARTIFACTS_ENV", "SharedStoreInfo", "SharedStores", "init_shared", "open_shared", "shared_info"]

ARTIFACTS_ENV = "ZOO_ARTIFACTS"
IDENTITY_FILE = "zoo-store.json"


@dataclass(frozen=True)
class SharedStoreInfo:
    store: str  # redacted URL
    store_id: str
    schema_version: int
    artifacts: str
    created_at: str
    writable: bool
    cache: str
    done: str | None = None  # for init: "created", "migrated" or "unchanged"
    database_service: str = "reachable"  # for info: "reachable", or "unreachable: why"
    artifacts_service: str = "reachable"  # likewise for S3 (or the shared folder); "unknown" without a location

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _artifacts(given: str | None, recorded: str | None) -> ArtifactsURL:
    value = given or os.environ.get(ARTIFACTS_ENV) or recorded
    if not value:
        raise InvalidInput("Expected an artifacts location for the shared store. Received: none",
                           hint=f"pass --artifacts s3://BUCKET/PREFIX or set {ARTIFACTS_ENV}")
    return parse_artifacts(value)


def _blobs(url: ArtifactsURL, store_id: str, cache: ArtifactCache) -> Any:
    if url.bucket is not None:
        from .s3 import S3BlobStore

        return S3BlobStore(url, cache=cache, store_id=store_id)
    folder = Path(str(url.folder))
    found = _folder_identity(folder)
    if found != store_id:
        raise StoreError(f"The artifacts folder {str(folder)!r} " + ("holds no zoo store" if found is None else
                         f"belongs to another store (id {found}, expected {store_id})"),
                         hint="point --artifacts at the folder given to `zoo store init` for this database")
    from .files import FileBlobStore

    return FileBlobStore(folder)


def _folder_identity(folder: Path) -> str | None:
    try:
        found = json.loads((folder / IDENTITY_FILE).read_text()).get("store_id")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


class SharedStores(NamedTuple):
    """The two halves of a shared store, checked to be one store's; ``location`` is the redacted URL."""

    metadata: PostgresMetadataStore
    blobs: BlobStore
    location: str


def open_shared(store: str, *, artifacts: str | None = None, cache: str | os.PathLike[str] | None = None) -> SharedStores:
    """A PostgreSQL store and its artifacts (S3 or a folder); :meth:`zoo._registry.Registry.open` builds on it."""
    url = parse_database(store)
    metadata = PostgresMetadataStore(url)
    info = metadata.info()
    blobs = _blobs(_artifacts(artifacts, info.artifacts), info.store_id, ArtifactCache(cache))
    return SharedStores(metadata, blobs, url.shown)


def shared_info(store: str, *, artifacts: str | None = None, cache: str | os.PathLike[str] | None = None) -> SharedStoreInfo:
    """What the store is and whether each of its services answers now (an unreachable one is described, not raised)."""
    url = parse_database(store)
    metadata = PostgresMetadataStore(url, check=False)
    where = artifacts or os.environ.get(ARTIFACTS_ENV)
    try:
        try:
            info = metadata.info()
        except StoreUnavailable as exc:
            return SharedStoreInfo(store=metadata.location, store_id="", schema_version=0,
                                   artifacts=parse_artifacts(where).shown if where else "(recorded in the database)",
                                   created_at="", writable=False, cache=str(ArtifactCache(cache).root),
                                   database_service=f"unreachable: {exc.message}",
                                   artifacts_service=_probe(parse_artifacts(where), None) if where else "unknown")
        described = _describe(metadata, info, artifacts, ArtifactCache(cache))
        return replace(described, artifacts_service=_probe(_artifacts(artifacts, info.artifacts), info.store_id))
    finally:
        metadata.close()


def _probe(url: ArtifactsURL, store_id: str | None) -> str:
    """"reachable", or "unreachable: why" (S3: one identity read; a folder: whether it is there)."""
    if url.bucket is None:
        return "reachable" if Path(str(url.folder)).is_dir() else f"unreachable: no folder {url.folder!r}"
    from .s3 import S3BlobStore

    blobs = S3BlobStore(url, cache=ArtifactCache(), store_id=store_id)
    try:
        if store_id is None:
            blobs._call("HeadBucket")
        else:
            blobs.check_identity()
    except StoreUnavailable as exc:
        return f"unreachable: {exc.message}"
    except StoreError as exc:
        return f"reachable, but: {exc.message}"
    return "reachable"


def _describe(metadata: PostgresMetadataStore, info: StoreInfo, artifacts: str | None, cache: ArtifactCache,
              done: str | None = None) -> SharedStoreInfo:
    where = _artifacts(artifacts, info.artifacts)
    return SharedStoreInfo(store=metadata.location, store_id=info.store_id, schema_version=info.schema_version,
                           artifacts=where.shown, created_at=info.created_at, writable=metadata.writable,
                           cache=str(cache.root), done=done)


def init_shared(store: str, *, artifacts: str | None = None, grant_read: tuple[str, ...] = (),
                grant_write: tuple[str, ...] = ()) -> SharedStoreInfo:
    """Create (or migrate) the schema, mark the artifacts location with the store's id, grant roles. Idempotent.

    ``artifacts`` defaults to ``$ZOO_ARTIFACTS``; an existing store keeps the location it recorded."""
    url = parse_database(store)
    metadata = PostgresMetadataStore(url, check=False)
    artifacts = artifacts or os.environ.get(ARTIFACTS_ENV) or None
    try:
        where = parse_artifacts(artifacts) if artifacts else None
        if where is not None and where.folder is not None:
            where = ArtifactsURL(folder=str(Path(where.folder).resolve()))
        info, done = metadata.initialise(where.shown if where else None)
        if where is not None and where.shown != info.artifacts:
            raise InvalidInput(f"The store at {url.shown} keeps its artifacts at {info.artifacts}. Received: {where.shown}",
                               hint="leave --artifacts out to keep the recorded location")
        target = parse_artifacts(info.artifacts)
        if target.bucket is not None:
            from .s3 import S3BlobStore

            S3BlobStore(target, cache=ArtifactCache(), store_id=None).write_identity(info.store_id)
        else:
            _mark_folder(Path(str(target.folder)), info.store_id)
        for role in grant_read:
            metadata.grant(role, write=False)
        for role in grant_write:
            metadata.grant(role, write=True)
        return _describe(metadata, info, None, ArtifactCache(), done)
    finally:
        metadata.close()


def _mark_folder(folder: Path, store_id: str) -> None:
    found = _folder_identity(folder)
    if found == store_id:
        return
    if found is not None:
        raise StoreError(f"The artifacts folder {str(folder)!r} belongs to another store (id {found})",
                         hint="choose an empty folder for this store's artifacts")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / IDENTITY_FILE, "x") as fh:
            json.dump({"store_id": store_id, "kind": "zoo artifacts"}, fh)
    except OSError as exc:
        raise StoreError(f"Cannot mark the artifacts folder {str(folder)!r}: {exc.strerror}",
                         hint="choose a writable folder") from None
