"""float16 variants of fp32 artifacts, and their error against the original.

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
from typing import Any

import numpy as np

from .errors import ExportError, InvalidModelFile

# Ops to keep in float32 on top of ORT's own block list (ops without fp16 kernels). None needed
# for the reference CNNs: their Conv/BatchNorm/Gemm/pooling run well in fp16.
EXTRA_OP_BLOCK_LIST: tuple[str, ...] = ()


def convert_to_fp16(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], *,
                    keep_io_types: bool = True, op_block_list: Sequence[str] | None = None) -> Path:
    """Write a float16 copy of the ONNX model ``src_path`` to ``dst_path`` (float32 I/O by default)."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST as ORT_BLOCK_LIST
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src, dst = Path(src_path), Path(dst_path)
    try:
        model = onnx.load(os.fspath(src))  # loads external data too
    except Exception as exc:
        raise InvalidModelFile(f"Cannot read {os.fspath(src)!r} as an ONNX model: {exc}",
                               hint="give the path of an .onnx file (see `zoo show REF`)") from exc
    blocked = list(ORT_BLOCK_LIST) + list(op_block_list if op_block_list is not None else EXTRA_OP_BLOCK_LIST)
    try:  # the converter warns about values that saturate in fp16; the parity check measures their effect
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            half = convert_float_to_float16(model, keep_io_types=keep_io_types, op_block_list=blocked)
    except Exception as exc:
        raise ExportError(f"float16 conversion of {os.fspath(src)!r} failed: {type(exc).__name__}: {exc}",
                          hint="rerun with --debug; report the model's opset and ops") from exc
    _topological_sort(half.graph)  # the converter appends the input Casts last; onnx.checker wants order
    dst.parent.mkdir(parents=True, exist_ok=True)
    size = half.ByteSize()
    if size >= 2**31 - 2**20:  # protobuf's 2 GB limit: weights beside the graph
        onnx.save(half, os.fspath(dst), save_as_external_data=True, location=dst.name + ".data")
    else:
        onnx.save(half, os.fspath(dst))
    try:
        onnx.checker.check_model(os.fspath(dst))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"The float16 model fails the ONNX checker: {str(exc).splitlines()[0]}",
                          hint="report it with the source model's opset; the fp32 version is unaffected") from exc
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


def _input_size(path: Path, default: int) -> int:
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    fixed = [d.dim_value for d in dims[2:4] if d.HasField("dim_value")]
    return fixed[0] if len(fixed) == 2 and fixed[0] == fixed[1] else default


def fp16_parity(fp32_path: str | os.PathLike[str], fp16_path: str | os.PathLike[str], *, batch: int = 2,
                seed: int = 0, input_size: int | None = None, provider: str | None = None) -> dict[str, Any]:
    """The fp16 model's error against the fp32 one on a seeded batch.

    ``max_abs_error``; ``max_rel_error`` = max |fp16 - fp32| / max |fp32| (relative to the output
    scale, robust to near-zero logits); ``top1_agreement`` = fraction of samples whose argmax agrees.
    """
    from .metrics import relative_error, verification_batch
    from .runtime import InferenceModel

    fp32_path, fp16_path = Path(fp32_path), Path(fp16_path)
    size = input_size or _input_size(fp32_path, 224)
    images = verification_batch(size, batch=batch, seed=seed)
    ref_model = InferenceModel(fp32_path, provider=provider, cache=False)
    expected = ref_model.predict(images)
    chosen = ref_model.provider.name
    del ref_model
    actual = InferenceModel(fp16_path, provider=chosen, cache=False).predict(images).astype(np.float32)
    return {
        "max_abs_error": float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))),
        "max_rel_error": relative_error(actual, expected),
        "top1_agreement": float(np.mean(actual.argmax(axis=-1) == expected.argmax(axis=-1))),
        "batch": batch,
        "seed": seed,
        "input_size": size,
        "provider": chosen,
    }


__all__ = ["convert_to_fp16", "fp16_parity", "EXTRA_OP_BLOCK_LIST"]
