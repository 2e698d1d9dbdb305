"""Comparing logits: the metrics of one pair, every classified pair of a run, and the diagnosis
of a failing run (which class of pair failed, and what that implicates)."""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..metrics import relative_error
from .report import PAIR_KIND_MEANING, PairResult, Tolerances

__all__ = ["compare", "compare_all", "diagnose", "first_divergence"]


def compare(a: np.ndarray, b: np.ndarray, *, a_label: str, b_label: str, kind: str, tolerances: Tolerances) -> PairResult:
    """Compare logits ``a`` against the reference ``b`` (same shape [N, classes])."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a64.shape != b64.shape:
        return PairResult(a_label, b_label, kind, float("inf"), float("inf"), -1.0, 0.0, 0.0, 0, False,
                          f"shapes differ: {a.shape} vs {b.shape}")
    scale = float(np.max(np.abs(b64))) if b64.size else 0.0
    max_abs = float(np.max(np.abs(a64 - b64))) if a64.size else 0.0
    max_rel = relative_error(a64, b64) if a64.size else 0.0
    finite = bool(np.all(np.isfinite(a64)) and np.all(np.isfinite(b64)))
    na, nb = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    cos = np.sum(a64 * b64, axis=1) / np.maximum(na * nb, 1e-300)
    top_a, top_b = np.argmax(a64, axis=1), np.argmax(b64, axis=1)
    disagree = np.nonzero(top_a != top_b)[0]
    # A tie: in the reference, a's choice is within fp32 noise of b's choice.
    margins = b64[disagree, top_b[disagree]] - b64[disagree, top_a[disagree]]
    ties = int(np.sum(margins <= tolerances.tie * (scale or 1.0)))
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


def first_divergence(hooks: Mapping[str, Mapping[str, np.ndarray]], order: Sequence[str],
                     tolerances: Tolerances) -> dict[str, Any] | None:
    """The first layer group (in the reference's execution order) where two native models differ.

    ``hooks``: each plugin's ``intermediates`` (group -> NCHW activations); ``order``: the plugins,
    reference first.
    """
    have = [n for n in order if n in hooks]
    if len(have) < 2:
        return None
    ref_name, other_name = have[0], have[1]
    ref, other = hooks[ref_name], hooks[other_name]
    for group, expected in ref.items():
        if group not in other:
            continue
        actual, expected = np.asarray(other[group]), np.asarray(expected)
        if actual.shape != expected.shape and actual.size == expected.size:  # (N, C) vs (N, C, 1, 1) after a pool
            actual = actual.reshape(expected.shape)
        if actual.shape != expected.shape:
            return {"group": group, "a": other_name, "b": ref_name, "max_rel_error": float("inf"),
                    "detail": f"shapes {actual.shape} vs {expected.shape}"}
        err = relative_error(actual, expected)
        if not err <= tolerances.rtol:
            return {"group": group, "a": other_name, "b": ref_name, "max_rel_error": err}
    return None


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
                   "numerical noise at the tolerance edge; rerun with a looser relative tolerance (rtol) to confirm")
    for plugin, names in (roundtrip or {}).items():
        if names:
            shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
            out.append(f"{plugin}: {len(names)} tensor(s) change in a load_state_dict -> state_dict round trip "
                       f"({shown}): its weight conversion is asymmetric there")
    if divergence:
        out.append(f"first diverging layer group: {divergence['group']!r} "
                   f"(relative error {divergence['max_rel_error']:.3g} between {divergence['a']} and {divergence['b']})")
    return out
