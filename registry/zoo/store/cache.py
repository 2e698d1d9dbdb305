"""A local read-through cache of artifact bytes, keyed by digest (ONNX Runtime wants a file path).

Layout under the cache folder (``$ZOO_CACHE``, else the platform's cache folder + ``/zoo``)::

    objects/<sha[:2]>/<sha>/model.onnx (+ external data)   complete, verified entries (read-only files)
    tmp/<token>/                                          fills in progress (or left by a dead process)
    locks/<sha>.lock                                      one filler per digest at a time (flock)

- *Verified when filled*: bytes are hashed while they are written; a fill whose sha256 differs from
  the record is refused and never becomes an entry. An entry appears by one atomic ``rename`` of
  its complete folder, so a reader never sees half an entry, even across processes.
- *Verified when used*: every use rehashes each file unless this process already hashed it with
  the same (size, mtime, ctime, inode); a corrupt entry is dropped and filled again.
- *Remembers what it served*: ``refs/`` keeps, per store, the last resolution of each reference loaded
  (ref, version record, sha256, when) and each loaded version's record by digest, so that a
  content-pinned reference loads with the registry database down, and an alias does when the caller
  allows a stale answer (:mod:`zoo._offline`). A record is only a pointer: the bytes are verified as always.
- *Size-bounded*: after a fill, least recently used entries are evicted until the cache is under
  ``$ZOO_CACHE_MAX`` (e.g. ``20G``; default 10 GiB). Entries used in the last minute are kept, so a
  path just handed out is not deleted under a process about to open it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .._digest import file_sha256
from ..errors import InvalidInput, StoreError
from ..records import ModelVersion, StoredFile
from .base import MODEL_FILE

try:
    import fcntl
except ImportError:  # Windows: atomic renames still keep entries whole; concurrent fills may duplicate work
    fcntl = None  # type: ignore[assignment]

__all__ = ["CACHE_ENV", "CACHE_MAX_ENV", "ArtifactCache", "default_cache_dir"]

CACHE_ENV = "ZOO_CACHE"
CACHE_MAX_ENV = "ZOO_CACHE_MAX"
DEFAULT_MAX_BYTES = 10 << 30
RECENT_S = 60.0  # entries used this recently are never evicted
STALE_TMP_S = 24 * 3600
MAX_RECORD_BYTES = 1 << 20  # a remembered version record is a few KiB; a bigger file is not one of ours
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

_verified: dict[str, tuple[tuple[int, int, int, int], str]] = {}
_verified_lock = threading.Lock()

Fetch = Callable[[StoredFile, BinaryIO], None]  # writes one file's bytes into the open file


def default_cache_dir() -> Path:
    """``$ZOO_CACHE``, else ``%LOCALAPPDATA%\\zoo\\Cache``, ``~/Library/Caches/zoo`` or ``$XDG_CACHE_HOME/zoo``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "zoo" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "zoo"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zoo"


def parse_size(text: str) -> int:
    """``"20G"``, ``"512M"``, ``"1000000"`` -> bytes."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidInput(f"Expected a cache size like 20G, 512M or a number of bytes in {CACHE_MAX_ENV}. Received: {text!r}")
    return int(number * _UNITS[unit])


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class HashingWriter:
    """A write-only file object that hashes and counts what goes through it."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


