"""The parity engine: do the frameworks, and their ONNX exports, compute the same function?

One seeded canonical weight set (:func:`zoo.weights.random_canonical_weights`) is loaded into
every plugin's build of an architecture; each native model and each ONNX export (run by the zoo
executor) sees the same seeded batch. Every pair of the resulting logits is compared, and pairs
are *classified*, so a failure says whose fault it is:

- ``native-native``  torch vs tensorflow eager: the architectures or the weight conversions differ.
- ``export``         a framework vs its own ONNX file: that exporter (or the runtime) is at fault.
- ``onnx-onnx``      torch-ONNX vs tensorflow-ONNX: what a downstream app swapping artifacts sees.
- ``cross``          a framework vs the other framework's ONNX: both effects combined.

When pairs fail, the engine adds what it can tell: which class of pair failed, which tensors do
not survive a plugin's ``load_state_dict`` -> ``state_dict`` round trip (an asymmetric layout
conversion), and, when both plugins offer the optional hook
``intermediates(model, images) -> dict[group, NCHW array]`` (ordered, canonical group names such
as ``"layer1"``), the first layer group where the native models diverge.

Tolerances (fp32) and why:
- ``rtol = 1e-4`` on ``max |a - b| / max |b|``. Two correct fp32 implementations differ only in
  accumulation order (im2col vs Winograd vs direct convs, blocked GEMMs): each op adds ~1e-7..1e-6
  relative rounding error, which over ~50 layers (ResNet-152 is 155 ops deep) accumulates to
  ~1e-6..1e-5 of the output scale (measured on CPU: 4e-7..9e-6 for the ResNets, 3e-5 for VGG19,
  whose 25088-wide first dense layer sums the most terms). A real bug (a transposed kernel, a
  mis-permuted flatten, asymmetric padding, a missing BN statistic) gives errors of order 1
  (measured: 1.3..3.2 for the faults in tests/test_parity_gate.py), so 1e-4 separates the two by
  orders of magnitude on both sides. Relative to the *output scale* (not elementwise) so
  near-zero logits do not blow the metric up.
- ``top1 = 1.0``: every sample must agree on the arg-max, except true ties: a sample whose two
  candidate classes are closer than ``tie * max|b|`` (1e-4, the fp32 noise bound above) in the
  reference is counted as a tie. ``tie`` stays put when ``rtol`` is loosened.
On a GPU, fp32 parity needs TF32 off everywhere (TF32 keeps 10 mantissa bits: ~1e-3 relative
error): :func:`strict_fp32` turns it off in torch, TensorFlow and the ORT CUDA provider for the run
and the report says so. (Written for CUDA; untested on a GPU here.)
"""
from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._exporting import export_onnx
from .errors import InvalidInput, InvalidWeights, ParityFailure
from .plugins import DEFAULT_OPSET, FrameworkPlugin
from .records import Record

if TYPE_CHECKING:
    from ._registry import Registry

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


# --------------------------------------------------------------------------- records


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
            raise InvalidInput(f"Expected --rtol > 0. Received: {self.rtol}", hint=f"the default is {DEFAULT_RTOL:g}")
        if not 0.0 <= self.top1 <= 1.0:
            raise InvalidInput(f"Expected --top1 between 0 and 1. Received: {self.top1}", hint="1.0 means every sample agrees")
        if not (self.tie >= 0 and np.isfinite(self.tie)):
            raise InvalidInput(f"Expected a tie margin >= 0. Received: {self.tie}", hint=f"the default is {DEFAULT_TIE:g}")


@dataclass(frozen=True)
class PairResult(Record):
    """One comparison. ``b`` is the reference: errors are relative to max |b|."""

    a: str  # "tensorflow", "tensorflow-onnx", ...
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


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as strings (a failed shape check reports an infinite error)."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# --------------------------------------------------------------------------- metrics


