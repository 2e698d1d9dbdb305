"""What an ONNX file says about itself, and whether an untrusted one is safe to take in.

Two jobs, one concept (the ONNX file as data):

- :func:`check_model_file` refuses anything that is not a valid, self-contained ONNX model whose
  external data stays inside its own folder (no ``../``, absolute paths, backslashes, drive letters,
  symlinks, hardlinks, missing files, offsets past the end). onnx >= 1.21 checks much of this
  itself (the CVE-2024-27318 family); we run our checks first, for messages that name the problem,
  and then onnx's checker on the path, so both layers apply. Nothing is written anywhere and
  external data is never read: a model with 100 GB of weights is checked in constant memory.
- :func:`inspect` reads the facts the registry records: signature, opset, initializer element
  count and multiply-accumulates per sample (MACs), all from the graph, never from the weights.

onnx is imported inside the functions: ``import zoo.onnx_info`` stays free of it.
"""
from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Union

from .errors import InvalidInput, InvalidModelFile
from .records import Record, Signature, TensorSpec

if TYPE_CHECKING:
    import onnx

__all__ = [
    "CheckedModel", "OnnxFacts", "check_model_file", "inspect", "read_signature",
    "count_initializer_elements", "count_macs", "embed_metadata", "read_metadata",
]

# A single protobuf message cannot exceed 2 GiB; bigger models keep their weights as external data.
MAX_PROTO_BYTES = 2**31 - 1
# External-data keys onnx defines; anything else is refused rather than silently ignored.
_EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})
# Initializers up to this many elements keep their values for shape inference (Reshape targets...).
_SMALL_TENSOR = 4096
# A model has a handful of top-level fields (plus one per metadata entry, opset, function);
# scanning millions of tiny ones would only let a crafted file keep us busy.
_MAX_TOP_LEVEL_FIELDS = 1_000_000
# Data propagation allocates per element of known 1-D tensors; above this many, skip it.
_DATA_PROP_BUDGET = 1 << 20
# Bits per element of the packed sub-byte types (UINT4, INT4, FLOAT4E2M1, UINT2, INT2).
_SUB_BYTE_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2}

_REEXPORT_HINT = (
    "re-save it with onnx.save(model, 'model.onnx', save_as_external_data=True, location='model.onnx.data') "
    "so the data file sits beside the model, and pass that folder's model file"
)


@dataclass(frozen=True)
class CheckedModel:
    """A model file that passed :func:`check_model_file`. ``model`` holds no external data."""

    path: Path
    model: "onnx.ModelProto"
    external_files: tuple[str, ...]  # validated POSIX paths relative to path.parent, first-seen order


@dataclass(frozen=True)
class OnnxFacts(Record):
    """What the registry records from the graph alone."""

    signature: Signature
    opset: int
    onnx_params: int
    macs: int | None


ModelLike = Union["onnx.ModelProto", CheckedModel]


# --------------------------------------------------------------------------------------------
# Protobuf wire format: enough to look at the top-level fields without parsing the graph.


class _WireError(ValueError):
    def __init__(self, message: str, *, truncated: bool = False, field: int | None = None):
        super().__init__(message)
        self.truncated = truncated
        self.field = field


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError("a varint runs past the end of the file", truncated=True)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise _WireError("a varint is longer than 10 bytes")


def _top_level_fields(buf: Any) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field_number, wire_type, start, end)`` of each top-level field of a serialized message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _WireError("field number 0 is not valid protobuf")
        if wire == 0:
            _, nxt = _varint(buf, pos, end)
        elif wire == 1:
            nxt = pos + 8
        elif wire == 5:
            nxt = pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            nxt = pos + length
        else:
            raise _WireError(f"wire type {wire} is not used by ONNX")
        if nxt > end:
            raise _WireError(f"it needs {nxt - pos} bytes but only {end - pos} remain", truncated=True, field=field)
        yield field, wire, pos, nxt
        pos = nxt


def _model_fields() -> dict[int, Any]:
    import onnx

    return dict(onnx.ModelProto.DESCRIPTOR.fields_by_number)