class ArtifactCache:
    """Verified local copies of artifacts, shared safely by the processes of one machine."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        if max_bytes is None:
            env = os.environ.get(CACHE_MAX_ENV)
            max_bytes = parse_size(env) if env else DEFAULT_MAX_BYTES
        self.max_bytes = max_bytes
        self.objects, self.tmp, self.locks = self.root / "objects", self.root / "tmp", self.root / "locks"

    def _ready(self) -> None:
        try:
            for folder in (self.objects, self.tmp, self.locks):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot use the artifact cache folder {str(self.root)!r}: {exc.strerror}",
                             hint=f"point {CACHE_ENV} at a writable folder") from None

    def entry(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest

    # ------------------------------------------------------------------ using

    def get(self, digest: str, files: Sequence[StoredFile]) -> Path | None:
        """The entry folder if it is complete and every file still has its sha256; a bad entry is dropped."""
        folder = self.entry(digest)
        if not folder.is_dir():
            return None
        if self._problems(folder, files):
            self.drop(digest)
            return None
        try:
            os.utime(folder)  # last use, for eviction
        except OSError:
            pass
        return folder

    def _problems(self, folder: Path, files: Sequence[StoredFile]) -> list[str]:
        found = []
        for f in files:
            path = folder.joinpath(*PurePosixPath(f.relpath).parts)
            key = str(path)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                found.append(f"{key}: missing")
                continue
            sig = _signature(st)
            with _verified_lock:
                if _verified.get(key) == (sig, f.sha256):
                    continue
            actual = file_sha256(path) if st.st_size == f.size else "(wrong size)"
            if actual != f.sha256:
                found.append(f"{key}: sha256 {actual}, expected {f.sha256}")
                continue
            with _verified_lock:
                _verified[key] = (sig, actual)
        return found

    # ------------------------------------------------------------------ filling

    @contextmanager
    def _locked(self, name: str, *, blocking: bool = True) -> Iterator[bool]:
        if fcntl is None:
            yield True
            return
        fd = os.open(self.locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def scratch(self) -> Path:
        """A new private folder on the cache's filesystem, for :meth:`adopt` or a fill."""
        self._ready()
        folder = self.tmp / f"{uuid.uuid4().hex}-{os.getpid()}"
        folder.mkdir()
        return folder

    def fill(self, digest: str, files: Sequence[StoredFile], fetch: Fetch) -> Path:
        """The entry for ``digest``, fetching each file with ``fetch`` if it is not cached (one filler at a time).

        Raises :class:`FillMismatch` naming every file whose fetched bytes do not match the record.
        """
        self._ready()
        found = self.get(digest, files)
        if found is not None:
            return found
        with self._locked(digest):
            found = self.get(digest, files)  # another process may have filled it while we waited
            if found is not None:
                return found
            scratch = self.scratch()
            try:
                bad = []
                for f in files:
                    dest = scratch.joinpath(*PurePosixPath(f.relpath).parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with open(dest, "xb") as fh:
                        writer = HashingWriter(fh)
                        fetch(f, writer)  # type: ignore[arg-type]
                    if writer.sha256.hexdigest() != f.sha256 or writer.size != f.size:
                        bad.append((f, writer.sha256.hexdigest(), writer.size))
                if bad:
                    raise FillMismatch(bad)
                self.adopt(digest, scratch, files, verified=True)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        self.evict(keep=digest)
        return self.entry(digest)

    def adopt(self, digest: str, folder: Path, files: Sequence[StoredFile], *, verified: bool = False) -> bool:
        """Move a folder holding ``files`` (e.g. just uploaded) in as the entry for ``digest``; False if one exists."""
        target = self.entry(digest)
        if target.is_dir():
            return False
        if not verified and self._problems(folder, files):
            return False
        for f in files:
            path = folder.joinpath(*PurePosixPath(f.relpath).parts)
            os.chmod(path, 0o444)
            with _verified_lock:
                _verified.pop(str(path), None)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(folder, target)
        except OSError:
            return False  # another process adopted the same digest first: theirs is as good
        return True

    def drop(self, digest: str) -> None:
        """Remove an entry (rename away first, so no reader sees half of it)."""
        target = self.entry(digest)
        trash = self.tmp / f"{uuid.uuid4().hex}.trash"
        try:
            os.rename(target, trash)
        except OSError:
            return
        with _verified_lock:
            for key in [k for k in _verified if k.startswith(str(target) + os.sep)]:
                del _verified[key]
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ the last resolutions (degraded mode)

    def _memory(self, store: str) -> Path:
        return self.root / "refs" / hashlib.sha256(store.encode()).hexdigest()[:24]

    def remember(self, store: str, ref: str | None, version: ModelVersion, when: str) -> None:
        """Record that ``ref`` (None: a version object) meant ``version`` in ``store`` at ``when`` (best effort)."""
        folder = self._memory(store)
        body = {"store": store, "ref": ref, "sha256": version.sha256, "when": when, "version": version.to_dict()}
        targets = [folder / f"digest-{version.name}-{version.sha256}.json"]
        if ref is not None:
            targets.append(folder / f"ref-{hashlib.sha256(ref.encode()).hexdigest()[:32]}.json")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for target in targets:
                tmp = folder / f".{uuid.uuid4().hex}.tmp"
                tmp.write_text(json.dumps(body, sort_keys=True))
                os.replace(tmp, target)
        except OSError:
            pass  # a cache we cannot write still serves; only the degraded mode loses this answer

    def _read_memory(self, path: Path) -> dict | None:
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read(MAX_RECORD_BYTES + 1)[:MAX_RECORD_BYTES])
            data["version"] = ModelVersion.from_dict(data["version"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None  # unreadable or not ours: as if never remembered
        return data if isinstance(data.get("when"), str) else None

    def recall(self, store: str, ref: str) -> tuple[ModelVersion, str] | None:
        """The last resolution of ``ref`` in ``store`` seen here: (version, when), or None."""
        found = self._read_memory(self._memory(store) / f"ref-{hashlib.sha256(ref.encode()).hexdigest()[:32]}.json")
        if found is None or found.get("ref") != ref or found.get("store") != store:
            return None
        return found["version"], found["when"]

    def recall_digest(self, store: str, name: str, prefix: str) -> list[ModelVersion]:
        """Remembered versions of ``name`` in ``store`` whose artifact sha256 starts with ``prefix``."""
        folder = self._memory(store)
        out = []
        for path in sorted(folder.glob(f"digest-{name}-{prefix}*.json")) if folder.is_dir() else ():
            found = self._read_memory(path)
            if found is not None and found["version"].name == name and found["version"].sha256.startswith(prefix):
                out.append(found["version"])
        return out

    # ------------------------------------------------------------------ eviction

    def entries(self) -> list[tuple[float, int, str]]:
        """(last use, bytes, digest) of every entry."""
        out = []
        for shard in self.objects.iterdir() if self.objects.is_dir() else ():
            for entry in shard.iterdir() if shard.is_dir() else ():
                try:
                    used = entry.stat().st_mtime
                    size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
                except OSError:
                    continue
                out.append((used, size, entry.name))
        return out

    def evict(self, *, keep: str | None = None) -> int:
        """Delete least recently used entries until the cache fits ``max_bytes``; returns bytes freed."""
        freed = 0
        with self._locked("evict", blocking=False) as mine:
            if not mine:
                return 0  # another process is evicting
            self._clear_stale_tmp()
            entries = sorted(self.entries())
            total = sum(size for _, size, _ in entries)
            now = time.time()
            for used, size, digest in entries:
                if total <= self.max_bytes:
                    break
                if digest == keep or now - used < RECENT_S:
                    continue
                self.drop(digest)
                total -= size
                freed += size
        return freed

    def _clear_stale_tmp(self) -> None:
        now = time.time()
        for entry in self.tmp.iterdir() if self.tmp.is_dir() else ():
            try:
                if now - entry.stat().st_mtime > STALE_TMP_S:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
            except OSError:
                pass


class FillMismatch(Exception):
    """Fetched bytes differ from the record: ``bad`` is a list of (file, actual sha256, actual size)."""

    def __init__(self, bad: list[tuple[StoredFile, str, int]]):
        super().__init__(f"{len(bad)} file(s) do not match their sha256")
        self.bad = bad


def model_path(folder: Path) -> Path:
    return folder / MODEL_FILE
