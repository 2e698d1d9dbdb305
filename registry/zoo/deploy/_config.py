"""A Triton ``config.pbtxt`` for one model, from the signatures the registry recorded.

Invariant: the text this module writes parses with Triton's own ``ModelConfig`` protobuf
(:func:`check_config`), round-trips through it unchanged, and states batching the way the ONNX
Runtime backend checks it:

- a graph whose first input axis is symbolic (zoo's ``batch``) gets ``max_batch_size > 0`` and
  ``dims`` *without* that axis (``images [batch, 3, 224, 224]`` -> ``dims: [3, 224, 224]``); every
  input and output must then have that symbolic first axis (server#1338, onnxruntime_backend#165);
- a graph with a fixed first axis gets ``max_batch_size: 0`` and the full shape as ``dims``, and no
  dynamic batching (onnxruntime_backend#148: a fixed batch of 1 is not "batching");
- any other symbolic axis is ``-1``.

All versions of one Triton model share one config, so they must share a signature and labels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidInput, PluginUnavailable
from ..records import ModelVersion, TensorSpec

__all__ = ["LABELS_FILE", "TritonOptions", "build_config", "check_config", "data_type"]

LABELS_FILE = "labels.txt"
PLATFORM = "onnxruntime_onnx"

_DTYPES = {  # numpy dtype name -> Triton's DataType (model_config.proto)
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
    "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16", "str": "TYPE_STRING", "object": "TYPE_STRING",
}


@dataclass(frozen=True)
class TritonOptions:
    """How Triton should serve a model. ``kind`` is ``cpu`` or ``gpu``; ``trt_fp16`` needs ``gpu``."""

    max_batch_size: int = 8
    dynamic_batching: bool = True
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 100
    kind: str = "cpu"
    instances: int = 1
    tensorrt: bool = False
    trt_fp16: bool = False

    def check(self) -> None:
        if self.max_batch_size < 0:
            raise InvalidInput(f"Expected --max-batch-size >= 0. Received: {self.max_batch_size}",
                               hint="0 turns Triton's batching off; e.g. --max-batch-size 8")
        if self.instances < 1:
            raise InvalidInput(f"Expected --instances >= 1. Received: {self.instances}", hint="e.g. --instances 2")
        if self.kind not in ("cpu", "gpu"):
            raise InvalidInput(f"Expected --kind cpu or gpu. Received: {self.kind!r}")
        if self.max_queue_delay_us < 0:
            raise InvalidInput(f"Expected --max-queue-delay-us >= 0. Received: {self.max_queue_delay_us}")
        bad = [b for b in self.preferred_batch_sizes if not 1 <= b <= max(self.max_batch_size, 1)]
        if bad:
            raise InvalidInput(f"Expected preferred batch sizes between 1 and --max-batch-size {self.max_batch_size}. "
                               f"Received: {bad}", hint="e.g. --preferred-batch-size 4 --preferred-batch-size 8")
        if (self.tensorrt or self.trt_fp16) and self.kind != "gpu":
            raise InvalidInput("Expected --kind gpu with --tensorrt / --trt-fp16. Received: --kind cpu",
                               hint="TensorRT runs only on GPU instances; add --kind gpu")


def data_type(spec: TensorSpec) -> str:
    try:
        return _DTYPES[spec.dtype]
    except KeyError:
        raise InvalidInput(f"Expected a tensor type Triton knows ({', '.join(sorted(_DTYPES))}). "
                           f"Received: {spec.name!r} of type {spec.dtype!r}") from None


def _symbolic(dim: object) -> bool:
    return not isinstance(dim, int) or dim < 0


def _batched(version: ModelVersion, options: TritonOptions) -> bool:
    """Whether Triton may batch: every tensor's first axis is symbolic, and the user asked for batching."""
    tensors = (*version.signature.inputs, *version.signature.outputs)
    symbolic_first = [bool(t.shape) and _symbolic(t.shape[0]) for t in tensors]
    if options.max_batch_size == 0:
        return False
    if all(symbolic_first):
        return True
    fixed = [t for t, s in zip(tensors, symbolic_first, strict=True) if not s]
    if any(symbolic_first):
        raise InvalidInput(f"Expected every input and output of {version.ref} to have the same kind of first axis. "
                           f"Received: fixed first axis on {', '.join(t.name for t in fixed)}, symbolic on the others",
                           hint="serve it without batching: --max-batch-size 0")
    raise InvalidInput(
        f"Expected a symbolic batch axis to let Triton batch {version.ref}. Received: input "
        f"{fixed[0].name!r} of fixed shape {list(fixed[0].shape)}",
        hint="serve it as exported with --max-batch-size 0 (dims then keep the first axis), or re-export with a dynamic batch")


