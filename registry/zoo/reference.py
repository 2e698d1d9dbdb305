"""Published parameter counts every build is checked against (torchvision ``meta["num_params"]``).

Source: ../shared/reference/architectures.md. ``googlenet`` is the inference graph (no auxiliary
heads); ``googlenet+aux`` is the training graph with both auxiliary classifiers.
"""
from __future__ import annotations

from .records import IMAGENET_MEAN, IMAGENET_STD

REFERENCE_PARAMS: dict[str, int] = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "googlenet": 6_624_904,
    "googlenet+aux": 13_004_888,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}

# GMACs per 224x224 sample (torchvision ``meta["_ops"]``), to check MACs read from ONNX graphs.
REFERENCE_GMACS: dict[str, float] = {
    "alexnet": 0.714,
    "vgg16": 15.470,
    "vgg19": 19.632,
    "googlenet": 1.498,
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50": 4.089,
    "resnet101": 7.801,
    "resnet152": 11.514,
}

ARCHITECTURES: tuple[str, ...] = (
    "alexnet", "vgg16", "vgg19", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
)

# Build options that give the inference graph, the one an artifact contains: what is counted
# against REFERENCE_PARAMS and what `zoo export` builds unless weights need the training graph.
INFERENCE_BUILD_OPTIONS: dict[str, dict[str, object]] = {"googlenet": {"aux_logits": False}}

# torchvision's GoogLeNet checkpoint (ported from a model fed (pixel - 0.5) / 0.5) is built with
# ``transform_input=True``: per channel c, x' = x * std_c / 0.5 + (mean_c - 0.5) / 0.5 re-normalises an
# ImageNet-normalised input before conv1. Both plugins apply exactly this as the googlenet build option
# ``transform_input`` (not folded into conv1: its zero padding makes a folded shift wrong at the borders).
TRANSFORM_INPUT_SCALE: tuple[float, ...] = tuple(s / 0.5 for s in IMAGENET_STD)
TRANSFORM_INPUT_OFFSET: tuple[float, ...] = tuple((m - 0.5) / 0.5 for m in IMAGENET_MEAN)
