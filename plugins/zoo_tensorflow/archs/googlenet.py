"""GoogLeNet (Inception v1) exactly as torchvision defines it, named by state_dict path.

Conv + BatchNorm(eps 1e-3) + ReLU blocks, ceil-mode max pools, the "5x5" branch with a 3x3 kernel
(torchvision's kept quirk). With ``aux_logits`` the model is the training graph: outputs
``[logits, aux1, aux2]``; the exporter keeps only ``logits``.
"""
from __future__ import annotations

import keras
from keras import layers

from zoo.reference import TRANSFORM_INPUT_OFFSET, TRANSFORM_INPUT_SCALE

from .layers import AdaptiveAvgPool2D, Init, TorchMaxPool2D, batch_norm, conv2d, dense, flatten_chw, global_avg_pool

EPS = 1e-3
# name -> (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), in torchvision's order
INCEPTIONS: dict[str, tuple[int, int, int, int, int, int]] = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}


def _basic_conv(x, filters: int, kernel: int, *, name: str, init: Init, stride: int = 1, padding: int = 0):
    """torchvision ``BasicConv2d``: ``<name>.conv`` (no bias), ``<name>.bn``, ReLU."""
    x = conv2d(x, filters, kernel, stride=stride, padding=padding, use_bias=False, name=f"{name}.conv", init=init)
    x = batch_norm(x, eps=EPS, name=f"{name}.bn")
    return layers.ReLU(name=f"{name}.relu")(x)


def _inception(x, name: str, init: Init):
    c1, c3r, c3, c5r, c5, pool = INCEPTIONS[name]
    b1 = _basic_conv(x, c1, 1, name=f"{name}.branch1", init=init)
    b2 = _basic_conv(x, c3r, 1, name=f"{name}.branch2.0", init=init)
    b2 = _basic_conv(b2, c3, 3, padding=1, name=f"{name}.branch2.1", init=init)
    b3 = _basic_conv(x, c5r, 1, name=f"{name}.branch3.0", init=init)
    b3 = _basic_conv(b3, c5, 3, padding=1, name=f"{name}.branch3.1", init=init)  # 3x3, as torchvision
    b4 = TorchMaxPool2D(3, 1, padding=1, ceil_mode=True, name=f"{name}.branch4.0")(x)
    b4 = _basic_conv(b4, pool, 1, name=f"{name}.branch4.1", init=init)
    return layers.Concatenate(axis=-1, name=f"{name}.concat")([b1, b2, b3, b4])


def _aux(x, name: str, num_classes: int, init: Init, dropout: float):
    """torchvision ``InceptionAux``: adaptive pool 4x4, 1x1 conv 128, fc1 2048->1024, dropout, fc2."""
    x = AdaptiveAvgPool2D((4, 4), name=f"{name}.avgpool")(x)
    x = _basic_conv(x, 128, 1, name=f"{name}.conv", init=init)
    x = flatten_chw(x, name=f"{name}.flatten")
    x = dense(x, 1024, activation="relu", name=f"{name}.fc1", init=init)
    x = layers.Dropout(dropout, name=f"{name}.dropout")(x)
    return dense(x, num_classes, name=f"{name}.fc2", init=init)


def googlenet(*, num_classes: int = 1000, aux_logits: bool = True, dropout: float = 0.2, dropout_aux: float = 0.7,
              transform_input: bool = False, seed: int | None = None) -> keras.Model:
    init = Init(seed)
    images = keras.Input((None, None, 3), name="images")
    x = images
    if transform_input:  # torchvision's pretrained weights expect it (zoo.reference); channels-last: per last axis
        x = layers.Rescaling(list(TRANSFORM_INPUT_SCALE), offset=list(TRANSFORM_INPUT_OFFSET), name="transform_input")(x)
    x = _basic_conv(x, 64, 7, stride=2, padding=3, name="conv1", init=init)
    x = TorchMaxPool2D(3, 2, ceil_mode=True, name="maxpool1")(x)
    x = _basic_conv(x, 64, 1, name="conv2", init=init)
    x = _basic_conv(x, 192, 3, padding=1, name="conv3", init=init)
    x = TorchMaxPool2D(3, 2, ceil_mode=True, name="maxpool2")(x)
    x = _inception(x, "inception3a", init)
    x = _inception(x, "inception3b", init)
    x = TorchMaxPool2D(3, 2, ceil_mode=True, name="maxpool3")(x)
    x = _inception(x, "inception4a", init)
    aux1 = _aux(x, "aux1", num_classes, init, dropout_aux) if aux_logits else None
    x = _inception(x, "inception4b", init)
    x = _inception(x, "inception4c", init)
    x = _inception(x, "inception4d", init)
    aux2 = _aux(x, "aux2", num_classes, init, dropout_aux) if aux_logits else None
    x = _inception(x, "inception4e", init)
    x = TorchMaxPool2D(2, 2, ceil_mode=True, name="maxpool4")(x)
    x = _inception(x, "inception5a", init)
    x = _inception(x, "inception5b", init)
    x = global_avg_pool(x, name="avgpool")
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = dense(x, num_classes, name="fc", init=init)
    outputs = [logits, aux1, aux2] if aux_logits else logits
    return keras.Model(images, outputs, name="googlenet")
