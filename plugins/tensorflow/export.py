"""Keras model -> ONNX file honouring the artifact contract, in bounded memory.

Why not ``tf2onnx.convert.from_keras``: it freezes every variable into a graph constant and then
copies those constants several times (GraphDef, grappler, tf2onnx's graph, the proto); full VGG16
was killed above 23 GB. Here the weights never enter TensorFlow's graph: tf2onnx converts a
``tf.function`` that takes the *weights as inputs* (``model.stateless_call``), and this module then
turns those graph inputs into ONNX initializers and folds the weight-only nodes tf2onnx emitted
(HWIO->OIHW transposes, BatchNorm's ``gamma / sqrt(var + eps)`` arithmetic) with numpy. Peak memory
is about two copies of the weights (benchmarks/tf_export_memory.py measures it).

The contract: input ``images`` float32 ``[batch, 3, H, W]`` (tf2onnx's ``inputs_as_nchw`` inserts one
NCHW->NHWC transpose that its transpose optimizer cancels against the per-conv layout transposes,
so the graph is NCHW end to end), output ``logits`` ``[batch, num_classes]``, auxiliary heads absent.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from registry.errors import ExportError, InvalidInput
from registry.records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, ExportInfo

from .inference import inference_model

EXPORTER = "tf2onnx.from_function(stateless_call, weights as inputs -> initializers)"
MAX_TF2ONNX_OPSET = 18  # tf2onnx 1.17 writes opsets up to 18; higher ones go through onnx.version_converter
_WEIGHT_PREFIX = "zoo_w"


def convert(model: Any, *, input_size: int, opset: int, nchw: bool = True) -> Any:
    """The ONNX ``ModelProto`` of ``model``'s inference graph at ``input_size``; ``nchw=False`` keeps
    TensorFlow's NHWC input (for benchmarks/nchw_contract_cost.py, not a contract artifact)."""
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

    proto, _ = tf2onnx.convert.from_function(
        tf.function(logits), input_signature=specs, opset=min(opset, MAX_TF2ONNX_OPSET),
        inputs_as_nchw=[INPUT_NAME] if nchw else None,
    )
    values = {f"{_WEIGHT_PREFIX}{i}": v for i, v in enumerate(variables)}
    _inline_weights(proto.graph, lambda name: np.asarray(values[name].numpy()))
    _fold_constants(proto.graph)
    _prune(proto.graph)
    # Second pass of tf2onnx's optimizers, now that BN's per-channel vectors are constants: the
    # transpose optimizer can push the layout transposes through Mul/Add and cancel them.
    proto = GraphUtil.optimize_model_proto(proto, catch_errors=False)
    _apply_contract(proto.graph)
    if opset > MAX_TF2ONNX_OPSET:
        from onnx import version_converter

        proto = version_converter.convert_version(proto, opset)
    return proto


def export_onnx(model: Any, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
    """Write ``model``'s inference graph to ``path`` (single file; the largest, VGG19, is 0.55 GB)."""
    import onnx
    import tf2onnx

    if not isinstance(input_size, int) or input_size < 32:
        raise InvalidInput(f"Expected input_size to be an int >= 32. Received: {input_size!r}")
    proto = convert(model, input_size=input_size, opset=opset)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"tf2onnx wrote an invalid ONNX graph for {model.name!r}: {exc}",
                          hint="report it with the --debug output") from exc
    onnx.save_model(proto, str(path))
    notes = ["weights converted as graph inputs, then inlined as initializers (bounded memory)",
             "NCHW input via tf2onnx inputs_as_nchw; layout transposes folded by its optimizer"]
    if opset > MAX_TF2ONNX_OPSET:
        notes.append(f"converted at opset {MAX_TF2ONNX_OPSET}, upgraded to {opset} by onnx.version_converter")
    return ExportInfo(exporter=EXPORTER, exporter_version=tf2onnx.__version__, opset=opset, notes=tuple(notes))


# --- graph surgery on the proto tf2onnx returns ------------------------------------------------

def _inline_weights(graph: Any, value_of: Callable[[str], np.ndarray]) -> None:
    """Turn the weight graph inputs into initializers (unused ones, e.g. dropout seeds, are dropped)."""
    from onnx import numpy_helper

    used = {name for node in graph.node for name in node.input}
    keep = []
    for inp in graph.input:
        if not inp.name.startswith(_WEIGHT_PREFIX):
            keep.append(inp)
        elif inp.name in used:
            graph.initializer.append(numpy_helper.from_array(value_of(inp.name), inp.name))
    del graph.input[:]
    graph.input.extend(keep)


def _numpy_op(node: Any, args: list[np.ndarray]) -> np.ndarray | None:
    """numpy for the ops tf2onnx emits on weights; None: leave the node in the graph."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op == "Transpose":
        return np.transpose(args[0], attrs.get("perm"))
    if op in ("Add", "Sub", "Mul", "Div"):
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        return fn(args[0], args[1]).astype(args[0].dtype)
    if op == "Sqrt":
        return np.sqrt(args[0])
    if op == "Reciprocal":
        return (1 / args[0]).astype(args[0].dtype)
    if op == "Identity":
        return args[0]
    if op == "Reshape":
        return args[0].reshape(args[1])
    if op in ("Unsqueeze", "Squeeze") and len(args) == 2:
        axes = tuple(int(a) for a in args[1])
        return np.expand_dims(args[0], axes) if op == "Unsqueeze" else np.squeeze(args[0], axes)
    if op == "Cast":
        from onnx import helper as h

        return args[0].astype(h.tensor_dtype_to_np_dtype(attrs["to"]))
    return None


def _fold_constants(graph: Any) -> None:
    """Evaluate, once, every node whose inputs are all initializers (weight layout and BN arithmetic).

    ORT would fold these at every session start, but a file with per-layer weight Transposes is
    neither what the contract describes nor what onnx tools count. ONNX nodes are topologically
    sorted, so one pass folds whole chains; arrays are converted one node at a time.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def value(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        return arrays[name]

    folded = []
    for index, node in enumerate(graph.node):
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant" and len(node.output) == 1 and node.attribute[0].name == "value":
            result = numpy_helper.to_array(node.attribute[0].t)
        elif len(node.output) == 1 and inputs and all(i in inits for i in inputs):
            result = _numpy_op(node, [value(i) for i in inputs])
            if result is None:
                continue
        else:
            continue
        arrays[node.output[0]] = result = np.ascontiguousarray(result)
        graph.initializer.append(numpy_helper.from_array(result, node.output[0]))
        inits[node.output[0]] = graph.initializer[-1]
        folded.append(index)
    for index in reversed(folded):
        del graph.node[index]


def _prune(graph: Any) -> None:
    """Drop initializers no node reads (the pre-fold weights, shared constants left behind)."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for index in reversed([i for i, t in enumerate(graph.initializer) if t.name not in used]):
        del graph.initializer[index]


def _rename(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == old:
            vi.name = new


def _apply_contract(graph: Any) -> None:
    """Name the input ``images`` and output ``logits``; call the symbolic batch dimension ``batch``."""
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"Expected one graph input and one output after inlining weights. Received: "
            f"inputs {[i.name for i in graph.input]}, outputs {[o.name for o in graph.output]}",
            hint="the model's inference graph must be images -> logits",
        )
    _rename(graph, graph.input[0].name, INPUT_NAME)
    _rename(graph, graph.output[0].name, OUTPUT_NAME)
    symbols = {vi.type.tensor_type.shape.dim[0].dim_param for vi in (graph.input[0], graph.output[0])}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_param = BATCH_DIM
