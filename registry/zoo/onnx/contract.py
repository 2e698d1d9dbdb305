"""The artifact's I/O contract, enforced in one pass on every exported file, whatever plugin wrote it.

Every artifact has exactly one float32 input named ``images`` of shape ``[batch, 3, H, W]`` and
exactly one float32 output named ``logits`` of shape ``[batch, num_classes]``, with the symbolic
batch dim named ``batch`` (the names live in :mod:`zoo.records`). :func:`enforce_io_contract`
renames what is only misnamed (the value everywhere it is referenced: nodes, value_info, graph
inputs and outputs, quantization annotations, subgraphs; the batch symbol in every type) and
raises :class:`~zoo.errors.ExportError` for a graph that cannot satisfy the contract.

The core calls it right after each plugin's ``export_onnx`` (``zoo._exporting.export_onnx``);
a plugin may call it too, so that its own exports are contract artifacts (a second pass is a
no-op). Weights are never read into memory: the graph's initializers are skipped on the
protobuf wire, external data is never opened, and only the rest of the graph is parsed and
rewritten. A file that already honours the contract is left untouched, byte for byte; a rewrite
is deterministic (same file in, same bytes out) and atomic (a temp file beside it, then rename).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ExportError, InvalidModelFile
from ..records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME
from ._files import open_model_bytes
from ._wire import MAX_PROTO_BYTES, WireError, check_wire, encode_varint, message_fields

if TYPE_CHECKING:
    import onnx

__all__ = ["enforce_io_contract"]

_GRAPH = 7  # ModelProto.graph
_TRAINING_INFO = 20  # ModelProto.training_info
_WEIGHT_FIELDS = (5, 15)  # GraphProto.initializer, GraphProto.sparse_initializer: skipped, never parsed
_TENSOR_NAME = 8  # TensorProto.name
_SPARSE_VALUES = 1  # SparseTensorProto.values
_HINT = ("a plugin's export_onnx must write one float32 image input [batch, 3, H, W] and one float32 "
         "output [batch, num_classes] (see zoo.onnx.contract); names are fixed here")


def enforce_io_contract(path: str | os.PathLike[str], *, input_size: int | None = None,
                        num_classes: int | None = None) -> tuple[str, ...]:
    """Make the ONNX file at ``path`` honour the I/O contract in place; return notes on what was renamed.

    ``input_size`` and ``num_classes``, when given, must match H = W and the logits width. An
    empty result means the file already honoured the contract and was not rewritten.
    """
    import onnx

    p = Path(path)
    try:
        f, mm, st = open_model_bytes(p)
    except InvalidModelFile as exc:
        raise ExportError(f"Expected an ONNX model file from the exporter at '{p}'. Received: {exc.message}",
                          hint=_HINT) from None
    try:
        try:
            check_wire(mm, p)
            top = _fields(mm, 0, len(mm))
        except (InvalidModelFile, WireError) as exc:
            raise ExportError(f"Expected an ONNX model from the exporter at '{p}'. Received: {exc}", hint=_HINT) from None
        # Protobuf merges a message field that occurs more than once (an exporter may stream its
        # initializers that way): the graph is the concatenation of every occurrence.
        skeleton, weights, initializers = _split_graph(mm, [span for span in top if span[0] == _GRAPH])
        try:
            graph = onnx.GraphProto.FromString(skeleton)
        except Exception as exc:
            raise ExportError(f"Expected a valid ONNX graph in '{p}'. Received: {exc}", hint=_HINT) from None
        notes = _apply(graph, initializers, input_size=input_size, num_classes=num_classes)
        if not notes:
            return ()
        if any(span[0] == _TRAINING_INFO for span in top):
            raise ExportError(f"Expected an inference graph without training_info in '{p}' to rename "
                              f"({'; '.join(notes)}). Received: a model with training_info", hint=_HINT)
        pieces = _graph_pieces(graph.SerializeToString(deterministic=True), weights)
        _rewrite(p, mm, st, top, pieces)
        return tuple(notes)
    finally:
        del mm
        f.close()


# --------------------------------------------------------------------------------------------
# The graph without its weights


Span = tuple[int, int, int, int]  # (field number, key start, payload start, payload end) in the file


def _fields(buf: Any, start: int, end: int) -> list[Span]:
    """The fields of the message ``buf[start:end]``, as spans of ``buf``."""
    spans, key_start = [], start
    with memoryview(buf)[start:end] as view:
        for field, _wire, s, e in message_fields(view):
            spans.append((field, key_start, start + s, start + e))
            key_start = start + e
    return spans


def _string_field(buf: Any, start: int, end: int, number: int) -> str | None:
    for field, _, s, e in _fields(buf, start, end):
        if field == number:
            return bytes(buf[s:e]).decode("utf-8", "replace")
    return None


def _split_graph(mm: Any, graphs: list[Span]) -> tuple[bytes, list[Span], set[str]]:
    """The graph's bytes without initializers (to parse), the skipped weight fields, and their names."""
    skeleton = bytearray()
    weights: list[Span] = []
    names: set[str] = set()
    for span in (field for _, _, start, end in graphs for field in _fields(mm, start, end)):
        field, key, s, e = span
        if field not in _WEIGHT_FIELDS:
            skeleton += mm[key:e]
            continue
        weights.append(span)
        if field == _WEIGHT_FIELDS[0]:
            name = _string_field(mm, s, e, _TENSOR_NAME)
        else:  # a sparse initializer is named by its values tensor
            values = [(vs, ve) for number, _, vs, ve in _fields(mm, s, e) if number == _SPARSE_VALUES]
            name = _string_field(mm, *values[-1], _TENSOR_NAME) if values else None
        if name:
            names.add(name)
    return bytes(skeleton), weights, names


