"""Build → export → verify → register: the one path by which a plugin's model enters the registry.

Verification runs the exported file under ONNX Runtime and the native model on the same seeded
batch and refuses to register an artifact whose logits differ by more than ``rtol`` relative to
the output scale. Nothing is written to the store unless every step succeeded.
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
from .metrics import VERIFY_BATCH, export_tolerance, relative_error, verification_batch
from .plugins import DEFAULT_OPSET, FrameworkPlugin, inference_options
from .records import ExportInfo, ModelVersion, ParamCounts, Preprocessing, VersionMeta

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
        raise InvalidInput(f"Expected --num-classes >= 1. Received: {num_classes}", hint="e.g. --num-classes 1000")
    if input_size < 32:
        raise InvalidInput(f"Expected --input-size >= 32 (smaller collapses the feature maps). Received: {input_size}",
                           hint="e.g. --input-size 224 (64 is the smallest every architecture supports)")
    if not 13 <= opset <= 23:
        raise InvalidInput(f"Expected --opset between 13 and 23. Received: {opset}", hint=f"the default is {DEFAULT_OPSET}")


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
                num_classes: int | None = None) -> ExportInfo:
    """``plugin.export_onnx``, then the I/O-contract pass (:mod:`zoo.onnx.contract`) every artifact goes
    through, whichever plugin wrote it: the file at ``path`` honours the contract or ExportError is raised.
    What the pass renamed is added to the notes."""
    from .onnx.contract import enforce_io_contract

    info = plugin.export_onnx(model, path, opset=opset, input_size=input_size)
    notes = enforce_io_contract(path, input_size=input_size, num_classes=num_classes)
    return replace(info, notes=(*info.notes, *notes)) if notes else info



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
    """Build ``arch`` with ``plugin`` (loading canonical ``state`` if given), export, verify, register.

    ``build_options`` go to ``plugin.build``; by default the plugin's ``inference_options`` hook
    chooses them (the inference graph, unless ``state`` carries training-only tensors). ``transform``
    (a :class:`~zoo.transforms.Transform`, or :class:`~zoo._eval_options.TransformOptions` over the
    default) and ``labels`` (a labels file, a built-in name, or :class:`~zoo.labels.Labels`) are
    recorded on the version; by default the version gets torchvision's eval transform at
    ``input_size`` and, with 1000 classes, ``imagenet-1k`` labels
    (:func:`zoo._eval_options.export_eval_meta`). All are checked before anything is built.
    """
    check_options(num_classes, input_size, opset)
    from .metrics import check_rtol

    rtol = check_rtol(rtol)
    from ._eval_options import export_eval_meta

    chosen_transform, chosen_labels = export_eval_meta(num_classes=num_classes, input_size=input_size,
                                                       transform=transform, labels=labels)
    from ._names import validate_name, validate_tags

    validate_name(name or arch)  # names, tags and the store are checked before anything is built
    tags = validate_tags(tags)
    registry.ensure_writable()
    step = progress or (lambda _msg: None)
    name = name or arch

    step("build")
    if build_options is None:
        build_options = inference_options(plugin, arch, state=state)
    options: dict[str, Any] = {"num_classes": num_classes, **build_options}
    if seed is not None:
        options["seed"] = seed
    model = plugin.build(arch, **options)
    if state is not None:
        plugin.load_state_dict(model, state)
    params = plugin.count_params(model)

    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmp:
        path = Path(tmp) / "model.onnx"
        step("export")
        with _exporter_logs() as logs:
            try:
                info = export_onnx(plugin, model, path, opset=opset, input_size=input_size, num_classes=num_classes)
            except (ExportError, InvalidInput):
                raise
            except Exception as exc:
                raise ExportError(
                    f"{plugin.display_name} could not export {arch!r} to ONNX (opset {opset}): {type(exc).__name__}: {exc}",
                    hint="try another --opset, or rerun with --debug for the exporter's traceback",
                ) from exc
        actual_opset = _file_opset(path)
        if actual_opset != opset:
            said = next((r.getMessage().splitlines()[0] for r in reversed(logs) if r.getMessage().strip()), "")
            raise ExportError(
                f"{plugin.display_name} exported {arch!r} at opset {actual_opset}, not at the requested opset {opset}"
                + (f" (the exporter said: {said})" if said else "") + "; nothing was registered",
                hint=f"choose an opset this exporter can produce (the default, {DEFAULT_OPSET}, always works)",
            )

        step("verify")
        batch = verification_batch(input_size)
        expected = plugin.predict(model, batch)
        noise = _rounding_noise(plugin, model, batch, expected) if rtol is None else None
        del model  # the native model can be large (VGG19: 0.5 GB); free it before ORT loads the copy
        error = verify_export(path, batch, expected, what=f"Exported {arch!r}", plugin=plugin.name, rtol=rtol,
                              noise=noise, hint="the export is wrong; nothing was registered. Rerun with --debug and "
                                                "report it (or give --rtol if this model is known to be this noisy)")

        step("register")
        provenance = dict(provenance or {})
        if weights_sha256:
            provenance["weights_sha256"] = weights_sha256
        if seed is not None and state is None:
            provenance["init_seed"] = seed
        if build_options:
            provenance["build_options"] = dict(build_options)
        provenance["verify"] = {"rtol": export_tolerance(noise, rtol), "max_rel_error": error, "batch": VERIFY_BATCH,
                                "provider": "cpu", "fp32_noise": noise}
        version, created = register_export(
            registry, plugin, arch, path, info, params, name=name, num_classes=num_classes,
            input_size=input_size, provenance=provenance, tags=tags, transform=chosen_transform, labels=chosen_labels,
        )
    return ExportResult(version=version, created=created, verify_error=error)


def register_export(
    registry: "Registry",
    plugin: FrameworkPlugin,
    arch: str | None,
    path: Path,
    info: ExportInfo,
    params: ParamCounts,
    *,
    name: str,
    num_classes: int,
    input_size: int,
    provenance: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    transform: "Transform | None" = None,
    labels: "Labels | None" = None,
) -> tuple[ModelVersion, bool]:
    """Register a file a plugin exported, with everything the plugin knows about it.

    ``arch`` is None for a model that is not one of the plugin's architectures (a user's own). With a
    ``transform``, the recorded :class:`Preprocessing` agrees with it (mean, std, scale, channels).
    """
    provenance = dict(provenance)
    if info.notes:
        provenance["export_notes"] = list(info.notes)
    meta = VersionMeta(
        arch=arch,
        framework=plugin.name,
        framework_version=plugin.framework_version(),
        plugin_version=plugin.version,
        exporter=info.exporter,
        exporter_version=info.exporter_version,
        params=params,
        num_classes=num_classes,
        preprocessing=(transform.preprocessing((input_size, input_size)) if transform is not None
                       else Preprocessing(input_size=(input_size, input_size))),
        provenance=provenance,
        transform=transform,
        labels=labels,
    )
    result = registry.register(path, name=name, meta=meta, tags=tags, input_size=input_size)
    return result.version, result.created
