"""External data: every reference stays inside the model's folder, and what is read is what was checked.

A location must be a plain relative POSIX path (no ``..``, absolute path, backslash, drive letter
or NUL). On disk, each component is opened relative to the folder opened before it, never
following a link (``openat`` with ``O_NOFOLLOW|O_DIRECTORY`` per folder, ``O_NOFOLLOW`` on the
file), so a folder swapped for a symlink between two steps cannot redirect the walk outside.
The file must be regular, singly linked and not the model itself; its offsets and lengths (ASCII
digits only) must fit in it. Each file's ``(st_dev, st_ino, st_size)`` is recorded, and every later
read (:func:`open_checked`: shape inference, the store's copy) walks again and refuses a file
that is not the one validated.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import InvalidModelFile
from ._files import REEXPORT_HINT
from ._tensors import all_tensors, is_external, tensor_nbytes

if TYPE_CHECKING:
    import onnx

# External-data keys onnx defines; anything else is refused rather than silently ignored.
_EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})
# openat-style walks need dir_fd and O_DIRECTORY (POSIX); elsewhere each component is lstat'ed.
_DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY") and hasattr(os, "O_NOFOLLOW")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ExternalFile:
    """An external-data file that passed the checks: where it is and which file it was.

    Invariant: :meth:`open` returns an fd of this very file (same device, inode and size), reached
    beneath the model's folder without following a link, or raises InvalidModelFile.
    """

    model: Path  # the model file whose folder ``relpath`` is relative to
    relpath: str  # POSIX
    dev: int
    ino: int
    size: int
    tensor: str = ""  # the (first) tensor whose data it holds: what messages name

    def open(self) -> int:
        """A read-only fd of the checked file (the caller closes it); see :func:`open_checked`."""
        return open_checked(self.model, self)


def _bad_external(path: Path, tensor: str, what: str, received: str, hint: str = REEXPORT_HINT) -> InvalidModelFile:
    return InvalidModelFile(
        f"External data of tensor {tensor!r} in '{path}' {what}. Received: {received!r}", hint=hint
    )


def _safe_location(location: str, path: Path, tensor: str) -> tuple[str, ...]:
    """The location's components, if it is a plain relative POSIX path inside the model's folder."""
    expected = "Expected a relative path inside the model's folder"
    if not location:
        raise _bad_external(path, tensor, "has an empty location", location)
    if "\x00" in location:
        raise _bad_external(path, tensor, "has a NUL byte in its location", location)
    if "\\" in location:
        raise _bad_external(path, tensor, f"uses a backslash in its location. {expected}, '/'-separated", location)
    if re.match(r"^[A-Za-z]:", location) or ":" in location:
        raise _bad_external(path, tensor, f"names a drive letter or ':' stream in its location. {expected}", location)
    if location.startswith("/") or PurePosixPath(location).is_absolute():
        raise _bad_external(path, tensor, f"uses an absolute path. {expected}", location)
    parts = tuple(p for p in location.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _bad_external(path, tensor, f"escapes the model's folder with '..'. {expected}", location)
    if not parts:
        raise _bad_external(path, tensor, f"names the folder itself. {expected}", location)
    return parts


def _step_error(path: Path, parts: tuple[str, ...], i: int, exc: OSError, parent_fd: int | None, tensor: str) -> InvalidModelFile:
    """Name why component ``i`` could not be opened (the open refused it; lstat only explains why)."""
    rel = "/".join(parts)
    if exc.errno == errno.ENOENT:
        return _bad_external(
            path, tensor, f"is missing: '{path.parent.joinpath(*parts[: i + 1])}' does not exist", rel,
            hint="copy the external-data file(s) next to the .onnx file, keeping the relative path the exporter wrote",
        )
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            if parent_fd is not None:
                st = os.stat(parts[i], dir_fd=parent_fd, follow_symlinks=False)
            else:
                st = os.lstat(path.parent.joinpath(*parts[: i + 1]))
            is_link = stat.S_ISLNK(st.st_mode)
        except OSError:
            is_link = exc.errno != errno.ENOTDIR
        if is_link:
            which = "the file" if i == len(parts) - 1 else f"its parent '{'/'.join(parts[: i + 1])}'"
            return _bad_external(
                path, tensor, f"goes through a symlink ({which} is a symbolic link)", rel,
                hint="replace the link with the real file (cp -L) so the data lives inside the model's folder",
            )
        if i < len(parts) - 1:
            return _bad_external(path, tensor, f"has a non-directory '{'/'.join(parts[: i + 1])}' in its path", rel)
        return _bad_external(path, tensor, "is not a regular file", rel)
    return _bad_external(path, tensor, f"cannot be read ({exc.strerror})", rel, hint="check the file's permissions")


def _open_walk(path: Path, parts: tuple[str, ...], tensor: str) -> int:
    """An fd of ``path.parent/parts...``, each component opened beneath the one before, no link followed."""
    if not _DIR_FD:
        return _open_lstat_walk(path, parts, tensor)
    try:
        folder = os.open(path.parent, _READ | os.O_DIRECTORY)
    except OSError as exc:
        raise _bad_external(path, tensor, f"cannot be read: the model's folder cannot be opened ({exc.strerror})",
                            "/".join(parts), hint="check the folder's permissions") from None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = _READ | _NOFOLLOW | (getattr(os, "O_NONBLOCK", 0) if last else os.O_DIRECTORY)
            try:
                if last and not stat.S_ISREG(os.stat(part, dir_fd=folder, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "not a regular file")  # never open a device or a pipe
                fd = os.open(part, flags, dir_fd=folder)
            except OSError as exc:
                raise _step_error(path, parts, i, exc, folder, tensor) from None
            os.close(folder)
            folder = fd
        fd, folder = folder, -1
        return fd
    finally:
        if folder >= 0:
            os.close(folder)


def _open_lstat_walk(path: Path, parts: tuple[str, ...], tensor: str) -> int:
    """Where there is no openat: lstat every component, then open the last without following it."""
    for i in range(len(parts)):
        current = path.parent.joinpath(*parts[: i + 1])
        try:
            st = os.lstat(current)
        except OSError as exc:
            raise _step_error(path, parts, i, exc, None, tensor) from None
        if stat.S_ISLNK(st.st_mode) or (i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode)):
            raise _step_error(path, parts, i, OSError(errno.ELOOP, "link"), None, tensor)
    try:
        return os.open(path.parent.joinpath(*parts), _READ | _NOFOLLOW)
    except OSError as exc:
        raise _step_error(path, parts, len(parts) - 1, exc, None, tensor) from None


def _check_file(path: Path, model_st: os.stat_result, parts: tuple[str, ...], tensor: str) -> ExternalFile:
    """Open the location beneath the model's folder; a regular, singly-linked file that is not the model."""
    rel = "/".join(parts)
    fd = _open_walk(path, parts, tensor)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _bad_external(path, tensor, "is not a regular file", rel)
    if st.st_nlink > 1:
        raise _bad_external(
            path, tensor, f"is a hardlink ({st.st_nlink} links to the same file)", rel,
            hint="store a private copy of the data file (cp, not ln) beside the model",
        )
    if (st.st_dev, st.st_ino) == (model_st.st_dev, model_st.st_ino):
        raise _bad_external(path, tensor, "points at the model file itself", rel)
    return ExternalFile(model=path, relpath=rel, dev=st.st_dev, ino=st.st_ino, size=st.st_size, tensor=tensor)


