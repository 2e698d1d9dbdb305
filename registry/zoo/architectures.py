"""The reference architectures: every fact about them that more than one place needs.

Both plugins build their models from these tables, the tests read them, and ``zoo archs`` counts
parameters from them (:func:`param_counts`) without building anything. The definitions are
torchvision's; the published figures are its ``meta["num_params"]`` and ``meta["_ops"]``
(../shared/reference/architectures.md). Pure Python: importing this module imports no framework.

GoogLeNet is the one architecture whose training graph differs from its inference graph: its two
auxiliary classifiers exist for the training loss only. An artifact holds the inference graph,
so ``REFERENCE_PARAMS["googlenet"]`` counts it and :func:`inference_options` builds it;
``"googlenet+aux"`` is the training graph (:data:`TRAINING_HEADS` says how the two differ).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .records import IMAGENET_MEAN, IMAGENET_STD, ParamCounts

__all__ = [
    "ALEXNET", "ARCHITECTURES", "BLOCK_EXPANSION", "GOOGLENET_AUX", "GOOGLENET_AUX_HEAD", "GOOGLENET_BN_EPS",
    "GOOGLENET_STEM", "INCEPTION_5X5_KERNEL", "INCEPTION_WIDTHS", "REFERENCE_GMACS", "REFERENCE_PARAMS",
    "RESNET_BN_EPS", "RESNET_PLANS", "RESNET_STEM", "RESNET_WIDTHS", "TRAINING_HEADS", "VGG", "VGG_CONFIGS",
    "AuxHead", "Classifier", "Conv", "InceptionWidths", "MaxPool", "PlainPlan", "ResNetPlan", "TrainingHeads",
    "inference_graph_note", "inference_options", "param_counts",
]

ARCHITECTURES: tuple[str, ...] = (
    "alexnet", "vgg16", "vgg19", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
)

# Trainable parameters of the inference graph (torchvision ``meta["num_params"]``); "googlenet+aux"
# is GoogLeNet's training graph, with both auxiliary classifiers.
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


# --------------------------------------------------------------------------- AlexNet and VGG


class Conv(NamedTuple):
    """``nn.Conv2d(in, out, kernel, stride, padding)`` with a bias, followed by a ReLU."""

    out: int
    kernel: int
    stride: int = 1
    padding: int = 0


class MaxPool(NamedTuple):
    """``nn.MaxPool2d(kernel, stride)``."""

    kernel: int
    stride: int


class Classifier(NamedTuple):
    """Adaptive average pool to ``pool x pool``, C,H,W flatten, hidden Linear+ReLU layers, a last Linear.

    ``dropout_first``: the dropout precedes each hidden Linear (AlexNet) instead of following its
    ReLU (VGG). Either way the modules are indexed like torchvision's ``classifier`` Sequential.
    """

    pool: int
    hidden: tuple[int, ...]
    dropout_first: bool


class PlainPlan(NamedTuple):
    """A plain conv stack (``features``, indexed like torchvision's Sequential) and its classifier."""

    features: tuple[Conv | MaxPool, ...]
    classifier: Classifier


# The one-GPU AlexNet (Krizhevsky 2014, "one weird trick"), as torchvision defines it.
ALEXNET = PlainPlan(
    features=(Conv(64, 11, 4, 2), MaxPool(3, 2), Conv(192, 5, 1, 2), MaxPool(3, 2),
              Conv(384, 3, 1, 1), Conv(256, 3, 1, 1), Conv(256, 3, 1, 1), MaxPool(3, 2)),
    classifier=Classifier(pool=6, hidden=(4096, 4096), dropout_first=True),
)

# torchvision's VGG configurations "D" (VGG16) and "E" (VGG19), no BatchNorm; "M" is a 2x2 max pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
VGG: dict[str, PlainPlan] = {
    arch: PlainPlan(
        features=tuple(MaxPool(2, 2) if v == "M" else Conv(int(v), 3, 1, 1) for v in config),
        classifier=Classifier(pool=7, hidden=(4096, 4096), dropout_first=False),
    )
    for arch, config in VGG_CONFIGS.items()
}


# --------------------------------------------------------------------------- GoogLeNet


class InceptionWidths(NamedTuple):
    """One Inception block's branch widths, in torchvision's argument order."""

    ch1x1: int
    ch3x3red: int
    ch3x3: int
    ch5x5red: int
    ch5x5: int  # the "5x5" branch convolves with INCEPTION_5X5_KERNEL
    pool_proj: int

    @property
    def out(self) -> int:
        """Channels of the concatenated output."""
        return self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj


class AuxHead(NamedTuple):
    """torchvision ``InceptionAux``: adaptive pool to ``pool x pool``, 1x1 conv to ``conv``, fc1 to ``hidden``, fc2."""

    pool: int
    conv: int
    hidden: int


GOOGLENET_BN_EPS = 1e-3  # every conv is conv(bias=False) + BatchNorm(eps) + ReLU; max pools use ceil_mode
GOOGLENET_STEM = (64, 64, 192)  # conv1 7x7/2, conv2 1x1, conv3 3x3
# torchvision's GoogLeNet checkpoint (ported from a model fed (pixel - 0.5) / 0.5) is built with
# ``transform_input=True``: per channel c, x' = x * std_c / 0.5 + (mean_c - 0.5) / 0.5 re-normalises an
# ImageNet-normalised input before conv1. Both plugins apply exactly this as the googlenet build option
# ``transform_input`` (not folded into conv1: its zero padding makes a folded shift wrong at the borders).
TRANSFORM_INPUT_SCALE: tuple[float, ...] = tuple(s / 0.5 for s in IMAGENET_STD)
TRANSFORM_INPUT_OFFSET: tuple[float, ...] = tuple((m - 0.5) / 0.5 for m in IMAGENET_MEAN)
INCEPTION_5X5_KERNEL = 3  # torchvision's known quirk, kept for weight compatibility
INCEPTION_WIDTHS: dict[str, InceptionWidths] = {  # in execution order
    "inception3a": InceptionWidths(64, 96, 128, 16, 32, 32),
    "inception3b": InceptionWidths(128, 128, 192, 32, 96, 64),
    "inception4a": InceptionWidths(192, 96, 208, 16, 48, 64),
    "inception4b": InceptionWidths(160, 112, 224, 24, 64, 64),
    "inception4c": InceptionWidths(128, 128, 256, 24, 64, 64),
    "inception4d": InceptionWidths(112, 144, 288, 32, 64, 64),
    "inception4e": InceptionWidths(256, 160, 320, 32, 128, 128),
    "inception5a": InceptionWidths(256, 160, 320, 32, 128, 128),
    "inception5b": InceptionWidths(384, 192, 384, 48, 128, 128),
}
GOOGLENET_AUX: dict[str, str] = {"aux1": "inception4a", "aux2": "inception4d"}  # head -> the block it reads
GOOGLENET_AUX_HEAD = AuxHead(pool=4, conv=128, hidden=1024)


# --------------------------------------------------------------------------- ResNet


BLOCK_EXPANSION: dict[str, int] = {"basic": 1, "bottleneck": 4}


class ResNetPlan(NamedTuple):
    """``block``: "basic" (3x3, 3x3) or "bottleneck" (1x1, 3x3, 1x1 to ``expansion`` x planes; v1.5:
    the stride sits on the 3x3). ``layers``: blocks per stage."""

    block: str
    layers: tuple[int, int, int, int]

    @property
    def expansion(self) -> int:
        return BLOCK_EXPANSION[self.block]


RESNET_BN_EPS = 1e-5  # convs carry no bias
RESNET_STEM = 64  # conv 7x7/2 + BN + ReLU, then max pool 3x3/2 (padding 1)
RESNET_WIDTHS = (64, 128, 256, 512)  # planes per stage; stages 2-4 stride 2 in their first block
RESNET_PLANS: dict[str, ResNetPlan] = {
    "resnet18": ResNetPlan("basic", (2, 2, 2, 2)),
    "resnet34": ResNetPlan("basic", (3, 4, 6, 3)),
    "resnet50": ResNetPlan("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetPlan("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetPlan("bottleneck", (3, 8, 36, 3)),
}


# --------------------------------------------------------------------------- the inference graph


class TrainingHeads(NamedTuple):
    """Heads that exist in the training graph only: the build ``option`` that drops them (False)
    and the canonical tensor-name ``prefixes`` of their weights."""

    option: str
    prefixes: tuple[str, ...]


TRAINING_HEADS: dict[str, TrainingHeads] = {
    "googlenet": TrainingHeads("aux_logits", tuple(f"{head}." for head in GOOGLENET_AUX)),
}


def inference_options(arch: str, *, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build options that give ``arch``'s inference graph (what an artifact holds and what
    :data:`REFERENCE_PARAMS` counts), unless ``state`` carries training-only tensors that must load.

    The plugins' ``inference_options`` hook (:class:`zoo.plugins.OptionalHooks`) answers with this.
    """
    heads = TRAINING_HEADS.get(arch)
    if heads is None or (state is not None and any(k.startswith(heads.prefixes) for k in state)):
        return {}
    return {heads.option: False}


def inference_graph_note(archs: Iterable[str]) -> str | None:
    """One line per architecture among ``archs`` whose exported graph leaves training-only heads out."""
    notes = []
    for arch in archs:
        if arch in TRAINING_HEADS:
            extra = param_counts(arch, training_graph=True).trainable - param_counts(arch).trainable
            notes.append(f"{arch}: inference graph, as exported (the training graph's auxiliary heads add {extra:,})")
    return "\n".join(notes) or None


# --------------------------------------------------------------------------- counting


class _Counter:
    """Trainable parameters and BatchNorm running statistics (mean and variance: non-trainable)."""

    def __init__(self) -> None:
        self.trainable = self.statistics = 0

    def conv(self, cin: int, cout: int, kernel: int, *, bias: bool) -> None:
        self.trainable += cin * cout * kernel * kernel + (cout if bias else 0)

    def batch_norm(self, channels: int) -> None:
        self.trainable += 2 * channels  # gamma, beta
        self.statistics += 2 * channels  # running mean, running variance

    def conv_bn(self, cin: int, cout: int, kernel: int) -> None:
        self.conv(cin, cout, kernel, bias=False)
        self.batch_norm(cout)

    def linear(self, fan_in: int, fan_out: int) -> None:
        self.trainable += fan_in * fan_out + fan_out


def _plain(count: _Counter, plan: PlainPlan, num_classes: int) -> None:
    channels = 3
    for layer in plan.features:
        if isinstance(layer, Conv):
            count.conv(channels, layer.out, layer.kernel, bias=True)
            channels = layer.out
    width = channels * plan.classifier.pool ** 2
    for hidden in plan.classifier.hidden:
        count.linear(width, hidden)
        width = hidden
    count.linear(width, num_classes)


def _googlenet(count: _Counter, num_classes: int, *, training_graph: bool) -> None:
    channels = 3
    for width, kernel in zip(GOOGLENET_STEM, (7, 1, 3), strict=True):
        count.conv_bn(channels, width, kernel)
        channels = width
    taps = {block for block in GOOGLENET_AUX.values()} if training_graph else set()
    for name, w in INCEPTION_WIDTHS.items():
        count.conv_bn(channels, w.ch1x1, 1)
        count.conv_bn(channels, w.ch3x3red, 1)
        count.conv_bn(w.ch3x3red, w.ch3x3, 3)
        count.conv_bn(channels, w.ch5x5red, 1)
        count.conv_bn(w.ch5x5red, w.ch5x5, INCEPTION_5X5_KERNEL)
        count.conv_bn(channels, w.pool_proj, 1)
        channels = w.out
        if name in taps:
            head = GOOGLENET_AUX_HEAD
            count.conv_bn(channels, head.conv, 1)
            count.linear(head.conv * head.pool ** 2, head.hidden)
            count.linear(head.hidden, num_classes)
    count.linear(channels, num_classes)


def _resnet(count: _Counter, plan: ResNetPlan, num_classes: int) -> None:
    count.conv_bn(3, RESNET_STEM, 7)
    channels = RESNET_STEM
    for stage, (planes, blocks) in enumerate(zip(RESNET_WIDTHS, plan.layers, strict=True)):
        for i in range(blocks):
            out = planes * plan.expansion
            if plan.block == "basic":
                count.conv_bn(channels, planes, 3)
                count.conv_bn(planes, planes, 3)
            else:
                count.conv_bn(channels, planes, 1)
                count.conv_bn(planes, planes, 3)
                count.conv_bn(planes, out, 1)
            if (stage > 0 and i == 0) or channels != out:  # the downsample shortcut
                count.conv_bn(channels, out, 1)
            channels = out
    count.linear(channels, num_classes)


def param_counts(arch: str, *, num_classes: int = 1000, training_graph: bool = False) -> ParamCounts:
    """``arch``'s parameter counts, computed from the tables alone (no framework, microseconds).

    Trainable: weights and biases, BatchNorm scale and shift. Non-trainable: BatchNorm running
    mean and variance (what both plugins' ``count_params`` name so). ``training_graph`` includes
    the :data:`TRAINING_HEADS`. A plugin's built model must give exactly these counts (the plugin
    contract test checks it); raises KeyError for an architecture the tables do not describe.
    """
    count = _Counter()
    if arch == "alexnet":
        _plain(count, ALEXNET, num_classes)
    elif arch in VGG:
        _plain(count, VGG[arch], num_classes)
    elif arch == "googlenet":
        _googlenet(count, num_classes, training_graph=training_graph)
    elif arch in RESNET_PLANS:
        _resnet(count, RESNET_PLANS[arch], num_classes)
    else:
        raise KeyError(arch)
    return ParamCounts(trainable=count.trainable, non_trainable=count.statistics)