def compare(a: np.ndarray, b: np.ndarray, *, a_label: str, b_label: str, kind: str, tolerances: Tolerances) -> PairResult:
    """Compare logits ``a`` against the reference ``b`` (same shape [N, classes])."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a64.shape != b64.shape:
        return PairResult(a_label, b_label, kind, float("inf"), float("inf"), -1.0, 0.0, 0.0, 0, False,
                          f"shapes differ: {a.shape} vs {b.shape}")
    diff = np.abs(a64 - b64)
    scale = float(np.max(np.abs(b64))) or 1.0
    max_abs = float(np.max(diff)) if diff.size else 0.0
    max_rel = max_abs / scale
    finite = bool(np.all(np.isfinite(a64)) and np.all(np.isfinite(b64)))
    na, nb = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    cos = np.sum(a64 * b64, axis=1) / np.maximum(na * nb, 1e-300)
    top_a, top_b = np.argmax(a64, axis=1), np.argmax(b64, axis=1)
    disagree = np.nonzero(top_a != top_b)[0]
    # A tie: in the reference, a's choice is within fp32 noise of b's choice.
    margins = b64[disagree, top_b[disagree]] - b64[disagree, top_a[disagree]]
    ties = int(np.sum(margins <= tolerances.tie * scale))
    n = a64.shape[0]
    top1 = 1.0 - len(disagree) / n if n else 1.0
    top1_excused = 1.0 - (len(disagree) - ties) / n if n else 1.0
    k = min(5, a64.shape[1])
    t5a, t5b = np.argsort(-a64, axis=1)[:, :k], np.argsort(-b64, axis=1)[:, :k]
    top5 = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(t5a, t5b, strict=True)])) if n else 1.0
    reasons = []
    if not finite:
        reasons.append("non-finite logits")
    if not max_rel <= tolerances.rtol:
        reasons.append(f"max relative error {max_rel:.3g} > {tolerances.rtol:g}")
    if top1_excused < tolerances.top1:
        reasons.append(f"top-1 agreement {top1:.1%} < {tolerances.top1:.1%}")
    return PairResult(
        a=a_label, b=b_label, kind=kind, max_abs_error=max_abs, max_rel_error=max_rel,
        cosine_min=float(np.min(cos)) if n else 1.0, top1_agreement=top1, top5_agreement=top5, top1_ties=ties,
        passed=not reasons, reason="; ".join(reasons) or None,
    )


def compare_all(native: Mapping[str, np.ndarray], onnx: Mapping[str, np.ndarray], *, tolerances: Tolerances) -> list[PairResult]:
    """Every classified pair among the frameworks' native and ONNX logits (framework order = reference order)."""
    names = list(dict.fromkeys([*native, *onnx]))
    pairs: list[PairResult] = []

    def add(a: str, a_out: np.ndarray, b: str, b_out: np.ndarray, kind: str) -> None:
        pairs.append(compare(a_out, b_out, a_label=a, b_label=b, kind=kind, tolerances=tolerances))

    for i, j in itertools.combinations(range(len(names)), 2):  # the earlier framework is the reference
        x, y = names[i], names[j]
        if x in native and y in native:
            add(y, native[y], x, native[x], "native-native")
    for x in names:
        if x in native and x in onnx:
            add(f"{x}-onnx", onnx[x], x, native[x], "export")
    for i, j in itertools.combinations(range(len(names)), 2):
        x, y = names[i], names[j]
        if x in onnx and y in onnx:
            add(f"{y}-onnx", onnx[y], f"{x}-onnx", onnx[x], "onnx-onnx")
    for x, y in itertools.permutations(names, 2):
        if x in native and y in onnx:
            add(f"{y}-onnx", onnx[y], x, native[x], "cross")
    return pairs


def diagnose(pairs: Sequence[PairResult], *, roundtrip: Mapping[str, Sequence[str]] | None = None,
             divergence: Mapping[str, Any] | None = None) -> list[str]:
    """Words for a failing run: which class of pair failed and what that implicates."""
    failed = [p for p in pairs if not p.passed]
    if not failed:
        return []
    out = []
    kinds = {p.kind for p in failed}
    bad_exports = sorted(p.b for p in failed if p.kind == "export")
    if bad_exports:
        out.append(f"exporter at fault for {', '.join(bad_exports)}: {PAIR_KIND_MEANING['export']}")
    if "native-native" in kinds:
        out.append("native models disagree: " + PAIR_KIND_MEANING["native-native"])
        if not bad_exports:
            out.append("every export matches its own framework: the exporters are not at fault")
    elif kinds & {"onnx-onnx", "cross"} and not bad_exports:
        out.append("ONNX files disagree although each matches its framework and the frameworks agree: "
                   "numerical noise at the tolerance edge; rerun with a looser --rtol to confirm")
    for plugin, names in (roundtrip or {}).items():
        if names:
            shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
            out.append(f"{plugin}: {len(names)} tensor(s) change in a load_state_dict -> state_dict round trip "
                       f"({shown}): its weight conversion is asymmetric there")
    if divergence:
        out.append(f"first diverging layer group: {divergence['group']!r} "
                   f"(relative error {divergence['max_rel_error']:.3g} between {divergence['a']} and {divergence['b']})")
    return out


