"""What a parity run is judged by (:class:`Tolerances`) and what it returns (:class:`ParityReport`).

Tolerances (fp32) and why:

- ``rtol = 1e-4`` on ``max |a - b| / max |b|`` (:func:`zoo.metrics.relative_error`). Two correct
  fp32 implementations differ only in accumulation order (im2col vs Winograd vs direct convs,
  blocked GEMMs): each op adds ~1e-7..1e-6 relative rounding error, which over ~50 layers
  (ResNet-152 is 155 ops deep) accumulates to ~1e-6..1e-5 of the output scale (measured on CPU:
  4e-7..9e-6 for the ResNets, 3e-5 for VGG19, whose 25088-wide first dense layer sums the most
  terms). A real bug (a transposed kernel, a mis-permuted flatten, asymmetric padding, a missing
  BN statistic) gives errors of order 1 (measured: 1.3..3.2 for the faults in
  tests/test_parity_gate.py), so 1e-4 separates the two by orders of magnitude on both sides.
  Relative to the *output scale* (not elementwise) so near-zero logits do not blow the metric up.
- ``top1 = 1.0``: every sample must agree on the arg-max, except true ties: a sample whose two
  candidate classes are closer than ``tie * max|b|`` (1e-4, the fp32 noise bound above) in the
  reference is counted as a tie. ``tie`` stays put when ``rtol`` is loosened.

On a GPU, fp32 parity needs TF32 off everywhere (TF32 keeps 10 mantissa bits: ~1e-3 relative
error): :func:`zoo.parity.strict_fp32` turns it off in every plugin and the ORT CUDA provider for
the run, and the report's notes say so.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..records import Record
from ..weights._regenerate import CANONICAL_INIT

__all__ = [
    "DEFAULT_BATCH", "DEFAULT_RTOL", "DEFAULT_SEED", "DEFAULT_TIE", "DEFAULT_TOLERANCES", "DEFAULT_TOP1", "PAIR_KINDS", "PAIR_KIND_MEANING",
    "PairResult", "ParityReport", "Progress", "Tolerances",
]

DEFAULT_RTOL = 1e-4
DEFAULT_TOP1 = 1.0
DEFAULT_TIE = 1e-4  # the fp32 noise bound of the logits relative to their scale (the default rtol's reasoning)
DEFAULT_BATCH = 8
DEFAULT_SEED = 0
PAIR_KINDS = ("native-native", "export", "onnx-onnx", "cross")
PAIR_KIND_MEANING = {
    "native-native": "the frameworks' models differ (architecture or weight conversion), not the exporters",
    "export": "the exporter (or ONNX Runtime) changes the model: native and its own ONNX differ",
    "onnx-onnx": "the exported artifacts differ: a downstream app swapping frameworks would see it",
    "cross": "a framework disagrees with another framework's ONNX (architecture and export combined)",
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Tolerances(Record):
    """Pass criteria of a pair. ``rtol``: max |a-b| / max |b|. ``top1``: minimum top-1 agreement.

    ``tie``: a top-1 disagreement where the reference's two candidate logits are closer than
    ``tie * max|b|`` is fp32 noise on a near-tie, not a flip. It is independent of ``rtol`` so that
    loosening the error tolerance (fp16, TF32) does not silently loosen the top-1 check too.
    """

    rtol: float = DEFAULT_RTOL
    top1: float = DEFAULT_TOP1
    tie: float = DEFAULT_TIE

    def __post_init__(self) -> None:
        if not (self.rtol > 0 and np.isfinite(self.rtol)):
            raise InvalidInput(f"Expected a relative tolerance (rtol) > 0. Received: {self.rtol}", hint=f"the default is {DEFAULT_RTOL:g}")
        if not 0.0 <= self.top1 <= 1.0:
            raise InvalidInput(f"Expected top-1 agreement (top1) in 0..1. Received: {self.top1}", hint="1.0 means every sample agrees")
        if not (self.tie >= 0 and np.isfinite(self.tie)):
            raise InvalidInput(f"Expected a tie margin >= 0. Received: {self.tie}", hint=f"the default is {DEFAULT_TIE:g}")


@dataclass(frozen=True)
class PairResult(Record):
    """One comparison. ``b`` is the reference: errors are relative to max |b|."""

    a: str  # a plugin name, or "<plugin>-onnx" for its export
    b: str
    kind: str  # one of PAIR_KINDS
    max_abs_error: float
    max_rel_error: float
    cosine_min: float  # the smallest per-sample cosine similarity
    top1_agreement: float
    top5_agreement: float  # mean |top5(a) & top5(b)| / 5
    top1_ties: int  # disagreements excused as ties (margin < rtol * scale)
    passed: bool
    reason: str | None = None  # why it failed, in words

    @property
    def label(self) -> str:
        return f"{self.a} vs {self.b}"


@dataclass(frozen=True)
class ParityReport(Record):
    """Everything one parity run established about one architecture."""

    arch: str
    frameworks: tuple[str, ...]
    num_classes: int
    input_size: int
    batch: int
    seed: int
    opset: int
    weights_sha256: str
    tolerances: Tolerances
    provider: str  # the ORT execution provider that ran the ONNX files
    pairs: tuple[PairResult, ...]
    logit_std: float  # std of the reference logits: shows the weights keep activations O(1)
    diagnosis: tuple[str, ...] = ()
    roundtrip_mismatches: dict[str, list[str]] = field(default_factory=dict)  # plugin -> tensors
    divergence: dict[str, Any] | None = None  # first diverging layer group, when plugins tell
    errors: dict[str, str] = field(default_factory=dict)  # label -> what failed before comparing
    notes: tuple[str, ...] = ()  # TF32 off, providers, ...
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # plugin -> registered ref
    weights_source: str = CANONICAL_INIT  # the seeded recipe (see ``seed``), or the weight file's name

    @property
    def passed(self) -> bool:
        return not self.errors and all(p.passed for p in self.pairs)

    @property
    def failures(self) -> list[PairResult]:
        return [p for p in self.pairs if not p.passed]

    def summary(self) -> str:
        """One line per failure (empty when passed): what failed and whose fault it looks like."""
        lines = [f"{self.arch}: {label}: {msg}" for label, msg in self.errors.items()]
        lines += [f"{self.arch}: {p.label} [{p.kind}]: {p.reason}" for p in self.failures]
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """What is attached to a registered version (JSON, without the per-version refs)."""
        data = _finite(self.to_dict())
        for pair, record in zip(data["pairs"], self.pairs, strict=True):
            pair["label"] = record.label
        data["passed"] = self.passed
        return data


DEFAULT_TOLERANCES = Tolerances()


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as strings (a failed shape check reports an infinite error)."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
