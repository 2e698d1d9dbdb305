"""Artifacts in an S3 bucket (AWS, MinIO, Ceph, any S3-compatible service), read through a local cache.

Keys under ``s3://bucket/prefix/``::

    zoo-store.json                      the store's identity (its id also sits in the metadata store)
    objects/<digest>/<file sha256>      one object per artifact file: keys derive from digests alone
    objects/<digest>/MANIFEST           with external data: JSON list of (relpath, sha256, size), written last
                                        (a single-file artifact's one key is objects/<digest>/<digest>)
    staging/<token>.json                a writer's intent: which digest it is uploading (crash recovery)

- *Never modified*: every object is written with ``If-None-Match: *``; an existing key is kept
  (412), never overwritten. Files over 64 MiB go up in multipart uploads, a few parts in memory at a time.
- *Uploaded before referenced*: :meth:`S3BlobStore.stage` copies the bytes to a local scratch folder
  (hashing them), records the intent, and uploads them under their digest, all before the write
  transaction; :meth:`~S3BlobStore.publish`, inside it, checks every key and re-uploads anything a
  concurrent collector removed, so the commit never references missing bytes.
- *Orphans*: an intent older than the crash window (``ZOO_CRASH_WINDOW`` seconds, default 3600)
  belongs to a dead writer; the registry deletes its digest under the write lock only if no
  version references it. A live writer slower than the window is still safe (publish re-uploads).
- *Reads* go through :class:`~zoo.store.cache.ArtifactCache`: a path handed to ONNX Runtime is
  always a verified local copy.

boto3 is imported on first use, never when a store is opened for ``zoo list``.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import StoreError
from ..records import StoredFile
from . import _s3io
from .base import MODEL_FILE, Abandoned, Orphan, Source, Staged, StoreIdentity
from .cache import ArtifactCache, FillMismatch
from .files import FileBlobStore, manifest_digest
from .location import ArtifactsURL

__all__ = ["CRASH_WINDOW_ENV", "IDENTITY_KEY", "S3BlobStore", "crash_window"]

CRASH_WINDOW_ENV = "ZOO_CRASH_WINDOW"
IDENTITY_KEY = "zoo-store.json"
MANIFEST = "MANIFEST"


def crash_window() -> float:
    try:
        return max(0.0, float(os.environ.get(CRASH_WINDOW_ENV, "3600")))
    except ValueError:
        return 3600.0


class S3BlobStore:
    """:class:`~zoo.store.base.BlobStore` on an S3 bucket, with a local read-through :class:`ArtifactCache`."""

    def __init__(self, url: ArtifactsURL, *, cache: ArtifactCache, store_id: str | None):
        assert url.bucket is not None
        self.url, self.bucket, self.cache = url, url.bucket, cache
        self.location = url.shown
        self.store_id = store_id
        self._prefix = url.prefix + "/" if url.prefix else ""
        self._client_pid: int | None = None
        self._client_obj: Any = None
        self._lock = threading.Lock()
        self._checked = store_id is None
        self._scratch: FileBlobStore | None = None
        self._local_taken: dict[str, Abandoned] = {}
        self._own: set[str] = set()  # intent keys of this process's writes in progress: never abandoned
        self._scanned = -1e9  # monotonic time of the last scan for dead writers' intents

    # ------------------------------------------------------------------ plumbing

    @property
    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None or self._client_pid != os.getpid():
                self._client_obj, self._client_pid = _s3io.make_client(), os.getpid()
            client = self._client_obj
        if not self._checked:
            self._checked = True
            try:
                self.check_identity()
            except BaseException:
                self._checked = False
                raise
        return client

    def _key(self, *parts: str) -> str:
        return self._prefix + "/".join(parts)

    def _shown(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _error(self, exc: BaseException, op: str, key: str = "") -> StoreError:
        return _s3io.error(exc, op, self._shown(key) if key else self.location, bucket=self.bucket, location=self.location,
                           endpoint=_s3io.endpoint_of(self._client_obj))

    def _status(self, exc: BaseException) -> int:
        return _s3io.status(exc)

    def _call(self, op: str, key: str = "", **kwargs: Any) -> Any:
        method = getattr(self._client, "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_"))
        try:
            return method(Bucket=self.bucket, **({"Key": key} if key else {}), **kwargs)
        except _s3io.errors() as exc:
            raise self._error(exc, op, key) from None

    def _exists(self, key: str) -> tuple[int, str | None] | None:
        """The object's size and the sha256 it was uploaded as (its metadata), or None if there is no such key."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except _s3io.errors() as exc:
            if self._status(exc) == 404:
                return None
            raise self._error(exc, "HeadObject", key) from None
        return int(head["ContentLength"]), head.get("Metadata", {}).get("sha256")

    # ------------------------------------------------------------------ identity

    def check_identity(self) -> None:
        """The bucket prefix must carry this store's id: artifacts of another store are never mixed in."""
        key = self._key(IDENTITY_KEY)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except _s3io.errors() as exc:
            if self._status(exc) == 404 and (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") != "NoSuchBucket":
                raise StoreError(f"{self.location} holds no zoo store ({IDENTITY_KEY} is missing)",
                                 hint="point --artifacts at the store's artifacts, or run `zoo store init` once") from None
            raise self._error(exc, "GetObject", key) from None
        found = _s3io.identity(body)
        if found != self.store_id:
            raise StoreError(f"The artifacts at {self.location} belong to another store (id {found}, expected {self.store_id})",
                             hint="use the artifacts location given to `zoo store init` for this database")

    # The BlobStore protocol's identity half: `zoo store init` marks the prefix, nothing else does.
    read_only = False  # what the credentials allow shows at the first write: the error names the missing permission

    def identity(self) -> StoreIdentity | None:
        """The id the database gave this prefix. The bucket's marker is compared with it before the first S3
        request of this process (see ``_client``), so metadata-only reads (`zoo list`, `zoo show`) make none."""
        return None if self.store_id is None else StoreIdentity(self.store_id)

    def create(self, identity: StoreIdentity) -> StoreIdentity:
        if self.store_id != identity.store_id:
            raise StoreError(f"The artifacts at {self.location} belong to store {self.store_id}, not to {identity.store_id}",
                             hint="use the artifacts location given to `zoo store init` for this database")
        return identity

    def orphans(self, in_use: AbstractSet[str], *, older_than_s: float) -> list[Orphan]:
        """Published digests no version uses whose newest object is older than ``older_than_s``."""
        newest: dict[str, float] = {}
        sizes: dict[str, int] = {}
        base = self._key("objects") + "/"
        for obj in self._list(base):
            digest = obj["Key"][len(base):].split("/", 1)[0]
            if not _s3io.is_digest(digest) or digest in in_use:
                continue
            newest[digest] = max(newest.get(digest, 0.0), obj["LastModified"].timestamp())
            sizes[digest] = sizes.get(digest, 0) + int(obj.get("Size", 0))
        now = time.time()
        found = [Orphan(digest=d, size=sizes[d], age_s=now - t, location=self._shown(self._key("objects", d)))
                 for d, t in newest.items() if now - t > older_than_s]
        return sorted(found, key=lambda o: -o.age_s)

    def write_identity(self, store_id: str) -> bool:
        """Mark an empty prefix as this store's (idempotent); False if it already was."""
        self._checked = True
        key = self._key(IDENTITY_KEY)
        body = json.dumps({"store_id": store_id, "kind": "zoo artifacts"}).encode()
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
            return True
        except _s3io.errors() as exc:
            if self._status(exc) not in (409, 412):
                raise self._error(exc, "PutObject", key) from None
        self.store_id = store_id
        self.check_identity()
        return False

    # ------------------------------------------------------------------ writing

    def _scratch_store(self) -> FileBlobStore:
        """Local scratch space (the embedded store's staging, with its checks and crash locks) in the cache folder."""
        if self._scratch is None:
            self.cache._ready()
            self._scratch = FileBlobStore(self.cache.root / "staging")
            for folder in (self._scratch.objects, self._scratch.tmp):
                folder.mkdir(parents=True, exist_ok=True)
        return self._scratch

    def _scratch_path(self, staged: Staged, f: StoredFile) -> Path:
        return self._scratch_store().tmp.joinpath(staged.token, *PurePosixPath(f.relpath).parts)

    def stage(self, model: bytes, extra: Mapping[str, Source]) -> Staged:
        staged = self._scratch_store().stage(model, extra)
        try:
            self._own.add(self._intent_key(staged))
            self._write_intent(staged)
            self._upload_all(staged)
        except BaseException:
            self.discard(staged)
            raise
        return staged

    def _intent_key(self, staged: Staged) -> str:
        return self._key("staging", staged.token + ".json")

    def _write_intent(self, staged: Staged) -> None:
        intent = json.dumps({"digest": staged.digest, "host": socket.gethostname(), "pid": os.getpid()}).encode()
        self._call("PutObject", self._intent_key(staged), Body=intent)

    def _upload_all(self, staged: Staged, *, check: bool = False) -> None:
        """Upload every missing file, then the manifest. With ``check`` (in publish: one LIST request), an
        object another process collected, or that is not what zoo uploaded, is uploaded again, after renewing
        the intent that makes it collectable on a crash."""
        listed = {o["Key"]: o for o in self._list(self._key("objects", staged.digest) + "/")} if check else {}
        renewed = not check
        for f in staged.files:
            key = self._key("objects", staged.digest, f.sha256)
            found = listed.get(key)
            if found is not None and not self._intact(found, f, self._scratch_path(staged, f)):
                self._call("DeleteObject", key)  # damaged by someone else: heal it, as the file store does
                found = None
            if found is None:
                if not renewed:
                    self._write_intent(staged)
                    renewed = True
                self._upload(self._scratch_path(staged, f), key, f.size, f.sha256)
        manifest = self._key("objects", staged.digest, MANIFEST)
        if len(staged.files) > 1 and (not check or manifest not in listed):
            if not renewed:
                self._write_intent(staged)
            self._put(manifest, _s3io.manifest(staged.files))

    def _intact(self, listed: dict[str, Any], f: StoredFile, local: Path) -> bool:
        """Whether a listed object holds ``f``: its size, then its ETag (the MD5 of a single-part upload, checked
        against our copy), else the sha256 it was uploaded with (multipart, or an encrypted bucket's ETag)."""
        if int(listed["Size"]) != f.size:
            return False
        etag = str(listed.get("ETag", "")).strip('"')
        if etag and "-" not in etag and f.size <= _s3io.MULTIPART_THRESHOLD and _s3io.md5(local) == etag:
            return True
        found = self._exists(listed["Key"])
        return found == (f.size, f.sha256)

    def _put(self, key: str, body: Any, sha256: str | None = None) -> None:
        extra = {} if sha256 is None else {  # S3 checks the received bytes against ChecksumSHA256
            "Metadata": {"sha256": sha256}, "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode()}
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", **extra)
        except _s3io.errors() as exc:
            if self._status(exc) not in (409, 412):  # 412: already there (immutable: keep it)
                raise self._error(exc, "PutObject", key) from None

    def _upload(self, path: Path, key: str, size: int, sha256: str) -> None:
        if size <= _s3io.MULTIPART_THRESHOLD:
            with open(path, "rb") as fh:
                self._put(key, fh, sha256)
        else:
            _s3io.multipart(self._client, self.bucket, key, path, size, sha256, self._call, self._error)

    def publish(self, staged: Staged) -> None:
        """Inside the write transaction: every key present (re-uploaded if a collector removed it)."""
        self._upload_all(staged, check=True)

    def discard(self, staged: Staged, *, keep_intent: bool = False) -> None:
        """Withdraw the intent (unless ``keep_intent``: then a later writer's sweep deletes the digest if no
        version uses it); keep the verified local copy as a cache entry; release the scratch space."""
        if keep_intent:
            self._own.discard(self._intent_key(staged))
            self._scratch_store().discard(staged)
            return
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._intent_key(staged))
        except Exception:  # (a leftover intent only makes a later writer check this digest)
            pass
        self._own.discard(self._intent_key(staged))
        folder = self._scratch_store().tmp / staged.token
        try:
            self.cache.adopt(staged.digest, folder, staged.files, verified=True)
        except OSError:
            pass
        self._scratch_store().discard(staged)

    # ------------------------------------------------------------------ crash recovery

    def abandoned(self) -> Iterator[Abandoned]:
        for item in self._scratch_store().abandoned():  # local scratch of a dead process on this machine
            token = "local:" + item.token
            self._local_taken[token] = item
            yield Abandoned(token=token, digest=None)
        window = crash_window()
        now = time.monotonic()
        if window > 0 and now - self._scanned < min(60.0, window / 4):
            return  # intents younger than the window are never collected: no need to look on every write
        self._scanned = now
        cutoff = time.time() - window
        for obj in self._list(self._key("staging") + "/"):
            key = obj["Key"]
            if obj["LastModified"].timestamp() > cutoff or key in self._own:
                continue
            try:
                digest = json.loads(self._call("GetObject", key)["Body"].read()).get("digest")
            except (StoreError, ValueError, AttributeError):
                digest = None
            yield Abandoned(token=key, digest=digest if _s3io.is_digest(digest) else None)

    def clear(self, item: Abandoned) -> None:
        local = self._local_taken.pop(item.token, None)
        if local is not None:
            self._scratch_store().clear(local)
        else:
            self._call("DeleteObject", item.token)

    def _list(self, prefix: str, *, delimiter: str | None = None) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        extra = {"Delimiter": delimiter} if delimiter else {}
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **extra):
                yield from page.get("CommonPrefixes", []) if delimiter else page.get("Contents", [])
        except _s3io.errors() as exc:
            raise self._error(exc, "ListObjectsV2", prefix) from None

    def digests(self) -> Iterator[str]:
        base = self._key("objects") + "/"
        for entry in self._list(base, delimiter="/"):
            digest = entry["Prefix"][len(base):].rstrip("/")
            if _s3io.is_digest(digest):
                yield digest

    def delete(self, digest: str) -> None:
        """Manifest first (the artifact stops being complete), then its files."""
        _s3io.check_digest(digest)
        keys = [o["Key"] for o in self._list(self._key("objects", digest) + "/")]
        for key in sorted(keys, key=lambda k: not k.endswith("/" + MANIFEST)):
            self._call("DeleteObject", key)
        self.cache.drop(digest)

    # ------------------------------------------------------------------ reading

    def _fetch(self, digest: str) -> Any:
        def fetch(f: StoredFile, out: Any) -> None:
            key = self._key("objects", digest, f.sha256)
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
                for chunk in body.iter_chunks(1 << 20):
                    out.write(chunk)
            except _s3io.errors() as exc:
                if self._status(exc) == 404:
                    raise _s3io.Missing() from None
                raise self._error(exc, "GetObject", key) from None

        return fetch

    def _files(self, digest: str) -> tuple[StoredFile, ...]:
        """The artifact's file list: its manifest (checked against the digest), or its one model file."""
        key = self._key("objects", digest, MANIFEST)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except _s3io.errors() as exc:
            if self._status(exc) != 404:
                raise self._error(exc, "GetObject", key) from None
            single = self._exists(self._key("objects", digest, digest))
            return () if single is None else (StoredFile(relpath=MODEL_FILE, sha256=digest, size=single[0]),)
        try:
            files = tuple(StoredFile.from_dict(d) for d in json.loads(body)["files"])
        except (ValueError, KeyError, TypeError):
            return ()
        return files if files and manifest_digest(files) == digest else ()

    def locate(self, digest: str, relpath: str = MODEL_FILE) -> Path:
        _s3io.check_digest(digest)
        folder = self.cache.entry(digest)
        if not folder.is_dir():
            files = self._files(digest)
            if files:
                try:
                    self.cache.fill(digest, files, self._fetch(digest))
                except (FillMismatch, _s3io.Missing, StoreError):
                    pass  # the path is returned unchecked (as asked); problems() says what is wrong
        return folder.joinpath(*PurePosixPath(relpath).parts)

    def problems(self, digest: str, files: Sequence[StoredFile], *, use_cache: bool = True) -> list[str]:
        """Fill the cache from S3 (verifying every byte) unless a verified copy is there; ``use_cache=False``
        always downloads and hashes the remote bytes again."""
        _s3io.check_digest(digest)
        if files and manifest_digest(files) != digest:
            return [f"the recorded file list of {self._shown(self._key('objects', digest))} does not add up to its digest {digest}"]
        if not use_cache:
            self.cache.drop(digest)
        try:
            self.cache.fill(digest, files, self._fetch(digest))
        except FillMismatch as exc:
            return [f"{self._shown(self._key('objects', digest, f.sha256))} ({f.relpath}): sha256 mismatch: expected "
                    f"{f.sha256}, actual {actual} ({size} bytes, expected {f.size})" for f, actual, size in exc.bad]
        except _s3io.Missing:
            return [f"{self._shown(self._key('objects', digest, f.sha256))} ({f.relpath}): missing (expected sha256 "
                    f"{f.sha256}, {f.size} bytes)" for f in files if self._exists(self._key("objects", digest, f.sha256)) is None]
        return []
