"""What AlexNet and VGG share: a plain conv stack and a pooled classifier, built from their plans
(:data:`zoo.architectures.ALEXNET`, :data:`zoo.architectures.VGG`), layers named by torchvision's
``features.<i>`` / ``classifier.<i>`` Sequential indices."""
from __future__ import annotations

import keras
from keras import layers

from zoo.architectures import Conv, PlainPlan

from .layers import AdaptiveAvgPool2D, Init, TorchMaxPool2D, conv2d, dense, flatten_chw


def plain_cnn(plan: PlainPlan, *, name: str, num_classes: int, dropout: float, seed: int | None) -> keras.Model:
    """features -> adaptive average pool -> C,H,W flatten -> classifier, for any input size."""
    init = Init(seed)
    images = keras.Input((None, None, 3), name="images")
    x, index = images, 0
    for layer in plan.features:
        if isinstance(layer, Conv):
            x = conv2d(x, layer.out, layer.kernel, stride=layer.stride, padding=layer.padding, name=f"features.{index}",
                       init=init)
            x = layers.ReLU(name=f"features.{index + 1}")(x)
            index += 2
        else:
            x = TorchMaxPool2D(layer.kernel, layer.stride, name=f"features.{index}")(x)
            index += 1
    spec = plan.classifier
    x = AdaptiveAvgPool2D((spec.pool, spec.pool), name="avgpool")(x)
    x = flatten_chw(x, name="flatten")
    index = 0
    for hidden in spec.hidden:  # dropout, linear, relu (AlexNet) or linear, relu, dropout (VGG)
        linear, drop = (index + 1, index) if spec.dropout_first else (index, index + 2)
        if spec.dropout_first:
            x = layers.Dropout(dropout, name=f"classifier.{drop}")(x)
        x = dense(x, hidden, activation="relu", name=f"classifier.{linear}", init=init)
        if not spec.dropout_first:
            x = layers.Dropout(dropout, name=f"classifier.{drop}")(x)
        index += 3
    logits = dense(x, num_classes, name=f"classifier.{index}", init=init)
    return keras.Model(images, logits, name=name)
