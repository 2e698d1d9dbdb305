"""Rewrites of the ONNX graph tf2onnx returns, with weights held *outside* the protobuf.

tf2onnx converts a function whose weights are graph inputs (see export.py). Here they become
constants again, but the large ones never enter the proto in memory: :class:`Constants` keeps them
as Keras variables (read on demand) or numpy arrays (once computed), declared as graph inputs until
``export.Converted.write`` streams them into the file as initializers. Small constants (BN vectors,
tf2onnx's shape tensors) are ordinary initializers, because tf2onnx's optimizers must see them.

Each pass is one idea: fold weight-only nodes (layout transposes, BN arithmetic), fold a per-channel
scale/shift into the preceding Conv (inference BatchNorm), fold a -inf Pad into MaxPool, prune,
and number generated names stably. The artifact contract's names are not applied here: the written
file goes through zoo's one I/O-contract pass (``zoo.onnx.contract``), as every export does.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


class Constants:
    """Constant tensors of ``graph`` by name: its initializers plus out-of-proto ``held`` values."""

    def __init__(self, graph: Any, held: dict[str, Any]):
        self.graph = graph
        self.held: dict[str, Any] = dict(held)  # name -> keras Variable or np.ndarray; declared as graph inputs

    def initializers(self) -> dict[str, Any]:
        return {t.name: t for t in self.graph.initializer}

    def __contains__(self, name: str) -> bool:
        return name in self.held or any(t.name == name for t in self.graph.initializer)

    def value(self, name: str, initializers: dict[str, Any] | None = None) -> np.ndarray:
        from onnx import numpy_helper

        if name in self.held:
            held = self.held[name]
            return held if isinstance(held, np.ndarray) else np.asarray(held.numpy())
        return numpy_helper.to_array((initializers or self.initializers())[name])

    def hold(self, name: str, array: np.ndarray) -> None:
        """A new out-of-proto constant, declared as a graph input so that the graph stays valid."""
        from onnx import helper

        self.held[name] = np.ascontiguousarray(array)
        self.graph.input.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape)))

    def inline(self, select: Callable[[str, tuple[int, ...]], bool]) -> None:
        """Move the held constants that ``select(name, shape)`` picks into the proto as initializers."""
        from onnx import numpy_helper

        for name in [n for n in self.held if select(n, tuple(int(d) for d in self.held[n].shape))]:
            self.graph.initializer.append(numpy_helper.from_array(self.value(name), name))
            self._undeclare({name})
            del self.held[name]

    def drop(self, names: set[str]) -> None:
        """Forget held constants (names that are not held are ignored)."""
        names = names & set(self.held)
        for name in names:
            del self.held[name]
        self._undeclare(names)

    def _undeclare(self, names: set[str]) -> None:
        for index in reversed([i for i, inp in enumerate(self.graph.input) if inp.name in names]):
            del self.graph.input[index]

    def chunks(self, name: str, chunk_bytes: int) -> Iterator[np.ndarray]:
        """A held value in C order, little-endian, in contiguous slices of about ``chunk_bytes``
        (a Keras variable is sliced before it is read, so no full copy is made)."""
        held = self.held[name]
        dtype = np.dtype(held.dtype).newbyteorder("<")
        shape = tuple(int(d) for d in held.shape)
        if isinstance(held, np.ndarray) or not shape or shape[0] <= 1:
            yield np.ascontiguousarray(self.value(name), dtype=dtype)
            return
        step = max(1, chunk_bytes // max(1, int(np.prod(shape[1:])) * dtype.itemsize))
        for start in range(0, shape[0], step):
            yield np.ascontiguousarray(np.asarray(held.value[start:start + step]), dtype=dtype)


def _consumers(graph: Any) -> dict[str, list[Any]]:
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


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
        return args[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
    return None


def fold_constants(constants: Constants, *, hold: bool) -> None:
    """Evaluate, once, every node whose inputs are all constants (weight layout, BN arithmetic).

    ``hold=False`` folds only nodes on initializers and writes initializers (vectors that tf2onnx's
    optimizers must see); ``hold=True`` also reads held kernels and holds the results outside the
    proto. ONNX nodes are topologically sorted: one pass folds whole chains.
    """
    from onnx import numpy_helper

    graph = constants.graph
    initializers = constants.initializers()
    folded = []
    for index, node in enumerate(graph.node):
        inputs = [i for i in node.input if i]
        result: np.ndarray | None
        if node.op_type == "Constant" and len(node.output) == 1 and node.attribute[0].name == "value":
            result = numpy_helper.to_array(node.attribute[0].t)
        elif len(node.output) == 1 and inputs and all(
                i in initializers or (hold and i in constants.held) for i in inputs):
            result = _numpy_op(node, [constants.value(i, initializers) for i in inputs])
            if result is None:
                continue
        else:
            continue
        name = node.output[0]
        if hold:
            constants.hold(name, result)
        else:
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(result), name))
            initializers[name] = graph.initializer[-1]
        folded.append(index)
    for index in reversed(folded):
        del graph.node[index]


def _constant_conv(node: Any, constants: Constants) -> bool:
    """A Conv whose weight (and bias, if any) are constants: what can absorb a following Mul/Add."""
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in constants:
        return False
    return len(node.input) < 3 or node.input[2] in constants


def fold_scale_shift_into_conv(constants: Constants) -> None:
    """``Conv [-> Mul(per-channel)] [-> Add(per-channel)]`` with constant operands -> one Conv.

    That is a conv bias, or inference BatchNorm after tf2onnx (``x * gamma/sqrt(var+eps) + ...``).
    ORT fuses the same pattern at every session start; doing it once here gives a file whose
    weights are the deployed ones. The unfolded weights are dropped as soon as nothing reads them.
    """
    from onnx import helper

    graph = constants.graph
    initializers = constants.initializers()
    users = _consumers(graph)
    reads = {name: len(nodes) for name, nodes in users.items()}
    outputs = {o.name for o in graph.output}

    def only_consumer(name: str, op: str) -> Any | None:
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op and name not in outputs else None

    def per_channel(node: Any, data: str, channels: int) -> np.ndarray | None:
        other = [i for i in node.input if i != data]
        if len(node.input) != 2 or len(other) != 1 or other[0] not in initializers and other[0] not in constants.held:
            return None
        value = constants.value(other[0], initializers)
        if value.size != channels or not 3 <= value.ndim <= 4 or value.shape[-3] != channels:
            return None  # must broadcast along NCHW's channel axis: [C,1,1] or [1,C,1,1]
        return value.reshape(channels)

    removed: set[str] = set()  # Mul/Add nodes by output name (unique in a graph)
    for conv in list(graph.node):
        if not _constant_conv(conv, constants):
            continue
        weight = constants.value(conv.input[1], initializers)
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
        bias = (constants.value(conv.input[2], initializers) if len(conv.input) == 3
                else np.zeros(channels, weight.dtype))
        names = (f"{out}.weight", f"{out}.bias")  # output names are unique
        constants.hold(names[0], (weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype))
        constants.hold(names[1], (bias * scale + shift).astype(weight.dtype))
        del weight
        released = list(conv.input[1:]) + [i for n in absorbed for i in n.input]
        folded = helper.make_node("Conv", [conv.input[0], *names], [out], name=conv.name)
        folded.attribute.extend(conv.attribute)
        conv.CopyFrom(folded)
        removed.update(n.output[0] for n in absorbed)
        for name in released:  # free the unfolded kernel now, not at prune(): one copy of the weights
            reads[name] -= 1
        constants.drop({name for name in released if reads[name] == 0})
    for index in reversed([i for i, n in enumerate(graph.node) if n.op_type in ("Mul", "Add")
                           and n.output[0] in removed]):
        del graph.node[index]


def fold_pad_into_maxpool(constants: Constants) -> None:
    """``Pad(-inf, spatial only) -> MaxPool`` -> ``MaxPool(pads=...)``: torch's padded/ceil-mode pools.

    ONNX MaxPool's own padding never wins a max, exactly like the -inf constant that
    ``archs.layers.TorchMaxPool2D`` pads with, so the padded copy of the activations goes away.
    """
    from onnx import helper

    graph = constants.graph
    initializers = constants.initializers()
    users = _consumers(graph)
    removed: set[str] = set()
    for pad in list(graph.node):
        if pad.op_type != "Pad" or len(pad.input) not in (2, 3) or not all(i in initializers for i in pad.input[1:]):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        if attrs.get("mode", b"constant") != b"constant":
            continue
        pads = constants.value(pad.input[1], initializers).astype(int).tolist()
        fill = constants.value(pad.input[2], initializers) if len(pad.input) == 3 else np.zeros(())
        found = users.get(pad.output[0], [])
        if (len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0 or fill.size != 1
                or not np.isneginf(fill).all() or len(found) != 1 or found[0].op_type != "MaxPool"):
            continue
        pool = found[0]
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


def prune(constants: Constants) -> None:
    """Drop constants no node reads (pre-fold weights, dropout seed state, shared leftovers)."""
    graph = constants.graph
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for index in reversed([i for i, t in enumerate(graph.initializer) if t.name not in used]):
        del graph.initializer[index]
    constants.drop({name for name in constants.held if name not in used})


def stable_names(constants: Constants) -> None:
    """Renumber tf2onnx's generated names (``Conv__170``, ``const_fold_opt__162``) in graph order.

    tf2onnx numbers them from a process-wide counter, so a second export of the same model in one
    process would differ in bytes, and the registry addresses artifacts by content. Renumbering
    each distinct counter value by first appearance is a bijection: no two names collide.
    """
    graph = constants.graph
    numbers: dict[str, str] = {}
    for node in graph.node:  # topological order: deterministic for a given model
        for name in [node.name, *node.input, *node.output]:
            for number in re.findall(r"__(\d+)", name):
                numbers.setdefault(number, str(len(numbers)))
    if not numbers:
        return

    def rename(name: str) -> str:
        return re.sub(r"__(\d+)", lambda m: "__" + numbers.get(m.group(1), m.group(1)), name)

    for node in graph.node:
        node.name = rename(node.name)
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for item in [*graph.initializer, *graph.input, *graph.output, *graph.value_info]:
        item.name = rename(item.name)
    constants.held = {rename(name): value for name, value in constants.held.items()}


def drop_unused_domains(proto: Any) -> None:
    """tf2onnx always declares ai.onnx.ml; keep only the operator sets the graph uses."""
    used = {node.domain for node in proto.graph.node}
    for index in reversed([i for i, o in enumerate(proto.opset_import) if o.domain and o.domain not in used]):
        del proto.opset_import[index]
