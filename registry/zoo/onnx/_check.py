"""The gate: parse and validate an untrusted ONNX file before anything is recorded or stored.

:func:`check_model_file` refuses anything that is not a valid, self-contained ONNX model whose
external data stays inside its own folder (no ``../``, absolute paths, backslashes, drive letters,
symlinks anywhere on the path, hardlinks, missing files, offsets past the end). onnx >= 1.21 checks
much of this itself (the CVE-2024-27318 family); we run our checks first, for messages that name
the problem, and then onnx's checker on the path, so both layers apply. Nothing is written
anywhere and external data is never read (except tensors small enough to be shape arguments): a
model with 100 GB of weights is checked in constant memory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..errors import InvalidModelFile
from ._external import ExternalFile, check_external_data
from ._files import open_model_bytes
from ._weightless import Opener, weightless
from ._wire import check_wire

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class CheckedModel:
    """A model file that passed :func:`check_model_file`. ``model`` holds no external data; the
    external-data files are known by path *and* identity, and are only ever read through
    :meth:`open_external`, which refuses a file that is not the one checked."""

    path: Path
    model: "onnx.ModelProto"
    external: tuple[ExternalFile, ...] = ()  # first-seen order

    @property
    def external_files(self) -> tuple[str, ...]:
        """Validated POSIX paths relative to ``path.parent``, first-seen order."""
        return tuple(f.relpath for f in self.external)

    def open_external(self, relpath: str) -> int:
        """A read-only fd of the checked external-data file ``relpath`` (the caller closes it): every
        path component opened beneath the model's folder without following links, and the file's
        device, inode and size compared with those checked. Raises InvalidModelFile otherwise."""
        for f in self.external:
            if f.relpath == relpath:
                return f.open()
        raise KeyError(relpath)


ModelLike = Union["onnx.ModelProto", CheckedModel]


def unwrap(model: ModelLike) -> tuple["onnx.ModelProto", Opener | None]:
    """The proto, and how to open its checked external data (None for a bare proto)."""
    if isinstance(model, CheckedModel):
        return model.model, model.open_external
    return model, None


def check_model_file(path: str | os.PathLike[str]) -> CheckedModel:
    """Parse and validate an untrusted ONNX file; raise InvalidModelFile naming what is wrong.

    Reads only the model file (into memory, never mapped) and stats its external-data files; writes nothing.
    """
    import onnx

    p = Path(path)
    f, mm, st = open_model_bytes(p)
    try:
        check_wire(mm, p)
        try:
            with memoryview(mm) as view:
                model = onnx.ModelProto.FromString(view)
        except Exception as exc:  # google.protobuf.message.DecodeError and friends
            raise InvalidModelFile(
                f"'{p}' is not a valid ONNX protobuf (corrupt or truncated): {exc}",
                hint="copy the file again, or re-export the model",
            ) from None
    finally:
        del mm
        f.close()
    if model.ir_version <= 0:
        raise InvalidModelFile(f"'{p}' is not an ONNX model: it has no ir_version", hint="pass an .onnx file written by an ONNX exporter")
    checked = CheckedModel(path=p, model=model, external=check_external_data(model, p, st))
    try:
        # By path: onnx validates external data itself (symlinks, hardlinks, escapes) without reading it.
        onnx.checker.check_model(os.fspath(p))
    except Exception as exc:
        raise InvalidModelFile(
            f"'{p}' fails the ONNX checker: {_one_line(exc)}",
            hint="re-export the model (another opset may help); onnx.checker.check_model(path) reproduces the error",
        ) from None
    # full_check's strict shape inference, on a weightless copy: full_check itself refuses valid
    # models whose small shape tensors (Reshape targets) live in external data.
    shapes_only = weightless(model, checked.open_external)
    try:
        onnx.shape_inference.infer_shapes(shapes_only, check_type=True, strict_mode=True)
    except Exception as exc:
        raise InvalidModelFile(
            f"'{p}' fails ONNX shape inference: {_one_line(exc)}",
            hint="the graph's types or shapes are inconsistent; re-export the model",
        ) from None
    return checked


def _one_line(exc: BaseException) -> str:
    """The error on one line, capped: onnx's messages can dump whole nodes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."
