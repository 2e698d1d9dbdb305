"""Your own trained model into the registry: :func:`register_model`.

The model goes through the one ingestion pipeline the reference builds take (``zoo export``,
:func:`zoo._exporting.ingest`): the plugin that owns it (:func:`zoo.plugins.plugin_for`) exports it,
zoo's I/O-contract pass makes the file honour the contract, the file runs under ONNX Runtime next to
the native model on the caller's ``example`` batch and is refused if the logits differ by more than
``rtol`` (relative to the output scale); then it is registered with its parameter counts, exporter,
labels, transform and provenance, and the registry computes its signature and MACs. Nothing is
written unless every step succeeded.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._exporting import VERIFY_RTOL, ExportResult, Progress, _model_class, ingest
from ._names import received, validate_name
from .errors import InvalidInput, ZooError
from .labels import Labels, check_labels_fit, resolve_labels
from .plugins import DEFAULT_OPSET, FrameworkPlugin, plugin_for
from .transforms import Transform

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["register_model"]

MIN_INPUT_SIZE = 32  # as `zoo export --input-size`: both exporters need it


def _check_example(example: Any) -> np.ndarray:
    batch = np.asarray(example) if not isinstance(example, np.ndarray) else example
    hint = "example is an input batch like the ones the model takes: np.float32 [N, 3, H, W], H == W >= 32"
    if batch.ndim != 4 or batch.shape[1] != 3 or batch.shape[0] < 1:
        raise InvalidInput(f"Expected example of shape [N, 3, H, W] (NCHW, N >= 1). Received: {batch.dtype} {tuple(batch.shape)}",
                           hint=hint + "; NHWC arrays need .transpose(0, 3, 1, 2)")
    if not np.issubdtype(batch.dtype, np.floating):
        raise InvalidInput(f"Expected example as float32. Received: {batch.dtype}", hint=hint + " (normalised, not uint8 pixels)")
    height, width = int(batch.shape[2]), int(batch.shape[3])
    if height != width or height < MIN_INPUT_SIZE:
        raise InvalidInput(f"Expected a square example of at least {MIN_INPUT_SIZE} x {MIN_INPUT_SIZE} pixels. "
                           f"Received: {height} x {width}", hint=hint + " (the exporters export square inputs)")
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if not np.isfinite(batch).all():
        raise InvalidInput("Expected example values to be finite. Received: NaN or inf", hint=hint)
    return batch


def _check_transform(transform: Any, input_size: int) -> Transform | None:
    if transform is None or isinstance(transform, Transform):
        result = transform
    elif isinstance(transform, Mapping):
        result = Transform.from_dict(transform)
    else:
        raise InvalidInput(f"Expected transform as a zoo.transforms.Transform or a mapping. Received: {received(transform)}",
                           hint="e.g. Transform(resize=36, crop=(32, 32))")
    if result is not None and result.crop is not None and result.crop != (input_size, input_size):
        raise InvalidInput(f"Expected the transform's crop to match the example's {input_size} x {input_size}. "
                           f"Received: crop {result.crop[0]} x {result.crop[1]}",
                           hint="the crop is the model's input size: change one of them")
    return result


def _native_logits(plugin: FrameworkPlugin, model: Any, example: np.ndarray) -> np.ndarray:
    """The native model's logits on ``example``: run first, so that a wrong output or wrong labels fail fast."""
    try:
        expected = np.asarray(plugin.predict(model, example))
    except ZooError:
        raise
    except Exception as exc:
        raise InvalidInput(f"Expected the model to run on the example batch {tuple(example.shape)}. "
                           f"Received: {type(exc).__name__}: {str(exc).strip()[:300]}",
                           hint="the example must be a batch the model takes (NCHW float32; Keras models get it as NHWC)") from exc
    if expected.ndim != 2 or expected.shape[0] != example.shape[0]:
        raise InvalidInput(f"Expected the model to return logits of shape [N, classes]. Received: {tuple(expected.shape)}",
                           hint="classification models end in a linear layer with one output per class")
    return expected


def register_model(
    model: Any,
    *,
    name: str,
    example: Any,
    labels: Any = None,
    transform: Transform | Mapping[str, Any] | None = None,
    registry: "Registry | str | os.PathLike[str] | None" = None,
    framework: str | None = None,
    tags: Mapping[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
    rtol: float = VERIFY_RTOL,
    provenance: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export a trained ``torch.nn.Module`` or ``keras.Model``, verify the export, and register it.

    ``example``: an input batch (NCHW float32 ``[N, 3, S, S]``, S >= 32) that fixes the input size
    and is what verification runs. ``labels``: class names (a list, a labels file path, a built-in
    name such as ``"imagenet-1k"``, or :class:`~zoo.labels.Labels`), one per output. ``transform``:
    how images become inputs (:class:`~zoo.transforms.Transform`; its crop must be S x S). Both are
    recorded on the version and embedded in the file. ``registry``: a :class:`Registry`, a store
    path, or None for :func:`zoo.default_store`. ``framework`` names the plugin when several could
    own the model. Returns the version, whether it was new (False: these exact bytes were already
    registered under ``name``), and the verification error. The model itself is not modified
    (its train/eval mode is restored).
    """
    validate_name(name)
    batch = _check_example(example)
    input_size = int(batch.shape[2])
    chosen = _check_transform(transform, input_size)
    names: Labels | None = resolve_labels(labels)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not (math.isfinite(rtol) and rtol > 0):
        raise InvalidInput(f"Expected rtol to be a positive number. Received: {received(rtol)}", hint=f"the default is {VERIFY_RTOL:g}")
    plugin = plugin_for(model, framework=framework)

    from ._open import open_registry
    from ._registry import Registry

    store = registry if isinstance(registry, Registry) else open_registry(registry)
    try:
        expected = _native_logits(plugin, model, batch)
        num_classes = int(expected.shape[1])
        if names is not None:
            check_labels_fit(names, num_classes)
        record = dict(provenance or {})
        record.update({"source": "zoo.register_model", "model_class": _model_class(model)})
        return ingest(store, plugin, model, name=name, tags=tags, progress=progress, arch=None, num_classes=num_classes,
                      input_size=input_size, opset=opset, images=batch, expected=expected, provenance=record,
                      transform=chosen, labels=names, rtol=rtol, verify_input="example")
    finally:
        if store is not registry:
            store.close()
