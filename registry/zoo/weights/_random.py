"""Random canonical weights: seeded, well scaled, framework-neutral (what ``zoo parity`` loads everywhere)."""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidWeights
from ._canonical import DTYPE
from ._fit import expected_shapes

if TYPE_CHECKING:
    from ..plugins import FrameworkPlugin

_BLOCK_BN = re.compile(r"^(?P<block>.*\blayer\d+\.\d+)\.bn(?P<index>\d+)$")
RESIDUAL_GAMMA = (0.1, 0.3)  # gamma of the last BN of each residual branch: keeps ResNet-152 activations O(1)
BN_GAMMA = (0.5, 1.5)
BN_VAR = (0.5, 2.0)
BN_MEAN_STD = 0.1
BN_BETA_STD = 0.1
# He's gain 2 assumes the inputs' mean passes through; zero-mean filters see only Var(ReLU(z)) = (1/2 - 1/(2 pi)) Var(z).
RELU_GAIN = 1.0 / (0.5 - 0.5 / np.pi)


def random_canonical_weights(
    source: "FrameworkPlugin | Mapping[str, Sequence[int] | np.ndarray]",
    *,
    seed: int,
    arch: str | None = None,
    num_classes: int = 1000,
) -> dict[str, np.ndarray]:
    """Seeded, well-scaled canonical weights for the shapes of ``source`` (a plugin + ``arch``, or a shape map).

    Random but not arbitrary: parity must exercise every tensor and see input-dependent logits.
    - BatchNorm: running mean ~ N(0, 0.1), var ~ U(0.5, 2) (a dropped or swapped statistic shows),
      gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1); the last BN of each residual branch gets gamma ~
      U(0.1, 0.3), so the 50 residual additions of ResNet-152 keep the logit std O(1).
    - Convs and linears: zero-mean filters (each output's weights are centred) with std
      sqrt(g / fan_in), g = 1 / Var(ReLU(z)) for unit z: centring removes the positive mean ReLU
      leaves, which would otherwise make every image give nearly the same logits (a weak top-1
      test); g keeps the signal's scale through VGG's 16 plain layers.
    - Biases ~ U(+-1/sqrt(fan_in)) (torch's default): large enough that a dropped bias breaks parity.
    Each tensor draws from its own stream seeded by (seed, crc32(name)): the result does not
    depend on dict order.
    """
    if isinstance(source, Mapping):
        shapes = {k: tuple(int(d) for d in (np.shape(v) if isinstance(v, np.ndarray) else v)) for k, v in source.items()}
    else:
        if arch is None:
            raise InvalidWeights("random_canonical_weights(plugin, ...) needs arch=", hint="pass arch='resnet18'")
        shapes = expected_shapes(source, arch, num_classes=num_classes)
    bn_prefixes = {k[: -len(".running_var")] for k in shapes if k.endswith(".running_var")}
    residual_last = _residual_branch_ends(bn_prefixes)
    state: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])

        def normal(std: float, rng: np.random.Generator = rng, shape: tuple[int, ...] = shape) -> np.ndarray:
            return rng.standard_normal(shape, dtype=DTYPE) * DTYPE(std)

        def uniform(low: float, high: float, rng: np.random.Generator = rng, shape: tuple[int, ...] = shape) -> np.ndarray:
            return rng.random(shape, dtype=DTYPE) * DTYPE(high - low) + DTYPE(low)

        prefix, _, leaf = name.rpartition(".")
        if prefix in bn_prefixes:
            arr = _batchnorm(leaf, residual=prefix in residual_last, normal=normal, uniform=uniform)
        elif len(shape) >= 2:  # conv (O, I, kh, kw) or linear (out, in)
            fan_in = int(np.prod(shape[1:]))
            arr = normal(np.sqrt(RELU_GAIN / max(fan_in, 1)))
            if fan_in > 1:  # zero-mean filters: the positive mean ReLU leaves does not swamp the signal
                arr -= arr.reshape(shape[0], -1).mean(axis=1).reshape((shape[0],) + (1,) * (len(shape) - 1))
        elif leaf == "bias" and len(shapes.get(f"{prefix}.weight", ())) >= 2:
            bound = 1.0 / np.sqrt(max(int(np.prod(shapes[f"{prefix}.weight"][1:])), 1))
            arr = uniform(-bound, bound)
        else:
            arr = normal(0.1)
        state[name] = np.ascontiguousarray(arr, dtype=DTYPE)
    return state


def _batchnorm(leaf: str, *, residual: bool, normal: Callable[[float], np.ndarray],
               uniform: Callable[[float, float], np.ndarray]) -> np.ndarray:
    """One BatchNorm tensor (see :func:`random_canonical_weights`): gamma, beta, running mean and variance."""
    if leaf == "weight":
        return uniform(*(RESIDUAL_GAMMA if residual else BN_GAMMA))
    if leaf == "bias":
        return normal(BN_BETA_STD)
    if leaf == "running_mean":
        return normal(BN_MEAN_STD)
    if leaf == "running_var":
        return uniform(*BN_VAR)
    return normal(0.1)


def _residual_branch_ends(bn_prefixes: set[str]) -> set[str]:
    """The last ``bnN`` of each torchvision ResNet block (``layerX.Y.bn2`` / ``.bn3``): the branch's output scale."""
    last: dict[str, tuple[int, str]] = {}
    for prefix in bn_prefixes:
        m = _BLOCK_BN.match(prefix)
        if m:
            index = int(m.group("index"))
            if index > last.get(m.group("block"), (-1, ""))[0]:
                last[m.group("block")] = (index, prefix)
    return {prefix for _, prefix in last.values()}


