"""Running parity: build every plugin's model of one architecture, load the same canonical weights,
run the same batch natively and through each ONNX export, compare every pair, register on a pass."""
from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plugins as _plugins
from ..errors import ExportError, InvalidInput, InvalidWeights, ParityFailure
from ..plugins import DEFAULT_OPSET, FrameworkPlugin, inference_options
from ..weights._regenerate import CANONICAL_INIT  # the weights recipe a parity run records as provenance
from .comparison import compare_all, diagnose, first_divergence
from .report import DEFAULT_BATCH, DEFAULT_SEED, DEFAULT_TOLERANCES, ParityReport, Progress, Tolerances

if TYPE_CHECKING:
    from .._exporting import Staged
    from .._registry import Registry

DIAGNOSE_STEP = "locating the first diverging layer group"  # a progress step not counted per plugin

__all__ = ["DIAGNOSE_STEP", "parity_archs", "parity_jobs", "raise_for_failures", "run_parity", "strict_fp32"]


@contextlib.contextmanager
def strict_fp32(plugins: Sequence[FrameworkPlugin], *, onnx: bool = True) -> Iterator[list[str]]:
    """Reduced-precision shortcuts (TF32) off in every plugin and in ONNX Runtime; yields notes.

    TF32 matmuls/convs (Ampere+) keep a 10-bit mantissa: ~1e-3 relative error, 10x over the fp32
    tolerance. Each plugin turns its framework's off through its ``strict_fp32`` hook
    (:func:`zoo.plugins.strict_fp32`); ORT's CUDA provider is told separately (``use_tf32=False``
    on the session). The previous settings are restored on exit.
    """
    with _plugins.strict_fp32(plugins) as notes:
        if onnx:
            notes.append("TF32 off in ONNX Runtime CUDA (use_tf32=0; no effect on CPU)")
        yield notes


def run_parity(
    arch: str,
    plugins: Sequence[FrameworkPlugin],
    *,
    num_classes: int = 1000,
    input_size: int = 224,
    batch: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    opset: int = DEFAULT_OPSET,
    tolerances: Tolerances = DEFAULT_TOLERANCES,
    provider: str | None = None,
    export: bool = True,
    registry: "Registry | None" = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    weights_sha256: str | None = None,
    weights_source: str | None = None,
    build_options: Mapping[str, Any] | None = None,
) -> ParityReport:
    """Run parity for ``arch`` across ``plugins`` (the first is the reference of every pair); return
    the report (never raises ParityFailure).

    The weights are a seeded canonical set (``seed``) unless ``weights`` gives a canonical state
    (e.g. a checkpoint read by :func:`zoo.weights.load_weights` and fitted by
    :func:`zoo.weights.plan_import`, whose ``build_options`` then go to every build); the report and
    the registered versions record its ``weights_sha256`` and ``weights_source`` (a file name).

    ``export=False`` compares the native models only (seconds instead of minutes: the exports
    dominate the cost). Each export goes through the one ingestion pipeline
    (:func:`zoo._exporting.staged_export`: contract pass, verification, the transform and labels
    ``zoo export`` records); with a ``registry``, the verified files are registered under ``name``
    (default ``arch``) with the report attached, only when every pair passed: an artifact that failed
    parity never enters the registry, and one that passed is the version ``zoo export`` registers
    for the same weights (the same bytes: one version).
    """
    from .._eval_options import export_eval_meta
    from .._exporting import staged_export
    from ..metrics import verification_batch
    from ..weights import shapes_of, weight_mismatches

    plugins = list(plugins)
    _check_run(plugins, num_classes=num_classes, input_size=input_size, opset=opset, batch=batch)
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
    staged: dict[str, Staged] = {}  # plugin -> its verified export, registered only if every pair passes
    images = verification_batch(input_size, batch=batch, seed=seed)
    origin = f"{names[0]}'s canonical layout" if weights is None else repr(weights_source or "the weights")
    transform, labels = export_eval_meta(num_classes=num_classes, input_size=input_size)  # what `zoo export` records
    used_provider = "none"  # no ONNX run (export=False, or every export failed)
    ort_device = _ort_device(provider) if export else "cpu"

    with strict_fp32(plugins, onnx=export) as notes, contextlib.ExitStack() as exports:
        state: dict[str, np.ndarray] | None = None
        sha = ""
        provenance: dict[str, Any] = {}
        for plugin in plugins:
            options = dict(build_options) if build_options is not None else inference_options(plugin, arch, state=weights)
            model = timed(f"{plugin.name}: build", partial(plugin.build, arch, num_classes=num_classes, seed=seed, **options))
            if state is None:  # the first plugin's layout defines the shapes (given weights must fit it); the others match
                state, sha, provenance = _shared_state(plugin, model, arch=arch, num_classes=num_classes, seed=seed,
                                                       weights=weights, weights_sha256=weights_sha256)
            try:
                timed(f"{plugin.name}: load weights", partial(plugin.load_state_dict, model, state))
            except InvalidWeights as exc:
                missing, unexpected, misshaped = weight_mismatches(plugin.state_dict(model), shapes_of(state))
                errors[plugin.name] = (f"cannot load {origin} ({exc.message}); "
                                       f"its own layout lacks {missing[:5]}, adds {unexpected[:5]}, reshapes {misshaped[:5]}")
                continue
            back = plugin.state_dict(model)
            roundtrip[plugin.name] = sorted(k for k in state if k not in back or not np.array_equal(back[k], state[k]))
            device = ort_device if ort_device in _plugins.devices(plugin) else "cpu"
            if device != "cpu":
                notes.append(f"{plugin.name} runs natively on {device}, the device ONNX Runtime runs on")
            native[plugin.name] = timed(f"{plugin.name}: native", partial(_native_logits, plugin, model, images, device=device))
            if not export:
                continue
            recorded = {**provenance, **({"build_options": options} if options else {})}  # as `zoo export` records
            path: Path | None
            try:  # the one ingestion pipeline: export, contract pass, verify, record (registered below if all pass)
                staged[plugin.name] = timed(f"{plugin.name}: export", partial(
                    exports.enter_context, staged_export(plugin, model, arch=arch, num_classes=num_classes,
                                                         input_size=input_size, opset=opset, provenance=recorded,
                                                         transform=transform, labels=labels)))
                path = staged[plugin.name].path
            except ExportError:  # e.g. it disagrees with the native model: compare it anyway, so the pairs say how
                path = _unverified_export(plugin, model, exports, errors, num_classes=num_classes, input_size=input_size,
                                          opset=opset)
            except Exception as exc:
                errors[f"{plugin.name}-onnx"] = _export_failed(exc)
                path = None
            if path is None:
                continue
            del model  # VGG19 is 0.5 GB per framework: free it before ORT loads the copy
            onnx_out[plugin.name], used_provider = timed(f"{plugin.name}: onnx", partial(_run_onnx, path, images, provider=provider))

        pairs = compare_all(native, onnx_out, tolerances=tolerances)
        divergence = None
        if state is not None and any(not p.passed for p in pairs if p.kind == "native-native"):
            step(DIAGNOSE_STEP)
            hooks = _layer_outputs(plugins, arch, state, images, notes=notes, num_classes=num_classes, seed=seed,
                                   **dict(build_options or {}))
            divergence = first_divergence(hooks, names, tolerances)
        reference = next(iter(native.values()), None)
        report = ParityReport(
            arch=arch, frameworks=tuple(names), num_classes=num_classes, input_size=input_size, batch=batch,
            seed=seed, opset=opset, weights_sha256=sha,
            weights_source=CANONICAL_INIT if weights is None else (weights_source or "weights"),
            tolerances=tolerances, provider=used_provider,
            pairs=tuple(pairs), logit_std=float(np.std(reference)) if reference is not None else float("nan"),
            diagnosis=tuple(diagnose(pairs, roundtrip=roundtrip, divergence=divergence)),
            roundtrip_mismatches={k: v for k, v in roundtrip.items() if v}, divergence=divergence, errors=errors,
            notes=tuple(notes), timings_s=timings,
        )
        if registry is not None and report.passed:
            step("register")
            report = _register(registry, staged, report, name=name or arch, tags=tags)
    return report


