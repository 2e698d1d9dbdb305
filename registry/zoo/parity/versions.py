"""Parity of *registered* versions: the gate a CI pipeline puts between ``zoo export`` and ``zoo copy``.

``zoo parity resnet50@1 resnet50@2`` (or ``zoo parity resnet50``: every fp32 version a plugin built)
checks the very artifacts the registry holds, not fresh exports: the versions are grouped by what
they were built from (architecture, classes, input size, weights sha256, build options); for each
group the weights are regenerated from the recipe the versions record (``zoo export``'s seeded
weights) or read from the file the caller gives (``--weights``, checked against the recorded
sha256); every framework of the group builds the architecture with them and runs natively, each
registered artifact runs under ONNX Runtime, and every pair is compared as in :func:`run_parity`.
The report is attached to each version of the group (kind ``parity``) and the tag ``parity`` says
``pass`` or ``fail``: ``zoo copy --gated`` publishes only versions whose latest report passed.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plugins as _plugins
from ..errors import InvalidInput, InvalidWeights, NotFound
from ..records import ModelVersion
from ..weights._regenerate import CANONICAL_INIT
from .comparison import compare_all, diagnose
from .report import DEFAULT_BATCH, DEFAULT_SEED, DEFAULT_TOLERANCES, ParityReport, Progress, Tolerances

if TYPE_CHECKING:
    from .._registry import Registry

__all__ = ["PARITY_REPORT", "gated", "parity_versions", "select_parity_versions"]

PARITY_REPORT = "parity"  # the report kind attached to checked versions, and the tag that says pass/fail


def _checkable(v: ModelVersion) -> str | None:
    """Why ``v`` cannot be parity-checked against native models (None: it can)."""
    from ..convert import precision_of

    if v.framework is None or v.arch is None:
        return "registered from an ONNX file: no framework built it"
    if precision_of(v) != "fp32":
        return f"a {precision_of(v)} conversion (its error against its source is attached to it by `zoo convert`)"
    return None


def select_parity_versions(registry: "Registry", targets: Sequence[str],
                           skipped: list[str] | None = None) -> list[ModelVersion] | None:
    """The versions ``targets`` mean (references, or model names meaning every checkable version of the
    model); None when ``targets`` is one name with no model of that name (the caller's architecture mode).
    A version that cannot be checked is refused when named, and listed in ``skipped`` when a model is."""
    try:
        models = set(registry.models())
    except NotFound:  # no store yet: no models either
        models = set()
    if len(targets) == 1 and "@" not in targets[0] and ":" not in targets[0] and targets[0] not in models:
        return None
    chosen: dict[tuple[str, int], ModelVersion] = {}
    for target in targets:
        if "@" in target or ":" in target:
            v = registry.resolve(target)
            why = _checkable(v)
            if why is not None:
                raise InvalidInput(f"Expected a version a framework plugin exported. Received: {v.ref}, {why}",
                                   hint="parity compares an artifact with the native model it was exported from")
            chosen[(v.name, v.version)] = v
            continue
        found = registry.list(target)
        if not found:
            raise NotFound(f"No model named {target!r} in the registry at {registry.location!r}",
                           hint="`zoo list` shows the registered models; an architecture is checked by fresh builds")
        for v in found:
            why = _checkable(v)
            if why is None:
                chosen[(v.name, v.version)] = v
            elif skipped is not None:
                skipped.append(f"{v.ref}: {why}")
    if not chosen:
        raise InvalidInput(f"Expected versions a framework plugin exported. Received: none in {', '.join(targets)}",
                           hint="`zoo list` shows each version's framework; `zoo export ARCH` makes such versions")
    return sorted(chosen.values(), key=lambda v: (v.name, v.version))


def _group_key(v: ModelVersion) -> str:
    prov = v.provenance or {}
    size = v.input_size[0] if v.input_size else None
    return json.dumps([v.arch, v.num_classes, size, prov.get("weights_sha256") or f"unknown:{v.ref}",
                       prov.get("build_options") or {}], sort_keys=True, default=str)


def _groups(versions: Sequence[ModelVersion]) -> list[list[ModelVersion]]:
    """Versions built from the same weights, one per framework per group (order kept)."""
    groups: dict[str, list[list[ModelVersion]]] = {}
    for v in versions:
        bucket = groups.setdefault(_group_key(v), [[]])
        if any(o.framework == v.framework for o in bucket[-1]):
            bucket.append([])
        bucket[-1].append(v)
    return [g for buckets in groups.values() for g in buckets]


def _state_for(group: Sequence[ModelVersion], plugin: _plugins.FrameworkPlugin, model: Any,
               weights: Mapping[str, np.ndarray] | None, weights_sha256: str | None) -> dict[str, np.ndarray]:
    """The canonical weights ``group`` was built from: regenerated from its recipe, or ``weights`` (a file
    whose sha256 must be the recorded one). InvalidWeights says why neither works."""
    from ..weights import random_canonical_weights, shapes_of, state_sha256

    first = group[0]
    prov = first.provenance or {}
    recorded = prov.get("weights_sha256")
    if weights is not None:
        if recorded and weights_sha256 and weights_sha256 != recorded:
            raise InvalidWeights(f"Expected the weights {first.ref} was built from (sha256 {recorded[:12]}). "
                                 f"Received: a file with sha256 {weights_sha256[:12]}",
                                 hint="give the checkpoint the version was exported or imported from")
        return dict(weights)
    recipe = prov.get("weights_init") or {}
    if recipe.get("kind") != CANONICAL_INIT:
        raise InvalidWeights(f"{first.ref} records no weights zoo can regenerate"
                             + (f" (built from a file with sha256 {recorded[:12]})" if recorded else ""),
                             hint="give the weight file it was built from")
    state = random_canonical_weights(shapes_of(plugin.state_dict(model)), seed=int(recipe["seed"]))
    if recorded and state_sha256(state, metadata=recipe) != recorded:
        raise InvalidWeights(f"Regenerated weights of {first.ref} do not match its recorded sha256 {recorded[:12]}",
                             hint="the weights generator or the plugin's layout changed since it was exported; "
                                  "give the weight file it was built from")
    return state


def _check_group(registry: "Registry", group: Sequence[ModelVersion], *, batch: int, seed: int,
                 tolerances: Tolerances, provider: str | None, weights: Mapping[str, np.ndarray] | None,
                 weights_sha256: str | None, progress: Progress) -> ParityReport:
    from ..metrics import verification_batch
    from .engine import _native_logits, _ort_device, _run_onnx, strict_fp32

    first = group[0]
    arch, num_classes = str(first.arch), int(first.num_classes or 1000)
    input_size = first.input_size[0] if first.input_size else 224
    options = dict((first.provenance or {}).get("build_options") or {})
    plugins = _plugins.by_priority([_plugins.get_plugin(str(v.framework)) for v in group])
    by_fw = {str(v.framework): v for v in group}
    images = verification_batch(input_size, batch=batch, seed=seed)
    errors: dict[str, str] = {}
    native: dict[str, np.ndarray] = {}
    onnx_out: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    used = "none"
    device = _ort_device(provider)
    state: dict[str, np.ndarray] | None = None
    with strict_fp32(plugins) as notes:
        for plugin in plugins:
            v = by_fw[plugin.name]
            progress(f"{v.ref}: native")
            t0 = time.perf_counter()
            model = plugin.build(arch, num_classes=num_classes, seed=0, **options)
            if state is None:
                state = _state_for(group, plugin, model, weights, weights_sha256)
            try:
                plugin.load_state_dict(model, state)
            except InvalidWeights as exc:
                errors[plugin.name] = f"cannot load the weights of {v.ref}: {exc.message}"
                continue
            here = device if device in _plugins.devices(plugin) else "cpu"
            native[plugin.name] = _native_logits(plugin, model, images, device=here)
            del model
            timings[f"{plugin.name}: native"] = round(time.perf_counter() - t0, 3)
            progress(f"{v.ref}: onnx")
            t0 = time.perf_counter()
            onnx_out[plugin.name], used = _run_onnx(registry.path(v), images, provider=provider)
            timings[f"{plugin.name}: onnx"] = round(time.perf_counter() - t0, 3)
        pairs = compare_all(native, onnx_out, tolerances=tolerances)
        reference = next(iter(native.values()), None)
        prov = first.provenance or {}
        source = CANONICAL_INIT if (prov.get("weights_init") or {}).get("kind") == CANONICAL_INIT and weights is None \
            else "weights"
        return ParityReport(
            arch=arch, frameworks=tuple(p.name for p in plugins), num_classes=num_classes, input_size=input_size,
            batch=batch, seed=seed, opset=first.opset, weights_sha256=str(prov.get("weights_sha256") or ""),
            tolerances=tolerances, provider=used, pairs=tuple(pairs),
            logit_std=float(np.std(reference)) if reference is not None else float("nan"),
            diagnosis=tuple(diagnose(pairs, roundtrip={}, divergence=None)), errors=errors, notes=tuple(notes),
            timings_s=timings, versions={fw: by_fw[fw].ref for fw in (p.name for p in plugins)}, weights_source=source,
        )


def parity_versions(
    registry: "Registry",
    versions: Sequence[ModelVersion],
    *,
    batch: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    tolerances: Tolerances = DEFAULT_TOLERANCES,
    provider: str | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    weights_sha256: str | None = None,
    attach: bool = True,
    progress: Progress | None = None,
) -> list[ParityReport]:
    """Check registered ``versions`` (from :func:`select_parity_versions`), one report per group of versions
    built from the same weights; never raises ParityFailure. With ``attach`` (a writable store), each report
    is attached to its versions (kind ``parity``) and each version is tagged ``parity=pass|fail``."""
    if batch < 1:
        raise InvalidInput(f"Expected a batch of at least 1 image. Received: {batch}")
    step = progress or (lambda _msg: None)
    if attach:
        registry.ensure_writable()
    reports = []
    for group in _groups(versions):
        report = _check_group(registry, group, batch=batch, seed=seed, tolerances=tolerances, provider=provider,
                              weights=weights, weights_sha256=weights_sha256, progress=step)
        if attach:
            step("attaching the report")
            for ref in report.versions.values():
                registry.attach(ref, PARITY_REPORT, report.payload())
                registry.set_tags(ref, {PARITY_REPORT: "pass" if report.passed else "fail"})
        reports.append(report)
    return reports


def gated(registry: "Registry", v: ModelVersion) -> bool:
    """True when the latest parity report attached to ``v`` passed (what ``zoo copy --gated`` publishes)."""
    found = registry.reports(v, PARITY_REPORT)
    return bool(found) and bool(max(found, key=lambda r: r.created_at).payload.get("passed"))
