"""Open Inference Protocol tensors <-> numpy: datatypes, shapes, JSON data, raw bytes, BYTES elements.

Invariant: a decoded tensor has exactly the element count its declared shape says, checked against the
bytes or JSON values *received* before anything is allocated from the declared shape (a request that
declares [1000000000, 3, 224, 224] and sends 12 bytes is refused, not allocated); every refusal is an
:class:`~zoo.errors.InvalidInput` saying "Expected X. Received: Y".
"""
from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput

# OIP datatype -> numpy dtype (the protocol's table; BYTES is a list of byte strings here).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype(np.int8), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
_BY_NUMPY = {dt.name: name for name, dt in DATATYPES.items()}
MAX_RANK = 8


def datatype_of(dtype: str | np.dtype) -> str:
    """The OIP datatype of a numpy dtype (name), e.g. ``float32`` -> ``FP32``."""
    return _BY_NUMPY.get(np.dtype(dtype).name, "BYTES")


def oip_shape(shape: Sequence[int | str | None]) -> list[int]:
    """A recorded shape as the protocol writes it: symbolic dims are -1."""
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def check_shape(name: str, shape: Any, max_elements: int) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints of rank <= 8 whose product is at most ``max_elements``."""
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_RANK or \
            not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InvalidInput(f"Expected input {name!r} to have a shape of at most {MAX_RANK} non-negative integers. "
                           f"Received: {str(shape)[:120]}", hint="e.g. \"shape\": [1, 3, 224, 224]")
    count = math.prod(shape)
    if count > max_elements:
        raise InvalidInput(f"Expected input {name!r} to hold at most {max_elements:,} elements (the body limit). "
                           f"Received: shape {list(shape)} ({count:,} elements)",
                           hint="send smaller batches, or start the server with a larger --max-body-size")
    return tuple(shape)


def _datatype(name: str, datatype: Any) -> str:
    if datatype != "BYTES" and datatype not in DATATYPES:
        raise InvalidInput(f"Expected input {name!r} to have an OIP datatype ({', '.join([*DATATYPES, 'BYTES'])}). "
                           f"Received: {str(datatype)[:40]!r}", hint="FP32 for normalised NCHW batches, BYTES for encoded images")
    return str(datatype)


def split_bytes(name: str, raw: bytes | memoryview, count: int) -> list[bytes]:
    """The elements of a serialized BYTES tensor (each a 4-byte little-endian length, then the bytes)."""
    out: list[bytes] = []
    view = memoryview(raw)
    at = 0
    while at < len(view):
        if at + 4 > len(view):
            raise InvalidInput(f"Expected input {name!r} (BYTES) as 4-byte lengths each followed by that many bytes. "
                               f"Received: {len(view) - at} trailing byte(s) at offset {at}",
                               hint="serialize with tritonclient.utils.serialize_byte_tensor")
        (size,) = struct.unpack_from("<I", view, at)
        at += 4
        if at + size > len(view):
            raise InvalidInput(f"Expected element {len(out)} of input {name!r} (BYTES) to hold {size:,} bytes. "
                               f"Received: {len(view) - at:,}", hint="serialize with tritonclient.utils.serialize_byte_tensor")
        out.append(bytes(view[at:at + size]))
        at += size
    if len(out) != count:
        raise InvalidInput(f"Expected {count} element(s) in input {name!r} (BYTES, its shape). Received: {len(out)}",
                           hint="one element per encoded image; the shape is [number of images]")
    return out


def serialize_bytes(items: Sequence[bytes]) -> bytes:
    """BYTES elements in the protocol's binary form (4-byte little-endian length prefixes)."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def from_raw(name: str, datatype: Any, shape: Any, raw: bytes | memoryview, max_elements: int) -> np.ndarray | list[bytes]:
    """A tensor from the binary extension / gRPC ``raw_input_contents``: byte count checked against the shape."""
    datatype = _datatype(name, datatype)
    dims = check_shape(name, shape, max_elements)
    count = math.prod(dims)
    if datatype == "BYTES":
        return split_bytes(name, raw, count)
    dtype = DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(f"Expected {count * dtype.itemsize:,} bytes for input {name!r} ({datatype} {list(dims)}). "
                           f"Received: {len(raw):,} bytes", hint="the byte count must equal the shape's element count "
                                                               f"times {dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def _flatten(data: Any) -> list:
    if not isinstance(data, list):
        return [data]
    if data and isinstance(data[0], list):
        flat: list = []
        for part in data:
            flat.extend(_flatten(part))
        return flat
    return data


def from_json(name: str, datatype: Any, shape: Any, data: Any, max_elements: int) -> np.ndarray | list[bytes]:
    """A tensor from JSON ``data`` (flat or nested, row-major); BYTES elements are base64 strings of encoded images."""
    datatype = _datatype(name, datatype)
    dims = check_shape(name, shape, max_elements)
    count = math.prod(dims)
    flat = _flatten(data)
    if len(flat) != count:
        raise InvalidInput(f"Expected {count:,} values in input {name!r} (shape {list(dims)}). Received: {len(flat):,}",
                           hint="\"data\" holds the tensor's elements in row-major order")
    if datatype == "BYTES":
        import base64
        import binascii

        out = []
        for i, item in enumerate(flat):
            if not isinstance(item, str):
                raise InvalidInput(f"Expected element {i} of input {name!r} (BYTES) to be a base64 string. "
                                   f"Received: {type(item).__name__}", hint="or send the bytes with the binary extension")
            try:
                out.append(base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError):
                raise InvalidInput(f"Expected element {i} of input {name!r} (BYTES) to be base64. Received: "
                                   f"{item[:40]!r}", hint="base64-encode each image's file bytes") from None
        return out
    dtype = DATATYPES[datatype]
    if not all(isinstance(v, (int, float)) for v in flat):
        bad = next(v for v in flat if not isinstance(v, (int, float)))
        raise InvalidInput(f"Expected numbers in input {name!r} ({datatype}). Received: {str(bad)[:40]!r}",
                           hint="\"data\" holds numbers for numeric datatypes")
    try:
        return np.asarray(flat, dtype=dtype).reshape(dims)
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(f"Expected values that fit {datatype} in input {name!r}. Received: {exc}",
                           hint="check the datatype") from None


def to_json_data(array: np.ndarray) -> list:
    """A tensor's elements as a flat JSON list (BYTES as text)."""
    if array.dtype == object:
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    return array.reshape(-1).tolist()


def to_raw(array: np.ndarray) -> bytes:
    """A tensor's elements in the protocol's binary form (little-endian; BYTES length-prefixed)."""
    if array.dtype == object:
        return serialize_bytes([v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1)])
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


__all__ = ["DATATYPES", "check_shape", "datatype_of", "from_json", "from_raw", "oip_shape", "serialize_bytes",
           "split_bytes", "to_json_data", "to_raw"]
