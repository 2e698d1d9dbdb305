"""Canonical weights <-> a torch module: torchvision's names and layouts, as float32 numpy arrays.

Also the reader of ``.pth``/``.pt`` files (the plugin's ``read_weights`` hook): ``torch.load(
weights_only=True)``, tensors and plain containers only, never arbitrary unpickling.

The architectures in ``archs`` use torchvision's module tree, so canonical names *are* the
module's ``state_dict`` keys and no layout conversion is needed. ``num_batches_tracked`` (an
int64 BN counter that only matters for momentum=None training) is neither written nor required;
a torchvision checkpoint that carries it still loads.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.errors import InvalidWeights
from zoo.weights import IGNORED_SUFFIX, allowed_formats, match_state, unwrap_checkpoint

HOW = "torch.load(weights_only=True)"


def _canonical_entries(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.endswith(IGNORED_SUFFIX)}


def state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """Every parameter and BN running statistic, float32, C-contiguous, detached from the model."""
    return {k: v.detach().to("cpu", torch.float32).numpy().copy() for k, v in _canonical_entries(model).items()}


def load_state_dict(model: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Copy ``state`` into ``model`` in place, all-or-nothing; InvalidWeights lists every mismatch."""
    expected = _canonical_entries(model)
    arrays = match_state(state, {k: tuple(v.shape) for k, v in expected.items()}, what=type(model).__name__)
    if any(t.is_meta for t in expected.values()):
        raise InvalidWeights("Cannot load weights into a model built on the 'meta' device",
                             hint="build the model without device='meta'")
    with torch.no_grad():
        for name, array in arrays.items():
            target = expected[name]
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(target.dtype))


def read_weights(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: tensors and plain containers only, no code execution."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (unsafe global), RuntimeError (corrupt / TorchScript), EOFError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InvalidWeights(
            f"Refusing {str(path)!r}: {HOW} rejected it ({type(exc).__name__}: {first[:300]})",
            hint=f"only plain tensor state dicts are read, never arbitrary pickles; allowed formats: {allowed_formats()}",
        ) from exc
    state = unwrap_checkpoint(obj, str(path))
    out: dict[str, Any] = {}
    bad = []
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            bad.append(f"{key!r} ({type(value).__name__})")
            continue
        if key.endswith(IGNORED_SUFFIX):
            continue  # a training counter, not part of the canonical format
        t = value.detach().cpu()
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()  # fp16 / bf16 / fp64 checkpoints: canonical is float32
        out[key] = t.numpy()
    if bad:
        raise InvalidWeights(
            f"{str(path)!r} holds values that are not tensors: {', '.join(bad[:10])}" + (" ..." if len(bad) > 10 else ""),
            hint="save model.state_dict(), not the model or an optimizer state",
        )
    return out
