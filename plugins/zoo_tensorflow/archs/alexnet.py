"""AlexNet exactly as torchvision defines it; Keras layer names are torchvision's state_dict paths."""
from __future__ import annotations

import keras

from zoo.architectures import ALEXNET

from ._plain import plain_cnn


def alexnet(*, num_classes: int = 1000, dropout: float = 0.5, seed: int | None = None) -> keras.Model:
    """torchvision ``AlexNet``: ``features.{0,3,6,8,10}`` convs, ``classifier.{1,4,6}`` dense layers."""
    return plain_cnn(ALEXNET, name="alexnet", num_classes=num_classes, dropout=dropout, seed=seed)
