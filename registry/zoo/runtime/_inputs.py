"""Input checks: a batch is explained before ONNX Runtime sees it, never silently mangled.

Invariant: :func:`check_input` returns a C-contiguous array of the signature's dtype and shape
class, or raises :class:`~zoo.errors.InvalidInput` naming what is wrong and the fix. Lossless float
casts warn (they cost a copy per call); integer pixels are refused (casting them gives garbage
logits); NaN/Inf warn with their count (the other samples' logits stay valid).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..records import ModelVersion, TensorSpec


def _fmt_shape(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _preprocess_hint(version: ModelVersion | None) -> str:
    pre = version.transform if version is not None else None
    if pre is None:
        return "convert with x.astype(np.float32) and normalise the way the model was trained"
    return (f"convert and normalise: x.astype(np.float32) * {pre.scale:.6g}, then per channel subtract "
            f"mean {tuple(pre.mean)} and divide by std {tuple(pre.std)}")


def check_input(images: Any, spec: TensorSpec, *, version: ModelVersion | None = None, stacklevel: int = 2) -> np.ndarray:
    """``images`` as a C-contiguous array of ``spec``'s dtype, or InvalidInput saying what is wrong and the fix.

    Runs before ORT sees the batch, so that a wrong layout is an explanation, not an ORT stack trace.
    ``stacklevel`` points warnings at the caller's line (as in ``warnings.warn``).
    """
    expected = tuple(spec.shape)
    if not isinstance(images, np.ndarray):
        try:
            images = np.asarray(images)
        except Exception as exc:
            raise InvalidInput(f"Expected a numpy array of images. Received: {type(images).__name__}",
                               hint=f"pass np.asarray(batch) with shape {_fmt_shape(expected)}") from exc
    shape = tuple(images.shape)
    try:
        want: np.dtype | None = np.dtype(spec.dtype)
    except TypeError:  # bfloat16 and friends: let ORT judge
        want = None

    _check_layout(shape, expected, images.ndim)  # layout and rank first: a wrong layout usually has the right dtype

    images = _check_dtype(images, want, version, stacklevel=stacklevel + 1)
    _warn_non_finite(images, stacklevel=stacklevel + 1)
    return np.ascontiguousarray(images)


def _check_layout(shape: tuple[int, ...], expected: tuple[Any, ...], ndim: int) -> None:
    """Rank, NCHW vs NHWC, an empty batch, then each fixed dim: InvalidInput naming the fix."""
    rank = len(expected)
    channels = expected[1] if rank == 4 and isinstance(expected[1], int) else None
    if ndim != rank:
        if rank == 4 and ndim == 3 and channels is not None and shape[0] == channels:
            raise InvalidInput(f"Expected a batch {_fmt_shape(expected)} (NCHW). Received one image of shape {shape}",
                               hint="add the batch dimension: x[None] (or np.expand_dims(x, 0))")
        if rank == 4 and ndim == 3 and channels is not None and shape[-1] == channels:
            raise InvalidInput(f"Expected a batch {_fmt_shape(expected)} (NCHW). Received one HWC image of shape {shape}",
                               hint="transpose to CHW and add the batch dimension: x.transpose(2, 0, 1)[None]")
        raise InvalidInput(f"Expected a {rank}-d array {_fmt_shape(expected)}. Received shape {shape} ({ndim}-d)",
                           hint="see `zoo show REF` for the input signature")
    if rank == 4 and channels is not None and shape[1] != channels and shape[-1] == channels:
        raise InvalidInput(
            f"Expected {_fmt_shape(expected)} (NCHW). Received {shape}: looks like NHWC (channels last)",
            hint="transpose with x.transpose(0, 3, 1, 2)",
        )
    if shape and shape[0] == 0:
        raise InvalidInput(f"Received an empty batch: shape {shape}", hint="give at least one image")
    for axis, (want_dim, got) in enumerate(zip(expected, shape, strict=True)):
        if not isinstance(want_dim, int) or want_dim == got:
            continue
        if rank == 4 and axis in (2, 3) and isinstance(expected[2], int) and isinstance(expected[3], int):
            h, w = expected[2], expected[3]
            raise InvalidInput(
                f"This artifact has a fixed input size H x W = {h} x {w}. Received {shape[2]} x {shape[3]} (shape {shape})",
                hint=f"resize the images to {h}x{w}, or re-export with --input-size {shape[2]}",
            )
        what = {0: "batch size", 1: "channels"}.get(axis, f"size {want_dim} at axis {axis}")
        raise InvalidInput(f"Expected {what} {want_dim} at axis {axis} of {_fmt_shape(expected)}. Received shape {shape}",
                           hint="see `zoo show REF` for the input signature")


def _check_dtype(images: np.ndarray, want: np.dtype | None, version: ModelVersion | None, *, stacklevel: int) -> np.ndarray:
    """Other floats are cast with a warning; integers (un-normalised pixels) and the rest are refused."""
    if want is None or images.dtype == want:
        return images
    if images.dtype.kind == "f" and want.kind == "f":
        warnings.warn(
            f"Model expects {want.name} input; received {images.dtype.name}: casting "
            f"(a copy on every call; pass x.astype(np.{want.name}) to skip it)",
            UserWarning, stacklevel=stacklevel,
        )
    else:
        hint = _preprocess_hint(version) if images.dtype.kind in "ui" else f"x.astype(np.{want.name})"
        raise InvalidInput(f"Expected {want.name} images. Received dtype {images.dtype.name}", hint=hint)
    images = images.astype(want)
    return images


def _warn_non_finite(images: np.ndarray, *, stacklevel: int) -> None:
    """NaN/Inf is a RuntimeWarning naming the count, not an error: the other samples' logits are valid."""
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        nan = int(np.isnan(images).sum())
        inf = int(np.isinf(images).sum())
        bad = int((~np.isfinite(images.reshape(images.shape[0], -1))).any(axis=1).sum()) if images.ndim else 1
        warnings.warn(
            f"Input batch contains {nan} NaN and {inf} Inf value(s), in {bad} of {images.shape[0] if images.ndim else 1} "
            f"sample(s): their logits will be NaN or meaningless",
            RuntimeWarning, stacklevel=stacklevel,
        )


__all__ = ["check_input"]
