"""AlexNet exactly as torchvision defines it (same module tree, so the same state_dict keys)."""
from __future__ import annotations

from torch import nn

from zoo.architectures import ALEXNET

from ._plain import PlainCNN


class AlexNet(PlainCNN):
    """One-GPU AlexNet (Krizhevsky 2014 "one weird trick" variant), as in torchvision."""

    def __init__(self, *, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__(ALEXNET, num_classes=num_classes, dropout=dropout)
        for m in self.modules():
            # torchvision keeps PyTorch's default init here; kaiming keeps activations O(1) at random init.
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
