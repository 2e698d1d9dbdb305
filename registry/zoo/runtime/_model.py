"""The executor's user-facing objects: :class:`InferenceModel` and its I/O-bound :class:`BoundRun`.

Invariant: an InferenceModel's ``provider`` names the provider that really runs its session
(never the one merely asked for), and ``predict`` returns the ``logits`` output (or the only one)
for a batch that passed :func:`~zoo.runtime.check_input`.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput, InvalidModelFile, ProviderUnavailable
from ..records import OUTPUT_NAME, ModelVersion, TensorSpec
from ._inputs import check_input
from ._options import RuntimeOptions
from ._providers import EXECUTION_PROVIDERS, ProviderChoice, announce, choose_provider, hint
from ._sessions import session_for, signature_of

if TYPE_CHECKING:
    from ..labels import Prediction
    from ..transforms import Transform


class InferenceModel:
    """An ONNX artifact ready to run: provider chosen, session cached, inputs checked.

    ``InferenceModel(path)`` picks the fastest usable provider; ``provider="cpu"|"cuda"|"tensorrt"``
    forces one (ProviderUnavailable if it cannot run here). Options: :class:`RuntimeOptions`,
    plus ``cache=False`` for a private session (benchmarks; one-off checks of large models).
    For a serving loop at one batch shape on a GPU, ``cuda_graph=True`` and :meth:`bind` replay
    one captured CUDA graph per bound shape (``predict`` still works, without the graph).
    """

    def __init__(self, path: str | os.PathLike[str], *, provider: str | None = None,
                 version: ModelVersion | None = None, **options: Any):
        cache = bool(options.pop("cache", True))
        self.path = Path(path)
        self.version = version
        opts = RuntimeOptions.parse(options)
        choice = choose_provider(provider)
        made = session_for(self.path, version.sha256 if version else None, choice, opts, cache=cache)
        self.session = made.session
        self.options = made.options
        active = self.session.get_providers()
        if choice.providers[0] not in active:  # loaded for the probe, but not for this model
            if provider is not None:
                raise ProviderUnavailable(
                    f"Execution provider {choice.name!r} could not load {os.fspath(self.path)!r} (ORT fell back to {active})",
                    hint=hint(choice.name, "failed"),
                )
            actual = next((k for k, v in EXECUTION_PROVIDERS.items() if v == active[0]), active[0])
            choice = ProviderChoice(actual, tuple(active), f"provider: {actual} ({choice.name}: failed to load this model)")
        if made.notes:
            choice = ProviderChoice(choice.name, choice.providers, f"{choice.reason}; onnxruntime: {', '.join(made.notes)}")
        self.provider = choice
        announce(choice)
        self.signature = signature_of(self.session)
        if not self.signature.inputs:
            raise InvalidModelFile(f"{os.fspath(self.path)!r} has no graph inputs", hint="export it again")
        names = [o.name for o in self.signature.outputs]
        self.output_name = OUTPUT_NAME if OUTPUT_NAME in names else names[0]
        self._graph_ids = itertools.count()
        self._run_options: Any = None
        if self.uses_cuda_graph:  # plain runs must not capture: each bound shape has its own graph
            import onnxruntime as ort

            self._run_options = ort.RunOptions()
            self._run_options.add_run_config_entry("gpu_graph_id", "-1")

    @property
    def input_spec(self) -> TensorSpec:
        return self.signature.inputs[0]

    @property
    def output_spec(self) -> TensorSpec:
        return next(o for o in self.signature.outputs if o.name == self.output_name)

    @property
    def device(self) -> str:
        """Where the session's tensors live: "cuda" or "cpu"."""
        return self.provider.device

    @property
    def uses_cuda_graph(self) -> bool:
        return self.options.cuda_graph and self.device == "cuda"

    def check(self, images: Any) -> np.ndarray:
        """Validate ``images`` against the signature (see :func:`check_input`)."""
        if len(self.signature.inputs) != 1:
            raise InvalidInput(
                f"predict() feeds one input; this model has {len(self.signature.inputs)}: "
                f"{', '.join(t.name for t in self.signature.inputs)}",
                hint="call model.session.run(None, {name: array, ...}) directly",
            )
        return check_input(images, self.input_spec, version=self.version, stacklevel=4)  # -> predict's caller

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Logits for an NCHW float32 batch (the ``logits`` output, or the only output)."""
        x = self.check(images)
        return self.session.run([self.output_name], {self.input_spec.name: x}, self._run_options)[0]

    def transform(self) -> Transform:
        """The eval transform this model is fed with: the version's, or a fallback (see :mod:`zoo._classify`)."""
        from .._classify import transform_for

        return transform_for(self.version, self.input_spec)

    def preprocess(self, images: Any, *, max_pixels: int | None = None) -> np.ndarray:
        """Decode ``images`` (paths, PIL images, uint8 arrays: see :mod:`zoo.images`) and apply the
        recorded transform: the NCHW float32 batch :meth:`predict` takes."""
        from ..transforms import preprocess

        return preprocess(images, self.transform(), max_pixels=max_pixels)

    def classify(self, images: Any, *, top_k: int = 5, max_pixels: int | None = None) -> list[list[Prediction]]:
        """The ``top_k`` classes of each image, most probable first, with the recorded label names
        (None where the version has no labels) and softmax probabilities."""
        from .._classify import classify_images

        return classify_images(self, images, k=top_k, max_pixels=max_pixels).top

    def bind(self, images: np.ndarray) -> BoundRun:
        """Pin ``images`` (and the outputs) on the provider's device for repeated runs: see :class:`BoundRun`."""
        return BoundRun(self, images)

    def next_graph_id(self) -> int:
        return next(self._graph_ids)

    def __repr__(self) -> str:
        what = self.version.ref if self.version is not None else os.fspath(self.path)
        return f"InferenceModel({what!r}, provider={self.provider.name!r})"


