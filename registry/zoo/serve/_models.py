"""A served reference: the version it answers with now, its sessions and batcher, and the alias hot-swap.

Invariant: a request runs entirely on the :class:`Loaded` version it picked up when it arrived (its
transform, its sessions, its batcher), and its response names that version and sha256; a swap
replaces ``current`` in one assignment, only after the new version's sha256 was verified (by
``Registry.load``), its signature found equal to the served one and a warm-up run done; the old
version's batcher closes once the last request holding it has finished. A move to a different
signature, or a version that fails to load, is refused and logged; the old version keeps serving.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._refs import parse_ref
from ..errors import InvalidInput, NotFound
from ..records import ModelVersion, Signature
from ._batcher import Batcher, BatchStats
from ._metrics import Metrics
from ._tensors import DATATYPES, datatype_of

if TYPE_CHECKING:
    from ..runtime import InferenceModel

log = logging.getLogger("zoo.serve")


@dataclass
class InputTensor:
    name: str
    datatype: str
    value: np.ndarray | list[bytes]


@dataclass
class RequestedOutput:
    name: str
    binary: bool | None = None
    classification: int | None = None


@dataclass
class InferRequest:
    model: str
    version: str | None
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    id: str | None = None
    binary: bool = False  # binary_data_output for every output that does not say


@dataclass
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray
    binary: bool


@dataclass
class InferResponse:
    model: str
    version: ModelVersion
    outputs: list[OutputTensor]
    id: str | None = None


@dataclass(frozen=True)
class ServeOptions:
    """How each served model is run (see ``zoo serve --help``)."""

    max_batch_size: int = 8
    max_queue_delay_us: int = 0
    instances: int = 1
    max_queue: int = 256
    provider: str | None = None
    runtime: tuple[tuple[str, Any], ...] = ()  # RuntimeOptions, as for zoo.load
    max_pixels: int | None = None


class Loaded:
    """One version, loaded: ``instances`` private sessions behind one batcher."""

    def __init__(self, version: ModelVersion, models: Sequence[InferenceModel], opts: ServeOptions, metrics: Metrics):
        self.version = version
        self.models = list(models)
        self.model = self.models[0]
        self.users = 0
        self._idle: asyncio.Event | None = None
        labels = {"model": version.name, "version": str(version.version)}
        batch_rows = metrics.batch_size.labels(**labels)
        queue_s = metrics.queue_seconds.labels(**labels)
        compute_s = metrics.compute_seconds.labels(**labels)

        def observe(stats: BatchStats) -> None:
            batch_rows.observe(stats.rows)
            compute_s.observe(stats.compute_s)
            for seconds in stats.queue_s:
                queue_s.observe(seconds)

        fixed_batch = isinstance(self.model.input_spec.shape[0], int) if self.model.input_spec.shape else True
        self.batcher = Batcher([self._runner(m) for m in self.models],
                               max_batch_size=1 if fixed_batch else opts.max_batch_size,
                               max_queue_delay_us=opts.max_queue_delay_us, max_queue=opts.max_queue, on_batch=observe,
                               name=version.ref)
        self.transform = self.model.transform()

    @staticmethod
    def _runner(model: InferenceModel) -> Callable[[np.ndarray], np.ndarray]:
        session, output, name = model.session, [model.output_name], model.input_spec.name
        return lambda x: session.run(output, {name: x})[0]

    def acquire(self) -> None:
        self.users += 1

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self._idle is not None:
            self._idle.set()

    async def retire(self) -> None:
        """Wait for the requests still holding this version, then close its batcher."""
        if self.users:
            self._idle = asyncio.Event()
            await self._idle.wait()
        await self.batcher.close()


def load_version(registry: Any, version: ModelVersion, opts: ServeOptions) -> list[InferenceModel]:
    """``instances`` private sessions of ``version`` (sha256 verified by ``Registry.load``), each warmed by one run."""
    options = dict(opts.runtime)
    if opts.instances > 1 and "intra_op_threads" not in options:
        from ..runtime import physical_cores

        options["intra_op_threads"] = max(1, physical_cores() // opts.instances)
    models = [registry.load(version, provider=opts.provider, cache=False, **options) for _ in range(opts.instances)]
    for model in models:
        warm = np.zeros(_warm_shape(model), dtype=np.dtype(model.input_spec.dtype))
        model.session.run([model.output_name], {model.input_spec.name: warm})
    return models


def _warm_shape(model: InferenceModel) -> tuple[int, ...]:
    transform = model.transform()
    size = transform.crop or ((transform.resize, transform.resize) if transform.resize else (224, 224))
    shape = list(model.input_spec.shape)
    out = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, int) and dim > 0:
            out.append(dim)
        elif axis == 0:
            out.append(1)
        elif len(shape) == 4 and axis >= 2:
            out.append(int(size[axis - 2]))
        else:
            out.append(3)
    return tuple(out)


def same_signature(a: Signature, b: Signature) -> bool:
    return a.to_dict() == b.to_dict()


class ServedModel:
    """One reference given to ``zoo serve``: its OIP name is the registry model name."""

    def __init__(self, ref: str, loaded: Loaded, metrics: Metrics):
        parsed = parse_ref(ref)
        self.ref = ref
        self.name = parsed.name
        self.movable = parsed.alias is not None or parsed.is_latest
        self.current = loaded
        self.signature = loaded.version.signature
        self.metrics = metrics
        self.refused: set[str] = set()
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Future] = set()
        metrics.serving.labels(model=self.name, sha256=loaded.version.sha256).set(loaded.version.version)

    def pick(self, version: str | None) -> Loaded:
        """The loaded version a request names (None or "": the current one); NotFound for any other."""
        loaded = self.current
        if version not in (None, "") and version != str(loaded.version.version):
            raise NotFound(f"Expected version {loaded.version.version} of model {self.name!r} (the one served for "
                           f"{self.ref}). Received: version {version[:20]!r}",
                           hint=f"omit the version, or ask for /v2/models/{self.name}/versions/{loaded.version.version}")
        return loaded

    async def refresh(self, resolve: Callable[[], Any], load: Callable[[ModelVersion], Any], opts: ServeOptions) -> bool:
        """Swap to what the reference means now, if it moved; True when it swapped. ``resolve`` and ``load``
        are awaitables' factories running the registry calls off the event loop."""
        if not self.movable:
            return False
        async with self._lock:
            version: ModelVersion = await resolve()
            old = self.current
            if version.sha256 == old.version.sha256 or version.sha256 in self.refused:
                return False
            if not same_signature(version.signature, self.signature):
                self.refused.add(version.sha256)
                self.metrics.refused_swaps.labels(model=self.name).inc()
                log.error("refused to serve %s for %s: its signature %s differs from the served %s; %s keeps serving",
                          version.ref, self.ref, _describe(version.signature), _describe(self.signature), old.version.ref)
                return False
            try:
                models = await load(version)
            except Exception as exc:  # a corrupt artifact, a provider failure: keep serving the old one
                self.refused.add(version.sha256)
                self.metrics.refused_swaps.labels(model=self.name).inc()
                log.error("refused to serve %s for %s: %s; %s keeps serving", version.ref, self.ref, exc, old.version.ref)
                return False
            new = Loaded(version, models, opts, self.metrics)
            new.batcher.start()
            self.current = new  # the atomic switch: requests from now on get the new version
            self.metrics.swaps.labels(model=self.name).inc()
            self.metrics.serving.remove(self.name, old.version.sha256)
            self.metrics.serving.labels(model=self.name, sha256=version.sha256).set(version.version)
            log.info("%s now serves %s (sha256 %s), was %s", self.ref, version.ref, version.sha256, old.version.ref)
            retiring = asyncio.ensure_future(old.retire())
            self._retiring.add(retiring)  # a reference until done: the loop keeps only weak ones
            retiring.add_done_callback(self._retiring.discard)
            return True

    def metadata(self, loaded: Loaded) -> dict[str, Any]:
        """The OIP model metadata, plus a ``zoo`` object naming the exact version and sha256 that answers."""
        from ._tensors import oip_shape

        v = loaded.version
        return {
            "name": self.name, "versions": [str(v.version)], "platform": "onnxruntime_onnx",
            "inputs": [{"name": t.name, "datatype": datatype_of(t.dtype), "shape": oip_shape(t.shape)}
                       for t in self.signature.inputs],
            "outputs": [{"name": t.name, "datatype": datatype_of(t.dtype), "shape": oip_shape(t.shape)}
                        for t in self.signature.outputs],
            "zoo": {"ref": self.ref, "version": v.version, "sha256": v.sha256, "provider": loaded.model.provider.name,
                    "labels": v.labels is not None, "max_batch_size": loaded.batcher.max_batch_size},
        }


