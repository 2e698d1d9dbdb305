"""AlexNet exactly as torchvision defines it; Keras layer names are torchvision's state_dict paths."""
from __future__ import annotations

import keras
from keras import layers

from .layers import AdaptiveAvgPool2D, Init, TorchMaxPool2D, conv2d, dense, flatten_chw


def alexnet(*, num_classes: int = 1000, dropout: float = 0.5, seed: int | None = None) -> keras.Model:
    """torchvision ``AlexNet``: ``features.{0,3,6,8,10}`` convs, ``classifier.{1,4,6}`` dense layers."""
    init = Init(seed)
    images = keras.Input((None, None, 3), name="images")
    x = conv2d(images, 64, 11, stride=4, padding=2, name="features.0", init=init)
    x = layers.ReLU(name="features.1")(x)
    x = TorchMaxPool2D(3, 2, name="features.2")(x)
    x = conv2d(x, 192, 5, padding=2, name="features.3", init=init)
    x = layers.ReLU(name="features.4")(x)
    x = TorchMaxPool2D(3, 2, name="features.5")(x)
    x = conv2d(x, 384, 3, padding=1, name="features.6", init=init)
    x = layers.ReLU(name="features.7")(x)
    x = conv2d(x, 256, 3, padding=1, name="features.8", init=init)
    x = layers.ReLU(name="features.9")(x)
    x = conv2d(x, 256, 3, padding=1, name="features.10", init=init)
    x = layers.ReLU(name="features.11")(x)
    x = TorchMaxPool2D(3, 2, name="features.12")(x)
    x = AdaptiveAvgPool2D((6, 6), name="avgpool")(x)
    x = flatten_chw(x, name="flatten")
    x = layers.Dropout(dropout, name="classifier.0")(x)
    x = dense(x, 4096, activation="relu", name="classifier.1", init=init)
    x = layers.Dropout(dropout, name="classifier.3")(x)
    x = dense(x, 4096, activation="relu", name="classifier.4", init=init)
    logits = dense(x, num_classes, name="classifier.6", init=init)
    return keras.Model(images, logits, name="alexnet")
