"""Tiny ONNX classifiers built with onnx.helper, for runtime/bench/bad-input tests (milliseconds to run).

They honour the artifact contract: input ``images`` float32 [batch, 3, H, W], output ``logits``
float32 [batch, classes]. Weights come from a seeded generator, so the logits are not trivial.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CHANNELS = 8


def tiny_cnn(path: Path, *, size: int | None = 16, classes: int = 10, seed: int = 0) -> Path:
    """Conv 3x3 (3->8) + ReLU + global average pool + Gemm (8->classes).

    ``size=None`` makes H and W symbolic; otherwise they are fixed at ``size``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    hw: list[int | str] = ["height", "width"] if size is None else [size, size]
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, *hw])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])
    inits = [
        numpy_helper.from_array(rng.standard_normal((CHANNELS, 3, 3, 3)).astype(np.float32) * 0.3, "conv.w"),
        numpy_helper.from_array(rng.standard_normal(CHANNELS).astype(np.float32) * 0.1, "conv.b"),
        numpy_helper.from_array(rng.standard_normal((classes, CHANNELS)).astype(np.float32), "fc.w"),
        numpy_helper.from_array(rng.standard_normal(classes).astype(np.float32) * 0.1, "fc.b"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [images], [logits], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def tiny_cnn_macs(size: int, classes: int = 10) -> int:
    """Multiply-accumulates per sample of :func:`tiny_cnn` (conv + dense)."""
    return CHANNELS * 3 * 9 * size * size + CHANNELS * classes


def reference_logits(images: np.ndarray, *, classes: int = 10, seed: int = 0) -> np.ndarray:
    """The same network in numpy, to check what ORT returns against an independent computation."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((CHANNELS, 3, 3, 3)).astype(np.float32) * 0.3
    b = rng.standard_normal(CHANNELS).astype(np.float32) * 0.1
    fw = rng.standard_normal((classes, CHANNELS)).astype(np.float32)
    fb = rng.standard_normal(classes).astype(np.float32) * 0.1
    x = np.pad(images.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, _, h, wd = images.shape
    out = np.zeros((n, CHANNELS, h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", x[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    out = np.maximum(out + b[None, :, None, None], 0).mean(axis=(2, 3))
    return (out @ fw.T + fb).astype(np.float32)