def _model_field_wire_types() -> dict[int, int]:
    """ModelProto field number -> expected wire type (0 varint, 2 length-delimited)."""
    return {
        number: 2 if fd.type in (fd.TYPE_STRING, fd.TYPE_BYTES, fd.TYPE_MESSAGE) else 0
        for number, fd in _model_fields().items()
    }


def _sniff(head: bytes) -> str | None:
    """Name well-known non-ONNX formats, for a message better than 'parse error'."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a zip archive (a PyTorch .pt checkpoint or a .keras file?)"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 file (a Keras .h5 model?)"
    if head.startswith((b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")):
        return "a Python pickle"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "a safetensors file (weights, not a model graph)"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")):
        return "a compressed archive"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if text and all(ch.isprintable() or ch in "\t\n\r" for ch in text):
        return "a text file"
    return None


def _check_wire(buf: Any, path: Path) -> None:
    """Refuse files whose top level is not a well-formed ModelProto, without parsing the graph."""
    head = bytes(buf[:512])
    sniffed = None if head[:1] == b"\x08" else _sniff(head)  # 0x08: ir_version, how ONNX files start
    if sniffed:
        raise InvalidModelFile(
            f"'{path}' is {sniffed}, not an ONNX model",
            hint="export the model to ONNX first (`zoo export`, torch.onnx.export, tf2onnx) and pass the .onnx file",
        )
    expected = _model_field_wire_types()
    seen_graph = False
    # Exporters write ir_version (field 1) first; a file that starts with a plausible one and then
    # runs out of bytes was cut short, anything else that fails here is not ONNX at all.
    starts_like_onnx = False
    try:
        for i, (field, wire, start, end) in enumerate(_top_level_fields(buf)):
            if i >= _MAX_TOP_LEVEL_FIELDS:
                raise _WireError(f"it has over {_MAX_TOP_LEVEL_FIELDS:,} top-level fields")
            if i == 0:
                if expected.get(field) != wire:
                    raise _WireError("its first bytes are not an ONNX ModelProto field")
                starts_like_onnx = field == 1 and 1 <= _varint(buf, start, end)[0] <= 100
            if field == 7:
                seen_graph = True
    except _WireError as exc:
        if exc.truncated and starts_like_onnx:
            names = {n: fd.name for n, fd in _model_fields().items()}
            where = f" in field {names[exc.field]!r}" if exc.field in names else ""
            raise InvalidModelFile(
                f"'{path}' is truncated{where}: {exc}",
                hint="the copy or download was cut short; copy the file again and compare its size or sha256",
            ) from None
        raise InvalidModelFile(
            f"'{path}' is not an ONNX model: its bytes do not form an ONNX protobuf ({exc})",
            hint="pass an .onnx file written by an ONNX exporter",
        ) from None
    if not seen_graph:
        raise InvalidModelFile(
            f"'{path}' is not an ONNX model: it holds no graph",
            hint="pass an .onnx file written by an ONNX exporter",
        )


# --------------------------------------------------------------------------------------------
# Reading the model file itself


def _stat_model_path(path: Path) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidModelFile(f"No such file: '{path}'", hint="check the path; pass the .onnx file itself") from None
    except OSError as exc:
        raise InvalidModelFile(f"Cannot read '{path}': {exc.strerror}", hint="check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidModelFile(
            f"'{path}' is a directory, not an ONNX file", hint="pass the .onnx file inside it, not the folder"
        )
    if not stat.S_ISREG(st.st_mode):
        raise InvalidModelFile(
            f"'{path}' is not a regular file (a device, pipe or socket)", hint="pass an .onnx file on disk"
        )
    return st


def _open_model_bytes(path: Path) -> tuple[Any, bytes, os.stat_result]:
    """Open and read ``path``. O_NONBLOCK: a pipe swapped in after stat() cannot hang us."""
    _stat_model_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InvalidModelFile(f"Cannot open '{path}': {exc.strerror}", hint="check the file's permissions") from None
    f = os.fdopen(fd, "rb")
    try:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidModelFile(f"'{path}' is not a regular file", hint="pass an .onnx file on disk")
        if st.st_size == 0:
            raise InvalidModelFile(f"'{path}' is empty (0 bytes)", hint="the export or copy failed; write the file again")
        if st.st_size > MAX_PROTO_BYTES:
            raise InvalidModelFile(
                f"'{path}' is {st.st_size / 2**30:.1f} GiB; an ONNX protobuf cannot exceed 2 GiB, so this is not "
                "a loadable ONNX model file",
                hint="models over 2 GiB keep their weights as external data: " + _REEXPORT_HINT,
            )
        # Read, never mmap: a file truncated by someone else while we read it must be an error, not SIGBUS.
        mm = f.read(st.st_size + 1)
        if len(mm) != st.st_size:
            raise InvalidModelFile(f"'{path}' changed size while it was being read ({st.st_size} bytes when opened, "
                                   f"{len(mm)} read)", hint="wait until whatever writes the file has finished, then retry")
    except BaseException:
        f.close()
        raise
    return f, mm, st


# --------------------------------------------------------------------------------------------
# Tensors anywhere in a model (initializers, Constant nodes, subgraphs, functions)


def _graph_tensors(graph: "onnx.GraphProto") -> Iterator["onnx.TensorProto"]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: "onnx.NodeProto") -> Iterator["onnx.TensorProto"]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        for sparse in attr.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for sub in attr.graphs:
            yield from _graph_tensors(sub)


def _all_tensors(model: "onnx.ModelProto") -> Iterator["onnx.TensorProto"]:
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            yield from _node_tensors(node)


def _is_external(tensor: "onnx.TensorProto") -> bool:
    import onnx

    return tensor.HasField("data_location") and tensor.data_location == onnx.TensorProto.EXTERNAL


def _tensor_nbytes(tensor: "onnx.TensorProto") -> int | None:
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


# --------------------------------------------------------------------------------------------
# External data


def _bad_external(path: Path, tensor: str, what: str, received: str, hint: str = _REEXPORT_HINT) -> InvalidModelFile:
    return InvalidModelFile(
        f"External data of tensor {tensor!r} in '{path}' {what}. Received: {received!r}", hint=hint
    )


def _safe_location(location: str, path: Path, tensor: str) -> tuple[str, ...]:
    """The location's components, if it is a plain relative POSIX path inside the model's folder."""
    expected = "Expected a relative path inside the model's folder"
    if not location:
        raise _bad_external(path, tensor, "has an empty location", location)
    if "\x00" in location:
        raise _bad_external(path, tensor, "has a NUL byte in its location", location)
    if "\\" in location:
        raise _bad_external(path, tensor, f"uses a backslash in its location. {expected}, '/'-separated", location)
    if re.match(r"^[A-Za-z]:", location) or ":" in location:
        raise _bad_external(path, tensor, f"names a drive letter or ':' stream in its location. {expected}", location)
    if location.startswith("/") or PurePosixPath(location).is_absolute():
        raise _bad_external(path, tensor, f"uses an absolute path. {expected}", location)
    parts = tuple(p for p in location.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _bad_external(path, tensor, f"escapes the model's folder with '..'. {expected}", location)
    if not parts:
        raise _bad_external(path, tensor, f"names the folder itself. {expected}", location)
    return parts


def _check_location_on_disk(path: Path, model_st: os.stat_result, parts: tuple[str, ...], tensor: str) -> os.stat_result:
    """lstat every component: no symlink anywhere (even one pointing inside), a regular single-link file."""
    base = path.parent
    rel = "/".join(parts)
    current = base
    st = None
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            raise _bad_external(
                path, tensor, f"is missing: '{current}' does not exist", rel,
                hint="copy the external-data file(s) next to the .onnx file, keeping the relative path the exporter wrote",
            ) from None
        except OSError as exc:
            raise _bad_external(path, tensor, f"cannot be read ({exc.strerror})", rel, hint="check the file's permissions") from None
        if stat.S_ISLNK(st.st_mode):
            which = "the file" if i == len(parts) - 1 else f"its parent '{'/'.join(parts[: i + 1])}'"
            raise _bad_external(
                path, tensor, f"goes through a symlink ({which} is a symbolic link)", rel,
                hint="replace the link with the real file (cp -L) so the data lives inside the model's folder",
            )
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            raise _bad_external(path, tensor, f"has a non-directory '{'/'.join(parts[: i + 1])}' in its path", rel)
    assert st is not None
    if not stat.S_ISREG(st.st_mode):
        raise _bad_external(path, tensor, "is not a regular file", rel)
    if st.st_nlink > 1:
        raise _bad_external(
            path, tensor, f"is a hardlink ({st.st_nlink} links to the same file)", rel,
            hint="store a private copy of the data file (cp, not ln) beside the model",
        )
    if (st.st_dev, st.st_ino) == (model_st.st_dev, model_st.st_ino):
        raise _bad_external(path, tensor, "points at the model file itself", rel)
    real_base = os.path.realpath(base)
    real = os.path.realpath(current)
    if os.path.commonpath([real_base, real]) != real_base:  # belt and braces: lstat walk already guarantees it
        raise _bad_external(path, tensor, "resolves outside the model's folder", rel)
    return st


def _parse_external_entries(tensor: "onnx.TensorProto", path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for entry in tensor.external_data:
        if entry.key in entries:
            raise _bad_external(path, tensor.name, f"sets {entry.key!r} twice", entry.value)
        entries[entry.key] = entry.value
    unknown = sorted(set(entries) - _EXTERNAL_KEYS)
    if unknown:
        raise _bad_external(path, tensor.name, f"has unknown keys (allowed: {sorted(_EXTERNAL_KEYS)})", ", ".join(unknown))
    if entries.get("basepath"):
        raise _bad_external(
            path, tensor.name, "sets 'basepath'; locations are resolved against the model's folder only", entries["basepath"]
        )
    return entries


def _int_entry(entries: Mapping[str, str], key: str, path: Path, tensor: str) -> int | None:
    if key not in entries:
        return None
    try:
        value = int(entries[key])
    except ValueError:
        raise _bad_external(path, tensor, f"has a non-integer {key}", entries[key]) from None
    if value < 0:
        raise _bad_external(path, tensor, f"has a negative {key}", entries[key])
    return value


def _check_external_data(model: "onnx.ModelProto", path: Path, model_st: os.stat_result) -> tuple[str, ...]:
    """Validate every external-data reference; return the distinct relative locations."""
    seen: dict[str, os.stat_result] = {}
    for tensor in _all_tensors(model):
        if not _is_external(tensor):
            continue
        entries = _parse_external_entries(tensor, path)
        parts = _safe_location(entries.get("location", ""), path, tensor.name)
        rel = "/".join(parts)
        if rel not in seen:
            seen[rel] = _check_location_on_disk(path, model_st, parts, tensor.name)
        size = seen[rel].st_size
        offset = _int_entry(entries, "offset", path, tensor.name) or 0
        length = _int_entry(entries, "length", path, tensor.name)
        needed = _tensor_nbytes(tensor)
        if length is not None and needed is not None and length != needed:
            raise _bad_external(
                path, tensor.name,
                f"declares length {length} but its dims {list(tensor.dims)} need {needed} bytes", str(length),
            )
        span = length if length is not None else (needed or 0)
        if offset > size or offset + span > size:
            raise _bad_external(
                path, tensor.name,
                f"reads bytes {offset}..{offset + span} of '{rel}', which has only {size} bytes (offset/length "
                "beyond the end of the file: truncated or forged)",
                f"offset={offset}, length={span}",
                hint="copy the data file again; if it is complete, the model's offsets are wrong: re-export it",
            )
    return tuple(seen)


# --------------------------------------------------------------------------------------------
# The gate


def check_model_file(path: str | os.PathLike[str]) -> CheckedModel:
    """Parse and validate an untrusted ONNX file; raise InvalidModelFile naming what is wrong.

    Reads only the model file (into memory, not mapped) and stats its external-data files; writes nothing.
    """
    import onnx

    p = Path(path)
    f, mm, st = _open_model_bytes(p)
    try:
        _check_wire(mm, p)
        try:
            with memoryview(mm) as view:
                model = onnx.ModelProto.FromString(view)
        except Exception as exc:  # google.protobuf.message.DecodeError and friends
            raise InvalidModelFile(
                f"'{p}' is not a valid ONNX protobuf (corrupt or truncated): {exc}",
                hint="copy the file again, or re-export the model",
            ) from None
    finally:
        del mm
        f.close()
    if model.ir_version <= 0:
        raise InvalidModelFile(f"'{p}' is not an ONNX model: it has no ir_version", hint="pass an .onnx file written by an ONNX exporter")
    external = _check_external_data(model, p, st)
    try:
        # By path: onnx validates external data itself (symlinks, hardlinks, escapes) without reading it.
        onnx.checker.check_model(os.fspath(p))
    except Exception as exc:
        raise InvalidModelFile(
            f"'{p}' fails the ONNX checker: {_one_line(exc)}",
            hint="re-export the model (another opset may help); onnx.checker.check_model(path) reproduces the error",
        ) from None
    try:
        # full_check's strict shape inference, on a weightless copy: full_check itself refuses valid
        # models whose small shape tensors (Reshape targets) live in external data.
        onnx.shape_inference.infer_shapes(_weightless(model, p.parent), check_type=True, strict_mode=True)
    except Exception as exc:
        raise InvalidModelFile(
            f"'{p}' fails ONNX shape inference: {_one_line(exc)}",
            hint="the graph's types or shapes are inconsistent; re-export the model",
        ) from None
    return CheckedModel(path=p, model=model, external_files=external)


def _one_line(exc: BaseException) -> str:
    """The error on one line, capped: onnx's messages can dump whole nodes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


