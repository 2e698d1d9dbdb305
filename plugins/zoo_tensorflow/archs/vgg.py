"""VGG16 / VGG19 (no BatchNorm) exactly as torchvision defines them, named by state_dict path."""
from __future__ import annotations

import keras
from keras import layers

from .layers import AdaptiveAvgPool2D, Init, TorchMaxPool2D, conv2d, dense, flatten_chw

# torchvision's configurations "D" (VGG16) and "E" (VGG19); "M" is a 2x2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg(arch: str, *, num_classes: int = 1000, dropout: float = 0.5, seed: int | None = None) -> keras.Model:
    """``features.<i>`` follows torch's Sequential index (conv, relu, ..., pool); ``classifier.{0,3,6}``."""
    init = Init(seed)
    images = keras.Input((None, None, 3), name="images")
    x, index = images, 0
    for v in CONFIGS[arch]:
        if v == "M":
            x = TorchMaxPool2D(2, 2, name=f"features.{index}")(x)
            index += 1
        else:
            x = conv2d(x, int(v), 3, padding=1, name=f"features.{index}", init=init)
            x = layers.ReLU(name=f"features.{index + 1}")(x)
            index += 2
    x = AdaptiveAvgPool2D((7, 7), name="avgpool")(x)
    x = flatten_chw(x, name="flatten")
    x = dense(x, 4096, activation="relu", name="classifier.0", init=init)
    x = layers.Dropout(dropout, name="classifier.2")(x)
    x = dense(x, 4096, activation="relu", name="classifier.3", init=init)
    x = layers.Dropout(dropout, name="classifier.5")(x)
    logits = dense(x, num_classes, name="classifier.6", init=init)
    return keras.Model(images, logits, name=arch)
