"""The protobuf wire format: enough to look at a ModelProto's top-level fields without parsing the graph.

Used to refuse non-ONNX files with a message that names what they are, to read metadata from a
2 GB model instantly, and to rewrite a graph's names without touching its weights (``contract``).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidModelFile

# A single protobuf message cannot exceed 2 GiB; bigger models keep their weights as external data.
MAX_PROTO_BYTES = 2**31 - 1
# A model has a handful of top-level fields (plus one per metadata entry, opset, function);
# scanning millions of tiny ones would only let a crafted file keep us busy.
_MAX_TOP_LEVEL_FIELDS = 1_000_000


class WireError(ValueError):
    def __init__(self, message: str, *, truncated: bool = False, field: int | None = None):
        super().__init__(message)
        self.truncated = truncated
        self.field = field


def varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("a varint runs past the end of the file", truncated=True)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise WireError("a varint is longer than 10 bytes")


def message_fields(buf: Any) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field_number, wire_type, start, end)`` of each field of a serialized message, in file order."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise WireError("field number 0 is not valid protobuf")
        if wire == 0:
            _, nxt = varint(buf, pos, end)
        elif wire == 1:
            nxt = pos + 8
        elif wire == 5:
            nxt = pos + 4
        elif wire == 2:
            length, pos = varint(buf, pos, end)
            nxt = pos + length
        else:
            raise WireError(f"wire type {wire} is not used by ONNX")
        if nxt > end:
            raise WireError(f"it needs {nxt - pos} bytes but only {end - pos} remain", truncated=True, field=field)
        yield field, wire, pos, nxt
        pos = nxt


def model_fields() -> dict[int, Any]:
    import onnx

    return dict(onnx.ModelProto.DESCRIPTOR.fields_by_number)


def _model_field_wire_types() -> dict[int, int]:
    """ModelProto field number -> expected wire type (0 varint, 2 length-delimited)."""
    return {
        number: 2 if fd.type in (fd.TYPE_STRING, fd.TYPE_BYTES, fd.TYPE_MESSAGE) else 0
        for number, fd in model_fields().items()
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


def check_wire(buf: Any, path: Path) -> None:
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
        for i, (field, wire, start, end) in enumerate(message_fields(buf)):
            if i >= _MAX_TOP_LEVEL_FIELDS:
                raise WireError(f"it has over {_MAX_TOP_LEVEL_FIELDS:,} top-level fields")
            if i == 0:
                if expected.get(field) != wire:
                    raise WireError("its first bytes are not an ONNX ModelProto field")
                starts_like_onnx = field == 1 and 1 <= varint(buf, start, end)[0] <= 100
            if field == 7:
                seen_graph = True
    except WireError as exc:
        if exc.truncated and starts_like_onnx:
            names = {n: fd.name for n, fd in model_fields().items()}
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



def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)

