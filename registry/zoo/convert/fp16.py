"""float16 variants of fp32 artifacts.

Decision: the I/O contract stays float32 (``keep_io_types=True``): the graph casts ``images`` to
float16 on entry and ``logits`` back to float32 on exit, so a downstream app swaps an fp16 version
for an fp32 one without changing a line. The two Cast nodes cost microseconds; halving the
weights is the point. fp16 pays off on GPUs (tensor cores, half the memory traffic); on CPU,
ONNX Runtime wraps ops without fp16 kernels in casts, so expect it to be *slower* there.
"""
from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from ..errors import ExportError
from ._files import load_model, save_checked

# Ops to keep in float32 on top of ORT's own block list (ops without fp16 kernels). None needed
# for the reference CNNs: their Conv/BatchNorm/Gemm/pooling run well in fp16.
EXTRA_OP_BLOCK_LIST: tuple[str, ...] = ()


def convert_to_fp16(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], *,
                    keep_io_types: bool = True, op_block_list: Sequence[str] | None = None) -> Path:
    """Write a float16 copy of the ONNX model ``src_path`` to ``dst_path`` (float32 I/O by default)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST as ORT_BLOCK_LIST
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src, dst = Path(src_path), Path(dst_path)
    model = load_model(src)
    blocked = list(ORT_BLOCK_LIST) + list(op_block_list if op_block_list is not None else EXTRA_OP_BLOCK_LIST)
    try:  # the converter warns about values that saturate in fp16; the parity check measures their effect
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            half = convert_float_to_float16(model, keep_io_types=keep_io_types, op_block_list=blocked)
    except Exception as exc:
        raise ExportError(f"float16 conversion of {os.fspath(src)!r} failed: {type(exc).__name__}: {exc}",
                          hint="rerun with --debug; report the model's opset and ops") from exc
    _topological_sort(half.graph)  # the converter appends the input Casts last; onnx.checker wants order
    save_checked(half, dst, what="float16")
    return dst


def _topological_sort(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (Kahn's algorithm)."""
    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    waiting = [{producer[name] for name in node.input if name in producer} for node in nodes]
    if all(max(deps, default=-1) < i for i, deps in enumerate(waiting)):
        return  # already sorted: keep the bytes as they are
    users: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, deps in enumerate(waiting):
        for d in deps:
            users[d].append(i)
    ready = deque(i for i, deps in enumerate(waiting) if not deps)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for u in users[i]:
            waiting[u].discard(i)
            if not waiting[u]:
                ready.append(u)
    if len(order) != len(nodes):
        raise ExportError("The float16 graph has a cycle", hint="report it with the source model")
    if order != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in order)


__all__ = ["EXTRA_OP_BLOCK_LIST", "convert_to_fp16"]