Piece = bytes | tuple[int, int]  # bytes of the new graph, or a (start, end) span of the original file


def _graph_pieces(skeleton: bytes, weights: list[Span]) -> list[Piece]:
    """The new graph's fields in field-number order (as protobuf writes them); the weights stay spans."""
    pieces: list[tuple[int, int, Piece]] = []
    for order, (field, key, _, e) in enumerate(_fields(skeleton, 0, len(skeleton))):
        pieces.append((field, order, skeleton[key:e]))
    base = len(pieces)
    for order, (field, key, _, e) in enumerate(weights):
        pieces.append((field, base + order, (key, e)))
    pieces.sort(key=lambda item: (item[0], item[1]))
    return [piece for _, _, piece in pieces]


def _size(piece: Piece) -> int:
    return len(piece) if isinstance(piece, bytes) else piece[1] - piece[0]


def _rewrite(path: Path, mm: Any, st: os.stat_result, top: list[Span], graph: list[Piece]) -> None:
    """Write the model with its graph replaced (one field, where the first occurrence was) to a temp
    file beside ``path``, then rename it over."""
    graph_len = sum(map(_size, graph))
    graph_head = encode_varint(_GRAPH << 3 | 2) + encode_varint(graph_len)
    total = sum(e - key for field, key, _, e in top if field != _GRAPH) + len(graph_head) + graph_len
    if total > MAX_PROTO_BYTES:
        raise ExportError(f"Expected the renamed model '{path}' to stay under 2 GiB. Received: {total} bytes",
                          hint="save the weights as external data")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".contract", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, memoryview(mm) as view:
            written = False
            for field, key, _, e in top:
                if field != _GRAPH:
                    out.write(view[key:e])
                    continue
                if written:
                    continue
                written = True
                out.write(graph_head)
                for piece in graph:
                    out.write(piece if isinstance(piece, bytes) else view[piece[0]:piece[1]])
            if hasattr(os, "fchmod"):
                os.fchmod(out.fileno(), st.st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# The contract


def _dims(vi: "onnx.ValueInfoProto") -> list[int | str | None]:
    return [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
            for d in vi.type.tensor_type.shape.dim]


def _symbolic(dim: "onnx.TensorShapeProto.Dimension") -> bool:
    return not dim.HasField("dim_value")


def _check_tensor(vi: "onnx.ValueInfoProto", role: str, rank: int) -> None:
    import onnx

    kind = vi.type.WhichOneof("value")
    dtype = vi.type.tensor_type.elem_type if kind == "tensor_type" else None
    if dtype != onnx.TensorProto.FLOAT:
        received = onnx.TensorProto.DataType.Name(dtype).lower() if dtype is not None else (kind or "no type")
        raise ExportError(f"Expected the graph {role} {vi.name!r} to be a float32 tensor. Received: {received}", hint=_HINT)
    if not vi.type.tensor_type.HasField("shape") or len(vi.type.tensor_type.shape.dim) != rank:
        shape = _dims(vi) if vi.type.tensor_type.HasField("shape") else "no shape"
        raise ExportError(f"Expected the graph {role} {vi.name!r} to have rank {rank}. Received: {shape}", hint=_HINT)


def _apply(graph: "onnx.GraphProto", initializers: set[str], *, input_size: int | None,
           num_classes: int | None) -> list[str]:
    inputs = [vi for vi in graph.input if vi.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"Expected exactly one graph input and one output ({INPUT_NAME} -> {OUTPUT_NAME}). Received: "
            f"inputs {[vi.name for vi in inputs]}, outputs {[vi.name for vi in graph.output]}",
            hint="the model's forward must take one image batch and return one logits tensor",
        )
    image, logits = inputs[0], graph.output[0]
    _check_tensor(image, "input", 4)
    _check_tensor(logits, "output", 2)
    image_dims, logit_dims = image.type.tensor_type.shape.dim, logits.type.tensor_type.shape.dim
    for vi, dims in ((image, image_dims), (logits, logit_dims)):
        if not _symbolic(dims[0]):
            raise ExportError(f"Expected a symbolic batch dim on {vi.name!r}. Received shape {_dims(vi)}",
                              hint="the exporter specialised the batch size; export with a dynamic batch dim")
    batch_symbols = {d.dim_param for d in (image_dims[0], logit_dims[0]) if d.dim_param}
    height_width = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in image_dims[2:]]
    expected_image = [BATCH_DIM, 3, *(["H", "W"] if input_size is None else [input_size, input_size])]
    if (image_dims[1].dim_value != 3 or not image_dims[1].HasField("dim_value")
            or any(not v or v in batch_symbols for v in height_width)
            # H and W may stay symbolic (the graph takes any size); a fixed one must be the size exported at
            or (input_size is not None and any(isinstance(v, int) and v != input_size for v in height_width))):
        raise ExportError(f"Expected the graph input of shape {expected_image}. Received: {_dims(image)}", hint=_HINT)
    classes = logit_dims[1].dim_value if logit_dims[1].HasField("dim_value") else None
    if not classes or (num_classes is not None and classes != num_classes):
        expected = [BATCH_DIM, num_classes if num_classes is not None else "num_classes"]
        raise ExportError(f"Expected the graph output of shape {expected}. Received: {_dims(logits)}", hint=_HINT)
    if image.name == logits.name:
        raise ExportError(f"Expected distinct input and output values. Received: both named {image.name!r}", hint=_HINT)

    notes = _rename_io(graph, initializers, image.name, logits.name)
    return notes + _name_batch(graph, batch_symbols, [image_dims[0], logit_dims[0]])