# --------------------------------------------------------------------------------------------
# Facts


def _unwrap(model: ModelLike) -> tuple["onnx.ModelProto", Path | None]:
    if isinstance(model, CheckedModel):
        return model.model, model.path.parent
    return model, None


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
    proto, _ = _unwrap(model)
    inits = {t.name for t in proto.graph.initializer}
    return Signature(
        inputs=tuple(_spec(v) for v in proto.graph.input if v.name not in inits),
        outputs=tuple(_spec(v) for v in proto.graph.output),
    )


def _opset(proto: "onnx.ModelProto") -> int:
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
    proto, _ = _unwrap(model)
    return _graph_elements(proto.graph) + sum(_nodes_elements(fn.node) for fn in proto.functions)


# --------------------------------------------------------------------------------------------
# MACs


def _normalize_size(input_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if input_size is None:
        return None
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise InvalidInput(
            f"Expected input_size as a positive int or (height, width). Received: {input_size!r}",
            hint="e.g. input_size=224 or input_size=(224, 224)",
        )
    return size


def _read_small_external(tensor: "onnx.TensorProto", base_dir: Path) -> "onnx.TensorProto | None":
    """A copy of a small external tensor with its bytes inline (already validated by check_model_file)."""
    import onnx

    entries = {e.key: e.value for e in tensor.external_data}
    needed = _tensor_nbytes(tensor)
    if needed is None or "location" not in entries:
        return None
    location = base_dir / entries["location"]
    try:
        with open(location, "rb") as f:
            f.seek(int(entries.get("offset", 0)))
            raw = f.read(needed)
    except (OSError, ValueError):
        return None
    if len(raw) != needed:
        return None
    copy = onnx.TensorProto()
    copy.name, copy.data_type = tensor.name, tensor.data_type
    copy.dims.extend(tensor.dims)
    copy.raw_data = raw
    return copy


def _weightless(proto: "onnx.ModelProto", base_dir: Path | None) -> "onnx.ModelProto":
    """A copy for shape inference: small initializers keep their values (Reshape targets, pads...),
    big ones become typed graph inputs, so no weight is copied or read."""
    import onnx

    m = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version"):
        setattr(m, field, getattr(proto, field))
    m.opset_import.extend(proto.opset_import)
    m.functions.extend(proto.functions)
    g, src = m.graph, proto.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.sparse_initializer.extend(src.sparse_initializer)
    typed = {vi.name for vi in src.input}  # IR < 4 lists initializers as inputs too
    for t in src.initializer:
        keep: Any = None
        if math.prod(t.dims) <= _SMALL_TENSOR:
            if not _is_external(t):
                keep = t
            elif base_dir is not None:
                keep = _read_small_external(t, base_dir)
        if keep is not None:
            g.initializer.append(keep)
        elif t.name not in typed:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return m


def _shape_model(proto: "onnx.ModelProto", base_dir: Path | None, size: tuple[int, int] | None) -> tuple["onnx.ModelProto", int] | None:
    """The weightless copy with batch 1 and symbolic spatial dims set to ``size``; and the batch divisor."""
    m = _weightless(proto, base_dir)
    init_names = {t.name for t in proto.graph.initializer}
    batch = None
    for vi in m.graph.input:
        if vi.name in init_names or not vi.type.HasField("tensor_type"):
            continue
        if not vi.type.tensor_type.HasField("shape"):
            return None
        dims = vi.type.tensor_type.shape.dim
        symbolic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
        if symbolic and symbolic[0] == 0:
            dims[0].Clear()
            dims[0].dim_value = 1
            symbolic = symbolic[1:]
        if symbolic:
            if size is None or len(symbolic) != 2:
                return None
            for i, v in zip(symbolic, size, strict=True):
                dims[i].Clear()
                dims[i].dim_value = v
        if batch is None:  # a rank-1 input has no batch dim
            batch = dims[0].dim_value if len(dims) >= 2 else 1
    if m.functions:
        import onnx.inliner

        m = onnx.inliner.inline_local_functions(m)
    return m, max(batch or 1, 1)


def _static_shape(shapes: Mapping[str, Any], name: str) -> tuple[int, ...] | None:
    vi = shapes.get(name)
    if vi is None or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = vi.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


# op type -> (index of the weight / B input, how to count)
_MAC_OPS = {
    "Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1,
    "Gemm": 1, "MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3,
}


def _node_macs(node: "onnx.NodeProto", shapes: Mapping[str, Any]) -> int | None:
    op = node.op_type
    a = _static_shape(shapes, node.input[0])
    w = _static_shape(shapes, node.input[_MAC_OPS[op]]) if len(node.input) > _MAC_OPS[op] else None
    y = _static_shape(shapes, node.output[0])
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        # K_h*K_w*(C_in/groups)*C_out = |W|, once per output pixel and sample.
        if w is None or y is None or len(y) < 2:
            return None
        return math.prod(w) * math.prod(y[2:]) * y[0]
    if op == "ConvTranspose":
        # Each input pixel meets the whole kernel slice: |W| * input pixels.
        if w is None or a is None or len(a) < 2:
            return None
        return math.prod(w) * math.prod(a[2:]) * a[0]
    if op == "Gemm":
        if a is None or y is None or len(a) != 2:
            return None
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        return math.prod(y) * (a[0] if trans_a else a[1])
    # MatMul family: every output element is a K-long dot product.
    if a is None or y is None or not a:
        return None
    return math.prod(y) * a[-1]


def count_macs(model: ModelLike, *, input_size: int | tuple[int, int] | None = None) -> int | None:
    """Multiply-accumulates per sample of Conv/ConvTranspose/Gemm/MatMul nodes in the main graph.

    The batch dim is fixed to 1 and symbolic spatial dims to ``input_size`` before onnx shape
    inference; None if any counted node's shapes cannot be inferred. Nodes inside subgraphs
    (If/Loop bodies) are not counted.
    """
    proto, base_dir = _unwrap(model)
    size = _normalize_size(input_size)
    prepared = _shape_model(proto, base_dir, size)
    if prepared is None:
        return None
    shaped, batch = prepared
    # Plain inference first. Data propagation (needed for computed Reshape targets) can allocate
    # per element of every known 1-D tensor, so a tiny hostile graph could ask for gigabytes: it
    # runs only when plain inference was not enough and the 1-D tensors are small.
    inferred = _infer(shaped, data_prop=False)
    macs = _sum_macs(inferred) if inferred is not None else None
    if macs is None and inferred is not None and _one_d_elements(inferred) <= _DATA_PROP_BUDGET:
        inferred = _infer(shaped, data_prop=True)
        macs = _sum_macs(inferred) if inferred is not None else None
    return None if macs is None else macs // batch


def _infer(model: "onnx.ModelProto", *, data_prop: bool) -> "onnx.ModelProto | None":
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=data_prop)
    except Exception:
        return None


