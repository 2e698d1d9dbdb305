"""The eval transform a model expects: image in, NCHW float32 batch out, recorded on the version.

A :class:`Transform` is torchvision's ``ImageClassification`` eval preset written down as data::

    Transform(resize=256, crop=(224, 224), interpolation="bilinear")   # ResNet-50 IMAGENET1K_V1
    Transform(resize=232, crop=(224, 224), interpolation="bilinear")   # ResNet-50 IMAGENET1K_V2

and :func:`apply_transform` computes what torchvision computes for a PIL image, step by step:

1. **resize** the shorter side to ``resize`` with Pillow (``Image.resize``, which always
   antialiases when it downsamples), the longer side to ``int(resize * long / short)`` (truncated,
   as torchvision does); an image already at that size is left untouched;
2. **centre crop** ``crop`` = (H, W): top ``round((h - H) / 2)``, left ``round((w - W) / 2)``
   (Python's round-half-to-even, as torchvision); an image smaller than the crop is first padded
   with zeros, ``(W - w) // 2`` on the left and the rest on the right (the same for the height);
3. **to float**: ``uint8 / 255`` in float32 (``scale`` is ``1/255``);
4. **normalise**: ``(x - mean) / std`` per channel, in float32; channels in ``channels`` order
   (``"RGB"``; ``"BGR"`` reverses them for models trained on OpenCV-decoded images).

The result is ``[N, 3, H, W]`` float32, C-contiguous: the artifact contract's input.
Pillow is imported only by the functions that need it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._names import received
from .errors import InvalidInput
from .images import MAX_PIXELS_ENV, load_images, pixel_limit
from .records import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, Record

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["INTERPOLATIONS", "Transform", "apply_transform", "preprocess"]

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
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_SIDE:
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
            if isinstance(crop, (int, np.integer)) and not isinstance(crop, bool):
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
    def from_preprocessing(cls, preprocessing: Preprocessing) -> "Transform":
        """The transform an older version (one that recorded only :class:`Preprocessing`) implies:
        its mean, std, scale and channel order, a centre crop of its input size, and a resize of the
        shorter side by torchvision's 256/224 ratio with bilinear interpolation."""
        height, width = preprocessing.input_size
        return cls(resize=int(min(height, width) * RESIZE_RATIO), crop=(height, width), mean=preprocessing.mean,
                   std=preprocessing.std, channels=preprocessing.color, scale=preprocessing.scale)

    def preprocessing(self, input_size: tuple[int, int] | None = None) -> Preprocessing:
        """The (older, coarser) :class:`Preprocessing` record that agrees with this transform, at the
        model's ``input_size`` (default: the crop)."""
        size = input_size or self.crop or (224, 224)
        return Preprocessing(color=self.channels, scale=self.scale, mean=self.mean, std=self.std, input_size=size)

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


def _resampling(name: str) -> int:
    from PIL import Image

    return {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
            "nearest": Image.Resampling.NEAREST}[name]


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(W, H) after resizing the shorter side to ``shorter``: torchvision's ``_compute_resized_output_size``."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shorter * long / short)
    return (shorter, new_long) if width <= height else (new_long, shorter)


def centre_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision's ``center_crop`` on an HWC array: zero-pad if smaller, then crop (round half to even)."""
    h, w = pixels.shape[:2]
    if height > h or width > w:
        top, left = max(height - h, 0) // 2, max(width - w, 0) // 2
        bottom, right = max(height - h, 0) - top, max(width - w, 0) - left
        pixels = np.pad(pixels, ((top, bottom), (left, right), (0, 0)))
        h, w = pixels.shape[:2]
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return pixels[top:top + height, left:left + width]


def _one(image: "Image.Image", transform: Transform, limit: int) -> np.ndarray:
    if image.mode != "RGB":
        raise InvalidInput(f"Expected a decoded RGB image. Received: a PIL image in mode {image.mode!r}",
                           hint="decode images with zoo.images.load_images (or preprocess), which converts every mode")
    if transform.resize is not None:
        size = resized_size(image.width, image.height, transform.resize)
        if size[0] * size[1] > limit:  # a 1 x 10,000 strip would become 256 x 2,560,000
            raise InvalidInput(
                f"Expected an image whose resized size stays within {limit:,} pixels. Received: a {image.width} x "
                f"{image.height} image, which resizing the shorter side to {transform.resize} makes {size[0]} x {size[1]}",
                hint=f"crop the image to a less extreme aspect ratio first (or raise {MAX_PIXELS_ENV})",
            )
        if size != image.size:
            image = image.resize(size, _resampling(transform.interpolation))
    pixels = np.asarray(image, dtype=np.uint8)
    if transform.crop is not None:
        pixels = centre_crop(pixels, *transform.crop)
    if transform.channels == "BGR":
        pixels = pixels[:, :, ::-1]
    x = pixels.astype(np.float32) / np.float32(1 / transform.scale)
    normalised = (x - np.asarray(transform.mean, np.float32)) / np.asarray(transform.std, np.float32)
    return normalised.transpose(2, 0, 1)


def apply_transform(transform: Transform, images: Sequence["Image.Image"], *, max_pixels: int | None = None) -> np.ndarray:
    """The NCHW float32 batch for decoded RGB PIL ``images`` (see the module docstring for each step).

    Raises :class:`~zoo.errors.InvalidInput` for no images, for images of different sizes when the
    transform has no crop to make them one size, and for an image so elongated that resizing its
    shorter side would exceed the pixel limit (:func:`zoo.images.pixel_limit` of ``max_pixels``).
    """
    limit = pixel_limit(max_pixels)
    images = list(images)
    if not images:
        raise InvalidInput("Expected at least one image. Received: none", hint="pass image paths, PIL images or uint8 arrays")
    arrays = [_one(image, transform, limit) for image in images]
    shapes = sorted({a.shape[1:] for a in arrays})
    if len(shapes) > 1:
        raise InvalidInput(f"Expected images of one size after the transform. Received sizes (H, W): {shapes}",
                           hint="record a centre crop in the transform (e.g. --crop 224) so every image fits the model")
    return np.ascontiguousarray(np.stack(arrays), dtype=np.float32)


def preprocess(images: Any, transform: Transform, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``images`` (paths, PIL images, uint8 arrays, or one of them; see :mod:`zoo.images`) and
    apply ``transform``: the batch to give ``predict``."""
    return apply_transform(transform, load_images(images, max_pixels=max_pixels), max_pixels=max_pixels)
