"""Multiply-accumulates per sample, from onnx shape inference on a weightless copy of the graph."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ._check import ModelLike, unwrap
from ._weightless import Opener, weightless

if TYPE_CHECKING:
    import onnx

# Data propagation allocates per element of known 1-D tensors; above this many, skip it.
_DATA_PROP_BUDGET = 1 << 20


def _normalize_size(input_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if input_size is None:
        return None
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise InvalidInput(
            f"Expected input_size as a positive int or (height, width). Received: {input_size!r}",
            hint="e.g. input_size=224 or input_size=(224, 224)",
        )
    return size



def _shape_model(proto: "onnx.ModelProto", opener: Opener | None, size: tuple[int, int] | None) -> tuple["onnx.ModelProto", int] | None:
    """The weightless copy with batch 1 and symbolic spatial dims set to ``size``; and the batch divisor."""
    m = weightless(proto, opener)
    init_names = {t.name for t in proto.graph.initializer}
    batch = None
    for vi in m.graph.input:
        if vi.name in init_names or not vi.type.HasField("tensor_type"):
            continue
        if not vi.type.tensor_type.HasField("shape"):
            return None
        dims = vi.type.tensor_type.shape.dim
        symbolic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
        if symbolic and symbolic[0] == 0:
            dims[0].Clear()
            dims[0].dim_value = 1
            symbolic = symbolic[1:]
        if symbolic:
            if size is None or len(symbolic) != 2:
                return None
            for i, v in zip(symbolic, size, strict=True):
                dims[i].Clear()
                dims[i].dim_value = v
        if batch is None:  # a rank-1 input has no batch dim
            batch = dims[0].dim_value if len(dims) >= 2 else 1
    if m.functions:
        import onnx.inliner

        m = onnx.inliner.inline_local_functions(m)
    return m, max(batch or 1, 1)


def _static_shape(shapes: Mapping[str, Any], name: str) -> tuple[int, ...] | None:
    vi = shapes.get(name)
    if vi is None or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = vi.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


# op type -> (index of the weight / B input, how to count)
_MAC_OPS = {
    "Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1,
    "Gemm": 1, "MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3,
}


def _node_macs(node: "onnx.NodeProto", shapes: Mapping[str, Any]) -> int | None:
    op = node.op_type
    a = _static_shape(shapes, node.input[0])
    w = _static_shape(shapes, node.input[_MAC_OPS[op]]) if len(node.input) > _MAC_OPS[op] else None
    y = _static_shape(shapes, node.output[0])
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        # K_h*K_w*(C_in/groups)*C_out = |W|, once per output pixel and sample.
        if w is None or y is None or len(y) < 2:
            return None
        return math.prod(w) * math.prod(y[2:]) * y[0]
    if op == "ConvTranspose":
        # Each input pixel meets the whole kernel slice: |W| * input pixels.
        if w is None or a is None or len(a) < 2:
            return None
        return math.prod(w) * math.prod(a[2:]) * a[0]
    if op == "Gemm":
        if a is None or y is None or len(a) != 2:
            return None
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        return math.prod(y) * (a[0] if trans_a else a[1])
    # MatMul family: every output element is a K-long dot product.
    if a is None or y is None or not a:
        return None
    return math.prod(y) * a[-1]


def count_macs(model: ModelLike, *, input_size: int | tuple[int, int] | None = None) -> int | None:
    """Multiply-accumulates per sample of Conv/ConvTranspose/Gemm/MatMul nodes in the main graph.

    The batch dim is fixed to 1 and symbolic spatial dims to ``input_size`` before onnx shape
    inference; None if any counted node's shapes cannot be inferred. Nodes inside subgraphs
    (If/Loop bodies) are not counted.
    """
    proto, opener = unwrap(model)
    size = _normalize_size(input_size)
    prepared = _shape_model(proto, opener, size)
    if prepared is None:
        return None
    shaped, batch = prepared
    # Plain inference first. Data propagation (needed for computed Reshape targets) can allocate
    # per element of every known 1-D tensor, so a tiny hostile graph could ask for gigabytes: it
    # runs only when plain inference was not enough and the 1-D tensors are small.
    inferred = _infer(shaped, data_prop=False)
    macs = _sum_macs(inferred) if inferred is not None else None
    if macs is None and inferred is not None and _one_d_elements(inferred) <= _DATA_PROP_BUDGET:
        inferred = _infer(shaped, data_prop=True)
        macs = _sum_macs(inferred) if inferred is not None else None
    return None if macs is None else macs // batch


def _infer(model: "onnx.ModelProto", *, data_prop: bool) -> "onnx.ModelProto | None":
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=data_prop)
    except Exception:
        return None


def _value_shapes(inferred: "onnx.ModelProto") -> dict[str, Any]:
    import onnx

    shapes: dict[str, Any] = {}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        shapes.setdefault(vi.name, vi)
    for t in inferred.graph.initializer:
        shapes.setdefault(t.name, onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return shapes


def _one_d_elements(inferred: "onnx.ModelProto") -> int:
    """Total length of the statically known 1-D tensors: what data propagation may expand."""
    total = 0
    shapes = _value_shapes(inferred)
    for name in shapes:
        shape = _static_shape(shapes, name)
        if shape is not None and len(shape) == 1:
            total += shape[0]
    return total


def _sum_macs(inferred: "onnx.ModelProto") -> int | None:
    shapes = _value_shapes(inferred)
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in _MAC_OPS or node.domain not in ("", "ai.onnx"):
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            return None
        total += macs
    return total
