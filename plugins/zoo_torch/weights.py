"""Canonical weights <-> a torch module: torchvision's names and layouts, as float32 numpy arrays.

The architectures in ``archs`` use torchvision's module tree, so canonical names *are* the
module's ``state_dict`` keys and no layout conversion is needed. ``num_batches_tracked`` (an
int64 BN counter that only matters for momentum=None training) is neither written nor required;
a torchvision checkpoint that carries it still loads.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from zoo.errors import InvalidWeights
from zoo.weights import IGNORED_SUFFIX, match_state


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
