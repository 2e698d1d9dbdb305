"""GoogLeNet (Inception v1) exactly as torchvision defines it, named by state_dict path.

Conv + BatchNorm(eps 1e-3) + ReLU blocks, ceil-mode max pools, the "5x5" branch with a 3x3 kernel
(torchvision's kept quirk). With ``aux_logits`` the model is the training graph: outputs
``[logits, aux1, aux2]``; the exporter keeps only ``logits``.
"""
from __future__ import annotations

import keras
from keras import layers

from zoo import architectures as tables

from .layers import AdaptiveAvgPool2D, Init, TorchMaxPool2D, batch_norm, conv2d, dense, flatten_chw, global_avg_pool


def _basic_conv(x, filters: int, kernel: int, *, name: str, init: Init, stride: int = 1, padding: int = 0):
    """torchvision ``BasicConv2d``: ``<name>.conv`` (no bias), ``<name>.bn``, ReLU."""
    x = conv2d(x, filters, kernel, stride=stride, padding=padding, use_bias=False, name=f"{name}.conv", init=init)
    x = batch_norm(x, eps=tables.GOOGLENET_BN_EPS, name=f"{name}.bn")
    return layers.ReLU(name=f"{name}.relu")(x)


def _inception(x, name: str, init: Init):
    w, k5 = tables.INCEPTION_WIDTHS[name], tables.INCEPTION_5X5_KERNEL
    b1 = _basic_conv(x, w.ch1x1, 1, name=f"{name}.branch1", init=init)
    b2 = _basic_conv(x, w.ch3x3red, 1, name=f"{name}.branch2.0", init=init)
    b2 = _basic_conv(b2, w.ch3x3, 3, padding=1, name=f"{name}.branch2.1", init=init)
    b3 = _basic_conv(x, w.ch5x5red, 1, name=f"{name}.branch3.0", init=init)
    b3 = _basic_conv(b3, w.ch5x5, k5, padding=k5 // 2, name=f"{name}.branch3.1", init=init)
    b4 = TorchMaxPool2D(3, 1, padding=1, ceil_mode=True, name=f"{name}.branch4.0")(x)
    b4 = _basic_conv(b4, w.pool_proj, 1, name=f"{name}.branch4.1", init=init)
    return layers.Concatenate(axis=-1, name=f"{name}.concat")([b1, b2, b3, b4])


def _aux(x, name: str, num_classes: int, init: Init, dropout: float):
    """torchvision ``InceptionAux`` (:data:`zoo.architectures.GOOGLENET_AUX_HEAD`): adaptive pool, 1x1 conv,
    fc1, dropout, fc2."""
    head = tables.GOOGLENET_AUX_HEAD
    x = AdaptiveAvgPool2D((head.pool, head.pool), name=f"{name}.avgpool")(x)
    x = _basic_conv(x, head.conv, 1, name=f"{name}.conv", init=init)
    x = flatten_chw(x, name=f"{name}.flatten")
    x = dense(x, head.hidden, activation="relu", name=f"{name}.fc1", init=init)
    x = layers.Dropout(dropout, name=f"{name}.dropout")(x)
    return dense(x, num_classes, name=f"{name}.fc2", init=init)


def googlenet(*, num_classes: int = 1000, aux_logits: bool = True, dropout: float = 0.2, dropout_aux: float = 0.7,
              transform_input: bool = False, seed: int | None = None) -> keras.Model:
    init = Init(seed)
    images = keras.Input((None, None, 3), name="images")
    x = images
    if transform_input:  # torchvision's pretrained weights expect it (zoo.architectures); channels-last: per last axis
        x = layers.Rescaling(list(tables.TRANSFORM_INPUT_SCALE), offset=list(tables.TRANSFORM_INPUT_OFFSET), name="transform_input")(x)
    stem1, stem2, stem3 = tables.GOOGLENET_STEM
    x = _basic_conv(x, stem1, 7, stride=2, padding=3, name="conv1", init=init)
    x = TorchMaxPool2D(3, 2, ceil_mode=True, name="maxpool1")(x)
    x = _basic_conv(x, stem2, 1, name="conv2", init=init)
    x = _basic_conv(x, stem3, 3, padding=1, name="conv3", init=init)
    x = TorchMaxPool2D(3, 2, ceil_mode=True, name="maxpool2")(x)
    pools = {"inception3b": TorchMaxPool2D(3, 2, ceil_mode=True, name="maxpool3"),
             "inception4e": TorchMaxPool2D(2, 2, ceil_mode=True, name="maxpool4")}  # after these blocks
    taps = {block: head for head, block in tables.GOOGLENET_AUX.items()} if aux_logits else {}
    heads = {}
    for name in tables.INCEPTION_WIDTHS:
        x = _inception(x, name, init)
        if name in taps:
            heads[taps[name]] = _aux(x, taps[name], num_classes, init, dropout_aux)
        if name in pools:
            x = pools[name](x)
    x = global_avg_pool(x, name="avgpool")
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = dense(x, num_classes, name="fc", init=init)
    outputs = [logits, *(heads[head] for head in tables.GOOGLENET_AUX)] if aux_logits else logits
    return keras.Model(images, outputs, name="googlenet")
