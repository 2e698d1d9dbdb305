"""VGG16 / VGG19 (no BatchNorm) exactly as torchvision defines them, named by state_dict path."""
from __future__ import annotations

import keras

from zoo.architectures import VGG

from ._plain import plain_cnn


def vgg(arch: str, *, num_classes: int = 1000, dropout: float = 0.5, seed: int | None = None) -> keras.Model:
    """``features.<i>`` follows torch's Sequential index (conv, relu, ..., pool); ``classifier.{0,3,6}``."""
    return plain_cnn(VGG[arch], name=arch, num_classes=num_classes, dropout=dropout, seed=seed)
