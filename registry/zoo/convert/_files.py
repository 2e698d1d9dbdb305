"""Reading a source artifact and writing a converted one, the same way for every conversion."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ExportError, InvalidModelFile

# protobuf cannot serialise a message over 2 GiB: above this, weights go beside the graph.
SINGLE_FILE_LIMIT = 2**31 - 2**20


def load_model(src: Path) -> Any:
    """The ONNX model at ``src`` (external data loaded too), or InvalidModelFile naming the file."""
    import onnx

    try:
        return onnx.load(os.fspath(src))
    except Exception as exc:
        raise InvalidModelFile(f"Cannot read {os.fspath(src)!r} as an ONNX model: {exc}",
                               hint="give the path of an .onnx file (see `zoo show REF`)") from exc


def save_checked(model: Any, dst: Path, *, what: str) -> Path:
    """Write ``model`` to ``dst`` (external data past 2 GB) and run onnx.checker on the file."""
    import onnx

    dst.parent.mkdir(parents=True, exist_ok=True)
    if model.ByteSize() >= SINGLE_FILE_LIMIT:
        onnx.save(model, os.fspath(dst), save_as_external_data=True, location=dst.name + ".data")
    else:
        onnx.save(model, os.fspath(dst))
    check_file(dst, what=what)
    return dst


def check_file(path: Path, *, what: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(os.fspath(path))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"The {what} model fails the ONNX checker: {str(exc).splitlines()[0]}",
                          hint="report it with the source model's opset; the fp32 version is unaffected") from exc


def input_size_of_file(path: Path, default: int = 224) -> int:
    """The square H=W of the model's first input when fixed, else ``default``."""
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    fixed = [d.dim_value for d in dims[2:4] if d.HasField("dim_value")]
    return fixed[0] if len(fixed) == 2 and fixed[0] == fixed[1] else default


def is_large(path: Path) -> bool:
    """Whether the model (graph + external data beside it) is too large for one protobuf."""
    total = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))
    return total >= SINGLE_FILE_LIMIT


__all__ = ["SINGLE_FILE_LIMIT", "check_file", "input_size_of_file", "is_large", "load_model", "save_checked"]
