"""A weightless copy of a model for shape inference: no weight is copied or read.

Small initializers keep their values (Reshape targets, pads...), read from external data through
the checked, link-refusing opener where they live there; big ones become typed graph inputs.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._tensors import is_external, tensor_nbytes

if TYPE_CHECKING:
    import onnx

# Initializers up to this many elements keep their values for shape inference (Reshape targets...).
SMALL_TENSOR = 4096

# relpath of a checked external-data file -> a read-only fd of it (the caller closes it)
Opener = Callable[[str], int]


def _read_small_external(tensor: "onnx.TensorProto", opener: Opener) -> "onnx.TensorProto | None":
    """A copy of a small external tensor with its bytes inline (already validated by check_model_file)."""
    import onnx

    entries = {e.key: e.value for e in tensor.external_data}
    needed = tensor_nbytes(tensor)
    if needed is None or "location" not in entries:
        return None
    relpath = "/".join(p for p in entries["location"].split("/") if p not in ("", "."))
    try:
        fd = opener(relpath)
    except (OSError, KeyError, ValueError):
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            f.seek(int(entries.get("offset", 0)))
            raw = f.read(needed)
    except (OSError, ValueError):
        return None
    if len(raw) != needed:
        return None
    copy = onnx.TensorProto()
    copy.name, copy.data_type = tensor.name, tensor.data_type
    copy.dims.extend(tensor.dims)
    copy.raw_data = raw
    return copy


def weightless(proto: "onnx.ModelProto", opener: Opener | None) -> "onnx.ModelProto":
    """A copy for shape inference: small initializers keep their values (Reshape targets, pads...),
    big ones become typed graph inputs, so no weight is copied or read."""
    import onnx

    m = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version"):
        setattr(m, field, getattr(proto, field))
    m.opset_import.extend(proto.opset_import)
    m.functions.extend(proto.functions)
    g, src = m.graph, proto.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.sparse_initializer.extend(src.sparse_initializer)
    typed = {vi.name for vi in src.input}  # IR < 4 lists initializers as inputs too
    for t in src.initializer:
        keep: Any = None
        if math.prod(t.dims) <= SMALL_TENSOR:
            if not is_external(t):
                keep = t
            elif opener is not None:
                keep = _read_small_external(t, opener)
        if keep is not None:
            g.initializer.append(keep)
        elif t.name not in typed:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return m
