"""What AlexNet and VGG share: a plain conv stack and a pooled classifier, built from their plans
(:data:`zoo.architectures.ALEXNET`, :data:`zoo.architectures.VGG`) with torchvision's module tree."""
from __future__ import annotations

import torch
from torch import nn

from zoo.architectures import Classifier, Conv, PlainPlan


def features(plan: PlainPlan) -> nn.Sequential:
    """``features``: each Conv is followed by a ReLU, indexed as in torchvision's Sequential."""
    layers: list[nn.Module] = []
    channels = 3
    for layer in plan.features:
        if isinstance(layer, Conv):
            layers += [nn.Conv2d(channels, layer.out, kernel_size=layer.kernel, stride=layer.stride, padding=layer.padding),
                       nn.ReLU(inplace=True)]
            channels = layer.out
        else:
            layers.append(nn.MaxPool2d(kernel_size=layer.kernel, stride=layer.stride))
    return nn.Sequential(*layers)


def classifier(plan: PlainPlan, *, num_classes: int, dropout: float) -> nn.Sequential:
    """``classifier``: hidden Linear + ReLU layers with dropout before (AlexNet) or after (VGG) each."""
    spec: Classifier = plan.classifier
    width = [c.out for c in plan.features if isinstance(c, Conv)][-1] * spec.pool ** 2
    layers: list[nn.Module] = []
    for hidden in spec.hidden:
        dense = [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(p=dropout), *dense] if spec.dropout_first else [*dense, nn.Dropout(p=dropout)]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class PlainCNN(nn.Module):
    """features -> adaptive average pool -> C,H,W flatten -> classifier (whatever the input size)."""

    def __init__(self, plan: PlainPlan, *, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.features = features(plan)
        self.avgpool = nn.AdaptiveAvgPool2d((plan.classifier.pool, plan.classifier.pool))
        self.classifier = classifier(plan, num_classes=num_classes, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)
