"""VGG16 / VGG19 without BatchNorm, exactly as torchvision defines them (same state_dict keys)."""
from __future__ import annotations

from torch import nn

from zoo.architectures import VGG as PLANS

from ._plain import PlainCNN


class VGG(PlainCNN):
    def __init__(self, arch: str, *, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__(PLANS[arch], num_classes=num_classes, dropout=dropout)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def vgg(arch: str, *, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    return VGG(arch, num_classes=num_classes, dropout=dropout)
