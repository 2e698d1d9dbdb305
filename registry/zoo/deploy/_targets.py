"""Where a Triton model repository is written: a folder, or an S3 prefix.

Invariant: a reader of the repository (Triton polling it, a copy tool) never sees a half-written
version. In a folder, a version is copied into a staging folder inside the model folder (a name
Triton cannot read as a version number), checked against its sha256, and renamed into place in one
step; small files (labels, config) are replaced atomically. On S3, where there is no rename, each
version's files go up before ``config.pbtxt`` names the version (its ``specific`` policy), so Triton
loads a version only once all its bytes are there; the config is always written last.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .._atomic import write_file
from .._digest import CHUNK, file_sha256
from ..errors import IntegrityError, StoreError
from ..records import StoredFile

__all__ = ["FolderTarget", "S3Target", "Target", "open_target"]

STAGING = ".zoo-staging-"
Step = Callable[[str], None]


class Target(Protocol):
    """A repository destination. ``relpath``s are ``/``-separated, relative to the repository root."""

    location: str

    def same_files(self, folder: str, files: Sequence[StoredFile]) -> bool:
        """Whether ``folder`` holds exactly these bytes for every file of ``files`` (by size and sha256)."""
        ...

    def write_version(self, folder: str, files: Sequence[tuple[Path, StoredFile]], step: Step) -> bool:
        """Make ``folder`` hold these files, never visibly half-written; return whether it replaced other bytes."""
        ...

    def read(self, relpath: str) -> bytes | None:
        ...

    def write(self, relpath: str, data: bytes) -> None:
        ...

    def cleanup(self, folder: str) -> None:
        """Remove what an interrupted run on this host left in ``folder`` (staging folders of dead processes)."""
        ...


def open_target(to: str) -> Target:
    from ..store.location import parse_artifacts

    where = parse_artifacts(to)
    if where.bucket is not None:
        return S3Target(where.bucket, where.prefix)
    return FolderTarget(Path(str(where.folder)))


def _copy_checked(src: Path, dst: Path, expected: StoredFile) -> None:
    """Copy ``src`` to a new file ``dst``, hashing as it goes; refuse bytes that are not ``expected``."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    if digest.hexdigest() != expected.sha256:
        raise IntegrityError(f"{src} changed while it was copied: expected sha256 {expected.sha256}. "
                             f"Received: {digest.hexdigest()}", hint="run `zoo verify`, then deploy again")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderTarget:
    def __init__(self, root: Path):
        self.root = root.absolute()
        self.location = str(self.root)
        self._host = socket.gethostname().replace("-", "_")[:32] or "host"

    def _path(self, relpath: str) -> Path:
        return self.root.joinpath(*relpath.split("/"))

    def _fail(self, exc: OSError, what: Path) -> StoreError:
        return StoreError(f"Cannot write {str(what)!r}: {exc.strerror or exc}", hint="check free space and permissions")

    def same_files(self, folder: str, files: Sequence[StoredFile]) -> bool:
        base = self._path(folder)
        for f in files:
            path = base / f.relpath
            try:
                if not path.is_file() or path.is_symlink() or path.stat().st_size != f.size or file_sha256(path) != f.sha256:
                    return False
            except OSError:
                return False
        return True

    def write_version(self, folder: str, files: Sequence[tuple[Path, StoredFile]], step: Step) -> bool:
        final = self._path(folder)
        parent = final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            stage = parent / f"{STAGING}{self._host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            stage.mkdir()
        except OSError as exc:
            raise self._fail(exc, parent) from None
        try:
            for src, stored in files:
                step(f"copying {folder}/{stored.relpath} ({stored.size:,} bytes)")
                dst = stage / stored.relpath
                dst.parent.mkdir(parents=True, exist_ok=True)
                _copy_checked(src, dst, stored)
            replaced = final.exists() or final.is_symlink()
            if replaced:  # other bytes under this number: swap them out (the folder is briefly absent, never partial)
                old = parent / f"{STAGING}{self._host}-{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
                os.rename(final, old)
                os.rename(stage, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                try:
                    os.rename(stage, final)
                except OSError:
                    if not self.same_files(folder, [stored for _, stored in files]):
                        raise
                    return False  # a concurrent deploy put the same bytes there first
            _fsync_dir(parent)
            return replaced
        except OSError as exc:
            raise self._fail(exc, final) from None
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)

    def read(self, relpath: str) -> bytes | None:
        path = self._path(relpath)
        try:
            return path.read_bytes() if path.is_file() and not path.is_symlink() else None
        except OSError:
            return None

    def write(self, relpath: str, data: bytes) -> None:
        path = self._path(relpath)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail(exc, path.parent) from None
        write_file(path, data)

    def cleanup(self, folder: str) -> None:
        base = self._path(folder)
        if not base.is_dir():
            return
        mine = f"{STAGING}{self._host}-"
        for entry in base.iterdir():
            if not entry.name.startswith(mine):
                continue
            pid = entry.name[len(mine):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class S3Target:
    """``s3://bucket/prefix``: credentials and endpoint from the standard AWS variables (as the shared store)."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix
        self.location = f"s3://{bucket}/{prefix}".rstrip("/")
        self._client_obj: Any = None

    @property
    def _client(self) -> Any:
        if self._client_obj is None:
            from ..store._s3io import make_client

            self._client_obj = make_client()
        return self._client_obj

    def _key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def _fail(self, exc: BaseException, op: str, key: str) -> StoreError:
        from ..store._s3io import error

        return error(exc, op, f"s3://{self.bucket}/{key}", bucket=self.bucket, location=self.location)

    def _or_none(self, op: str, key: str, call: Callable[[], Any]) -> Any:
        """``call()``, or None when S3 answers 404; any other failure is the store error naming ``op`` and ``key``."""
        from botocore.exceptions import BotoCoreError, ClientError

        from ..store._s3io import status

        try:
            return call()
        except ClientError as exc:
            if status(exc) == 404:
                return None
            raise self._fail(exc, op, key) from None
        except BotoCoreError as exc:
            raise self._fail(exc, op, key) from None

    def _head(self, key: str) -> dict[str, Any] | None:
        head: dict[str, Any] | None = self._or_none("HeadObject", key, lambda: self._client.head_object(Bucket=self.bucket, Key=key))
        return head

    def same_files(self, folder: str, files: Sequence[StoredFile]) -> bool:
        for f in files:
            head = self._head(self._key(f"{folder}/{f.relpath}"))
            if head is None or int(head.get("ContentLength", -1)) != f.size or head.get("Metadata", {}).get("sha256") != f.sha256:
                return False
        return True

    def write_version(self, folder: str, files: Sequence[tuple[Path, StoredFile]], step: Step) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        replaced = any(self._head(self._key(f"{folder}/{stored.relpath}")) is not None for _, stored in files)
        # External data first, the model file last: a version is loadable only once its model file is there.
        ordered = sorted(files, key=lambda item: item[1].relpath == "model.onnx")
        for src, stored in ordered:
            key = self._key(f"{folder}/{stored.relpath}")
            step(f"uploading {folder}/{stored.relpath} ({stored.size:,} bytes)")
            if file_sha256(src) != stored.sha256:
                raise IntegrityError(f"{src} does not hold the bytes of {folder}/{stored.relpath}: expected sha256 "
                                     f"{stored.sha256}", hint="run `zoo verify`, then deploy again")
            try:
                self._client.upload_file(str(src), self.bucket, key, ExtraArgs={"Metadata": {"sha256": stored.sha256}})
            except (ClientError, BotoCoreError) as exc:
                raise self._fail(exc, "PutObject", key) from None
            except Exception as exc:  # boto3's S3UploadFailedError wraps the ClientError
                cause = exc.__cause__ or exc.__context__
                if isinstance(cause, (ClientError, BotoCoreError)):
                    raise self._fail(cause, "PutObject", key) from None
                raise
        return replaced

    def read(self, relpath: str) -> bytes | None:
        key = self._key(relpath)
        data: bytes | None = self._or_none("GetObject", key,
                                           lambda: self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return data

    def write(self, relpath: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(relpath)
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                    Metadata={"sha256": hashlib.sha256(data).hexdigest()})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, "PutObject", key) from None

    def cleanup(self, folder: str) -> None:
        """Nothing to clean: S3 has no staging (an interrupted upload leaves no object, or unserved objects)."""
