"""Decoding images for a model: file paths, encoded bytes, PIL images or uint8 arrays -> RGB PIL images.

Every input becomes an 8-bit RGB :class:`PIL.Image.Image`, ready for :func:`zoo.transforms.apply_transform`.
What each input may be:

- a path (``str`` / ``os.PathLike``) or encoded bytes, in one of :data:`FORMATS` (others, such as
  EPS, whose Pillow decoder runs Ghostscript, are refused). A missing file is
  :class:`~zoo.errors.NotFound` (exit 3); an unreadable, truncated or non-image file is
  :class:`~zoo.errors.InvalidInput` (exit 2). Animated files give their first frame. The EXIF
  orientation is applied (what an image viewer shows; torchvision's folder loader ignores it).
- a :class:`PIL.Image.Image`, in any mode below.
- a ``uint8`` numpy array: ``HxW`` (gray), ``HxWx1``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA).

Modes: RGB as is; ``1``, ``L``, ``CMYK``, ``YCbCr``, ``RGBX`` and palette images convert with
Pillow; **alpha is composited on white** (``RGBA``, ``LA``, ``PA``, palettes with transparency, 4-channel
arrays), which is how the image looks on a page; transparent pixels are never their hidden colour.
16-bit gray (``I;16*``, and ``I``, which Pillow uses for 16-bit data) maps 0..65535 to 0..255 as
``round(v * 255 / 65535)``; ``I`` values outside 0..65535 are refused. Float ``F`` images must hold
values in [0, 1]. Other modes are refused with the mode named.

Decompression bombs: a file whose header declares more than :func:`pixel_limit` pixels (default
Pillow's 89,478,485, about 9459 x 9459; ``ZOO_MAX_IMAGE_PIXELS`` or ``max_pixels=`` raise it) is
refused before its pixels are decoded. Pillow's own text-chunk limits apply too. Raising the limit
above Pillow's ``Image.MAX_IMAGE_PIXELS`` raises that process-wide setting to match.
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._names import received
from .errors import InvalidInput, NotFound, ZooError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_MAX_PIXELS", "FORMATS", "MAX_PIXELS_ENV", "load_image", "load_images", "pixel_limit"]

MAX_PIXELS_ENV = "ZOO_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS: 1 GiB of 32-bit pixels / 4 / 3
# Formats whose Pillow decoders are common and self-contained (JPEG includes multi-picture MPO files);
# EPS (Ghostscript), PSD and the other rarely used decoders are refused.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM")
_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_PLAIN_MODES = ("1", "L", "CMYK", "YCbCr", "RGBX")


def pixel_limit(value: int | None = None) -> int:
    """The pixel limit in force: ``value`` if given, else ``$ZOO_MAX_IMAGE_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    source = "max_pixels"
    if value is None:
        env = os.environ.get(MAX_PIXELS_ENV)
        if not env:
            return DEFAULT_MAX_PIXELS
        source = MAX_PIXELS_ENV
        try:
            value = int(env.replace("_", ""))
        except ValueError:
            raise InvalidInput(f"Expected {MAX_PIXELS_ENV} to be a whole number of pixels. Received: {received(env)}",
                               hint=f"e.g. {MAX_PIXELS_ENV}=200000000, or unset it for {DEFAULT_MAX_PIXELS:,}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInput(f"Expected {source} to be a positive number of pixels. Received: {received(value)}",
                           hint=f"the default is {DEFAULT_MAX_PIXELS:,}")
    return int(value)


def _bomb(source: str, size: tuple[int, int], limit: int) -> InvalidInput:
    w, h = size
    return InvalidInput(
        f"Expected an image of at most {limit:,} pixels. Received: {source}, {w} x {h} = {w * h:,} pixels",
        hint=f"a decompression-bomb guard: if you trust the file, raise the limit with {MAX_PIXELS_ENV}=N or max_pixels=N",
    )


def _undecodable(source: str, exc: BaseException) -> InvalidInput:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        why = "not an image in a format zoo decodes"
    else:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        why = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return InvalidInput(
        f"Expected an image file in one of {', '.join(FORMATS)}. Received: {source} ({why})",
        hint="the file is not an image, is truncated or corrupt, or is in an unsupported format: re-save it as PNG or JPEG",
    )


