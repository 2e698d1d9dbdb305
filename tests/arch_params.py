"""Which architectures the expensive per-architecture tests (small exports, parity) run by default.

Every CI run exercises each builder path once: AlexNet, VGG-16 (the VGG builder), GoogLeNet,
ResNet-18 (basic blocks) and ResNet-50 (bottlenecks). The deeper variants of the same builders
differ only in their rows of :mod:`zoo.architectures` (stage depths, the VGG config), which every
run checks at full size through the parameter-count tests; their exports and parity runs take
20-50 s each on the 2-core CI machine and run under ``-m slow``.
"""
from __future__ import annotations

from collections.abc import Iterable

import pytest

DEEP_VARIANTS = frozenset({"resnet34", "resnet101", "resnet152", "vgg19"})


def slow_if_deep(arch: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if arch in DEEP_VARIANTS else []


def arch_params(archs: Iterable[str]) -> list:
    """``archs`` as pytest params, the deep variants marked ``slow``."""
    return [pytest.param(arch, marks=slow_if_deep(arch), id=arch) for arch in archs]
