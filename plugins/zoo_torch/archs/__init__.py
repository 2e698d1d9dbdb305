"""Architecture builders: one file per family, one table of names, one ``build`` entry point.

Options are validated here, not in each builder, so every architecture rejects an unknown
option with the same message. Imports torch: only the plugin's methods import this package.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from zoo.architectures import ARCHITECTURES, RESNET_PLANS, VGG
from zoo.errors import InvalidInput, NotFound

from .alexnet import AlexNet
from .googlenet import GoogLeNet
from .resnet import resnet
from .vgg import vgg


@dataclass(frozen=True)
class Builder:
    make: Callable[..., nn.Module]
    options: Mapping[str, type]  # architecture-specific keyword options and their types


_DROPOUT = {"dropout": float}
BUILDERS: dict[str, Builder] = {
    "alexnet": Builder(AlexNet, _DROPOUT),
    **{name: Builder(partial(vgg, name), _DROPOUT) for name in VGG},
    "googlenet": Builder(GoogLeNet, {"aux_logits": bool, "dropout": float, "dropout_aux": float, "transform_input": bool}),
    **{name: Builder(partial(resnet, name), {}) for name in RESNET_PLANS},
}
assert tuple(BUILDERS) == ARCHITECTURES, "BUILDERS must list zoo.architectures.ARCHITECTURES, in order"

COMMON_OPTIONS = ("seed", "device")


def _check_option(arch: str, key: str, value: Any, kind: type) -> None:
    ok = isinstance(value, bool) if kind is bool else (
        isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok:
        raise InvalidInput(f"Option {key!r} of {arch!r} must be a {kind.__name__}. Received: {value!r}")
    if key.startswith("dropout") and not 0.0 <= float(value) < 1.0:
        raise InvalidInput(f"Option {key!r} must be in [0, 1). Received: {value!r}")


def build(arch: str, *, num_classes: int = 1000, seed: int | None = None, device: str | None = None,
          **options: Any) -> nn.Module:
    """Build ``arch`` in eval mode. ``seed`` makes the init deterministic (the global RNG is untouched).

    ``device="meta"`` allocates no memory and skips the init: enough to count parameters of
    full-size models in milliseconds.
    """
    if arch not in BUILDERS:
        raise NotFound(
            f"PyTorch plugin has no architecture {arch!r}. Known: {', '.join(BUILDERS)}",
            hint="`zoo archs` lists the architectures of every plugin",
        )
    builder = BUILDERS[arch]
    unknown = sorted(set(options) - set(builder.options))
    if unknown:
        allowed = ", ".join([*builder.options, *COMMON_OPTIONS, "num_classes"])
        raise InvalidInput(
            f"Unknown option(s) for {arch!r}: {', '.join(map(repr, unknown))}. Allowed: {allowed}",
            hint="remove the option, or check its spelling",
        )
    for key, value in options.items():
        _check_option(arch, key, value, builder.options[key])
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidInput(f"Expected num_classes to be an int >= 1. Received: {num_classes!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInput(f"Expected seed to be an int or None. Received: {seed!r}")

    # Fork only when seeded: an unseeded build must keep advancing the global RNG (two builds differ).
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        if device is not None:
            try:
                with torch.device(device):
                    model = builder.make(num_classes=num_classes, **options)
            except RuntimeError as exc:
                raise InvalidInput(f"Cannot build on device {device!r}: {exc}", hint="use 'cpu' or 'meta'") from exc
        else:
            model = builder.make(num_classes=num_classes, **options)
    return model.eval()
