"""ResNet-18/34/50/101/152 "v1.5", exactly as torchvision defines them (same state_dict keys).

v1.5: a Bottleneck strides on its 3x3 conv, not on the first 1x1. Convs carry no bias; BN eps 1e-5.
"""
from __future__ import annotations

import torch
from torch import nn

from zoo.architectures import BLOCK_EXPANSION, RESNET_BN_EPS, RESNET_PLANS, RESNET_STEM, RESNET_WIDTHS


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=RESNET_BN_EPS)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = BLOCK_EXPANSION["basic"]

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = _bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = BLOCK_EXPANSION["bottleneck"]

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = _bn(planes)
        self.conv2 = conv3x3(planes, planes, stride)  # the v1.5 stride
        self.bn2 = _bn(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = _bn(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int], *,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = RESNET_STEM
        self.conv1 = nn.Conv2d(3, RESNET_STEM, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = _bn(RESNET_STEM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        w1, w2, w3, w4 = RESNET_WIDTHS
        self.layer1 = self._make_layer(block, w1, layers[0])
        self.layer2 = self._make_layer(block, w2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, w3, layers[2], stride=2)
        self.layer4 = self._make_layer(block, w4, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(w4 * block.expansion, num_classes)

        # Init (not part of any checkpoint, so free to differ from torchvision's): kaiming fan_in keeps each
        # branch's activations O(1), and the last BN of each residual branch starts at 1/sqrt(blocks), so
        # that the sum over blocks stays O(1) too. torchvision's init (fan_out, gamma 1) grows the output
        # ~2x per block: ResNet-152 logits ~1e8 at random init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        branch_scale = 1.0 / sum(layers) ** 0.5
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                nn.init.constant_(last_bn.weight, branch_scale)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                _bn(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet(arch: str, *, num_classes: int = 1000) -> ResNet:
    plan = RESNET_PLANS[arch]
    return ResNet(BasicBlock if plan.block == "basic" else Bottleneck, plan.layers, num_classes=num_classes)
