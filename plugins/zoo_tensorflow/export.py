"""Keras model -> ONNX file honouring the artifact contract, in bounded memory.

Why not ``tf2onnx.convert.from_keras``: it freezes every variable into a graph constant and then
copies those constants several times (GraphDef, grappler, tf2onnx's graph, the proto); full VGG16
was killed above 23 GB. Here the weights never enter TensorFlow's graph: tf2onnx converts a
``tf.function`` that takes the *weights as inputs* (``model.stateless_call``). graph_passes.py then
makes them constants again and folds the weight-only nodes with numpy, keeping the kernels out of
the protobuf until :meth:`Converted.write` streams them into the file. Peak memory is about the
model plus one copy of its conv weights (benchmarks/tf_export_memory.py measures it).

The contract: input ``images`` float32 ``[batch, 3, H, W]`` (tf2onnx's ``inputs_as_nchw`` inserts one
NCHW->NHWC transpose that its transpose optimizer cancels against the per-conv layout transposes,
so the graph is NCHW end to end, with no Transpose node), output ``logits`` ``[batch, num_classes]``,
auxiliary heads absent, BatchNorm folded into the convolutions.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ExportError, InvalidInput
from zoo.records import INPUT_NAME, ExportInfo

from . import graph_passes as passes
from .inference import inference_model

EXPORTER = "tf2onnx.from_function(stateless_call, weights as inputs -> initializers)"
MAX_TF2ONNX_OPSET = 18  # tf2onnx 1.17 writes opsets up to 18; higher ones go through onnx.version_converter
_WEIGHT_PREFIX = "zoo_w"
_CHUNK_BYTES = 64 << 20  # held Keras variables are written this many bytes at a time


@dataclass
class Converted:
    """An exported graph whose large constants are still held outside the proto (declared as graph
    inputs), to be written by :meth:`write` or inlined by :meth:`model_proto`."""

    proto: Any  # onnx.ModelProto
    constants: passes.Constants

    def write(self, path: Path) -> None:
        """Write one ONNX file: the proto, then one initializer at a time, straight from numpy.

        Protobuf merges a message field that occurs twice and concatenates repeated fields, so
        ``ModelProto{graph{...}}`` followed by ``ModelProto{graph{initializer: T}}`` chunks parses as
        one model whose graph holds every initializer. No second copy of the weights is made.
        """
        from onnx import TensorProto, helper

        held = self.constants.held
        graph = self.proto.graph
        for index in reversed([i for i, inp in enumerate(graph.input) if inp.name in held]):
            del graph.input[index]
        try:
            with open(path, "wb") as f:
                f.write(self.proto.SerializeToString())
                for name, value in held.items():
                    shape = tuple(int(d) for d in value.shape)
                    dtype = np.dtype(value.dtype)
                    nbytes = int(np.prod(shape)) * dtype.itemsize
                    header = TensorProto(name=name, dims=shape,
                                         data_type=helper.np_dtype_to_tensor_dtype(dtype)).SerializeToString()
                    header += _tag(9, 2) + _varint(nbytes)  # TensorProto.raw_data (little-endian)
                    initializer = _tag(5, 2) + _varint(len(header) + nbytes)  # GraphProto.initializer
                    f.write(_tag(7, 2) + _varint(len(initializer) + len(header) + nbytes))  # ModelProto.graph
                    f.write(initializer + header)
                    for chunk in self.constants.chunks(name, _CHUNK_BYTES):
                        f.write(chunk.tobytes() if not chunk.flags.c_contiguous else memoryview(chunk).cast("B"))  # type: ignore[arg-type]
        finally:
            held.clear()  # the proto no longer declares them: a second write would be wrong

    def model_proto(self) -> Any:
        """The whole model in memory (tests, benchmarks, small models)."""
        self.constants.inline(lambda name, shape: True)
        return self.proto


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def convert(model: Any, *, input_size: int, opset: int, nchw: bool = True) -> Converted:
    """``model``'s inference graph at ``input_size`` as ONNX; ``nchw=False`` keeps TensorFlow's NHWC
    input (for benchmarks/nchw_contract_cost.py, not a contract artifact)."""
    import tensorflow as tf
    import tf2onnx
    from tf2onnx.graph import GraphUtil

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    net = inference_model(model)
    trainable, non_trainable = list(net.trainable_variables), list(net.non_trainable_variables)
    variables = trainable + non_trainable
    n_trainable = len(trainable)
    specs = [tf.TensorSpec([None, input_size, input_size, 3], tf.float32, name=INPUT_NAME)]
    specs += [tf.TensorSpec(v.shape, v.dtype, name=f"{_WEIGHT_PREFIX}{i}") for i, v in enumerate(variables)]

    @tf.autograph.experimental.do_not_convert
    def logits(images, *weights):
        out, _ = net.stateless_call(list(weights[:n_trainable]), list(weights[n_trainable:]), images, training=False)
        return out

    with _fail_fast(tf2onnx):
        proto, _ = tf2onnx.convert.from_function(
            tf.function(logits), input_signature=specs, opset=min(opset, MAX_TF2ONNX_OPSET),
            inputs_as_nchw=[INPUT_NAME] if nchw else None,
        )
    declared = {inp.name for inp in proto.graph.input}
    constants = passes.Constants(proto.graph, {f"{_WEIGHT_PREFIX}{i}": v for i, v in enumerate(variables)
                                               if f"{_WEIGHT_PREFIX}{i}" in declared})
    passes.prune(constants)  # dropout seed state: declared, never read
    # 1. Vectors (BN statistics, biases) become initializers and BN's arithmetic is folded, so that a
    #    second pass of tf2onnx's transpose optimizer can push the NHWC<->NCHW transposes through
    #    BN's per-channel Mul/Add and cancel them. Kernels stay held outside the proto: tf2onnx's
    #    graph re-serialises every constant after each optimizer step (minutes for VGG's 0.4 GB).
    constants.inline(lambda name, shape: len(shape) <= 1)
    passes.fold_constants(constants, hold=False)
    passes.prune(constants)
    # Not merge_duplication: it would let equal weights (zero-initialised biases) share one tensor,
    # picking the survivor in hash order, so the bytes of the file would vary from run to run.
    available = getattr(tf2onnx.optimizer, "_get_optimizers", None)  # tf2onnx 1.17 (pinned) has it
    optimizers = {k: v for k, v in available().items() if k != "merge_duplication"} if available else None
    with _fail_fast(tf2onnx):
        proto = GraphUtil.optimize_model_proto(proto, catch_errors=False, optimizers=optimizers)
    constants.graph = proto.graph
    # 2. The kernels: fold their HWIO->OIHW transposes, then BN's scale/shift into the convs.
    passes.fold_constants(constants, hold=True)
    passes.fold_scale_shift_into_conv(constants)
    passes.fold_pad_into_maxpool(constants)
    passes.prune(constants)
    passes.stable_names(constants)
    proto.graph.name = net.name
    proto.graph.doc_string = ""  # tf2onnx writes the traced function's process-unique name here
    passes.drop_unused_domains(proto)
    if opset > MAX_TF2ONNX_OPSET:
        from onnx import version_converter

        proto = version_converter.convert_version(proto, opset)
        constants.graph = proto.graph
    return Converted(proto, constants)


def export_onnx(model: Any, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
    """Write ``model``'s inference graph to ``path`` (one file; the largest, VGG19, is 0.57 GB)."""
    import onnx
    import tf2onnx

    if not isinstance(input_size, int) or input_size < 32:
        raise InvalidInput(f"Expected input_size to be an int >= 32. Received: {input_size!r}")
    converted = convert(model, input_size=input_size, opset=opset)
    try:
        # The graph with its kernels still declared as inputs: small. (Checking the written file
        # would load all of it again; the registry's ORT verification reads it anyway.)
        onnx.checker.check_model(converted.proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"tf2onnx wrote an invalid ONNX graph for {model.name!r}: {exc}",
                          hint="report it with the --debug output") from exc
    converted.write(path)
    # tf2onnx has no option to name the output or the batch dim: zoo's one contract pass, which the
    # core runs after every plugin export (zoo._exporting.export_onnx), names them.
    notes = ["weights converted as graph inputs, then written as initializers (bounded memory)",
             "NCHW input via tf2onnx inputs_as_nchw; layout transposes cancelled by its optimizer",
             "BatchNorm and conv biases folded into the convolutions"]
    if opset > MAX_TF2ONNX_OPSET:
        notes.append(f"converted at opset {MAX_TF2ONNX_OPSET}, upgraded to {opset} by onnx.version_converter")
    return ExportInfo(exporter=EXPORTER, exporter_version=tf2onnx.__version__, opset=opset, notes=tuple(notes))


@contextmanager
def _fail_fast(tf2onnx: Any) -> Iterator[None]:
    """tf2onnx's documented switch: an optimizer that fails raises instead of being skipped, and the
    optimizers stop deep-copying the whole graph before every step (a third of ResNet-152's time)."""
    key = tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS
    previous = os.environ.get(key)
    os.environ[key] = "FALSE"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous
