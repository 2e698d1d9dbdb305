"""What a new version records about its input and output: the eval transform and the class names.

``zoo export`` / ``zoo register`` (and :func:`zoo._exporting.export_and_register`) decide them here,
from three sources, in order of precedence:

1. **explicit options**: ``--labels FILE|imagenet-1k`` and ``--resize``, ``--crop``,
   ``--interpolation``, ``--mean``, ``--std`` (:class:`TransformOptions`); each given option
   replaces that one field of the transform below it;
2. **what the ONNX file already says** (``zoo register`` of a file copied out of a store): its
   ``zoo.transform`` / ``zoo.labels`` metadata (:func:`embedded_meta`);
3. **defaults**: a reference build (an architecture a plugin builds) gets torchvision's eval
   transform (:func:`reference_transform`: crop = the input size, resize by torchvision's 256/224
   ratio, bilinear, ImageNet mean/std), and ``imagenet-1k`` labels when it has 1000 classes; an
   external file gets no transform and no labels unless 1. or 2. give them.

Every option is validated before anything is built or written (:class:`~zoo.errors.InvalidInput`,
exit 2, naming the option and the fix); labels must name exactly one class per output.
"""
from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ._names import received
from .errors import InvalidInput, InvalidModelFile, ZooError
from .labels import BUILTIN, Labels, builtin_labels, check_labels_fit, read_labels
from .records import VersionMeta
from .transforms import INTERPOLATIONS, Transform

__all__ = ["REFERENCE_LABELS", "TransformOptions", "embedded_meta", "export_eval_meta", "external_meta", "labels_option",
           "parse_triple", "reference_transform", "register_eval_meta"]

REFERENCE_LABELS = "imagenet-1k"  # the reference builds' 1000 classes are ImageNet-1k's, in torchvision's order
IMAGENET_CLASSES = 1000
_LABELS_HINT = f"give a labels file (UTF-8, one class name per line, in output order) or {', '.join(BUILTIN)}"