def _check_run(plugins: Sequence[FrameworkPlugin], *, num_classes: int, input_size: int, opset: int, batch: int) -> None:
    from .._exporting import check_options

    if len(plugins) < 1:
        raise InvalidInput("Parity needs at least one plugin. Received: none", hint="e.g. torch and tensorflow")
    if len({p.name for p in plugins}) != len(plugins):
        raise InvalidInput(f"Expected distinct frameworks. Received: {[p.name for p in plugins]}")
    check_options(num_classes, input_size, opset)
    if batch < 1:
        raise InvalidInput(f"Expected a batch of at least 1 image. Received: {batch}")


def _shared_state(plugin: FrameworkPlugin, model: Any, *, arch: str, num_classes: int, seed: int,
                  weights: Mapping[str, np.ndarray] | None, weights_sha256: str | None,
                  ) -> tuple[dict[str, np.ndarray], str, dict[str, Any]]:
    """The canonical state every plugin loads, its sha256, and the provenance it gives the versions: the given
    ``weights``, else zoo's seeded canonical weights in the layout of ``plugin``'s ``model``."""
    from .._exporting import seeded_weights
    from ..weights import state_sha256

    if weights is not None:
        sha = weights_sha256 or state_sha256(weights)
        return dict(weights), sha, {"weights_sha256": sha}
    seeded = seeded_weights(plugin, model, arch=arch, num_classes=num_classes, seed=seed)
    if seeded is None:
        raise InvalidInput(f"{plugin.name} builds {arch!r} without weights: nothing to compare",
                           hint="parity compares models holding the same weights")
    state, sha, recipe = seeded
    return state, sha, {"weights_init": recipe, "weights_sha256": sha}


def _export_failed(exc: Exception) -> str:
    return f"export failed: {type(exc).__name__}: {str(exc)[:300]}"