def _value_shapes(inferred: "onnx.ModelProto") -> dict[str, Any]:
    import onnx

    shapes: dict[str, Any] = {}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        shapes.setdefault(vi.name, vi)
    for t in inferred.graph.initializer:
        shapes.setdefault(t.name, onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return shapes


def _one_d_elements(inferred: "onnx.ModelProto") -> int:
    """Total length of the statically known 1-D tensors: what data propagation may expand."""
    total = 0
    shapes = _value_shapes(inferred)
    for name in shapes:
        shape = _static_shape(shapes, name)
        if shape is not None and len(shape) == 1:
            total += shape[0]
    return total


def _sum_macs(inferred: "onnx.ModelProto") -> int | None:
    shapes = _value_shapes(inferred)
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in _MAC_OPS or node.domain not in ("", "ai.onnx"):
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            return None
        total += macs
    return total


def inspect(model: ModelLike, *, input_size: int | tuple[int, int] | None = None) -> OnnxFacts:
    """Everything the registry records about a graph, computed without reading external data."""
    proto, _ = _unwrap(model)
    return OnnxFacts(
        signature=read_signature(proto),
        opset=_opset(proto),
        onnx_params=count_initializer_elements(proto),
        macs=count_macs(model, input_size=input_size),
    )


# --------------------------------------------------------------------------------------------
# Metadata


def embed_metadata(model: ModelLike, props: Mapping[str, str]) -> None:
    """Set or replace ``metadata_props`` keys in place; untouched keys keep their order."""
    proto, _ = _unwrap(model)
    for key, value in props.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidInput(
                f"Expected metadata as non-empty str keys and str values. Received: {key!r}: {type(value).__name__}",
                hint="serialise values (json.dumps) before embedding them",
            )
    pending = dict(props)
    kept = []
    for entry in proto.metadata_props:
        if entry.key in pending:
            kept.append((entry.key, pending.pop(entry.key)))
        elif entry.key in props:
            continue  # a duplicate of a key already replaced
        else:
            kept.append((entry.key, entry.value))
    kept.extend(pending.items())
    del proto.metadata_props[:]
    for key, value in kept:
        proto.metadata_props.add(key=key, value=value)


def read_metadata(path_or_model: "str | os.PathLike[str] | ModelLike") -> dict[str, str]:
    """``metadata_props`` as a dict. From a path, only the top-level fields are read: the graph
    and its weights are skipped, so this is instant even for a 2 GB model."""
    import onnx

    if isinstance(path_or_model, (str, os.PathLike)):
        p = Path(path_or_model)
        f, mm, _ = _open_model_bytes(p)
        try:
            _check_wire(mm, p)
            out: dict[str, str] = {}
            for field, wire, start, end in _top_level_fields(mm):
                if field == 14 and wire == 2:
                    try:
                        entry = onnx.StringStringEntryProto.FromString(mm[start:end])
                    except Exception as exc:
                        raise InvalidModelFile(f"'{p}' has a corrupt metadata entry: {exc}", hint="re-export the model") from None
                    out[entry.key] = entry.value
            return out
        finally:
            f.close()
    proto, _ = _unwrap(path_or_model)
    return {entry.key: entry.value for entry in proto.metadata_props}