def parse_triple(text: str | None, option: str) -> tuple[float, float, float] | None:
    """``"0.485,0.456,0.406"`` -> three floats; InvalidInput naming ``option`` for anything else."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    positive = option == "--std"
    if len(values) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        example = "0.229,0.224,0.225" if positive else "0.485,0.456,0.406"
        raise InvalidInput(f"Expected {option} as three comma-separated finite numbers R,G,B{' > 0' if positive else ''}. "
                           f"Received: {received(text)}", hint=f"e.g. {option} {example} (ImageNet's)")
    return values[0], values[1], values[2]


@dataclass(frozen=True)
class TransformOptions:
    """Transform fields given explicitly (None: not given). ``crop`` is a square side."""

    resize: int | None = None
    crop: int | None = None
    interpolation: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @classmethod
    def parse(cls, *, resize: int | None = None, crop: int | None = None, interpolation: str | None = None,
              mean: str | tuple[float, float, float] | None = None,
              std: str | tuple[float, float, float] | None = None) -> "TransformOptions":
        """From CLI values (``mean``/``std`` as ``"R,G,B"``); each is checked now, so a bad one fails first."""
        for value, option in ((resize, "--resize"), (crop, "--crop")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInput(f"Expected {option} to be a positive number of pixels. Received: {received(value)}",
                                   hint="torchvision's ImageNet eval transform is --resize 256 --crop 224")
        if interpolation is not None and str(interpolation).lower() not in INTERPOLATIONS:
            raise InvalidInput(f"Expected --interpolation to be one of {', '.join(INTERPOLATIONS)}. Received: "
                               f"{received(interpolation)}", hint="torchvision's presets use bilinear")
        options = cls(
            resize=resize, crop=crop, interpolation=None if interpolation is None else str(interpolation).lower(),
            mean=parse_triple(mean, "--mean") if isinstance(mean, str) else mean,
            std=parse_triple(std, "--std") if isinstance(std, str) else std,
        )
        options.apply(Transform())  # Transform's own checks (std > 0, finite values) before anything happens
        return options

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.resize, self.crop, self.interpolation, self.mean, self.std))

    def apply(self, base: Transform) -> Transform:
        """``base`` with every given field replaced (and validated by :class:`Transform`)."""
        changes: dict[str, Any] = {}
        if self.resize is not None:
            changes["resize"] = self.resize
        if self.crop is not None:
            changes["crop"] = (self.crop, self.crop)
        if self.interpolation is not None:
            changes["interpolation"] = self.interpolation
        if self.mean is not None:
            changes["mean"] = self.mean
        if self.std is not None:
            changes["std"] = self.std
        return replace(base, **changes) if changes else base


def reference_transform(input_size: int) -> Transform:
    """torchvision's eval transform for a reference build validated at ``input_size``: centre crop of
    that size after resizing the shorter side by 256/224 (resize 256, crop 224 at full size), bilinear."""
    return Transform.for_input_size(input_size)


def labels_option(spec: str | os.PathLike[str] | Labels | None, *, num_classes: int | None = None) -> Labels | None:
    """``--labels``: a built-in name or a labels file -> :class:`Labels`, checked against ``num_classes``.

    A missing or unreadable file is InvalidInput (exit 2), like every other input file.
    """
    if spec is None or isinstance(spec, Labels):
        labels = spec
    elif isinstance(spec, str) and spec in BUILTIN:
        labels = builtin_labels(spec)
    else:
        path = Path(spec)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            why = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
            raise InvalidInput(f"Expected --labels to be a labels file or a built-in list ({', '.join(BUILTIN)}). "
                               f"Received: {received(os.fspath(spec))} ({why})", hint=_LABELS_HINT) from None
        if not stat.S_ISREG(mode):
            raise InvalidInput(f"Expected --labels to be a regular file. Received: {received(os.fspath(spec))} "
                               f"({'a folder' if stat.S_ISDIR(mode) else 'not a regular file'})", hint=_LABELS_HINT)
        labels = read_labels(path)
    if labels is not None and num_classes is not None:
        check_labels_fit(labels, num_classes)
    return labels


def export_eval_meta(*, num_classes: int, input_size: int, transform: TransformOptions | Transform | None = None,
                     labels: str | os.PathLike[str] | Labels | None = None) -> tuple[Transform, Labels | None]:
    """The transform and labels of a reference build (see the module docstring for the defaults).

    ``transform`` may be a full :class:`Transform` or :class:`TransformOptions` over the default; its
    crop must be the input size the export is verified at.
    """
    if isinstance(transform, Transform):
        chosen = transform
    else:
        chosen = (transform or TransformOptions()).apply(reference_transform(input_size))
    if chosen.crop is not None and chosen.crop != (input_size, input_size):
        raise InvalidInput(f"Expected --crop to equal --input-size ({input_size}), the size the export is verified at. "
                           f"Received: crop {chosen.crop[0]} x {chosen.crop[1]}",
                           hint=f"drop --crop (it defaults to the input size), or export with --input-size {chosen.crop[0]}")
    if labels is None and num_classes == IMAGENET_CLASSES:
        labels = REFERENCE_LABELS
    return chosen, labels_option(labels, num_classes=num_classes)


# --------------------------------------------------------------------------- external ONNX files


@dataclass(frozen=True)
class EmbeddedMeta:
    """What an ONNX file says about itself, read without its external data."""

    transform: Transform | None = None
    labels: Labels | None = None
    input_hw: tuple[int, int] | None = None  # fixed (H, W) of a [N, 3, H, W] input, if the graph fixes them
    num_classes: int | None = None  # fixed C of a [N, C] output, if the graph fixes it


def _fixed(dim: Any) -> int | None:
    return int(dim.dim_value) if dim.HasField("dim_value") and dim.dim_value > 0 else None


def embedded_meta(path: str | os.PathLike[str]) -> EmbeddedMeta:
    """The ``zoo.transform`` / ``zoo.labels`` metadata and the fixed I/O sizes of the ONNX file at ``path``.

    A file that cannot be read or parsed gives an empty :class:`EmbeddedMeta`: the registry's own
    checks then refuse it with the precise error. Malformed ``zoo.*`` values are InvalidModelFile.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return EmbeddedMeta()
        import onnx

        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception:
        return EmbeddedMeta()
    props = {p.key: p.value for p in model.metadata_props}
    transform = labels = None
    try:
        if "zoo.transform" in props:
            transform = Transform.from_dict(json.loads(props["zoo.transform"]))
        elif "zoo.preprocessing" in props:  # a file written before the transform was recorded
            transform = Transform.from_preprocessing(json.loads(props["zoo.preprocessing"]))
        if "zoo.labels" in props:
            labels = Labels.from_dict(json.loads(props["zoo.labels"]))
    except (ValueError, TypeError, KeyError, RecursionError, ZooError) as exc:  # RecursionError: nested [[[...]]]
        detail = exc.message if isinstance(exc, ZooError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        raise InvalidModelFile(f"Expected readable zoo.transform / zoo.labels metadata in {str(path)!r}. Received: {detail}",
                               hint="remove those metadata_props from the file, or register it with explicit "
                                    "--labels and transform options") from None
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    input_hw = num_classes = None
    if len(inputs) == 1:
        dims = inputs[0].type.tensor_type.shape.dim
        if len(dims) == 4:
            h, w = _fixed(dims[2]), _fixed(dims[3])
            input_hw = (h, w) if h and w else None
    if len(graph.output) == 1:
        dims = graph.output[0].type.tensor_type.shape.dim
        if len(dims) == 2:
            num_classes = _fixed(dims[1])
    return EmbeddedMeta(transform=transform, labels=labels, input_hw=input_hw, num_classes=num_classes)


def register_eval_meta(path: str | os.PathLike[str], *, transform: TransformOptions | None = None,
                       labels: str | os.PathLike[str] | Labels | None = None,
                       input_size: int | None = None) -> tuple[Transform | None, Labels | None]:
    """The transform and labels to record for the external ONNX file at ``path``.

    Explicit ``labels`` / ``transform`` options win over the file's embedded ``zoo.*`` metadata,
    field by field for the transform. A transform built from options alone starts from
    torchvision's eval transform at the graph's fixed input size (else ``input_size``, else 224).
    Labels must fit the graph's class count, and a crop its fixed input size, when the graph fixes them.
    """
    options = transform or TransformOptions()
    chosen_labels = labels_option(labels)  # the file's name and format first: nothing read yet
    found = embedded_meta(path)
    if chosen_labels is None:
        chosen_labels = found.labels
    if chosen_labels is not None and found.num_classes is not None:
        check_labels_fit(chosen_labels, found.num_classes)
    chosen = found.transform
    if options.given:
        if chosen is None:
            size = input_size or 224
            chosen = Transform.for_input_size(*(found.input_hw or (size, size)))
        chosen = options.apply(chosen)
    if chosen is not None and chosen.crop is not None and found.input_hw is not None and chosen.crop != found.input_hw:
        raise InvalidInput(f"Expected the crop to match the model's fixed input size {found.input_hw[0]} x {found.input_hw[1]}. "
                           f"Received: crop {chosen.crop[0]} x {chosen.crop[1]}",
                           hint=f"use --crop {found.input_hw[0]}" if found.input_hw[0] == found.input_hw[1] else
                           "the model takes a non-square input: record its transform with zoo.register_model")
    return chosen, chosen_labels



def external_meta(path: str | os.PathLike[str], *, arch: str | None = None, transform: TransformOptions | None = None,
                  labels: str | os.PathLike[str] | Labels | None = None,
                  input_size: int | None = None) -> tuple[VersionMeta, int | None]:
    """The :class:`VersionMeta` for registering the external ONNX file at ``path`` (see
    :func:`register_eval_meta`), and the input size to count its MACs at (``input_size``, else a
    square crop of the transform)."""
    chosen, names = register_eval_meta(path, transform=transform, labels=labels, input_size=input_size)
    crop = chosen.crop if chosen is not None else None
    if input_size is None and crop is not None and crop[0] == crop[1]:
        input_size = crop[0]
    meta = VersionMeta(arch=arch, provenance={"source_file": Path(path).name}, transform=chosen, labels=names,
                       num_classes=len(names) if names is not None else None)
    return meta, input_size