# --------------------------------------------------------------------------- fp32 strictness


@contextlib.contextmanager
def strict_fp32(frameworks: Sequence[str], *, onnx: bool = True) -> Iterator[list[str]]:
    """Turn TF32 off in the given frameworks for the duration; yields notes saying what was done.

    TF32 matmuls/convs (Ampere+) keep a 10-bit mantissa: ~1e-3 relative error, 10x over the fp32
    tolerance. ORT's CUDA provider is told separately (``use_tf32=False`` on the session). The
    previous settings are restored on exit. CPU-only here: untested on a GPU.
    """
    notes: list[str] = []
    restore: list[Callable[[], None]] = []
    try:
        if "torch" in frameworks:
            try:
                import torch

                old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False

                def _restore_torch(old=old) -> None:
                    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

                restore.append(_restore_torch)
                notes.append("TF32 off in torch (cuda.matmul.allow_tf32 = cudnn.allow_tf32 = False)")
            except ImportError:
                pass
        if "tensorflow" in frameworks:
            try:
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as the plugin does: no C++ start-up chatter
                import tensorflow as tf

                was = tf.config.experimental.tensor_float_32_execution_enabled()
                tf.config.experimental.enable_tensor_float_32_execution(False)
                restore.append(partial(tf.config.experimental.enable_tensor_float_32_execution, was))
                notes.append("TF32 off in tensorflow (enable_tensor_float_32_execution(False))")
            except ImportError:
                pass
        if onnx:
            notes.append("TF32 off in ONNX Runtime CUDA (use_tf32=0; no effect on CPU)")
        yield notes
    finally:
        for undo in reversed(restore):
            undo()


# --------------------------------------------------------------------------- engine


