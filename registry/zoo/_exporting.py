"""The one ingestion pipeline: build -> export -> I/O-contract pass -> verify -> record -> register.

Every way a plugin's model enters the registry goes through :func:`ingest` (``zoo export``,
``zoo weights import``, :func:`zoo.register_model`, ``zoo parity``'s registrations); ``zoo convert``
and ``zoo register FILE`` share its last step, :func:`record` + ``Registry.register``. Its stages:

1. :func:`export_onnx`: the plugin's ``export_onnx``, then zoo's I/O-contract pass (once, here; the
   plugins do not run their own copy) and the opset check;
2. :func:`verify_export`: the file under ONNX Runtime against the native model on the same batch
   (refused if the logits differ by more than ``rtol`` relative to the output scale);
3. :func:`record`: the version's facts (plugin, exporter, parameter counts, transform, labels,
   provenance with the verification it passed);
4. ``Registry.register``: content-addressed, so the same weights through the same pipeline are one version.

:func:`staged_export` runs 1-3 and yields the verified file without registering it (``zoo parity``
compares such files before any is registered); :func:`commit` registers one. Nothing is written to
the store unless every step succeeded.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ExportError, InvalidInput
from .metrics import export_tolerance, relative_error, verification_batch
from .plugins import DEFAULT_OPSET, FrameworkPlugin, inference_options
from .records import ExportInfo, ModelVersion, ParamCounts, Transform, VersionMeta

if TYPE_CHECKING:
    from ._eval_options import TransformOptions
    from ._registry import Registry
    from .labels import Labels
    from .transforms import Transform

VERIFY_RTOL = 1e-4  # fp32 ORT vs eager: accumulation-order noise is ~1e-6 relative

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportResult:
    version: ModelVersion
    created: bool  # False: identical bytes were already registered under this name
    verify_error: float  # max |onnx - native| / max |native| on the verification batch


def check_options(num_classes: int, input_size: int, opset: int) -> None:
    """Refuse impossible export options before anything is built."""
    if num_classes < 1:
        raise InvalidInput(f"Expected a number of classes (num_classes) >= 1. Received: {num_classes}",
                           hint="e.g. 1000, ImageNet's")
    if input_size < 32:
        raise InvalidInput(f"Expected an input size (input_size) >= 32 pixels (smaller collapses the feature maps). "
                           f"Received: {input_size}", hint="e.g. 224, the reference (64 is the smallest every architecture supports)")
    if not 13 <= opset <= 23:
        raise InvalidInput(f"Expected an ONNX opset between 13 and 23. Received: {opset}", hint=f"the default is {DEFAULT_OPSET}")


@contextmanager
def _exporter_logs() -> Iterator[list[logging.LogRecord]]:
    """Collect the warnings exporters log (with their tracebacks) instead of letting Python's
    last-resort handler print them; callers put the relevant line into their own error."""
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Collect(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


def _file_opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(os.fspath(path), load_external_data=False)
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def export_onnx(plugin: FrameworkPlugin, model: Any, path: Path, *, opset: int = DEFAULT_OPSET, input_size: int = 224,
                num_classes: int | None = None, what: str | None = None) -> ExportInfo:
    """``plugin.export_onnx``, then the I/O-contract pass (:mod:`zoo.onnx.contract`) every artifact goes
    through, whichever plugin wrote it, then the opset check: the file at ``path`` honours the contract
    at ``opset`` or ExportError is raised. What the pass renamed is added to the notes. ``what`` names
    the model in messages (default: its class)."""
    from .onnx.contract import enforce_io_contract

    what = what or _model_class(model)
    with _exporter_logs() as logs:
        try:
            info = plugin.export_onnx(model, path, opset=opset, input_size=input_size)
        except (ExportError, InvalidInput):
            raise
        except Exception as exc:
            raise ExportError(
                f"{plugin.display_name} could not export {what} to ONNX (opset {opset}): {type(exc).__name__}: {exc}",
                hint="the model's forward must take one NCHW image batch and return one logits tensor; "
                     "try another opset, or rerun with --debug for the exporter's traceback",
            ) from exc
    notes = enforce_io_contract(path, input_size=input_size, num_classes=num_classes)
    actual_opset = _file_opset(path)
    if actual_opset != opset:
        said = next((r.getMessage().splitlines()[0] for r in reversed(logs) if r.getMessage().strip()), "")
        raise ExportError(
            f"{plugin.display_name} exported {what} at opset {actual_opset}, not at the requested opset {opset}"
            + (f" (the exporter said: {said})" if said else "") + "; nothing was registered",
            hint=f"choose an opset this exporter can produce (the default, {DEFAULT_OPSET}, always works)",
        )
    return replace(info, notes=(*info.notes, *notes)) if notes else info


def _model_class(model: Any) -> str:
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    name = getattr(model, "name", None)  # Keras models are named
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def verify_export(path: Path, images: np.ndarray, expected: np.ndarray, *, what: str, plugin: str, rtol: float | None,
                  hint: str, where: str = "", noise: float | None = None) -> float:
    """The exported file's max relative error against the native logits ``expected`` on ``images``
    (ONNX Runtime on the CPU); ExportError if the shape or the values disagree beyond
    :func:`zoo.metrics.export_tolerance` (``rtol``, else relative to the native model's float32 rounding
    ``noise``). ``what`` names the export in messages ("Exported 'resnet18'"), ``where`` says on what
    data, ``hint`` what to do."""
    from .runtime import InferenceModel

    actual = InferenceModel(path, provider="cpu", cache=False).predict(images)  # a temp file: never cache
    if actual.shape != expected.shape:
        raise ExportError(f"{what} returns shape {actual.shape}; the native model returns {expected.shape}",
                          hint="the exporter changed the output contract; report it with --debug output")
    error, tolerance = relative_error(actual, expected), export_tolerance(noise, rtol)
    if not error <= tolerance:
        raise ExportError(f"{what} ({plugin}) disagrees with the native model{where}: max relative error "
                          f"{error:.3g} > {tolerance:.3g}" + (f" (the native model's own float32 rounding noise on "
                          f"this batch, vs float64: {noise:.2g})" if noise is not None else ""), hint=hint)
    return error


@dataclass(frozen=True)
class Staged:
    """An export that passed the contract pass and verification, not registered yet (:func:`commit` does).

    ``path`` lives as long as the :func:`staged_export` context that made it (or the caller's: ``zoo
    convert`` stages its converted file with no plugin and the error it measured against its source)."""

    plugin: FrameworkPlugin | None
    path: Path
    meta: VersionMeta
    input_size: int
    verify_error: float


@contextmanager
def staged_export(
    plugin: FrameworkPlugin,
    model: Any,
    *,
    arch: str | None,
    num_classes: int,
    input_size: int,
    opset: int = DEFAULT_OPSET,
    images: np.ndarray | None = None,
    expected: np.ndarray | None = None,
    params: ParamCounts | None = None,
    provenance: Mapping[str, Any] | None = None,
    transform: "Transform | None" = None,
    labels: "Labels | None" = None,
    rtol: float | None = None,
    progress: Progress | None = None,
    what: str | None = None,
    verify_input: str | None = None,
) -> Iterator[Staged]:
    """Stages 1-3 of the pipeline on a built ``model``: export (contract pass included), verify, record.

    ``images`` is the verification batch (default: the seeded :func:`zoo.metrics.verification_batch`
    at ``input_size``; ``verify_input`` says what else it is, e.g. "example"), ``expected`` the native
    logits on it (default: ``plugin.predict``). ``rtol`` None: the tolerance is relative to the native
    model's own float32 rounding noise on the batch (:func:`zoo.metrics.export_tolerance`). The verification
    passed is recorded in the provenance. Yields a :class:`Staged` whose file is deleted when the context exits.
    """
    step = progress or (lambda _msg: None)
    what = what or (repr(arch) if arch else _model_class(model))
    batch = verification_batch(input_size) if images is None else images
    if params is None:
        params = plugin.count_params(model)
    if expected is None:
        expected = np.asarray(plugin.predict(model, batch))
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmp:
        path = Path(tmp) / "model.onnx"
        step("export")
        info = export_onnx(plugin, model, path, opset=opset, input_size=input_size, num_classes=num_classes, what=what)
        step("verify")
        noise = _rounding_noise(plugin, model, batch, expected) if rtol is None else None
        error = verify_export(
            path, batch, expected, what=f"Exported {what}", plugin=plugin.name, rtol=rtol, noise=noise,
            where=f" on the {verify_input}" if verify_input else "",
            hint="the export is wrong; nothing was registered. A layer may behave differently in eval mode or in "
                 "ONNX: rerun with --debug and report it (or give --rtol if this model is known to be this noisy)")
        checked: dict[str, Any] = {"rtol": export_tolerance(noise, rtol), "max_rel_error": error,
                                   "batch": int(batch.shape[0]), "fp32_noise": noise}
        if verify_input:
            checked["input"] = verify_input
        checked["provider"] = "cpu"
        meta = record(plugin, arch, info, params, num_classes=num_classes, input_size=input_size,
                      provenance={**dict(provenance or {}), "verify": checked}, transform=transform, labels=labels)
        yield Staged(plugin=plugin, path=path, meta=meta, input_size=input_size, verify_error=error)


def commit(registry: "Registry", staged: Staged, *, name: str, tags: Mapping[str, str] | None = None) -> ExportResult:
    """Stage 4: register a :class:`Staged` export under ``name``."""
    result = registry.register(staged.path, name=name, meta=staged.meta, tags=tags, input_size=staged.input_size)
    return ExportResult(version=result.version, created=result.created, verify_error=staged.verify_error)


def ingest(registry: "Registry", plugin: FrameworkPlugin, model: Any, *, name: str,
           tags: Mapping[str, str] | None = None, progress: Progress | None = None, **stage: Any) -> ExportResult:
    """The whole pipeline on a built ``model``: :func:`staged_export` (``stage`` are its keywords), then
    :func:`commit`. The name, tags and store are checked before anything is exported."""
    from ._names import validate_name, validate_tags

    validate_name(name)
    tags = validate_tags(tags)
    registry.ensure_writable()
    with staged_export(plugin, model, progress=progress, **stage) as staged:
        (progress or (lambda _msg: None))("register")
        return commit(registry, staged, name=name, tags=tags)


def seeded_weights(plugin: FrameworkPlugin, model: Any, *, arch: str, num_classes: int,
                   seed: int) -> tuple[dict[str, np.ndarray], str, dict[str, Any]] | None:
    """zoo's framework-neutral seeded weights for ``model`` (a build of ``arch``): the state, its sha256, and
    the recipe recorded as ``weights_init``; None for a model without canonical tensors (its build is the model). The same (arch, classes,
    seed) give the same weights in every plugin (they share torchvision's layout)."""
    from .weights._canonical import shapes_of
    from .weights._hashing import state_sha256
    from .weights._random import random_canonical_weights
    from .weights._regenerate import CANONICAL_INIT

    state_dict = getattr(plugin, "state_dict", None)
    shapes = shapes_of(state_dict(model)) if callable(state_dict) else {}
    if not shapes:
        return None
    recipe: dict[str, Any] = {"kind": CANONICAL_INIT, "arch": arch, "num_classes": num_classes, "seed": seed}
    state = random_canonical_weights(shapes, seed=seed)
    return state, state_sha256(state, metadata=recipe), recipe


def _rounding_noise(plugin: FrameworkPlugin, model: Any, batch: np.ndarray, expected: np.ndarray) -> float | None:
    """The native model's float32 rounding noise on ``batch`` (its float64 run through the plugin's
    ``native_runner`` hook, precision "fp64"); None when the plugin has no float64 run."""
    from .errors import PluginError
    from .metrics import rounding_noise
    from .plugins import native_runner

    try:
        return rounding_noise(expected, native_runner(plugin, model, device="cpu", precision="fp64")(batch))
    except PluginError:
        return None


def export_and_register(
    registry: "Registry",
    plugin: FrameworkPlugin,
    arch: str,
    *,
    name: str | None = None,
    num_classes: int = 1000,
    opset: int = DEFAULT_OPSET,
    input_size: int = 224,
    state: Mapping[str, np.ndarray] | None = None,
    weights_sha256: str | None = None,
    seed: int | None = None,
    build_options: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    rtol: float | None = None,
    progress: Progress | None = None,
    transform: "Transform | TransformOptions | None" = None,
    labels: "str | os.PathLike[str] | Labels | None" = None,
) -> ExportResult:
    """Build ``arch`` with ``plugin`` holding canonical ``state`` (default: :func:`seeded_weights` of
    ``seed``, 0 if None), then :func:`ingest` it.

    The weights never depend on the plugin: the same ``seed`` (or ``state``) exported by every plugin
    gives versions ``zoo parity`` can compare, and the same weights through this pipeline give the same
    bytes (one version). ``build_options`` go to ``plugin.build``; by default the plugin's
    ``inference_options`` hook chooses them (the inference graph, unless ``state`` carries
    training-only tensors). ``transform`` (a :class:`~zoo.transforms.Transform`, or
    :class:`~zoo._eval_options.TransformOptions` over the default) and ``labels`` (a labels file, a
    built-in name, or :class:`~zoo.labels.Labels`) are recorded on the version; by default the version
    gets torchvision's eval transform at ``input_size`` and, with 1000 classes, ``imagenet-1k`` labels
    (:func:`zoo._eval_options.export_eval_meta`). All are checked before anything is built.
    """
    check_options(num_classes, input_size, opset)
    from .metrics import check_rtol

    rtol = check_rtol(rtol)
    from ._eval_options import export_eval_meta

    chosen_transform, chosen_labels = export_eval_meta(num_classes=num_classes, input_size=input_size,
                                                       transform=transform, labels=labels)
    from ._names import validate_name, validate_tags

    name = name or arch
    validate_name(name)  # names, tags and the store are checked before anything is built
    tags = validate_tags(tags)
    registry.ensure_writable()
    step = progress or (lambda _msg: None)

    step("build")
    if build_options is None:
        build_options = inference_options(plugin, arch, state=state)
    seed = 0 if seed is None else seed
    model = plugin.build(arch, num_classes=num_classes, seed=seed, **build_options)
    record_: dict[str, Any] = dict(provenance or {})
    if state is None:
        seeded = seeded_weights(plugin, model, arch=arch, num_classes=num_classes, seed=seed)
        if seeded is None:  # nothing to initialise: the build is the model
            record_["init_seed"] = seed
        else:
            state, weights_sha256, record_["weights_init"] = seeded
    if state is not None:
        plugin.load_state_dict(model, state)
    if weights_sha256:
        record_["weights_sha256"] = weights_sha256
    if build_options:
        record_["build_options"] = dict(build_options)
    return ingest(registry, plugin, model, name=name, tags=tags, progress=progress, arch=arch, num_classes=num_classes,
                  input_size=input_size, opset=opset, provenance=record_, transform=chosen_transform,
                  labels=chosen_labels, rtol=rtol)


def record(
    plugin: FrameworkPlugin,
    arch: str | None,
    info: ExportInfo,
    params: ParamCounts,
    *,
    num_classes: int,
    input_size: int,
    provenance: Mapping[str, Any],
    transform: "Transform | None" = None,
    labels: "Labels | None" = None,
) -> VersionMeta:
    """Stage 3: what a version records about a file a plugin exported, with everything the plugin knows about it.

    ``arch`` is None for a model that is not one of the plugin's architectures (a user's own). With a
    ``transform``, that is the one recorded; without, torchvision's eval transform at ``input_size``.
    """
    provenance = dict(provenance)
    if info.notes:
        provenance["export_notes"] = list(info.notes)
    return VersionMeta(
        arch=arch,
        framework=plugin.name,
        framework_version=plugin.framework_version(),
        plugin_version=plugin.version,
        exporter=info.exporter,
        exporter_version=info.exporter_version,
        params=params,
        num_classes=num_classes,
        provenance=provenance,
        transform=transform if transform is not None else Transform.for_input_size(input_size),
        labels=labels,
    )