def _dims(spec: TensorSpec, batched: bool) -> list[int]:
    shape = spec.shape[1:] if batched else spec.shape
    return [-1 if _symbolic(d) else int(d) for d in shape]  # type: ignore[arg-type]


def _io_key(version: ModelVersion) -> tuple:
    sig = version.signature
    return (tuple((t.name, t.dtype, tuple(t.shape)) for t in sig.inputs),
            tuple((t.name, t.dtype, tuple(t.shape)) for t in sig.outputs))


def check_same_model(versions: Sequence[ModelVersion]) -> None:
    """Versions served as one Triton model share its config: one signature, one labels file."""
    first = versions[0]
    for other in versions[1:]:
        if _io_key(other) != _io_key(first):
            raise InvalidInput(f"Expected the versions of one Triton model to share a signature. Received: {first.ref} "
                               f"{_describe(first)} and {other.ref} {_describe(other)}",
                               hint="deploy them in separate runs into separate repositories")
        a = first.labels.classes if first.labels is not None else None
        b = other.labels.classes if other.labels is not None else None
        if a != b:
            raise InvalidInput(f"Expected the versions of one Triton model to share their labels (one labels.txt). "
                               f"Received: different labels on {first.ref} and {other.ref}",
                               hint="deploy them in separate runs into separate repositories")


def _describe(version: ModelVersion) -> str:
    sig = version.signature
    return ", ".join(f"{t.name} {t.dtype}{list(t.shape)}" for t in (*sig.inputs, *sig.outputs))


def labels_text(version: ModelVersion) -> bytes | None:
    """The labels file Triton's classification extension reads: one class name per output index."""
    if version.labels is None:
        return None
    width = version.signature.outputs[0].shape[-1] if version.signature.outputs[0].shape else None
    if isinstance(width, int) and width != len(version.labels):
        raise InvalidInput(f"Expected {width} class names for the {width} outputs of {version.ref}. "
                           f"Received: {len(version.labels)} in {version.labels.name!r}")
    return ("\n".join(version.labels.classes) + "\n").encode("utf-8")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _accelerator(versions: Sequence[ModelVersion], options: TritonOptions) -> list[str]:
    if not (options.tensorrt or options.trt_fp16):
        return []
    from ..convert import precision_of

    precision = "FP16" if options.trt_fp16 else "FP32"
    if any(precision_of(v) == "int8" for v in versions):
        precision = "INT8"  # QDQ graphs: TensorRT must run its int8 kernels (no calibration table needed)
    params = [("precision_mode", precision), ("max_workspace_size_bytes", str(1 << 30)), ("trt_engine_cache_enable", "1")]
    inner = " ".join(f"parameters {{ key: {_q(k)} value: {_q(v)} }}" for k, v in params)
    return ["optimization {", "  execution_accelerators {",
            f'    gpu_execution_accelerator: [ {{ name: "tensorrt" {inner} }} ]', "  }", "}"]


