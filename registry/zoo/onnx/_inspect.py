"""The facts the registry records from a graph: signature, opset, stored elements, MACs."""
from __future__ import annotations

from dataclasses import dataclass

from ..records import Record, Signature
from ._check import ModelLike, unwrap
from ._macs import count_macs
from ._signature import count_initializer_elements, opset, read_signature


@dataclass(frozen=True)
class OnnxFacts(Record):
    """What the registry records from the graph alone."""

    signature: Signature
    opset: int
    onnx_params: int
    macs: int | None


def inspect(model: ModelLike, *, input_size: int | tuple[int, int] | None = None) -> OnnxFacts:
    """Everything the registry records about a graph, computed without reading external data."""
    proto, _ = unwrap(model)
    return OnnxFacts(
        signature=read_signature(proto),
        opset=opset(proto),
        onnx_params=count_initializer_elements(proto),
        macs=count_macs(model, input_size=input_size),
    )