def run_parity(
    arch: str,
    plugins: Sequence[FrameworkPlugin],
    *,
    num_classes: int = 1000,
    input_size: int = 224,
    batch: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    opset: int = DEFAULT_OPSET,
    tolerances: Tolerances = Tolerances(),
    provider: str | None = None,
    export: bool = True,
    registry: "Registry | None" = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ParityReport:
    """Run parity for ``arch`` across ``plugins``; return the report (never raises ParityFailure).

    ``export=False`` compares the native models only (seconds instead of minutes: the exports,
    TensorFlow's above all, dominate the cost). With a ``registry``, the exported artifacts are
    registered under ``name`` (default ``arch``) with the weights' sha256 as provenance and the
    report attached, only when every pair passed: an artifact that failed parity never enters
    the registry.
    """
    from ._exporting import check_options
    from .metrics import verification_batch
    from .weights import random_canonical_weights, shapes_of, state_sha256, weight_mismatches

    plugins = list(plugins)
    if len(plugins) < 1:
        raise InvalidInput("Parity needs at least one plugin. Received: none", hint="--frameworks torch,tensorflow")
    if len({p.name for p in plugins}) != len(plugins):
        raise InvalidInput(f"Expected distinct frameworks. Received: {[p.name for p in plugins]}")
    check_options(num_classes, input_size, opset)
    if batch < 1:
        raise InvalidInput(f"Expected --batch >= 1. Received: {batch}")
    step = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    names = [p.name for p in plugins]

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        step(label)
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timings[label] = round(time.perf_counter() - t0, 3)

    errors: dict[str, str] = {}
    native: dict[str, np.ndarray] = {}
    onnx_out: dict[str, np.ndarray] = {}
    roundtrip: dict[str, list[str]] = {}
    hooks: dict[str, dict[str, np.ndarray]] = {}
    exported: dict[str, tuple[Path, Any, Any]] = {}  # plugin -> (path, ExportInfo, ParamCounts)
    images = verification_batch(input_size, batch=batch, seed=seed)
    weights_init = {"kind": "zoo-random-canonical", "arch": arch, "num_classes": num_classes, "seed": seed}
    used_provider = "none"  # no ONNX run (export=False, or every export failed)

    with strict_fp32(names, onnx=export) as notes, tempfile.TemporaryDirectory(prefix="zoo-parity-") as tmp:
        state: dict[str, np.ndarray] | None = None
        sha = ""
        for plugin in plugins:
            model = timed(f"{plugin.name}: build", partial(plugin.build, arch, num_classes=num_classes, seed=seed))
            if state is None:  # the first plugin's layout defines the shapes; the others must match it
                state = random_canonical_weights(shapes_of(plugin.state_dict(model)), seed=seed)
                sha = state_sha256(state, metadata=weights_init)
            try:
                timed(f"{plugin.name}: load weights", partial(plugin.load_state_dict, model, state))
            except InvalidWeights as exc:
                missing, unexpected, misshaped = weight_mismatches(plugin.state_dict(model), shapes_of(state))
                errors[plugin.name] = (f"cannot load {names[0]}'s canonical layout ({exc.message}); "
                                       f"its own layout lacks {missing[:5]}, adds {unexpected[:5]}, reshapes {misshaped[:5]}")
                continue
            back = plugin.state_dict(model)
            roundtrip[plugin.name] = sorted(k for k in state if k not in back or not np.array_equal(back[k], state[k]))
            native[plugin.name] = timed(f"{plugin.name}: native", partial(_native_logits, plugin, model, images))
            intermediates = getattr(plugin, "intermediates", None)  # an optional hook (see zoo.plugins)
            if callable(intermediates):
                try:
                    hooks[plugin.name] = dict(intermediates(model, images))
                except Exception as exc:  # an optional diagnostic must not break the run
                    notes.append(f"{plugin.name}.intermediates failed: {type(exc).__name__}: {exc}")
            if not export:
                continue
            path = Path(tmp) / f"{plugin.name}.onnx"
            try:
                info = timed(f"{plugin.name}: export", partial(export_onnx, plugin, model, path, opset=opset, input_size=input_size))
            except Exception as exc:
                errors[f"{plugin.name}-onnx"] = f"export failed: {type(exc).__name__}: {str(exc)[:300]}"
                continue
            exported[plugin.name] = (path, info, plugin.count_params(model))
            del model  # VGG19 is 0.5 GB per framework: free it before ORT loads the copy
            session = timed(f"{plugin.name}: onnx", partial(_run_onnx, path, images, provider=provider))
            onnx_out[plugin.name], used_provider = session

        pairs = compare_all(native, onnx_out, tolerances=tolerances)
        divergence = _first_divergence(hooks, names, tolerances) if any(
            not p.passed for p in pairs if p.kind == "native-native") else None
        reference = next(iter(native.values()), None)
        report = ParityReport(
            arch=arch, frameworks=tuple(names), num_classes=num_classes, input_size=input_size, batch=batch,
            seed=seed, opset=opset, weights_sha256=sha, tolerances=tolerances, provider=used_provider,
            pairs=tuple(pairs), logit_std=float(np.std(reference)) if reference is not None else float("nan"),
            diagnosis=tuple(diagnose(pairs, roundtrip=roundtrip, divergence=divergence)),
            roundtrip_mismatches={k: v for k, v in roundtrip.items() if v}, divergence=divergence, errors=errors,
            notes=tuple(notes), timings_s=timings,
        )
        if registry is not None and report.passed:
            step("register")
            refs = {}
            by_name = {p.name: p for p in plugins}
            for fw, (path, info, params) in exported.items():
                version = _register(registry, by_name[fw], arch, path, info, params, report=report, name=name or arch,
                                    tags=tags, weights_init=weights_init)
                refs[fw] = version.ref
            report = replace(report, versions=refs)
            for ref in refs.values():
                registry.attach(ref, "parity", report.payload())
    return report


def _native_logits(plugin: FrameworkPlugin, model: Any, images: np.ndarray) -> np.ndarray:
    return np.asarray(plugin.predict(model, images), dtype=np.float32)


def _run_onnx(path: Path, images: np.ndarray, *, provider: str | None) -> tuple[np.ndarray, str]:
    """Run an ONNX file through the zoo executor with TF32 off; returns (logits, provider used)."""
    from .runtime import InferenceModel

    model = InferenceModel(path, provider=provider, use_tf32=False, cache=False)  # temp files: never cache
    logits = np.asarray(model.predict(images), dtype=np.float32)
    return logits, model.provider.name


def _first_divergence(hooks: Mapping[str, Mapping[str, np.ndarray]], order: Sequence[str], tolerances: Tolerances) -> dict[str, Any] | None:
    """The first layer group (in the reference's execution order) where two native models differ."""
    have = [n for n in order if n in hooks]
    if len(have) < 2:
        return None
    ref_name, other_name = have[0], have[1]
    ref, other = hooks[ref_name], hooks[other_name]
    for group, expected in ref.items():
        if group not in other:
            continue
        actual = np.asarray(other[group])
        expected = np.asarray(expected)
        if actual.shape != expected.shape:
            return {"group": group, "a": other_name, "b": ref_name, "max_rel_error": float("inf"),
                    "detail": f"shapes {actual.shape} vs {expected.shape}"}
        scale = float(np.max(np.abs(expected))) or 1.0
        err = float(np.max(np.abs(actual.astype(np.float64) - expected))) / scale
        if not err <= tolerances.rtol:
            return {"group": group, "a": other_name, "b": ref_name, "max_rel_error": err}
    return None


def _register(registry: "Registry", plugin: FrameworkPlugin, arch: str, path: Path, info: Any, params: Any, *,
              report: ParityReport, name: str, tags: Mapping[str, str] | None, weights_init: Mapping[str, Any]):
    """Register one exported artifact that passed parity, with the weights' recipe as provenance."""
    from ._exporting import register_export

    export_pair = next((p for p in report.pairs if p.kind == "export" and p.b == plugin.name), None)
    provenance: dict[str, Any] = {
        "weights_sha256": report.weights_sha256,
        "weights_init": dict(weights_init),
        "verify": {"rtol": report.tolerances.rtol, "max_rel_error": export_pair.max_rel_error if export_pair else None,
                   "batch": report.batch, "provider": report.provider},
    }
    version, _ = register_export(registry, plugin, arch, path, info, params, name=name, num_classes=report.num_classes,
                                 input_size=report.input_size, provenance=provenance,
                                 tags={"parity": "pass", **(tags or {})})
    return version


def raise_for_failures(reports: Sequence[ParityReport]) -> None:
    """ParityFailure naming every failing pair of every report; nothing when all passed."""
    failed = [r for r in reports if not r.passed]
    if not failed:
        return
    first = failed[0]
    worst = first.failures[0].label if first.failures else next(iter(first.errors), "?")
    raise ParityFailure(
        f"parity failed for {len(failed)} architecture(s):\n" + "\n".join(r.summary() for r in failed),
        hint=f"the pair kind says whose fault it is ({worst}: see the diagnosis); "
        "--rtol/--top1 loosen the tolerances if the difference is expected",
    )


def parity_archs(plugins: Sequence[FrameworkPlugin]) -> list[str]:
    """Architectures that two or more of ``plugins`` build, in reference order."""
    from .reference import ARCHITECTURES

    counts: dict[str, int] = {}
    for p in plugins:
        for a in p.architectures():
            counts[a] = counts.get(a, 0) + 1
    archs = [a for a, c in counts.items() if c >= 2]
    return sorted(archs, key=lambda a: (ARCHITECTURES.index(a) if a in ARCHITECTURES else len(ARCHITECTURES), a))


# --------------------------------------------------------------------------- JUnit


def to_junit(reports: Sequence[ParityReport], *, suite: str = "zoo-parity") -> str:
    """JUnit XML: one testsuite per architecture, one testcase per pair (CI dashboards read it)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name=suite)
    for r in reports:
        total = sum(r.timings_s.values())
        failures = len(r.failures) + len(r.errors)
        ts = ET.SubElement(root, "testsuite", name=f"parity.{r.arch}", tests=str(len(r.pairs) + len(r.errors)),
                           failures=str(failures), errors="0", time=f"{total:.3f}")
        props = ET.SubElement(ts, "properties")
        for key, value in (("weights_sha256", r.weights_sha256), ("input_size", r.input_size), ("num_classes", r.num_classes),
                           ("batch", r.batch), ("seed", r.seed), ("rtol", r.tolerances.rtol), ("top1", r.tolerances.top1),
                           ("provider", r.provider)):
            ET.SubElement(props, "property", name=key, value=str(value))
        for p in r.pairs:
            tc = ET.SubElement(ts, "testcase", classname=f"parity.{r.arch}.{p.kind}", name=p.label, time="0")
            detail = (f"max_abs={p.max_abs_error:.3g} max_rel={p.max_rel_error:.3g} cos_min={p.cosine_min:.6f} "
                      f"top1={p.top1_agreement:.3f} top5={p.top5_agreement:.3f}")
            if p.passed:
                ET.SubElement(tc, "system-out").text = detail
            else:
                failure = ET.SubElement(tc, "failure", message=p.reason or "failed", type=p.kind)
                failure.text = detail + "\n" + "\n".join(r.diagnosis)
        for label, message in r.errors.items():
            tc = ET.SubElement(ts, "testcase", classname=f"parity.{r.arch}.setup", name=label, time="0")
            ET.SubElement(tc, "failure", message=message, type="error")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