def _unverified_export(plugin: FrameworkPlugin, model: Any, exports: contextlib.ExitStack, errors: dict[str, str], *,
                       num_classes: int, input_size: int, opset: int) -> Path | None:
    """An export the pipeline refused (it disagrees with the native model), written again without the check so
    the pairs can say how far off it is; None (and the error recorded) when even that fails."""
    from .._exporting import export_onnx

    path = Path(exports.enter_context(tempfile.TemporaryDirectory(prefix="zoo-parity-"))) / "model.onnx"
    try:
        export_onnx(plugin, model, path, opset=opset, input_size=input_size, num_classes=num_classes)
    except Exception as exc:
        errors[f"{plugin.name}-onnx"] = _export_failed(exc)
        return None
    return path


def _layer_outputs(plugins: Sequence[FrameworkPlugin], arch: str, state: Mapping[str, np.ndarray], images: np.ndarray,
                   *, notes: list[str], **build: Any) -> dict[str, dict[str, np.ndarray]]:
    """Each plugin's ``intermediates`` on a fresh build holding ``state``; run only when the native
    models disagree (it keeps every layer group's output: too much memory for every run)."""
    hooks: dict[str, dict[str, np.ndarray]] = {}
    for plugin in plugins:
        if not callable(getattr(plugin, "intermediates", None)):
            continue
        try:
            model = plugin.build(arch, **build)
            plugin.load_state_dict(model, state)
            groups = _plugins.intermediates(plugin, model, images)
        except Exception as exc:  # an optional diagnostic must not break the run
            notes.append(f"{plugin.name}.intermediates failed: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if groups is not None:
            hooks[plugin.name] = groups
    return hooks


def _ort_device(provider: str | None) -> str:
    """The device ONNX Runtime will run on for ``provider``: the native side runs there too."""
    from ..runtime import choose_provider

    return "cpu" if choose_provider(provider).name == "cpu" else "cuda"


def _native_logits(plugin: FrameworkPlugin, model: Any, images: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """fp32 logits of the native model on ``device`` (TF32 is off: :func:`strict_fp32` is active)."""
    if device == "cpu":
        return np.asarray(plugin.predict(model, images), dtype=np.float32)
    run = _plugins.native_runner(plugin, model, device=device, precision="fp32")
    return np.asarray(run(images), dtype=np.float32)


def _run_onnx(path: Path, images: np.ndarray, *, provider: str | None) -> tuple[np.ndarray, str]:
    """Run an ONNX file through the zoo executor with TF32 off; returns (logits, provider used)."""
    from ..runtime import InferenceModel

    model = InferenceModel(path, provider=provider, use_tf32=False, cache=False)  # temp files: never cache
    logits = np.asarray(model.predict(images), dtype=np.float32)
    return logits, model.provider.name


def _register(registry: "Registry", staged: Mapping[str, Staged], report: ParityReport, *, name: str,
              tags: Mapping[str, str] | None) -> ParityReport:
    """Register every staged export (the pipeline's last step, so the bytes are those `zoo export` registers
    for the same weights), then attach the report to each version."""
    from .._exporting import commit

    refs = {fw: commit(registry, stage, name=name, tags={"parity": "pass", **(tags or {})}).version.ref
            for fw, stage in staged.items()}
    report = replace(report, versions=refs)
    for ref in refs.values():
        registry.attach(ref, "parity", report.payload())
    return report


def raise_for_failures(reports: Sequence[ParityReport]) -> None:
    """ParityFailure naming every failing pair of every report (one line: the CLI prints it as is); nothing when all passed."""
    failed = [r for r in reports if not r.passed]
    if not failed:
        return
    first = failed[0]
    worst = first.failures[0].label if first.failures else next(iter(first.errors), "?")
    what = ", ".join(dict.fromkeys(r.arch if not r.versions else " ".join(r.versions.values()) for r in failed))
    raise ParityFailure(
        f"parity failed for {what}: " + "; ".join(line for r in failed for line in r.summary().splitlines()),
        hint=f"the pair kind says whose fault it is ({worst}: see the diagnosis); "
        "a looser tolerance (rtol, top-1) is for differences that are expected",
    )


def parity_archs(plugins: Sequence[FrameworkPlugin]) -> list[str]:
    """Architectures that two or more of ``plugins`` build, reference architectures first, in their order."""
    from ..architectures import ARCHITECTURES

    counts: dict[str, int] = {}
    for p in plugins:
        for a in p.architectures():
            counts[a] = counts.get(a, 0) + 1
    archs = [a for a, c in counts.items() if c >= 2]
    return sorted(archs, key=lambda a: (ARCHITECTURES.index(a) if a in ARCHITECTURES else len(ARCHITECTURES), a))


def parity_jobs(plugins: Sequence[FrameworkPlugin], arch: str | None = None) -> list[tuple[str, list[FrameworkPlugin]]]:
    """(architecture, the plugins that build it, reference first) for ``arch``, or for every
    architecture two or more of ``plugins`` build when ``arch`` is None."""
    ordered = _plugins.by_priority(plugins)
    archs = [arch] if arch is not None else parity_archs(ordered)
    return [(a, [p for p in ordered if a in p.architectures()]) for a in archs]
