"""What a canonical state is: float32, C-contiguous numpy arrays keyed by torchvision's tensor names."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Union

import numpy as np

from ..errors import InvalidWeights

DTYPE = np.float32
IGNORED_SUFFIX = "num_batches_tracked"  # an int64 BN counter torchvision checkpoints carry; never needed

PathLike = Union[str, "os.PathLike[str]"]
Shapes = Mapping[str, Sequence[int]]


class LoadedWeights(NamedTuple):
    """A canonical state and the sha256 of the file it was read from (unpacks as ``state, sha``)."""

    state: dict[str, np.ndarray]
    sha256: str


def shapes_of(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(int(d) for d in np.shape(v)) for k, v in state.items()}


def as_canonical(state: Mapping[str, Any], *, source: str) -> dict[str, np.ndarray]:
    """float32, C-contiguous numpy arrays keyed by str; anything else is InvalidWeights."""
    out: dict[str, np.ndarray] = {}
    bad = []
    for key, value in state.items():
        if not isinstance(key, str):
            bad.append(f"{key!r} (key is not a string)")
            continue
        if key.endswith(IGNORED_SUFFIX):
            continue
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            bad.append(f"{key} (dtype {arr.dtype})")
            continue
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: refused just below
            out[key] = np.ascontiguousarray(arr, dtype=DTYPE)
    nonfinite = [f"{k} ({int(np.size(v) - np.count_nonzero(np.isfinite(v)))} of {np.size(v)} values)"
                 for k, v in out.items() if not np.isfinite(v).all()]
    if nonfinite:  # bad input, not an export bug: name the tensors (float64 beyond float32's range counts too)
        raise InvalidWeights(
            f"{source} holds NaN or infinite values (in float32) in: {', '.join(nonfinite[:10])}"
            + (f" and {len(nonfinite) - 10} more tensors" if len(nonfinite) > 10 else ""),
            hint="the checkpoint is damaged or diverged in training; export it again from a healthy model")
    if bad:
        raise InvalidWeights(
            f"{source} holds tensors that are not floating point: {', '.join(bad[:10])}" + (" ..." if len(bad) > 10 else ""),
            hint="canonical weights are float32 tensors in torchvision's layout",
        )
    if not out:
        raise InvalidWeights(f"{source} holds no tensors", hint="save model.state_dict()")
    return out


def unwrap_checkpoint(obj: Any, source: str) -> Mapping[Any, Any]:
    """A state dict, possibly wrapped the usual ways: {"state_dict": ...}, {"model": ...}, DataParallel's "module."."""
    if not isinstance(obj, Mapping):
        raise InvalidWeights(
            f"{source!r} holds a {type(obj).__name__}, not a state dict",
            hint="save model.state_dict() (a mapping of names to tensors)",
        )
    for key in ("state_dict", "model_state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            obj = inner
            break
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj
