"""The graph's signature, default-domain opset and stored tensor element count, from the proto alone."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelFile
from ..records import Signature, TensorSpec
from ._check import ModelLike, unwrap

if TYPE_CHECKING:
    import onnx


def _dtype_name(elem_type: int) -> str:
    import onnx

    if elem_type == onnx.TensorProto.UNDEFINED:
        return "undefined"
    if elem_type == onnx.TensorProto.STRING:
        return "str"
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, ValueError, TypeError):
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _spec(value_info: "onnx.ValueInfoProto") -> TensorSpec:
    t = value_info.type
    kind = t.WhichOneof("value")
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return TensorSpec(name=value_info.name, dtype=kind.replace("_type", "") if kind else "undefined", shape=())
    tt = getattr(t, kind)
    shape: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            shape.append(d.dim_param)
        else:
            shape.append(None)
    return TensorSpec(name=value_info.name, dtype=_dtype_name(tt.elem_type), shape=tuple(shape))


def read_signature(model: ModelLike) -> Signature:
    """Graph inputs (initializers excluded: old IRs list them as inputs) and outputs."""
    proto, _ = unwrap(model)
    inits = {t.name for t in proto.graph.initializer}
    return Signature(
        inputs=tuple(_spec(v) for v in proto.graph.input if v.name not in inits),
        outputs=tuple(_spec(v) for v in proto.graph.output),
    )


def opset(proto: "onnx.ModelProto") -> int:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise InvalidModelFile(
            f"Model {proto.graph.name!r} imports no default-domain opset", hint="re-export it with an explicit opset"
        )
    return max(versions)


def _constant_elements(node: "onnx.NodeProto") -> int:
    total = 0
    for attr in node.attribute:
        if attr.name == "value" and attr.HasField("t"):
            total += math.prod(attr.t.dims)
        elif attr.name == "sparse_value" and attr.HasField("sparse_tensor"):
            total += math.prod(attr.sparse_tensor.values.dims)
        elif attr.name in ("value_float", "value_int", "value_string"):
            total += 1
        elif attr.name == "value_floats":
            total += len(attr.floats)
        elif attr.name == "value_ints":
            total += len(attr.ints)
        elif attr.name == "value_strings":
            total += len(attr.strings)
    return total


def _graph_elements(graph: "onnx.GraphProto") -> int:
    total = sum(math.prod(t.dims) for t in graph.initializer)
    total += sum(math.prod(s.values.dims) for s in graph.sparse_initializer)  # stored values, not the dense size
    for node in graph.node:
        total += _nodes_elements([node])
    return total


def _nodes_elements(nodes: Any) -> int:
    total = 0
    for node in nodes:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            total += _constant_elements(node)
        for attr in node.attribute:
            if attr.HasField("g"):
                total += _graph_elements(attr.g)
            for sub in attr.graphs:
                total += _graph_elements(sub)
    return total


def count_initializer_elements(model: ModelLike) -> int:
    """Elements of every initializer and Constant tensor (subgraphs and functions included), from dims only."""
    proto, _ = unwrap(model)
    return _graph_elements(proto.graph) + sum(_nodes_elements(fn.node) for fn in proto.functions)