def open_checked(path: Path, checked: ExternalFile) -> int:
    """A read-only fd of the external-data file ``checked`` beside the model at ``path``, opened by the
    same link-refusing walk; refused unless it is still the file that was validated (dev, inode, size).
    The caller closes it."""
    parts = tuple(checked.relpath.split("/"))
    fd = _open_walk(path, parts, checked.tensor or checked.relpath)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino, st.st_size) != (checked.dev, checked.ino, checked.size) or not stat.S_ISREG(st.st_mode):
            raise InvalidModelFile(
                f"Expected external-data file '{checked.relpath}' of '{path}' to be the file that was checked "
                f"(device {checked.dev}, inode {checked.ino}, {checked.size} bytes). Received: device {st.st_dev}, "
                f"inode {st.st_ino}, {st.st_size} bytes",
                hint="something replaced or changed it while zoo read the model; keep the folder unchanged and register again",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _parse_external_entries(tensor: "onnx.TensorProto", path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for entry in tensor.external_data:
        if entry.key in entries:
            raise _bad_external(path, tensor.name, f"sets {entry.key!r} twice", entry.value)
        entries[entry.key] = entry.value
    unknown = sorted(set(entries) - _EXTERNAL_KEYS)
    if unknown:
        raise _bad_external(path, tensor.name, f"has unknown keys (allowed: {sorted(_EXTERNAL_KEYS)})", ", ".join(unknown))
    if entries.get("basepath"):
        raise _bad_external(
            path, tensor.name, "sets 'basepath'; locations are resolved against the model's folder only", entries["basepath"]
        )
    return entries


def _int_entry(entries: Mapping[str, str], key: str, path: Path, tensor: str) -> int | None:
    """A non-negative offset or length in ASCII digits: what ONNX Runtime can parse (Python's int()
    would also take '٠', '+4', ' 4' and '1_0')."""
    if key not in entries:
        return None
    text = entries[key]
    if text.startswith("-") and re.fullmatch(r"[0-9]+", text[1:], re.ASCII):
        raise _bad_external(path, tensor, f"has a negative {key}", text)
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise _bad_external(path, tensor, f"has a {key} that is not a non-negative integer in ASCII digits", text)
    return int(text)


def check_external_data(model: "onnx.ModelProto", path: Path, model_st: os.stat_result) -> tuple[ExternalFile, ...]:
    """Validate every external-data reference of every tensor; return the distinct files, first-seen order."""
    seen: dict[str, ExternalFile] = {}
    for tensor in all_tensors(model):
        if not is_external(tensor):
            continue
        entries = _parse_external_entries(tensor, path)
        parts = _safe_location(entries.get("location", ""), path, tensor.name)
        rel = "/".join(parts)
        if rel not in seen:
            seen[rel] = _check_file(path, model_st, parts, tensor.name)
        size = seen[rel].size
        offset = _int_entry(entries, "offset", path, tensor.name) or 0
        length = _int_entry(entries, "length", path, tensor.name)
        needed = tensor_nbytes(tensor)
        if length is not None and needed is not None and length != needed:
            raise _bad_external(
                path, tensor.name,
                f"declares length {length} but its dims {list(tensor.dims)} need {needed} bytes", str(length),
            )
        span = length if length is not None else (needed or 0)
        if offset > size or offset + span > size:
            raise _bad_external(
                path, tensor.name,
                f"reads bytes {offset}..{offset + span} of '{rel}', which has only {size} bytes (offset/length "
                "beyond the end of the file: truncated or forged)",
                f"offset={offset}, length={span}",
                hint="copy the data file again; if it is complete, the model's offsets are wrong: re-export it",
            )
    return tuple(seen.values())