def _open_checked(fp: Any, source: str, limit: int) -> "Image.Image":
    """Open (header only), refuse bombs, then decode the pixels. Every decoder failure is InvalidInput."""
    from PIL import Image, ImageOps

    Image.init()  # register every decoder, so that each name in FORMATS resolves (idempotent)
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit  # Pillow refuses above 2x its own limit, whatever ours says
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit, checked below, decides
            image = Image.open(fp, formats=FORMATS)
            if image.width * image.height > limit:
                raise _bomb(source, image.size, limit)
            image.load()
    except ZooError:
        raise
    except Image.DecompressionBombError:  # above twice Pillow's own limit: refused while reading the header
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise InvalidInput(f"Expected an image of at most {limit:,} pixels. "
                           f"Received: {source}, an image of more than {pillow_limit:,} pixels",
                           hint=f"a decompression-bomb guard: if you trust the file, raise the limit with {MAX_PIXELS_ENV}=N "
                                "or max_pixels=N") from None
    except Exception as exc:  # Pillow's decoders raise OSError, ValueError, SyntaxError, EOFError, struct.error...
        raise _undecodable(source, exc) from None
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # a malformed EXIF block: the pixels decoded, keep them as stored
        return image


def _read_file(path: Path, limit: int) -> "Image.Image":
    source = str(path)
    try:
        with open(path, "rb") as f:
            return _open_checked(f, source, limit)
    except FileNotFoundError:
        raise NotFound(f"Expected an existing image file. Received: {source} (no such file)",
                       hint="check the path; relative paths are resolved from the current folder") from None
    except IsADirectoryError:
        raise InvalidInput(f"Expected an image file. Received: {source} (a folder)",
                           hint="pass the image files inside it, e.g. folder/*.jpg") from None
    except OSError as exc:  # permission denied, I/O error: before Pillow saw the bytes
        raise InvalidInput(f"Expected a readable image file. Received: {source} ({exc.strerror or exc})",
                           hint="check the file's permissions") from None


def _composite_on_white(image: "Image.Image") -> "Image.Image":
    from PIL import Image

    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")


def _gray_to_rgb(gray: np.ndarray) -> "Image.Image":
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), mode="L").convert("RGB")


