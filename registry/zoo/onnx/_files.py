"""Opening the model file itself: a regular, non-empty file under 2 GiB, mapped read-only."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..errors import InvalidModelFile
from ._wire import MAX_PROTO_BYTES

REEXPORT_HINT = (
    "re-save it with onnx.save(model, 'model.onnx', save_as_external_data=True, location='model.onnx.data') "
    "so the data file sits beside the model, and pass that folder's model file"
)


def _stat_model_path(path: Path) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidModelFile(f"No such file: '{path}'", hint="check the path; pass the .onnx file itself") from None
    except OSError as exc:
        raise InvalidModelFile(f"Cannot read '{path}': {exc.strerror}", hint="check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidModelFile(
            f"'{path}' is a directory, not an ONNX file", hint="pass the .onnx file inside it, not the folder"
        )
    if not stat.S_ISREG(st.st_mode):
        raise InvalidModelFile(
            f"'{path}' is not a regular file (a device, pipe or socket)", hint="pass an .onnx file on disk"
        )
    return st


def open_model_bytes(path: Path) -> tuple[Any, bytes, os.stat_result]:
    """Open and read ``path``. O_NONBLOCK: a pipe swapped in after stat() cannot hang us."""
    _stat_model_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InvalidModelFile(f"Cannot open '{path}': {exc.strerror}", hint="check the file's permissions") from None
    f = os.fdopen(fd, "rb")
    try:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidModelFile(f"'{path}' is not a regular file", hint="pass an .onnx file on disk")
        if st.st_size == 0:
            raise InvalidModelFile(f"'{path}' is empty (0 bytes)", hint="the export or copy failed; write the file again")
        if st.st_size > MAX_PROTO_BYTES:
            raise InvalidModelFile(
                f"'{path}' is {st.st_size / 2**30:.1f} GiB; an ONNX protobuf cannot exceed 2 GiB, so this is not "
                "a loadable ONNX model file",
                hint="models over 2 GiB keep their weights as external data: " + REEXPORT_HINT,
            )
        # Read, never mmap: a file truncated by someone else while we read it must be an error, not SIGBUS.
        mm = f.read(st.st_size + 1)
        if len(mm) != st.st_size:
            raise InvalidModelFile(f"'{path}' changed size while it was being read ({st.st_size} bytes when opened, "
                                   f"{len(mm)} read)", hint="wait until whatever writes the file has finished, then retry")
    except BaseException:
        f.close()
        raise
    return f, mm, st

