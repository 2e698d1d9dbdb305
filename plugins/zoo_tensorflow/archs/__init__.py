"""The reference architectures in Keras 3, one builder per name, with the options each accepts.

Every builder writes torchvision's architecture (not ``keras.applications``) channels-last, with
layers named after torchvision's state_dict module paths, so that canonical weights map
mechanically (see ../weights.py). Importing this module imports Keras.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import keras

from zoo.architectures import RESNET_PLANS, VGG
from zoo.errors import InvalidInput, NotFound

from .alexnet import alexnet
from .googlenet import googlenet
from .resnet import resnet
from .vgg import vgg

BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "alexnet": alexnet,
    **{name: partial(vgg, name) for name in VGG},
    "googlenet": googlenet,
    **{name: partial(resnet, name) for name in RESNET_PLANS},
}
# Options beyond num_classes that each builder accepts (``input_size`` is accepted everywhere
# and ignored: the models take any spatial size).
OPTIONS: dict[str, frozenset[str]] = {arch: frozenset({"seed"}) for arch in BUILDERS}
OPTIONS["googlenet"] = frozenset({"seed", "aux_logits", "transform_input"})
COMMON = frozenset({"input_size"})


def build(arch: str, *, num_classes: int = 1000, **options: Any) -> keras.Model:
    """Build ``arch`` (randomly initialised; ``seed`` makes it reproducible)."""
    if arch not in BUILDERS:
        raise NotFound(
            f"The TensorFlow plugin does not build {arch!r}. It builds: {', '.join(BUILDERS)}",
            hint="`zoo archs` lists every architecture of every plugin",
        )
    unknown = sorted(set(options) - OPTIONS[arch] - COMMON)
    if unknown:
        allowed = ", ".join(sorted(OPTIONS[arch] | COMMON | {"num_classes"}))
        raise InvalidInput(
            f"Unknown option(s) for {arch!r}: {', '.join(unknown)}. Received: {options!r}",
            hint=f"{arch} accepts: {allowed}",
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise InvalidInput(f"Expected num_classes to be an int >= 1. Received: {num_classes!r}")
    input_size = options.pop("input_size", None)
    if input_size is not None and (not isinstance(input_size, int) or input_size < 32):
        raise InvalidInput(f"Expected input_size to be an int >= 32. Received: {input_size!r}")
    return BUILDERS[arch](num_classes=num_classes, **options)


__all__ = ["BUILDERS", "OPTIONS", "build"]
