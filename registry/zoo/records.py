"""Typed records that cross module boundaries: plain, frozen, JSON-round-trippable.

Nothing here imports a framework or touches the disk; stores persist these as JSON.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral
from typing import TYPE_CHECKING, Any

from ._names import received
from ._record import Record as Record  # re-exported: the base of every record
from ._record import _jsonable as _jsonable  # re-exported: _registry and _artifact_meta serialise with it
from .errors import InvalidInput

if TYPE_CHECKING:  # labels imports numpy: read lazily in from_dict, so `zoo --help` does not pay for it
    from .labels import Labels

# The I/O contract of every exported artifact (../shared/reference/architectures.md).
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


# Interpolation names -> Pillow resampling filters (torchvision's InterpolationMode -> PIL mapping).
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
CHANNEL_ORDERS = ("RGB", "BGR")
DEFAULT_SCALE = 1 / 255
# torchvision's classification presets resize to 256 for a 224 crop (V1 weights); without a
# recorded transform, a model validated at input size S is assumed to want resize S * 256/224.
RESIZE_RATIO = 256 / 224


MAX_SIDE = 16384  # pixels: no eval transform resizes or crops beyond this (the image limit refuses it at run)
MAX_SCALE = 1.0  # uint8 pixels times this: 1/255 maps to [0, 1]; 1 keeps 0..255 (Caffe-style)
MIN_STD = 1e-6  # a smaller std turns pixels into infinities


def _positive_int(value: Any, what: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not 1 <= int(value) <= MAX_SIDE:
        raise InvalidInput(f"Expected {what} to be a positive integer up to {MAX_SIDE}. Received: {received(value)}",
                           hint=hint)
    return int(value)


def _triple(value: Any, what: str, *, positive: bool) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values) or (positive and min(values) < MIN_STD):
        need = "three finite numbers" + (f" >= {MIN_STD:g}" if positive else "")
        raise InvalidInput(f"Expected {what} to be {need}, one per channel. Received: {received(value)}",
                           hint=f"e.g. {what} {' '.join(str(v) for v in (IMAGENET_STD if positive else IMAGENET_MEAN))}")
    return values[0], values[1], values[2]


@dataclass(frozen=True)
class Transform(Record):
    """How an image becomes the model's input. Immutable, validated, JSON-round-trippable.

    ``resize``: the shorter side's target length, or None to skip resizing. ``crop``: (H, W) of
    the centre crop, or None to skip cropping (then every image must already share one size).
    ``interpolation``: one of :data:`INTERPOLATIONS`. ``mean``/``std``: per channel, applied
    after ``scale``. ``channels``: ``"RGB"`` or ``"BGR"``. ``scale``: multiplies uint8 pixels.
    """

    resize: int | None = 256
    crop: tuple[int, int] | None = (224, 224)
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channels: str = "RGB"
    scale: float = DEFAULT_SCALE

    def __post_init__(self) -> None:
        hint = "torchvision's ImageNet preset is --resize 256 --crop 224"
        if self.resize is not None:
            object.__setattr__(self, "resize", _positive_int(self.resize, "the resize size", hint))
        if self.crop is not None:
            crop = self.crop
            if isinstance(crop, Integral) and not isinstance(crop, bool):
                crop = (crop, crop)
            if not isinstance(crop, (tuple, list)) or len(crop) != 2:
                raise InvalidInput(f"Expected the crop to be a size or (height, width). Received: {received(self.crop)}", hint=hint)
            object.__setattr__(self, "crop", tuple(_positive_int(c, "each crop side", hint) for c in crop))
        interpolation = self.interpolation.lower() if isinstance(self.interpolation, str) else self.interpolation
        if interpolation not in INTERPOLATIONS:
            raise InvalidInput(f"Expected the interpolation to be one of {', '.join(INTERPOLATIONS)}. "
                               f"Received: {received(self.interpolation)}", hint="torchvision's presets use bilinear")
        object.__setattr__(self, "interpolation", interpolation)
        object.__setattr__(self, "mean", _triple(self.mean, "--mean", positive=False))
        object.__setattr__(self, "std", _triple(self.std, "--std", positive=True))
        channels = self.channels.upper() if isinstance(self.channels, str) else self.channels
        if channels not in CHANNEL_ORDERS:
            raise InvalidInput(f"Expected the channel order to be one of {', '.join(CHANNEL_ORDERS)}. "
                               f"Received: {received(self.channels)}", hint="torchvision and Keras models take RGB")
        object.__setattr__(self, "channels", channels)
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or \
                not (math.isfinite(self.scale) and 0 < self.scale <= MAX_SCALE):
            raise InvalidInput(f"Expected the pixel scale to be a number > 0 and <= {MAX_SCALE:g}. Received: "
                               f"{received(self.scale)}", hint="1/255 maps uint8 pixels to [0, 1]")
        object.__setattr__(self, "scale", float(self.scale))

    @classmethod
    def imagenet(cls, *, crop: int = 224, resize: int = 256, interpolation: str = "bilinear") -> "Transform":
        """torchvision's ``ImageClassification(crop_size=crop, resize_size=resize, interpolation=...)``."""
        return cls(resize=resize, crop=(crop, crop), interpolation=interpolation)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Transform":
        """The inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are refused."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"Expected a transform as a mapping. Received: {received(d)}")
        known = {"resize", "crop", "interpolation", "mean", "std", "channels", "scale"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInput(f"Expected transform keys among {', '.join(sorted(known))}. Received: {', '.join(map(str, unknown))}",
                               hint="a transform written by a newer zoo? upgrade zoo")
        kwargs = dict(d)
        if isinstance(kwargs.get("crop"), list):
            kwargs["crop"] = tuple(kwargs["crop"])
        return cls(**kwargs)

    @classmethod
    def for_input_size(cls, height: int, width: int | None = None) -> "Transform":
        """torchvision's eval transform for a model validated at ``height`` x ``width`` (square by default):
        a centre crop of that size after resizing the shorter side by the 256/224 ratio, bilinear."""
        width = height if width is None else width
        return cls(resize=int(min(height, width) * RESIZE_RATIO), crop=(height, width))

    @classmethod
    def from_preprocessing(cls, d: Mapping[str, Any]) -> "Transform":
        """The transform a record of the old ``preprocessing`` shape implies (zoo 0.1 stored ``{layout, color,
        scale, mean, std, input_size}``): its mean, std, scale and channel order, a centre crop of its input
        size, and a resize of the shorter side by torchvision's 256/224 ratio with bilinear interpolation."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"Expected a preprocessing record as a mapping. Received: {received(d)}")
        height, width = (int(v) for v in d.get("input_size", (224, 224)))
        base = cls.for_input_size(height, width)
        return cls(resize=base.resize, crop=base.crop, mean=tuple(d.get("mean", IMAGENET_MEAN)),
                   std=tuple(d.get("std", IMAGENET_STD)), channels=d.get("color", "RGB"),
                   scale=float(d.get("scale", DEFAULT_SCALE)))

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(H, W) the model is fed at: the centre crop, or None when the transform does not crop."""
        return self.crop

    def describe(self) -> str:
        """One line for ``zoo show``: ``resize 256 (bilinear), crop 224x224, RGB, /255, mean ..., std ...``."""
        parts = []
        if self.resize is not None:
            parts.append(f"resize {self.resize} ({self.interpolation})")
        if self.crop is not None:
            parts.append(f"crop {self.crop[0]}x{self.crop[1]}")
        scale = "/255" if math.isclose(self.scale, DEFAULT_SCALE) else f"x{self.scale:g}"
        parts += [self.channels, scale, "mean " + ",".join(f"{v:g}" for v in self.mean),
                  "std " + ",".join(f"{v:g}" for v in self.std)]
        return ", ".join(parts)


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
    provenance: dict[str, Any] = field(default_factory=dict)  # weights sha256, source file, host, ...
    transform: Transform | None = None  # how to feed it: the eval transform (resize, crop, interpolation, mean, ...)
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
    macs: int | None  # multiply-accumulates per sample, from the ONNX graph, at the transform's input size
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

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(H, W) the version was exported and verified at (its transform's crop), or None if not recorded."""
        return self.transform.input_size if self.transform is not None else None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelVersion":
        d = dict(d)
        d["signature"] = Signature.from_dict(d["signature"])
        if d.get("params") is not None:
            d["params"] = ParamCounts.from_dict(d["params"])
        d["files"] = tuple(StoredFile.from_dict(f) for f in d.get("files", ()))
        d["aliases"] = tuple(d.get("aliases", ()))
        d["tags"] = dict(d.get("tags", {}))
        d["provenance"] = dict(d.get("provenance", {}))
        _transform_and_labels_from_dict(d)
        names = _field_names(cls)
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class VersionRow(Record):
    """What a listing shows of a version, read from the store's columns without parsing its record
    (:meth:`zoo._registry.Registry.rows`). ``params`` is the native trainable count, else the ONNX
    initializers' (as ``zoo list`` shows it)."""

    name: str
    version: int
    framework: str | None
    arch: str | None
    params: int | None
    size_bytes: int
    sha256: str
    aliases: tuple[str, ...]
    created_at: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def _transform_and_labels_from_dict(d: dict[str, Any]) -> None:
    """Parse the optional ``transform`` and ``labels`` (absent from records written before they existed).

    A record written in the old shape, with ``preprocessing`` and no ``transform``, reads as the transform
    its preprocessing implies (:meth:`Transform.from_preprocessing`): one record of how to feed a model."""
    old = d.pop("preprocessing", None)
    if d.get("transform") is not None:
        if not isinstance(d["transform"], Transform):  # a store hands over the records it read once for many versions
            d["transform"] = Transform.from_dict(d["transform"])
    elif old is not None:
        d["transform"] = Transform.from_preprocessing(old)
    if d.get("labels") is not None:
        from .labels import Labels

        if not isinstance(d["labels"], Labels):
            d["labels"] = Labels.from_dict(d["labels"])


def Preprocessing(*, layout: str = "NCHW", color: str = "RGB", scale: float = DEFAULT_SCALE,
                  mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD,
                  input_size: tuple[int, int] = (224, 224)) -> Transform:
    """Deprecated (zoo 0.2): the :class:`Transform` an old ``Preprocessing`` record implies. Use :class:`Transform`
    (e.g. :meth:`Transform.for_input_size`); ``preprocessing=`` on records is gone, ``transform=`` holds it all."""
    warnings.warn("zoo.records.Preprocessing is deprecated: use zoo.Transform (Transform.for_input_size(h, w))",
                  DeprecationWarning, stacklevel=2)
    if layout != "NCHW":
        raise InvalidInput(f"Expected layout NCHW (the artifact contract). Received: {received(layout)}")
    return Transform.from_preprocessing({"color": color, "scale": scale, "mean": mean, "std": std, "input_size": input_size})


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