def _describe(sig: Signature) -> str:
    return ", ".join(f"{t.name} {t.dtype} {list(t.shape)}" for t in (*sig.inputs, *sig.outputs))


def model_input(loaded: Loaded, inputs: list[InputTensor], max_pixels: int | None) -> np.ndarray:
    """The request's one input as the batch the model takes: images decoded and transformed, FP16/FP64 cast
    to the model's float type, everything else judged by :func:`zoo.runtime.check_input` (``zoo run``'s wording)."""
    from ..runtime import check_input

    model = loaded.model
    spec = model.input_spec
    if len(inputs) != 1:
        raise InvalidInput(f"Expected one input, {spec.name!r}. Received: {len(inputs)} "
                           f"({', '.join(repr(t.name) for t in inputs[:8])})",
                           hint="send the batch as one input (FP32 NCHW, or BYTES holding encoded images)")
    (tensor,) = inputs
    if tensor.name != spec.name:
        raise InvalidInput(f"Expected an input named {spec.name!r}. Received: {tensor.name[:64]!r}",
                           hint=f"GET /v2/models/{loaded.version.name} lists the inputs")
    value = tensor.value
    if isinstance(value, list):  # BYTES: encoded images, in order
        from ..transforms import preprocess

        x = preprocess(value, loaded.transform, max_pixels=max_pixels)
    else:
        x = value
        want = np.dtype(spec.dtype)
        if x.dtype.kind == "f" and want.kind == "f" and x.dtype != want:
            x = x.astype(want)  # FP16 <-> FP32 (and FP64): the model's float type
    return check_input(x, spec, version=loaded.version)


