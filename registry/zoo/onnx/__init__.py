"""What an ONNX file says about itself, whether an untrusted one is safe to take in, and the I/O
contract every artifact honours: the ONNX file as data.

- :func:`check_model_file` (``_check``) refuses anything that is not a valid, self-contained ONNX
  model whose external data stays inside its own folder (``_external``, ``_wire``, ``_files``).
- :func:`inspect` (``_inspect``) reads the facts the registry records: signature, opset
  (``_signature``), initializer element count and multiply-accumulates per sample (``_macs``),
  all from the graph, never from the weights.
- :func:`embed_metadata` / :func:`read_metadata` (``_metadata``): the artifact's ``metadata_props``.
- :func:`enforce_io_contract` (``contract``): the one pass that names an exported graph's input,
  output and batch dim as the contract says, for every plugin.

onnx is imported inside the functions: ``import zoo.onnx`` stays free of it.
"""
from __future__ import annotations

from ._check import CheckedModel, ModelLike, check_model_file
from ._external import ExternalFile
from ._inspect import OnnxFacts, inspect
from ._macs import count_macs
from ._metadata import embed_metadata, read_metadata
from ._signature import count_initializer_elements, read_signature
from .contract import enforce_io_contract

__all__ = [
    "CheckedModel", "ExternalFile", "ModelLike", "OnnxFacts", "check_model_file", "inspect", "read_signature",
    "count_initializer_elements", "count_macs", "embed_metadata", "read_metadata", "enforce_io_contract",
]
