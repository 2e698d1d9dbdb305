"""ResNet-18/34/50/101/152 "v1.5" exactly as torchvision defines them, named by state_dict path.

v1.5: a Bottleneck strides on its 3x3 conv (Keras' ``keras.applications.ResNet50`` is v1, with conv
biases: a different model). Convs have no bias; BatchNorm eps is 1e-5.
"""
from __future__ import annotations

import keras
from keras import layers

from zoo.architectures import BLOCK_EXPANSION, RESNET_BN_EPS, RESNET_PLANS, RESNET_STEM, RESNET_WIDTHS

from .layers import Init, TorchMaxPool2D, batch_norm, conv2d, dense, global_avg_pool


def _conv_bn(x, filters: int, kernel: int, *, stride: int, name: str, bn: str, init: Init, relu: bool):
    x = conv2d(x, filters, kernel, stride=stride, padding=kernel // 2, use_bias=False, name=name, init=init)
    x = batch_norm(x, eps=RESNET_BN_EPS, name=bn)
    return layers.ReLU(name=f"{name}.relu")(x) if relu else x


def _block(x, kind: str, planes: int, stride: int, *, in_channels: int, name: str, init: Init):
    out_channels = planes * BLOCK_EXPANSION[kind]
    if kind == "basic":
        y = _conv_bn(x, planes, 3, stride=stride, name=f"{name}.conv1", bn=f"{name}.bn1", init=init, relu=True)
        y = _conv_bn(y, planes, 3, stride=1, name=f"{name}.conv2", bn=f"{name}.bn2", init=init, relu=False)
    else:
        y = _conv_bn(x, planes, 1, stride=1, name=f"{name}.conv1", bn=f"{name}.bn1", init=init, relu=True)
        y = _conv_bn(y, planes, 3, stride=stride, name=f"{name}.conv2", bn=f"{name}.bn2", init=init, relu=True)
        y = _conv_bn(y, out_channels, 1, stride=1, name=f"{name}.conv3", bn=f"{name}.bn3", init=init, relu=False)
    if stride != 1 or in_channels != out_channels:
        x = _conv_bn(x, out_channels, 1, stride=stride, name=f"{name}.downsample.0", bn=f"{name}.downsample.1",
                     init=init, relu=False)
    y = layers.Add(name=f"{name}.add")([y, x])
    return layers.ReLU(name=f"{name}.relu")(y)


def resnet(arch: str, *, num_classes: int = 1000, seed: int | None = None) -> keras.Model:
    kind, depths = RESNET_PLANS[arch]
    init = Init(seed)
    images = keras.Input((None, None, 3), name="images")
    x = _conv_bn(images, RESNET_STEM, 7, stride=2, name="conv1", bn="bn1", init=init, relu=True)
    x = TorchMaxPool2D(3, 2, padding=1, name="maxpool")(x)
    channels = RESNET_STEM
    for stage, (planes, depth) in enumerate(zip(RESNET_WIDTHS, depths, strict=True), start=1):
        for i in range(depth):
            stride = 2 if stage > 1 and i == 0 else 1
            x = _block(x, kind, planes, stride, in_channels=channels, name=f"layer{stage}.{i}", init=init)
            channels = planes * BLOCK_EXPANSION[kind]
    x = global_avg_pool(x, name="avgpool")
    logits = dense(x, num_classes, name="fc", init=init)
    return keras.Model(images, logits, name=arch)