def output_tensors(loaded: Loaded, rows: np.ndarray, request: InferRequest) -> list[OutputTensor]:
    """The requested outputs (all by default): raw logits, or with ``classification`` the top-k as
    ``"probability:index:label"`` BYTES elements, the way Triton's classification extension answers."""
    name = loaded.model.output_name
    wanted = request.outputs or [RequestedOutput(name)]
    out = []
    for req in wanted:
        if req.name != name:
            raise InvalidInput(f"Expected a requested output named {name!r}. Received: {req.name[:64]!r}",
                               hint=f"GET /v2/models/{loaded.version.name} lists the outputs")
        binary = request.binary if req.binary is None else req.binary
        if req.classification:
            from ..labels import top_k

            labels = loaded.version.labels
            top = top_k(rows, labels, k=req.classification)
            cells = [[(f"{p.probability:.6f}:{p.class_id}" + (f":{p.label}" if p.label is not None else "")).encode()
                      for p in sample] for sample in top]
            array = np.empty((len(cells), len(cells[0]) if cells else 0), dtype=object)
            for i, sample_cells in enumerate(cells):
                array[i, :] = sample_cells
            out.append(OutputTensor(name, "BYTES", list(array.shape), array, binary))
        else:
            out.append(OutputTensor(name, datatype_of(rows.dtype), list(rows.shape), rows, binary))
    return out


def classification_count(name: str, value: Any) -> int | None:
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"Expected the classification parameter of output {name!r} to be a positive integer "
                           f"(top-k). Received: {str(value)[:20]!r}", hint="e.g. \"parameters\": {\"classification\": 5}")
    return value


__all__ = ["DATATYPES", "InferRequest", "InferResponse", "InputTensor", "Loaded", "OutputTensor", "RequestedOutput",
           "ServeOptions", "ServedModel", "classification_count", "load_version", "model_input", "output_tensors",
           "same_signature"]
