"""Published parameter counts every build is checked against (torchvision ``meta["num_params"]``).

Source: ../shared/reference/architectures.md. ``googlenet`` is the inference graph (no auxiliary
heads); ``googlenet+aux`` is the training graph with both auxiliary classifiers.
"""
from __future__ import annotations

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
