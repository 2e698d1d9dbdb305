"""The eval transform a model expects: image in, NCHW float32 batch out, recorded on the version.

A :class:`Transform` (a record, defined in :mod:`zoo.records`) is torchvision's ``ImageClassification`` eval preset written down as data::

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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInput
from .images import MAX_PIXELS_ENV, load_images, pixel_limit
from .records import CHANNEL_ORDERS, DEFAULT_SCALE, INTERPOLATIONS, RESIZE_RATIO, Transform

if TYPE_CHECKING:
    from PIL import Image

# Transform is a record (zoo.records: one record of how to feed a model); re-exported here with the image ops.
__all__ = ["CHANNEL_ORDERS", "DEFAULT_SCALE", "INTERPOLATIONS", "RESIZE_RATIO", "Transform", "apply_transform", "preprocess"]

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
