"""Content-addressed artifact files on a local disk: ``objects/<sha[:2]>/<sha>/model.onnx`` (+ external data).

Writes go to ``tmp/<token>/`` first, are fsynced and hashed there, and are published by one atomic
``rename`` of the whole folder. Each scratch folder is guarded by ``tmp/<token>.lock``, held with
``flock`` for as long as its writer lives: the kernel drops the lock when the writer dies (even by
SIGKILL), which is how :meth:`FileBlobStore.abandoned` tells a crashed writer's leftovers from a
live writer's work in progress. The lock file also records the digest the writer was about to
publish, so that an orphan object can be found without scanning the whole store.

Published files are made read-only (0444) so that a stray write fails loudly instead of silently
changing a version; integrity is still checked by hash on every load.

``store.json`` in the root is the store's identity marker (:class:`~zoo.store.base.StoreIdentity`),
created once with ``link()`` so that concurrent creators agree on one id. Nothing here touches the
disk until :meth:`FileBlobStore.create` or a write; a ``read_only`` store only reads.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePosixPath

from .._digest import file_sha256
from ..errors import InvalidModelFile, StoreError
from ..records import StoredFile
from ._durable import fsync_dir, seal, write_all
from ._marker import MARKER_FILE, read_marker, write_marker
from .base import MODEL_FILE, Abandoned, Orphan, Source, Staged, StoreIdentity

try:
    import fcntl
except ImportError:  # Windows: no flock; scratch folders are then treated as abandoned after a day
    fcntl = None  # type: ignore[assignment]

_CHUNK = 1 << 20
_LOCK_SUFFIX = ".lock"
_STALE_WITHOUT_FLOCK_S = 24 * 3600

# Fast path for repeated loads in one process: files whose stat signature is unchanged since they
# were hashed. ctime is in the key because it cannot be set back by a user (os.utime can reset mtime).
_verified: dict[str, tuple[tuple[int, int, int, int], str]] = {}
_verified_lock = threading.Lock()


def manifest_digest(files: Sequence[StoredFile]) -> str:
    """The artifact digest: the file's sha256 for one file, else sha256 of a ``sha256sum``-style manifest."""
    if len(files) == 1:
        return files[0].sha256
    lines = "".join(f"{f.sha256}  {f.relpath}\n" for f in sorted(files, key=lambda f: f.relpath.encode()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _safe_relpath(relpath: str) -> PurePosixPath:
    """Relative, normalised, inside the artifact folder: a second wall behind zoo.onnx's checks."""
    p = PurePosixPath(relpath)
    if (not relpath or "\\" in relpath or "\x00" in relpath or p.is_absolute() or ".." in p.parts
            or str(p) != relpath or relpath == MODEL_FILE):
        raise InvalidModelFile(
            f"Expected an external-data location relative to the model's folder. Received: {relpath!r}",
            hint="save the model with onnx.save_model(..., save_as_external_data=True, location='model.onnx.data')",
        )
    return p


class FileBlobStore:
    """:class:`~zoo.store.base.BlobStore` on a local (POSIX-semantics) filesystem."""

    def __init__(self, root: Path, *, read_only: bool = False):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.marker = self.root / MARKER_FILE
        self.location = str(self.root)
        self.read_only = read_only
        self._locks: dict[str, int] = {}  # token -> fd of the lock file of our own scratch folder
        self._taken: dict[str, int] = {}  # token -> fd of a dead writer's lock file, held while we clear it

    # ------------------------------------------------------------------ identity (store.json)

    def identity(self) -> StoreIdentity | None:
        return read_marker(self.root, self.marker, self.location)

    def create(self, identity: StoreIdentity) -> StoreIdentity:
        self._need_writable()
        return write_marker(self.root, self.marker, self.location, identity, (self.objects, self.tmp))

    def _need_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"The store {self.location!r} is read-only: it serves reads, not writes",
                             hint="run this command where the store is writable, or on a writable copy of it")

    # ------------------------------------------------------------------ writing

    def _acquire_scratch(self) -> str:
        """Create and lock ``tmp/<token>.lock``; retry if a cleaner removed it before we locked it."""
        while True:
            token = uuid.uuid4().hex
            lock_path = self.tmp / (token + _LOCK_SUFFIX)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            if fcntl is None:
                self._locks[token] = fd
                return token
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except (BlockingIOError, FileNotFoundError):
                same = False
            if same:
                self._locks[token] = fd
                return token
            os.close(fd)  # a cleaner took it for abandoned between open and flock: it removes it; start over

    def stage(self, model: bytes, extra: Mapping[str, Source]) -> Staged:
        self._need_writable()
        try:
            token = self._acquire_scratch()
        except OSError as exc:
            raise StoreError(f"Cannot write to the store's scratch folder {str(self.tmp)!r}: {exc}",
                             hint="check free space and permissions of the store folder") from exc
        folder = self.tmp / token
        try:
            folder.mkdir()
            files = [self._write_bytes(folder / MODEL_FILE, model)]
            for relpath, source in sorted(extra.items()):
                rel = _safe_relpath(relpath)
                files.append(self._copy(source, folder, rel))
            for sub in sorted({folder.joinpath(*r.parts[:-1]) for r in map(PurePosixPath, extra)}, reverse=True):
                fsync_dir(sub)
            staged = Staged(token=token, digest=manifest_digest(files), files=tuple(files))
            os.write(self._locks[token], staged.digest.encode())  # the intent, for crash recovery
            return staged
        except BaseException as exc:
            self._release(token)
            if isinstance(exc, OSError):
                raise StoreError(f"Cannot write the artifact into {str(folder)!r}: {exc}",
                                 hint="check free space and permissions of the store folder") from exc
            raise

    def _write_bytes(self, path: Path, data: bytes) -> StoredFile:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, data)
            seal(fd)
        finally:
            os.close(fd)
        return StoredFile(relpath=MODEL_FILE, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def _copy(self, source: Source, folder: Path, rel: PurePosixPath) -> StoredFile:
        """Copy one external-data file, refusing links, hashing the bytes as they are written."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        name = str(rel) if callable(source) else str(source)
        try:
            src = source() if callable(source) else os.open(source, flags)
        except OSError as exc:
            raise InvalidModelFile(f"Cannot read external-data file {name!r}: {exc.strerror}",
                                   hint="external data must be a regular file beside the model, not a link") from exc
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                raise InvalidModelFile(f"Expected a regular, singly-linked external-data file. Received: {name!r}",
                                       hint="copy the file instead of linking it")
            dest = folder.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest, size = hashlib.sha256(), 0
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                while size < st.st_size and (chunk := os.read(src, min(_CHUNK, st.st_size - size))):
                    write_all(out, chunk)
                    digest.update(chunk)
                    size += len(chunk)
                seal(out)
            finally:
                os.close(out)
            if size != st.st_size or os.fstat(src).st_size != st.st_size:
                raise InvalidModelFile(
                    f"External-data file {name!r} changed size while it was being read "
                    f"({st.st_size} bytes when opened, {os.fstat(src).st_size} now)",
                    hint="wait until whatever writes the model has finished, then register it again")
        finally:
            os.close(src)
        return StoredFile(relpath=str(rel), sha256=digest.hexdigest(), size=size)

    def _object_dir(self, digest: str) -> Path:
        if not _is_digest(digest):
            raise StoreError(f"Expected a sha256 hex digest. Received: {digest!r}")
        return self.objects / digest[:2] / digest

    def publish(self, staged: Staged) -> None:
        target = self._object_dir(staged.digest)
        source = self.tmp / staged.token
        try:
            if not target.exists():
                target.parent.mkdir(exist_ok=True)
                fsync_dir(source)
                os.rename(source, target)
                fsync_dir(target.parent)
                fsync_dir(self.tmp)
                return
            # Present already (shared by another model, or a re-registration): heal, never degrade.
            bad = [f for f in staged.files if self._file_problem(target, f, use_cache=True)]
            for f in bad:
                dest = target.joinpath(*PurePosixPath(f.relpath).parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source.joinpath(*PurePosixPath(f.relpath).parts), dest)
                fsync_dir(dest.parent)
                self._forget(dest)
        except OSError as exc:
            raise StoreError(f"Cannot move the artifact into {str(target)!r}: {exc}",
                             hint="check free space and permissions of the store folder") from exc

    def discard(self, staged: Staged, *, keep_intent: bool = False) -> None:
        self._release(staged.token, keep_intent=keep_intent)

    def _release(self, token: str, *, keep_intent: bool = False) -> None:
        """Remove our scratch folder, then our lock file, then let go of the lock (in that order).
        ``keep_intent``: leave the lock file (with the digest we meant to publish) for the next sweep."""
        shutil.rmtree(self.tmp / token, ignore_errors=True)
        fd = self._locks.pop(token, None)
        if not keep_intent:
            try:
                os.unlink(self.tmp / (token + _LOCK_SUFFIX))
            except FileNotFoundError:
                pass
        if fd is not None:
            os.close(fd)

    # ------------------------------------------------------------------ crash recovery

    def abandoned(self) -> Iterator[Abandoned]:
        """Scratch folders whose writer died. Each lock taken here stays held until :meth:`clear`, so that a
        new writer cannot lock and reuse the file between our check and our cleanup."""
        try:
            entries = list(os.scandir(self.tmp))
        except FileNotFoundError:
            return
        listed = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            if name.endswith(_LOCK_SUFFIX):
                token = name[: -len(_LOCK_SUFFIX)]
                if token in self._locks or token in self._taken:
                    continue
                fd = self._take(Path(entry.path))
                if fd is None:
                    continue  # its writer is alive
                self._taken[token] = fd
                intent = os.read(fd, 64).decode("ascii", "replace")
                yield Abandoned(token=token, digest=intent if _is_digest(intent) else None)
            elif name + _LOCK_SUFFIX not in listed and name not in self._locks:
                # A folder without its lock file: a cleaner or deleter died halfway. The lock file is created
                # before its folder and removed after it, so re-check it now (the listing is not atomic).
                if not os.path.exists(self.tmp / (name + _LOCK_SUFFIX)):
                    yield Abandoned(token=name, digest=None)

    def _take(self, lock_path: Path) -> int | None:
        """The fd of ``lock_path`` locked by us, or None while its owner lives."""
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return None
                raise
        if time.time() - os.fstat(fd).st_mtime < _STALE_WITHOUT_FLOCK_S:
            os.close(fd)
            return None
        return fd

    def clear(self, item: Abandoned) -> None:
        """Remove an abandoned scratch folder, then its lock file, then let go of the lock."""
        shutil.rmtree(self.tmp / item.token, ignore_errors=True)
        try:
            os.unlink(self.tmp / (item.token + _LOCK_SUFFIX))
        except FileNotFoundError:
            pass
        fd = self._taken.pop(item.token, None)
        if fd is not None:
            os.close(fd)

    def digests(self) -> Iterator[str]:
        for shard in sorted(self.objects.iterdir()) if self.objects.is_dir() else ():
            if shard.is_dir() and len(shard.name) == 2:
                for obj in sorted(shard.iterdir()):
                    if obj.name.startswith(shard.name) and _is_digest(obj.name):
                        yield obj.name

    def orphans(self, in_use: AbstractSet[str], *, older_than_s: float) -> list[Orphan]:
        now = time.time()
        found = []
        for digest in self.digests():
            if digest in in_use:
                continue
            folder = self._object_dir(digest)
            try:
                st = os.stat(folder, follow_symlinks=False)
            except FileNotFoundError:
                continue
            age = now - max(st.st_mtime, st.st_ctime)  # the rename into objects/ sets ctime
            if age <= older_than_s:
                continue
            size = 0
            for dirpath, _dirs, names in os.walk(folder):
                for n in names:
                    try:
                        size += os.stat(os.path.join(dirpath, n), follow_symlinks=False).st_size
                    except OSError:
                        pass
            found.append(Orphan(digest=digest, size=size, age_s=age, location=str(folder)))
        return sorted(found, key=lambda o: -o.age_s)

    def delete(self, digest: str) -> None:
        self._need_writable()
        target = self._object_dir(digest)
        if not target.exists():
            return
        # Rename first so that a crash mid-delete leaves no half-deleted object under its digest.
        trash = self.tmp / f"{uuid.uuid4().hex}.trash"
        os.rename(target, trash)
        fsync_dir(target.parent)
        with _verified_lock:
            for key in [k for k in _verified if k.startswith(str(target) + os.sep)]:
                del _verified[key]
        shutil.rmtree(trash, ignore_errors=True)
        try:
            target.parent.rmdir()
        except OSError:
            pass  # the shard still holds other objects

    # ------------------------------------------------------------------ reading

    def locate(self, digest: str, relpath: str = MODEL_FILE) -> Path:
        return self._object_dir(digest).joinpath(*PurePosixPath(relpath).parts)

    def problems(self, digest: str, files: Sequence[StoredFile], *, use_cache: bool = True) -> list[str]:
        folder = self._object_dir(digest)
        found = [p for f in files if (p := self._file_problem(folder, f, use_cache=use_cache))]
        if not found and files and manifest_digest(files) != digest:
            found.append(f"the recorded file list of {str(folder)!r} does not add up to its digest {digest}")
        return found

    def _file_problem(self, folder: Path, f: StoredFile, *, use_cache: bool) -> str | None:
        path = folder.joinpath(*PurePosixPath(f.relpath).parts)
        key = str(path)
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return f"{key}: missing (expected sha256 {f.sha256}, {f.size} bytes)"
        if not stat.S_ISREG(st.st_mode):
            return f"{key}: not a regular file (expected sha256 {f.sha256})"
        sig = _signature(st)
        if use_cache:
            with _verified_lock:
                cached = _verified.get(key)
            if cached is not None and cached == (sig, f.sha256):
                return None
        actual = file_sha256(path)
        if actual != f.sha256:
            self._forget(path)
            return f"{key}: sha256 mismatch: expected {f.sha256}, actual {actual} ({st.st_size} bytes, expected {f.size})"
        with _verified_lock:
            _verified[key] = (sig, actual)
        return None

    def _forget(self, path: Path) -> None:
        with _verified_lock:
            _verified.pop(str(path), None)


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