def _rename_io(graph: "onnx.GraphProto", initializers: set[str], image: str, logits: str) -> list[str]:
    """Name the input and output values ``images`` / ``logits`` (refusing a clash with another value)."""
    notes: list[str] = []
    renames = {old: new for old, new in ((image, INPUT_NAME), (logits, OUTPUT_NAME)) if old != new}
    if renames:
        taken = _value_names(graph) | initializers
        clash = sorted(new for new in renames.values() if new in taken and new not in renames)
        if clash:
            raise ExportError(f"Expected no other value named {clash[0]!r} in the graph, to rename the "
                              f"{'input' if clash[0] == INPUT_NAME else 'output'} to it. Received: a value {clash[0]!r}",
                              hint=_HINT)
        _rename_values(graph, renames)
        notes += [f"renamed graph value {old!r} to {new!r}" for old, new in renames.items()]
    return notes


def _name_batch(graph: "onnx.GraphProto", batch_symbols: set[str], batch_dims: list[Any]) -> list[str]:
    """Name the batch dim ``batch`` everywhere the exporter's own symbol for it appears."""
    stale = batch_symbols - {BATCH_DIM}  # exporters' own symbols ('s0', 'unk__616', 'N')
    unnamed = [d for d in batch_dims if not d.dim_param]
    if stale:
        for dim in _graph_dims(graph):
            if dim.dim_param in stale:
                dim.dim_param = BATCH_DIM
    for dim in unnamed:
        dim.dim_param = BATCH_DIM
    if stale or unnamed:  # the old symbol is not named: exporters number theirs per process
        return [f"named the batch dim {BATCH_DIM!r}"]
    return []


def _subgraphs(node: "onnx.NodeProto") -> Iterator["onnx.GraphProto"]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _value_names(graph: "onnx.GraphProto") -> set[str]:
    names = {vi.name for vi in (*graph.input, *graph.output, *graph.value_info)}
    names |= {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for sub in _subgraphs(node):
            names |= _value_names(sub)
    names.discard("")
    return names


def _rename_values(graph: "onnx.GraphProto", renames: Mapping[str, str]) -> None:
    """Rename values wherever this graph or its subgraphs (which may read outer values) refer to them."""
    for vi in (*graph.input, *graph.output, *graph.value_info):
        if vi.name in renames:
            vi.name = renames[vi.name]
    for annotation in graph.quantization_annotation:
        if annotation.tensor_name in renames:
            annotation.tensor_name = renames[annotation.tensor_name]
    for node in graph.node:
        for values in (node.input, node.output):
            for i, name in enumerate(values):
                if name in renames:
                    values[i] = renames[name]
        for sub in _subgraphs(node):
            _rename_values(sub, renames)


def _type_dims(tp: "onnx.TypeProto") -> Iterator["onnx.TensorShapeProto.Dimension"]:
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        yield from getattr(tp, kind).shape.dim
    elif kind in ("sequence_type", "optional_type"):
        yield from _type_dims(getattr(tp, kind).elem_type)
    elif kind == "map_type":
        yield from _type_dims(tp.map_type.value_type)


def _graph_dims(graph: "onnx.GraphProto") -> Iterator["onnx.TensorShapeProto.Dimension"]:
    """Every dimension of every type declared in the graph and its subgraphs."""
    for vi in (*graph.input, *graph.output, *graph.value_info):
        yield from _type_dims(vi.type)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("tp"):
                yield from _type_dims(attr.tp)
            for tp in attr.type_protos:
                yield from _type_dims(tp)
        for sub in _subgraphs(node):
            yield from _graph_dims(sub)
