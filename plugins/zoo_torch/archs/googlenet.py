"""GoogLeNet (Inception v1) exactly as torchvision defines it, auxiliary classifiers included.

Quirks kept on purpose, for weight compatibility with torchvision checkpoints: every conv is
conv(bias=False) + BatchNorm(eps=0.001) + ReLU, max pools use ``ceil_mode=True``, and the "5x5"
branch of each Inception block uses a 3x3 kernel.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from zoo import architectures as tables


class GoogLeNetOutputs(NamedTuple):
    """What the training graph returns (torchvision's order): main logits, then aux2, then aux1."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor | None
    aux_logits1: torch.Tensor | None


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=tables.GOOGLENET_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, in_channels: int, w: tables.InceptionWidths) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, w.ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, w.ch3x3red, kernel_size=1),
            BasicConv2d(w.ch3x3red, w.ch3x3, kernel_size=3, padding=1),
        )
        k5 = tables.INCEPTION_5X5_KERNEL
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, w.ch5x5red, kernel_size=1),
            BasicConv2d(w.ch5x5red, w.ch5x5, kernel_size=k5, padding=k5 // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, w.pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: used for the training loss only, never at inference."""

    def __init__(self, in_channels: int, num_classes: int, *, dropout: float = 0.7) -> None:
        super().__init__()
        head = tables.GOOGLENET_AUX_HEAD
        self.conv = BasicConv2d(in_channels, head.conv, kernel_size=1)
        self.fc1 = nn.Linear(head.conv * head.pool ** 2, head.hidden)
        self.fc2 = nn.Linear(head.hidden, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = tables.GOOGLENET_AUX_HEAD.pool
        x = F.adaptive_avg_pool2d(x, (pool, pool))
        x = self.conv(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x), inplace=True)
        x = self.dropout(x)
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """``forward`` returns :class:`GoogLeNetOutputs` in training mode with aux heads, else the logits."""

    def __init__(self, *, num_classes: int = 1000, aux_logits: bool = True, dropout: float = 0.2,
                 dropout_aux: float = 0.7, transform_input: bool = False) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input  # torchvision's pretrained weights expect it (zoo.architectures)
        stem1, stem2, stem3 = tables.GOOGLENET_STEM
        self.conv1 = BasicConv2d(3, stem1, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(stem1, stem2, kernel_size=1)
        self.conv3 = BasicConv2d(stem2, stem3, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # Each block reads the previous one's output (the table is in execution order).
        widths = list(tables.INCEPTION_WIDTHS.values())
        inputs = dict(zip(tables.INCEPTION_WIDTHS, [stem3, *(w.out for w in widths[:-1])], strict=True))

        def inception(name: str) -> Inception:
            return Inception(inputs[name], tables.INCEPTION_WIDTHS[name])

        self.inception3a = inception("inception3a")
        self.inception3b = inception("inception3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception("inception4a")
        self.inception4b = inception("inception4b")
        self.inception4c = inception("inception4c")
        self.inception4d = inception("inception4d")
        self.inception4e = inception("inception4e")
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = inception("inception5a")
        self.inception5b = inception("inception5b")

        def aux(head: str) -> InceptionAux | None:
            reads = tables.INCEPTION_WIDTHS[tables.GOOGLENET_AUX[head]]  # the block whose output the head reads
            return InceptionAux(reads.out, num_classes, dropout=dropout_aux) if aux_logits else None

        self.aux1: InceptionAux | None = aux("aux1")
        self.aux2: InceptionAux | None = aux("aux2")

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(widths[-1].out, num_classes)

        for m in self.modules():
            # torchvision draws convs and linears from N(0, 0.01) truncated at +-2: with BN in eval mode
            # (identity statistics) that shrinks activations ~4x per conv. Kaiming (fan_in) keeps them O(1).
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def without_aux(self) -> "GoogLeNet":
        """A view sharing every tensor but holding no aux heads: the inference graph that is exported."""
        if self.aux1 is None and self.aux2 is None:
            return self
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._modules = {k: (None if k in ("aux1", "aux2") else v) for k, v in self._modules.items()}
        view.aux_logits = False
        return view

    def forward(self, x: torch.Tensor) -> GoogLeNetOutputs | torch.Tensor:
        if self.transform_input:  # constants, not buffers: nothing enters the state dict or the parameter count
            scale = torch.tensor(tables.TRANSFORM_INPUT_SCALE, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            offset = torch.tensor(tables.TRANSFORM_INPUT_OFFSET, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            x = x * scale + offset
        x = self.conv1(x)
        x = self.maxpool1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.maxpool2(x)
        x = self.inception3a(x)
        x = self.inception3b(x)
        x = self.maxpool3(x)
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4b(x)
        x = self.inception4c(x)
        x = self.inception4d(x)
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception4e(x)
        x = self.maxpool4(x)
        x = self.inception5a(x)
        x = self.inception5b(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x