class BoundRun:
    """Repeated runs at one input shape with I/O binding: buffers live on the device between runs.

    On CUDA the input is copied host->device once (``update`` copies a new batch in place) and the
    logits stay on the GPU until ``outputs()``; on CPU it saves the per-call allocations. A float
    batch for a float16-input model is cast once here, not on every run. With ``cuda_graph`` the
    first runs capture a CUDA graph for this shape and later runs replay it (fixed buffers).

        run = model.bind(batch)
        for _ in range(100):
            run.run()
        logits = run.outputs()
    """

    def __init__(self, model: InferenceModel, images: Any):
        import onnxruntime as ort

        self.model = model
        want = model.input_spec.dtype
        if isinstance(images, np.ndarray) and images.dtype.kind == "f" and want in ("float16", "float32") \
                and images.dtype != np.dtype(want):
            images = images.astype(want)  # once, at bind time: runs reuse the cast buffer
        images = model.check(images)
        self.shape = tuple(images.shape)
        self.device = model.device
        device_id = model.options.device_id if self.device == "cuda" else 0
        # On the CPU an OrtValue shares the array's memory: bind a private copy, so that update()
        # never writes into the caller's array.
        self._host = np.array(images, copy=True) if self.device == "cpu" else images
        self._input = ort.OrtValue.ortvalue_from_numpy(self._host, self.device, device_id)
        self._binding = model.session.io_binding()
        self._binding.bind_ortvalue_input(model.input_spec.name, self._input)
        self._run_options: Any = None
        out_shape = self._output_shape()
        if out_shape is not None:  # a fixed buffer from the start (CUDA graphs need fixed addresses)
            dtype = np.dtype(model.output_spec.dtype) if model.output_spec.dtype in ("float32", "float16") else np.float32
            self._output = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, dtype, self.device, device_id)
            self._binding.bind_ortvalue_output(model.output_name, self._output)
            self._output_bound = True
        else:
            self._binding.bind_output(model.output_name, self.device, device_id)
            self._output_bound = False
        if model.uses_cuda_graph:
            self._run_options = ort.RunOptions()
            self._run_options.add_run_config_entry("gpu_graph_id", str(model.next_graph_id()))

    def _output_shape(self) -> tuple[int, ...] | None:
        shape = self.model.output_spec.shape
        if not shape:
            return None
        dims = [self.shape[0] if i == 0 and not isinstance(d, int) else d for i, d in enumerate(shape)]
        fixed = [d for d in dims if isinstance(d, int)]
        return tuple(fixed) if len(fixed) == len(dims) else None

    def update(self, images: np.ndarray) -> None:
        """Copy a new batch of the same shape into the bound input buffer."""
        want = self.model.input_spec.dtype
        if isinstance(images, np.ndarray) and images.dtype.kind == "f" and want in ("float16", "float32"):
            images = images.astype(want, copy=False)
        x = self.model.check(images)
        if tuple(x.shape) != self.shape:
            raise InvalidInput(f"Expected a batch of shape {self.shape} (the shape bound). Received {tuple(x.shape)}",
                               hint="call model.bind(images) again for a new shape")
        self._input.update_inplace(x)

    def run(self) -> None:
        """Run once; outputs stay where the provider put them."""
        self.model.session.run_with_iobinding(self._binding, self._run_options)
        if not self._output_bound:  # reuse the first run's output buffer from now on
            (out,) = self._binding.get_outputs()
            self._binding.bind_ortvalue_output(self.model.output_name, out)
            self._output_bound = True

    def outputs(self) -> np.ndarray:
        """The logits of the last run, copied to host memory."""
        return self._binding.copy_outputs_to_cpu()[0]


def runtime_versions() -> dict[str, str | None]:
    """Installed versions of the runtime stack, from package metadata (no import)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("onnxruntime", "onnxruntime-gpu", "onnx", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist != "onnxruntime-gpu":
                out[dist] = None
    return out


__all__ = ["BoundRun", "InferenceModel", "runtime_versions"]
