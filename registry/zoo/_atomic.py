"""Writing files outside the store: whole or not at all, and never through a planted link.

Every file zoo writes for a user (``zoo weights export -o``, ``zoo run --output``, a JUnit report)
goes through :func:`write_file`: the bytes go to a temp file with an unpredictable name created by
:func:`tempfile.mkstemp` in the destination's folder (``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600,
so a symlink or file planted under a guessable name is never opened), are flushed to disk, and the
temp file is renamed over the destination in one atomic step. ``rename`` replaces a symlink at the
destination instead of following it, so a link planted at the output path is replaced, and its
target is left alone. On any failure the temp file is removed and nothing changes.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import InvalidInput, StoreError

__all__ = ["write_file", "check_destination"]


def _umask_mode(mode: int) -> int:
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


def check_destination(path: str | os.PathLike[str], *, what: str = "the output file") -> Path:
    """Refuse a destination that cannot be written before any work is done: a missing folder, a
    folder as the file name. Returns ``path`` as a :class:`Path`."""
    path = Path(path)
    folder = path.parent
    if path.name in ("", ".", ".."):
        raise InvalidInput(f"Expected a file name for {what}. Received: {str(path)!r}", hint="e.g. --output logits.npy")
    if not folder.is_dir():
        raise InvalidInput(f"Expected {what} in an existing folder. Received: {str(path)!r} "
                           f"({str(folder)!r} does not exist)", hint=f"create it first: mkdir -p {folder}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise InvalidInput(f"Cannot use {str(path)!r} as {what}: {exc.strerror}", hint="choose another path") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"Expected a file name for {what}. Received: {str(path)!r} (a folder)",
                           hint=f"e.g. {path / 'out'}")
    return path


def write_file(path: str | os.PathLike[str], content: bytes | Callable[[BinaryIO], None], *, mode: int = 0o644) -> Path:
    """Atomically make ``path`` hold ``content`` (bytes, or a function that writes to a binary file).

    Returns the path written (exactly ``path``: no suffix is added). Raises
    :class:`~zoo.errors.InvalidInput` for a missing folder or a folder as destination, and
    :class:`~zoo.errors.StoreError` for a write that fails (disk full, permissions).
    """
    path = check_destination(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(content, (bytes, bytearray, memoryview)):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _umask_mode(mode))
        os.replace(tmp, path)  # replaces a symlink at ``path``; never writes through it
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def _write_error(path: Path, exc: OSError) -> StoreError:
    reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return StoreError(f"Cannot write {str(path)!r}: {reason}", hint="check free space and permissions of that folder")
