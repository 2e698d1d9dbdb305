"""The parity engine: do the frameworks, and their ONNX exports, compute the same function?

One seeded canonical weight set (:func:`zoo.weights.random_canonical_weights`) is loaded into
every plugin's build of an architecture; each native model and each ONNX export (run by the zoo
executor) sees the same seeded batch. Every pair of the resulting logits is compared, and pairs
are *classified*, so a failure says whose fault it is:

- ``native-native``  framework vs framework, eager: the architectures or the weight conversions differ.
- ``export``         a framework vs its own ONNX file: that exporter (or the runtime) is at fault.
- ``onnx-onnx``      ONNX file vs ONNX file: what a downstream app swapping artifacts sees.
- ``cross``          a framework vs another framework's ONNX: both effects combined.

When pairs fail, the engine adds what it can tell: which class of pair failed, which tensors do
not survive a plugin's ``load_state_dict`` -> ``state_dict`` round trip (an asymmetric layout
conversion), and, when the plugins offer the optional ``intermediates`` hook
(:class:`zoo.plugins.OptionalHooks`), the first layer group where the native models diverge.

Modules: :mod:`.report` (tolerances and the records a run returns), :mod:`.comparison` (the
metrics of a pair and the diagnosis of a failing run), :mod:`.engine` (:func:`run_parity`),
:mod:`.junit` (JUnit XML for CI dashboards), :mod:`.versions` (:func:`parity_versions`: the same check of
registered versions, the gate between ``zoo export`` and ``zoo copy --gated``).
"""
from __future__ import annotations

from .comparison import compare, compare_all, diagnose, first_divergence
from .engine import DIAGNOSE_STEP, parity_archs, parity_jobs, raise_for_failures, run_parity, strict_fp32
from .junit import to_junit
from .report import (
    DEFAULT_BATCH,
    DEFAULT_RTOL,
    DEFAULT_SEED,
    DEFAULT_TIE,
    DEFAULT_TOLERANCES,
    DEFAULT_TOP1,
    PAIR_KIND_MEANING,
    PAIR_KINDS,
    PairResult,
    ParityReport,
    Progress,
    Tolerances,
)
from .versions import PARITY_REPORT, gated, parity_versions, select_parity_versions

__all__ = [
    "DEFAULT_BATCH", "DIAGNOSE_STEP", "DEFAULT_RTOL", "DEFAULT_SEED", "DEFAULT_TIE", "DEFAULT_TOLERANCES",
    "DEFAULT_TOP1", "PARITY_REPORT", "PAIR_KINDS", "PAIR_KIND_MEANING", "PairResult", "ParityReport", "Progress", "Tolerances",
    "compare", "compare_all", "diagnose", "first_divergence", "gated", "parity_archs", "parity_jobs",
    "parity_versions", "raise_for_failures", "run_parity", "select_parity_versions", "strict_fp32", "to_junit",
]
