"""Canonical weights <-> a torch module: torchvision's names and layouts, as float32 numpy arrays.

The architectures in ``archs`` use torchvision's module tree, so canonical names *are* the
module's ``state_dict`` keys and no layout conversion is needed. ``num_batches_tracked`` (an
int64 BN counter that only matters for momentum=None training) is neither written nor required;
a torchvision checkpoint that carries it still loads.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from registry.errors import InvalidWeights

IGNORED_SUFFIX = "num_batches_tracked"
# torchvision's GoogLeNet checkpoint keeps its auxiliary heads; a model built without them ignores
# those tensors (torchvision's own builder drops them after loading, too).
AUX_PREFIXES = ("aux1.", "aux2.")
_MAX_LISTED = 20


def _canonical_entries(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.endswith(IGNORED_SUFFIX)}


def state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """Every parameter and BN running statistic, float32, C-contiguous, detached from the model."""
    return {k: v.detach().to("cpu", torch.float32).numpy().copy() for k, v in _canonical_entries(model).items()}


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def load_state_dict(model: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Copy ``state`` into ``model`` in place, all-or-nothing; InvalidWeights lists every mismatch."""
    if not isinstance(state, Mapping):
        raise InvalidWeights(f"Expected a mapping of tensor name to array. Received: {type(state).__name__}")
    expected = _canonical_entries(model)
    has_aux = any(k.startswith(AUX_PREFIXES) for k in expected)
    given = {
        k: v for k, v in state.items()
        if not str(k).endswith(IGNORED_SUFFIX) and (has_aux or not str(k).startswith(AUX_PREFIXES))
    }
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(map(str, set(given) - set(expected)))
    arrays: dict[str, np.ndarray] = {}
    misshaped: list[str] = []
    bad_dtype: list[str] = []
    for name in sorted(set(expected) & set(given)):
        try:
            array = np.asarray(given[name])
        except Exception:  # an object that is not array-like
            bad_dtype.append(f"{name} (not an array: {type(given[name]).__name__})")
            continue
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            bad_dtype.append(f"{name} (dtype {array.dtype})")
            continue
        want = tuple(expected[name].shape)
        if tuple(array.shape) != want:
            misshaped.append(f"{name} (expected {want}, got {tuple(array.shape)})")
            continue
        arrays[name] = array
    if missing or unexpected or misshaped or bad_dtype:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_listing(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped {len(misshaped)}: {_listing(misshaped)}")
        if bad_dtype:
            parts.append(f"not numeric {len(bad_dtype)}: {_listing(bad_dtype)}")
        aux_hint = ""
        if has_aux and missing and all(k.startswith(AUX_PREFIXES) for k in missing):
            aux_hint = "; these weights have no auxiliary heads: build googlenet with aux_logits=False"
        raise InvalidWeights(
            f"Weights do not fit {type(model).__name__} "
            f"({len(expected)} tensors expected): " + "; ".join(parts),
            hint="check the architecture and num_classes the weights were saved for" + aux_hint,
        )
    if any(t.is_meta for t in expected.values()):
        raise InvalidWeights("Cannot load weights into a model built on the 'meta' device",
                             hint="build the model without device='meta'")
    with torch.no_grad():
        for name, array in arrays.items():
            target = expected[name]
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(target.dtype))