def build_config(name: str, versions: Sequence[ModelVersion], options: TritonOptions, *,
                 header: Sequence[str] = ()) -> str:
    """The ``config.pbtxt`` text serving exactly ``versions`` (a ``specific`` version policy) of model ``name``."""
    options.check()
    check_same_model(versions)
    first = versions[0]
    batched = _batched(first, options)
    has_labels = first.labels is not None
    lines = [f"# {line}" for line in header]
    lines += [f"name: {_q(name)}", f"platform: {_q(PLATFORM)}", f"max_batch_size: {options.max_batch_size if batched else 0}"]
    numbers = ", ".join(str(v.version) for v in sorted(versions, key=lambda v: v.version))
    lines.append(f"version_policy: {{ specific: {{ versions: [ {numbers} ] }} }}")
    for spec in first.signature.inputs:
        dims = _dims(spec, batched)
        layout = " format: FORMAT_NCHW" if len(dims) == 3 and spec.dtype.startswith("float") else ""  # the contract: NCHW
        lines.append(f"input [ {{ name: {_q(spec.name)} data_type: {data_type(spec)}{layout} "
                     f"dims: [ {', '.join(map(str, dims))} ] }} ]")
    for i, spec in enumerate(first.signature.outputs):
        label = f" label_filename: {_q(LABELS_FILE)}" if has_labels and i == 0 else ""
        lines.append(f"output [ {{ name: {_q(spec.name)} data_type: {data_type(spec)} "
                     f"dims: [ {', '.join(map(str, _dims(spec, batched)))} ]{label} }} ]")
    kind = "KIND_GPU" if options.kind == "gpu" else "KIND_CPU"
    lines.append(f"instance_group [ {{ count: {options.instances} kind: {kind} }} ]")
    if batched and options.dynamic_batching:
        preferred = sorted(set(options.preferred_batch_sizes))
        pref = f"preferred_batch_size: [ {', '.join(map(str, preferred))} ] " if preferred else ""
        lines.append(f"dynamic_batching {{ {pref}max_queue_delay_microseconds: {options.max_queue_delay_us} }}")
    lines += _accelerator(versions, options)
    return "\n".join(lines) + "\n"


def model_config_class():
    """Triton's ``ModelConfig`` message class (``tritonclient``'s copy of model_config.proto)."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise PluginUnavailable(f"Cannot check config.pbtxt against Triton's ModelConfig: {exc}",
                                hint="pip install 'zoo-registry[deploy]' (tritonclient[grpc])") from None
    return model_config_pb2.ModelConfig


def check_config(text: str, versions: Sequence[ModelVersion]) -> object:
    """Parse ``text`` with Triton's ``ModelConfig``, check it round-trips and describes ``versions``' graphs;
    return the message. A disagreement is a bug in this module (RuntimeError: exit 70, please report)."""
    from google.protobuf import text_format

    cls = model_config_class()
    try:
        config = text_format.Parse(text, cls())
    except text_format.ParseError as exc:
        raise RuntimeError(f"zoo deploy wrote a config.pbtxt that Triton's ModelConfig refuses: {exc}") from None
    again = text_format.Parse(text_format.MessageToString(config), cls())
    if again != config:
        raise RuntimeError("zoo deploy wrote a config.pbtxt that does not round-trip through Triton's ModelConfig")
    sig = versions[0].signature
    offset = 1 if config.max_batch_size > 0 else 0
    for proto, spec in [*zip(config.input, sig.inputs, strict=True), *zip(config.output, sig.outputs, strict=True)]:
        expected = [-1 if _symbolic(d) else d for d in spec.shape[offset:]]
        if proto.name != spec.name or list(proto.dims) != expected:
            raise RuntimeError(f"Expected {spec.name} dims {expected} in config.pbtxt. Received: {proto.name} {list(proto.dims)}")
    if sorted(config.version_policy.specific.versions) != sorted(v.version for v in versions):
        raise RuntimeError("config.pbtxt's version_policy does not name the deployed versions")
    return config