def _sixteen_bit(image: "Image.Image", source: str) -> "Image.Image":
    values = np.asarray(image)
    if values.size and (int(values.min()) < 0 or int(values.max()) > 65535):
        raise InvalidInput(
            f"Expected 16-bit pixel values (0..65535) in a mode {image.mode!r} image. "
            f"Received: {source} with values {int(values.min())}..{int(values.max())}",
            hint="convert the image to 8-bit (e.g. PNG RGB) before classifying it",
        )
    return _gray_to_rgb((values.astype(np.uint32) * 255 + 32767) // 65535)


def _float_image(image: "Image.Image", source: str) -> "Image.Image":
    values = np.asarray(image, dtype=np.float64)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
        finite = values[np.isfinite(values)]
        span = f"{finite.min():g}..{finite.max():g}" if finite.size else "no finite values"
        raise InvalidInput(
            f"Expected a float (mode 'F') image with values in [0, 1]. Received: {source} with {span}"
            + ("" if np.isfinite(values).all() else " and NaN/inf"),
            hint="scale it to [0, 1], or convert it to 8-bit, before classifying it",
        )
    return _gray_to_rgb(np.rint(values * 255))


def _to_rgb(image: "Image.Image", source: str) -> "Image.Image":
    """An 8-bit RGB copy of ``image`` (see the module docstring for each mode)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _PLAIN_MODES:
        return image.convert("RGB")
    if mode == "P":
        return _composite_on_white(image) if "transparency" in image.info else image.convert("RGB")
    if mode in _ALPHA_MODES:
        return _composite_on_white(image)
    if mode == "I" or mode.startswith("I;16"):
        return _sixteen_bit(image, source)
    if mode == "F":
        return _float_image(image, source)
    raise InvalidInput(f"Expected an image in a colour mode zoo converts to RGB. Received: {source} in mode {mode!r}",
                       hint="convert it first, e.g. PIL's image.convert('RGB'), or re-save it as an RGB PNG or JPEG")


def _array_error(what: str, array: np.ndarray, source: str, hint: str) -> InvalidInput:
    return InvalidInput(f"Expected {what}. Received: {source}, a {array.dtype} array of shape {tuple(array.shape)}", hint=hint)


def _from_array(array: np.ndarray, source: str) -> "Image.Image":
    from PIL import Image

    shape_hint = "an image array is HxW (gray) or HxWxC with C = 1, 3 (RGB) or 4 (RGBA)"
    if array.dtype != np.uint8:
        if array.dtype == np.uint16:
            hint = "scale 16-bit pixels to 8 bits: (array // 257).astype(np.uint8)"
        elif np.issubdtype(array.dtype, np.floating):
            hint = ("a prepared, normalised NCHW batch goes to predict(); float pixels in [0, 1] convert with "
                    "(array * 255).round().astype(np.uint8)")
        else:
            hint = "convert the pixels with array.astype(np.uint8) if they are 0..255"
        raise _array_error("uint8 pixels", array, source, hint)
    if array.ndim == 4:
        raise _array_error("one image (HxWxC), not a batch", array, source,
                           "pass a list of images; a prepared NCHW float batch goes to predict()")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        raise _array_error("channels last (HxWxC)", array, source, "channels-first arrays: array.transpose(1, 2, 0)")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise _array_error("an HxW or HxWxC image array", array, source, shape_hint)
    if 0 in array.shape:
        raise _array_error("a non-empty image", array, source, shape_hint)
    array = np.ascontiguousarray(array)
    if array.ndim == 2 or array.shape[2] == 1:
        return _gray_to_rgb(array.reshape(array.shape[:2]))
    if array.shape[2] == 4:
        return _composite_on_white(Image.fromarray(array, mode="RGBA"))
    return Image.fromarray(array, mode="RGB")


def _describe(image: Any) -> str:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return "encoded image bytes"
    if isinstance(image, np.ndarray):
        return "an array"
    if type(image).__module__.startswith("PIL."):
        return "a PIL image"
    return f"a {type(image).__name__}"


def load_image(image: Any, *, max_pixels: int | None = None, source: str | None = None) -> "Image.Image":
    """One input (path, encoded bytes, PIL image, uint8 array) as an 8-bit RGB PIL image.

    ``max_pixels`` bounds files and bytes (see :func:`pixel_limit`); ``source`` names the input in errors.
    """
    from PIL import Image

    limit = pixel_limit(max_pixels)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        return _to_rgb(_read_file(path, limit), source or str(path))
    name = source or _describe(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        return _to_rgb(_open_checked(io.BytesIO(data), f"{name} ({len(data):,} bytes)", limit), name)
    if isinstance(image, Image.Image):
        try:
            image.load()
        except Exception as exc:  # a lazily opened PIL image whose file is broken
            raise _undecodable(name, exc) from None
        return _to_rgb(image, name)
    if isinstance(image, np.ndarray):
        return _from_array(image, name)
    raise InvalidInput(f"Expected an image path, encoded bytes, a PIL image or a uint8 array. Received: {received(image)}",
                       hint="e.g. model.classify('cat.jpg') or model.classify([PIL.Image.open('cat.jpg')])")


def load_images(images: Any, *, max_pixels: int | None = None) -> "list[Image.Image]":
    """One input or an iterable of them (a list of paths, PIL images, arrays) as a list of RGB images.

    A single ``str``/path, bytes, PIL image or array is one image; errors name the failing input.
    """
    from PIL import Image

    single = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)
    if isinstance(images, single):
        return [load_image(images, max_pixels=max_pixels)]
    if not isinstance(images, Iterable):
        raise InvalidInput(f"Expected an image or a list of images. Received: {received(images)}",
                           hint="pass paths, PIL images or uint8 arrays")
    items = list(images)
    out = []
    for index, item in enumerate(items):
        name = None if isinstance(item, (str, os.PathLike)) else f"image #{index} ({_describe(item)})"
        out.append(load_image(item, max_pixels=max_pixels, source=name))
    return out
