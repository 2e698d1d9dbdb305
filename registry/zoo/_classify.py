"""Images in, class names out, for a registered version: the transform it records, decode, run, top-k.

:func:`transform_for` is the transform a version is fed with: the one recorded on it (a version
registered before transforms were recorded reads its old ``preprocessing`` as one), else (an external
model that records none) torchvision's eval transform at the graph's fixed input size, or at 224
when the graph leaves H and W symbolic.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .labels import Labels, Prediction, top_k
from .records import ModelVersion, TensorSpec
from .transforms import Transform, preprocess

__all__ = ["Classified", "classify_images", "transform_for"]

DEFAULT_INPUT_SIZE = 224


class Predictor(Protocol):
    """What :func:`classify_images` runs: :class:`zoo.runtime.InferenceModel` is one (the runtime imports
    this module, never the other way round)."""

    @property
    def version(self) -> ModelVersion | None: ...

    @property
    def input_spec(self) -> TensorSpec: ...

    def predict(self, images: Any) -> np.ndarray: ...


def transform_for(version: ModelVersion | None, input_spec: TensorSpec | None = None) -> Transform:
    """The transform to feed ``version`` with (see the module docstring for the fallbacks)."""
    if version is not None and version.transform is not None:
        return version.transform
    size = (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
    shape = input_spec.shape if input_spec is not None else ()
    if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
        size = (int(shape[2]), int(shape[3]))  # type: ignore[arg-type]
    return Transform.for_input_size(*size)


@dataclass(frozen=True)
class Classified:
    """What :func:`classify_images` found: the logits, and each image's top-k (label None without labels)."""

    logits: np.ndarray
    top: list[list[Prediction]]
    transform: Transform
    labels: Labels | None


def classify_images(model: Predictor, images: Any, *, k: int = 5, max_pixels: int | None = None) -> Classified:
    """Decode ``images`` (paths, PIL images, uint8 arrays; see :mod:`zoo.images`), apply the version's
    transform, run ``model`` and take the top ``k`` classes of each, named by the version's labels."""
    version = model.version
    transform = transform_for(version, model.input_spec)
    batch = preprocess(images, transform, max_pixels=max_pixels)
    logits = model.predict(batch)
    labels = version.labels if version is not None else None
    return Classified(logits=logits, top=top_k(logits, labels, k=k), transform=transform, labels=labels)


def image_names(images: Sequence[Any]) -> list[str]:
    """A display name per image: the path as given, else ``#i``."""
    import os

    return [os.fspath(im) if isinstance(im, (str, os.PathLike)) else f"#{i}" for i, im in enumerate(images)]
