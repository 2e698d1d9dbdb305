"""Keras model -> ONNX file honouring the artifact contract, in bounded memory.

Why not ``tf2onnx.convert.from_keras``: it freezes every variable into a graph constant and then
copies those constants several times (GraphDef, grappler, tf2onnx's graph, the proto); full VGG16
was killed above 23 GB. Here the weights never enter TensorFlow's graph: tf2onnx converts a
``tf.function`` that takes the *weights as inputs* (``model.stateless_call``); this module then
turns those graph inputs into ONNX initializers and folds, with numpy, the weight-only nodes
tf2onnx emitted (HWIO->OIHW transposes, BatchNorm's arithmetic, then BN into the convs). The dense
kernels (VGG's first is 0.4 GB) never enter a protobuf in memory at all: they are streamed into
the file after the rest of the model (``Converted.write``). benchmarks/tf_export_memory.py
measures the peak.

The contract: input ``images`` float32 ``[batch, 3, H, W]`` (tf2onnx's ``inputs_as_nchw`` inserts one
NCHW->NHWC transpose that its transpose optimizer cancels against the per-conv layout transposes,
so the graph is NCHW end to end, with no Transpose node), output ``logits`` ``[batch, num_classes]``,
auxiliary heads absent.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from registry.errors import ExportError, InvalidInput
from registry.records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, ExportInfo

from .inference import inference_model

EXPORTER = "tf2onnx.from_function(stateless_call, weights as inputs -> initializers)"
MAX_TF2ONNX_OPSET = 18  # tf2onnx 1.17 writes opsets up to 18; higher ones go through onnx.version_converter
_WEIGHT_PREFIX = "zoo_w"
# Weights read only by these ops are never folded, so they can wait outside the proto until written.
_STREAMED_CONSUMERS = frozenset({"MatMul", "Gemm"})

_CHUNK_BYTES = 64 << 20  # streamed weights are read from the Keras variable this many bytes at a time


@dataclass
class Converted:
    """An exported graph whose ``streamed`` weights (Keras variables by graph input name) are still
    graph inputs, read only when written."""

    proto: Any  # onnx.ModelProto
    streamed: dict[str, Any]

    def write(self, path: Path) -> None:
        """Write a single ONNX file: the proto, then one initializer at a time, straight from the
        variable in 64 MB slices.

        Protobuf merges a message field that occurs twice and concatenates repeated fields, so
        ``ModelProto{graph{...}}`` followed by ``ModelProto{graph{initializer: T}}`` chunks parses as
        one model whose graph has every initializer.
        """
        from onnx import TensorProto, helper

        graph = self.proto.graph
        for index in reversed([i for i, inp in enumerate(graph.input) if inp.name in self.streamed]):
            del graph.input[index]
        try:
            with open(path, "wb") as f:
                f.write(self.proto.SerializeToString())
                for name, variable in self.streamed.items():
                    shape, dtype = tuple(int(d) for d in variable.shape), np.dtype(variable.dtype).newbyteorder("<")
                    nbytes = int(np.prod(shape)) * dtype.itemsize
                    header = TensorProto(name=name, dims=shape,
                                         data_type=helper.np_dtype_to_tensor_dtype(dtype)).SerializeToString()
                    header += _tag(9, 2) + _varint(nbytes)  # TensorProto.raw_data (little-endian)
                    initializer = _tag(5, 2) + _varint(len(header) + nbytes)  # GraphProto.initializer
                    f.write(_tag(7, 2) + _varint(len(initializer) + len(header) + nbytes))  # ModelProto.graph
                    f.write(initializer + header)
                    for chunk in _slices(variable, shape, dtype):
                        f.write(memoryview(chunk).cast("B"))
        finally:
            self.streamed.clear()  # the proto no longer declares them: a second write would be wrong

    def model_proto(self) -> Any:
        """The whole model in memory (tests, benchmarks, small models)."""
        _inline_weights(self.proto.graph, lambda name: np.asarray(self.streamed[name].numpy()))
        self.streamed.clear()
        return self.proto


def _slices(variable: Any, shape: tuple[int, ...], dtype: np.dtype):
    """The variable's values in C order, as contiguous arrays of about ``_CHUNK_BYTES`` each."""
    if not shape or shape[0] <= 1:
        yield np.ascontiguousarray(np.asarray(variable.numpy()), dtype=dtype)
        return
    row_bytes = max(1, int(np.prod(shape[1:])) * dtype.itemsize)
    step = max(1, _CHUNK_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        yield np.ascontiguousarray(np.asarray(variable.value[start:start + step]), dtype=dtype)


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

    proto, _ = tf2onnx.convert.from_function(
        tf.function(logits), input_signature=specs, opset=min(opset, MAX_TF2ONNX_OPSET),
        inputs_as_nchw=[INPUT_NAME] if nchw else None,
    )
    value_of = {f"{_WEIGHT_PREFIX}{i}": v for i, v in enumerate(variables)}
    read = lambda name: np.asarray(value_of[name].numpy())
    # 1. Vectors (BN statistics, biases) become constants and BN's arithmetic is folded, so that a
    #    second pass of tf2onnx's transpose optimizer can push the NHWC<->NCHW transposes through
    #    BN's per-channel Mul/Add and cancel them. Kernels stay graph inputs during that pass:
    #    tf2onnx's graph re-serialises every constant after each optimizer step, which costs
    #    minutes (and copies) for VGG's 0.4 GB dense kernel.
    _inline_weights(proto.graph, read, inline=lambda inp: len(inp.type.tensor_type.shape.dim) <= 1)
    _fold_constants(proto.graph)
    _prune(proto.graph)
    proto = GraphUtil.optimize_model_proto(proto, catch_errors=False)
    # 2. The conv kernels: inline, fold their HWIO->OIHW transposes, fold BN's scale/shift into the
    #    convs. Dense kernels stay inputs until Converted.write streams them into the file.
    streamed = {inp.name: value_of[inp.name] for inp in proto.graph.input
                if inp.name.startswith(_WEIGHT_PREFIX) and _consumers(proto.graph, inp.name)
                and {n.op_type for n in _consumers(proto.graph, inp.name)} <= _STREAMED_CONSUMERS}
    _inline_weights(proto.graph, read, inline=lambda inp: inp.name not in streamed)
    _fold_constants(proto.graph)
    _fold_scale_shift_into_conv(proto.graph)
    _fold_pad_into_maxpool(proto.graph)
    _prune(proto.graph)
    _apply_contract(proto.graph, ignore=set(streamed))
    used_domains = {node.domain for node in proto.graph.node}
    for index in reversed([i for i, o in enumerate(proto.opset_import) if o.domain and o.domain not in used_domains]):
        del proto.opset_import[index]  # tf2onnx always declares ai.onnx.ml
    if opset > MAX_TF2ONNX_OPSET:
        from onnx import version_converter

        proto = version_converter.convert_version(proto, opset)
    return Converted(proto, streamed)


def export_onnx(model: Any, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
    """Write ``model``'s inference graph to ``path`` (one file; the largest, VGG19, is 0.55 GB)."""
    import onnx
    import tf2onnx

    if not isinstance(input_size, int) or input_size < 32:
        raise InvalidInput(f"Expected input_size to be an int >= 32. Received: {input_size!r}")
    converted = convert(model, input_size=input_size, opset=opset)
    try:
        # The graph with its dense kernels still declared as inputs: small. (Checking the written
        # file would load all of it again; the registry's ORT verification reads it anyway.)
        onnx.checker.check_model(converted.proto)
        converted.write(path)
    except onnx.checker.ValidationError as exc:
        path.unlink(missing_ok=True)
        raise ExportError(f"tf2onnx wrote an invalid ONNX graph for {model.name!r}: {exc}",
                          hint="report it with the --debug output") from exc
    notes = ["weights converted as graph inputs, then written as initializers (bounded memory)",
             "NCHW input via tf2onnx inputs_as_nchw; layout transposes cancelled by its optimizer",
             "BatchNorm folded into the preceding convolutions"]
    if opset > MAX_TF2ONNX_OPSET:
        notes.append(f"converted at opset {MAX_TF2ONNX_OPSET}, upgraded to {opset} by onnx.version_converter")
    return ExportInfo(exporter=EXPORTER, exporter_version=tf2onnx.__version__, opset=opset, notes=tuple(notes))


def _consumers(graph: Any, name: str) -> list[Any]:
    return [node for node in graph.node if name in node.input]


# --- graph surgery on the proto tf2onnx returns ------------------------------------------------

def _inline_weights(graph: Any, read: Callable[[str], np.ndarray],
                    inline: Callable[[Any], bool] = lambda inp: True) -> None:
    """Turn the weight graph inputs that ``inline`` selects into initializers; unused ones (dropout
    seed state) are dropped."""
    from onnx import numpy_helper

    used = {name for node in graph.node for name in node.input}
    keep = []
    for inp in graph.input:
        if not inp.name.startswith(_WEIGHT_PREFIX):
            keep.append(inp)
        elif inp.name in used:
            if inline(inp):
                graph.initializer.append(numpy_helper.from_array(read(inp.name), inp.name))
            else:
                keep.append(inp)
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
    if op in ("Unsqueeze", "Squeeze"):
        axes = args[1] if len(args) == 2 else attrs.get("axes")  # an input from opset 13, before an attribute
        axes = None if axes is None else tuple(int(a) for a in np.atleast_1d(axes))
        if op == "Squeeze":
            return np.squeeze(args[0], axes)
        return None if axes is None else np.expand_dims(args[0], axes)
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


def _fold_scale_shift_into_conv(graph: Any) -> None:
    """``Conv [-> Mul(per-channel)] [-> Add(per-channel)]`` with constant operands -> one Conv.

    That is a conv bias, or inference BatchNorm after tf2onnx (``x * gamma/sqrt(var+eps) + (beta - mean*...)``).
    ORT fuses the same pattern at every session start; doing it once here gives a file whose
    initializers are the deployed weights (torch's exporter folds BN the same way).
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def only_consumer(name: str, op: str) -> Any | None:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op and name not in outputs else None

    def per_channel(node: Any, data: str, channels: int) -> np.ndarray | None:
        other = [i for i in node.input if i != data]
        if len(node.input) != 2 or len(other) != 1 or other[0] not in inits:
            return None
        value = numpy_helper.to_array(inits[other[0]])
        if value.size != channels or not 3 <= value.ndim <= 4 or value.shape[-3] != channels:
            return None  # must broadcast along NCHW's channel axis: [C,1,1] or [1,C,1,1]
        return value.reshape(channels)

    removed: set[str] = set()  # Mul/Add nodes by output name (unique in a graph)
    for conv in list(graph.node):
        if conv.op_type != "Conv" or len(conv.input) < 2 or conv.input[1] not in inits:
            continue
        if len(conv.input) == 3 and conv.input[2] not in inits:
            continue
        weight = numpy_helper.to_array(inits[conv.input[1]])
        channels = weight.shape[0]
        out, scale, shift, absorbed = conv.output[0], None, None, []
        mul = only_consumer(out, "Mul")
        if mul is not None and (scale := per_channel(mul, out, channels)) is not None:
            out, absorbed = mul.output[0], [mul]
        add = only_consumer(out, "Add")
        if add is not None and (shift := per_channel(add, out, channels)) is not None:
            out, absorbed = add.output[0], absorbed + [add]
        if not absorbed:
            continue
        scale = np.ones(channels, weight.dtype) if scale is None else scale
        shift = np.zeros(channels, weight.dtype) if shift is None else shift
        bias = numpy_helper.to_array(inits[conv.input[2]]) if len(conv.input) == 3 else np.zeros(channels, weight.dtype)
        names = (f"{out}.weight", f"{out}.bias")  # output names are unique
        graph.initializer.extend([
            numpy_helper.from_array((weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype), names[0]),
            numpy_helper.from_array((bias * scale + shift).astype(weight.dtype), names[1]),
        ])
        folded = helper.make_node("Conv", [conv.input[0], *names], [out], name=conv.name)
        folded.attribute.extend(conv.attribute)
        conv.CopyFrom(folded)
        removed.update(n.output[0] for n in absorbed)
    for index in reversed([i for i, n in enumerate(graph.node) if n.op_type in ("Mul", "Add")
                           and n.output[0] in removed]):
        del graph.node[index]


def _fold_pad_into_maxpool(graph: Any) -> None:
    """``Pad(-inf, spatial only) -> MaxPool`` -> ``MaxPool(pads=...)``: torch's padded/ceil-mode pools.

    ONNX MaxPool's own padding never wins a max, exactly like the -inf constant that
    ``archs.layers.TorchMaxPool2D`` pads with, so the copy of the padded tensor goes away.
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed: set[str] = set()
    for pad in list(graph.node):
        if pad.op_type != "Pad" or len(pad.input) not in (2, 3) or not all(i in inits for i in pad.input[1:]):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        if attrs.get("mode", b"constant") not in (b"constant", "constant"):
            continue
        pads = numpy_helper.to_array(inits[pad.input[1]]).astype(int).tolist()
        fill = numpy_helper.to_array(inits[pad.input[2]]) if len(pad.input) == 3 else np.zeros(())
        users = consumers.get(pad.output[0], [])
        if (len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0 or fill.size != 1
                or not np.isneginf(fill).all() or len(users) != 1 or users[0].op_type != "MaxPool"):
            continue
        pool = users[0]
        pool_attrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        if any(pool_attrs.get("pads", [0])) or pool_attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
            continue
        merged = helper.make_node("MaxPool", [pad.input[0]], list(pool.output), name=pool.name,
                                  pads=[pads[2], pads[3], pads[6], pads[7]],
                                  **{k: v for k, v in pool_attrs.items() if k not in ("pads", "auto_pad")})
        pool.CopyFrom(merged)
        removed.add(pad.output[0])
    for index in reversed([i for i, n in enumerate(graph.node) if n.op_type == "Pad" and n.output[0] in removed]):
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


def _apply_contract(graph: Any, *, ignore: set[str]) -> None:
    """Name the input ``images`` and output ``logits``; call the symbolic batch dimension ``batch``.

    ``ignore``: weights still declared as inputs until they are written (``Converted.streamed``).
    """
    inputs = [i for i in graph.input if i.name not in ignore]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"Expected one graph input and one output after inlining weights. Received: "
            f"inputs {[i.name for i in inputs]}, outputs {[o.name for o in graph.output]}",
            hint="the model's inference graph must be images -> logits",
        )
    _rename(graph, inputs[0].name, INPUT_NAME)
    _rename(graph, graph.output[0].name, OUTPUT_NAME)
    symbols = {vi.type.tensor_type.shape.dim[0].dim_param for vi in (inputs[0], graph.output[0])}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_param = BATCH_DIM
