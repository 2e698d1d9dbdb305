"""Typed records that cross module boundaries: plain, frozen, JSON-round-trippable.

Nothing here imports a framework or touches the disk; stores persist these as JSON.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # both modules import this one; their records are built lazily in from_dict
    from .labels import Labels
    from .transforms import Transform

# The I/O contract of every exported artifact (../shared/reference/architectures.md).
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Record:
    """Mixin: ``to_dict()`` for JSON output and storage."""

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


@dataclass(frozen=True)
class TensorSpec(Record):
    """One graph input or output. ``shape`` holds ints for fixed dims, strings for symbolic ones."""

    name: str
    dtype: str  # numpy dtype name: "float32", "float16", "int64", ...
    shape: tuple[int | str | None, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TensorSpec":
        return cls(name=d["name"], dtype=d["dtype"], shape=tuple(d["shape"]))


@dataclass(frozen=True)
class Signature(Record):
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Signature":
        return cls(
            inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
        )


@dataclass(frozen=True)
class ParamCounts(Record):
    """Parameter counts as the native framework sees them, named separately.

    ``trainable`` is what papers and torchvision's ``meta["num_params"]`` report.
    ``non_trainable`` is state that is not learned by gradient: BatchNorm running mean/variance
    (torch buffers; Keras' non-trainable weights). Keras' ``count_params()`` is the sum.
    """

    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ParamCounts":
        return cls(trainable=int(d["trainable"]), non_trainable=int(d["non_trainable"]))


@dataclass(frozen=True)
class Preprocessing(Record):
    """How to turn an image into the input tensor. Stored in the artifact, not in a README."""

    layout: str = "NCHW"
    color: str = "RGB"
    scale: float = 1 / 255  # uint8 pixel -> [0, 1] before normalisation
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: tuple[int, int] = (224, 224)  # (H, W) the model was exported/validated at

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Preprocessing":
        return cls(
            layout=d.get("layout", "NCHW"),
            color=d.get("color", "RGB"),
            scale=float(d.get("scale", 1 / 255)),
            mean=tuple(d.get("mean", IMAGENET_MEAN)),
            std=tuple(d.get("std", IMAGENET_STD)),
            input_size=tuple(d.get("input_size", (224, 224))),
        )


@dataclass(frozen=True)
class StoredFile(Record):
    """One file of an artifact: the model itself, or an ONNX external-data file beside it."""

    relpath: str  # relative to the artifact's folder; the model file is first
    sha256: str
    size: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StoredFile":
        return cls(relpath=d["relpath"], sha256=d["sha256"], size=int(d["size"]))


@dataclass(frozen=True)
class ExportInfo(Record):
    """What a plugin's exporter says about the file it wrote."""

    exporter: str  # e.g. "torch.onnx.export(dynamo=True)", "tf2onnx.from_function"
    exporter_version: str
    opset: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionMeta(Record):
    """What the producer of an artifact knows and the ONNX graph cannot tell: given to ``register``.

    Everything here is also embedded in the artifact's ``metadata_props`` (keys ``zoo.<field>``),
    so a file copied out of the store still says what it is. Registry facts that depend on the
    store (name, version number, created time, aliases, tags) are *not* embedded: identical
    content must give identical bytes, so that re-registering dedupes. :class:`ModelVersion` is
    these fields plus what the registry measured and assigned (declared once, here).
    """

    arch: str | None = None
    framework: str | None = None  # plugin name: "torch", "tensorflow"; None for external ONNX
    framework_version: str | None = None
    plugin_version: str | None = None
    exporter: str | None = None
    exporter_version: str | None = None
    params: ParamCounts | None = None  # native counts, from the plugin
    num_classes: int | None = None
    preprocessing: Preprocessing | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # weights sha256, source file, host, ...
    transform: Transform | None = None  # the full eval transform (resize, crop, interpolation, ...)
    labels: Labels | None = None  # class names by output index


@dataclass(frozen=True, kw_only=True)
class ModelVersion(VersionMeta):
    """One immutable, numbered version of a registered model: its :class:`VersionMeta` and registry facts.

    ``sha256`` identifies the artifact's content (for a single-file model, the file's sha256;
    with external data, a digest over every file, see ``files``). ``aliases`` and ``tags`` are
    the only fields that change after registration.
    """

    name: str
    version: int
    sha256: str
    size_bytes: int
    created_at: str  # ISO 8601, UTC
    signature: Signature
    opset: int
    onnx_params: int  # element count of ONNX initializers (can differ from native after BN folding)
    macs: int | None  # multiply-accumulates per sample, from the ONNX graph, at preprocessing.input_size
    files: tuple[StoredFile, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def meta(self) -> VersionMeta:
        """The producer's half of this record."""
        return VersionMeta(**{f.name: getattr(self, f.name) for f in dataclasses.fields(VersionMeta)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelVersion":
        d = dict(d)
        d["signature"] = Signature.from_dict(d["signature"])
        if d.get("params") is not None:
            d["params"] = ParamCounts.from_dict(d["params"])
        if d.get("preprocessing") is not None:
            d["preprocessing"] = Preprocessing.from_dict(d["preprocessing"])
        d["files"] = tuple(StoredFile.from_dict(f) for f in d.get("files", ()))
        d["aliases"] = tuple(d.get("aliases", ()))
        d["tags"] = dict(d.get("tags", {}))
        d["provenance"] = dict(d.get("provenance", {}))
        _transform_and_labels_from_dict(d)
        names = _field_names(cls)
        return cls(**{k: v for k, v in d.items() if k in names})


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def _transform_and_labels_from_dict(d: dict[str, Any]) -> None:
    """Parse the optional ``transform`` and ``labels`` (absent from records written before they existed)."""
    if d.get("transform") is not None:
        from .transforms import Transform

        d["transform"] = Transform.from_dict(d["transform"])
    if d.get("labels") is not None:
        from .labels import Labels

        d["labels"] = Labels.from_dict(d["labels"])


@dataclass(frozen=True)
class Report(Record):
    """A result attached to a version after the fact (parity, benchmark, fp16 error).

    Reports are append-only: attaching one never changes the version it describes.
    """

    name: str
    version: int
    kind: str  # "parity", "bench", "fp16-parity", ...
    created_at: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AliasEvent(Record):
    """One move of an alias, appended in the transaction that made it; never changed or deleted.

    ``from_version`` is None when the alias was first set, ``to_version`` None when it was deleted.
    ``actor`` is the OS user (embedded store) or the PostgreSQL role (shared store); ``at`` is ISO 8601
    UTC and never earlier than the alias's previous event. ``forced`` and ``policy`` record a gate
    (a policy on the alias) that was overridden or checked; None where no policy applied.
    """

    id: int  # increasing in the order the moves were committed
    name: str
    alias: str
    at: str
    actor: str
    from_version: int | None
    to_version: int | None
    reason: str | None = None
    forced: bool = False
    policy: dict[str, Any] | None = None

    @property
    def action(self) -> str:
        """"set" (first time), "move" or "delete"."""
        if self.to_version is None:
            return "delete"
        return "set" if self.from_version is None else "move"
