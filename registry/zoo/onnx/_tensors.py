"""Every TensorProto a model can hold, and what a tensor's raw bytes must measure.

The walk covers each place the ONNX format can keep a tensor: graph initializers, sparse
initializers (values and indices), node attributes (``t``, ``tensors``, ``sparse_tensor``,
``sparse_tensors``), subgraphs (``g``, ``graphs``) at any depth, the nodes of local functions
(``ModelProto.functions``), and the initialization and algorithm graphs of ``training_info``.
A tensor the walk missed would be a tensor whose external data nobody checked.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

# Bits per element of the packed sub-byte types (UINT4, INT4, FLOAT4E2M1, UINT2, INT2).
_SUB_BYTE_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2}


def _sparse_tensors(sparse: "onnx.SparseTensorProto") -> Iterator["onnx.TensorProto"]:
    yield sparse.values
    yield sparse.indices


def graph_tensors(graph: "onnx.GraphProto") -> Iterator["onnx.TensorProto"]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from _sparse_tensors(sparse)
    for node in graph.node:
        yield from node_tensors(node)


def node_tensors(node: "onnx.NodeProto") -> Iterator["onnx.TensorProto"]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield from _sparse_tensors(attr.sparse_tensor)
        for sparse in attr.sparse_tensors:
            yield from _sparse_tensors(sparse)
        if attr.HasField("g"):
            yield from graph_tensors(attr.g)
        for sub in attr.graphs:
            yield from graph_tensors(sub)


def all_tensors(model: "onnx.ModelProto") -> Iterator["onnx.TensorProto"]:
    """Every tensor of ``model``, wherever the format lets it sit (see the module docstring).

    ``training_info``'s bindings name initializers of these graphs; they hold no tensor themselves.
    """
    yield from graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            yield from node_tensors(node)
    for info in model.training_info:
        if info.HasField("initialization"):
            yield from graph_tensors(info.initialization)
        if info.HasField("algorithm"):
            yield from graph_tensors(info.algorithm)


def is_external(tensor: "onnx.TensorProto") -> bool:
    import onnx

    return tensor.HasField("data_location") and tensor.data_location == onnx.TensorProto.EXTERNAL


def tensor_nbytes(tensor: "onnx.TensorProto") -> int | None:
    """Bytes the tensor's raw data must have, from dims and dtype; None where that is not fixed."""
    import onnx

    count = math.prod(tensor.dims)
    if tensor.data_type in _SUB_BYTE_BITS:
        return (count * _SUB_BYTE_BITS[tensor.data_type] + 7) // 8
    if tensor.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        return None
    if tensor.data_type in (27, 28):  # FLOAT6 types: packing not fixed here
        return None
    return count * itemsize
