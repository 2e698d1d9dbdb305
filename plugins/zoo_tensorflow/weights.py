"""Canonical weights <-> a Keras model of ``archs``: torchvision's names and layouts, float32 numpy.

Each Keras layer is named after its torchvision module path, so a canonical name is
``<layer name>.<torch parameter>``; the only work is layout, done by the converters below and
nowhere else (a test that breaks one of them must see parity fail):

- Conv2D kernel: Keras HWIO <-> torch OIHW.
- Dense kernel: Keras (in, out) <-> torch (out, in).
- The first dense layer of AlexNet/VGG (and GoogLeNet's aux ``fc1``) consumes a flatten of the
  feature map. The Keras graph flattens in torch's C,H,W order (``archs.layers.flatten_chw``
  permutes to channels-first first), so its rows need no permutation: the plain dense transpose
  is the whole conversion. (Flattening H,W,C instead would need the rows permuted here.)
- BatchNormalization: gamma/beta/moving_mean/moving_variance <-> weight/bias/running_mean/running_var.

``num_batches_tracked`` is neither written nor required (torchvision checkpoints carry it).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import InvalidWeights
from zoo.weights import match_state

Convert = Callable[[np.ndarray], np.ndarray]


def conv_to_canonical(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW


def conv_from_canonical(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def dense_to_canonical(kernel: np.ndarray) -> np.ndarray:
    return kernel.T  # (in, out) -> (out, in); rows already C,H,W-ordered (see module docstring)


def dense_from_canonical(weight: np.ndarray) -> np.ndarray:
    return weight.T


def same(array: np.ndarray) -> np.ndarray:
    return array


@dataclass(frozen=True)
class Entry:
    """One canonical tensor: the Keras variable holding it and the two layout conversions."""

    name: str
    variable: Any
    to_canonical: Convert
    from_canonical: Convert

    @property
    def shape(self) -> tuple[int, ...]:
        """The canonical shape (what a torchvision checkpoint holds)."""
        return tuple(self.to_canonical(np.broadcast_to(np.float32(0), tuple(self.variable.shape))).shape)  # no memory


def entries(model: Any) -> dict[str, Entry]:
    """Canonical name -> entry, for every weight of ``model``, in layer order."""
    from keras import layers

    out: dict[str, Entry] = {}

    def add(name: str, variable: Any, to: Convert, back: Convert) -> None:
        out[name] = Entry(name, variable, to, back)

    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            add(f"{layer.name}.weight", layer.kernel, conv_to_canonical, conv_from_canonical)
            if layer.use_bias:
                add(f"{layer.name}.bias", layer.bias, same, same)
        elif isinstance(layer, layers.Dense):
            add(f"{layer.name}.weight", layer.kernel, dense_to_canonical, dense_from_canonical)
            if layer.use_bias:
                add(f"{layer.name}.bias", layer.bias, same, same)
        elif isinstance(layer, layers.BatchNormalization):
            add(f"{layer.name}.weight", layer.gamma, same, same)
            add(f"{layer.name}.bias", layer.beta, same, same)
            add(f"{layer.name}.running_mean", layer.moving_mean, same, same)
            add(f"{layer.name}.running_var", layer.moving_variance, same, same)
        elif layer.weights:
            raise InvalidWeights(
                f"Layer {layer.name!r} ({type(layer).__name__}) has weights with no canonical mapping",
                hint="only models built by zoo_tensorflow.archs can be converted",
            )
    return out


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """Every weight and BN running statistic in torchvision's names and layouts (float32, contiguous)."""
    return {name: np.ascontiguousarray(e.to_canonical(np.asarray(e.variable.numpy(), dtype=np.float32)))
            for name, e in entries(model).items()}


def load_state_dict(model: Any, state: Mapping[str, np.ndarray]) -> None:
    """Copy canonical ``state`` into ``model``, all-or-nothing; InvalidWeights lists every mismatch."""
    expected = entries(model)
    arrays = match_state(state, {k: tuple(e.shape) for k, e in expected.items()}, what=model.name)
    for name, array in arrays.items():
        entry = expected[name]
        entry.variable.assign(np.ascontiguousarray(entry.from_canonical(array.astype(np.float32, copy=False))))


def read_keras(path: Path) -> dict[str, np.ndarray]:
    """A ``.keras`` archive loaded with ``safe_mode=True`` (Lambda bytecode refused), as canonical weights."""
    import keras

    model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    return state_dict(model)
