"""The ONNX Runtime executor: provider choice, cached sessions, input checks, I/O binding.

Decisions that change results or timings, in one place:

- **Providers**: TensorRT, then CUDA, then CPU, keeping only those that really load here.
  ``onnxruntime-gpu`` lists CUDA even where its libraries or the GPU are missing, so each
  provider is *probed* once per process (a session on a one-node in-memory model, ORT's logs
  captured, not printed) and the choice says in one line why faster providers were skipped.
- **Graph optimisation**: ``ORT_ENABLE_ALL`` on every provider (ORT applies the hardware-specific
  fusions only to the nodes its own CPU/CUDA kernels run, so it is safe under TensorRT too).
- **CPU threads**: one intra-op thread per *physical* core this process may use; SMT siblings
  share the FMA units, and oversubscribing them makes latency noisy rather than lower.
- **cuDNN conv algorithm search**: ``HEURISTIC`` by default: ``EXHAUSTIVE`` times every algorithm
  on the first run of every new input shape (seconds for ResNet-50), a latency spike an app
  with varying batch sizes pays again and again. ``zoo bench`` asks for ``EXHAUSTIVE``, which
  the warm-up amortises and which gives the best steady state.
- **TF32**: off by default (``use_tf32=False``): TF32 convs carry ~1e-3 relative error, which
  would break parity against the fp32 native model. Turn it on for throughput.
- **Input dtype**: the artifact contract is float32. Other float dtypes (float64 from numpy
  arithmetic, float16) are cast with a ``UserWarning`` (lossless for the fp32 model; the
  warning says the copy costs time). Integer, bool and other dtypes are refused with
  :class:`~zoo.errors.InvalidInput`: uint8 pixels are un-normalised images, and casting
  them would silently give garbage logits.
- **Non-finite inputs**: NaN/Inf in a batch is a ``RuntimeWarning`` naming the count, not an
  error: the other samples' logits are still valid.

Importing this module imports neither onnx nor onnxruntime; they load on first use.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInput, InvalidModelFile, NotFound, ProviderUnavailable
from .records import OUTPUT_NAME, ModelVersion, Signature, TensorSpec

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("zoo.runtime")

PREFERENCE: tuple[str, ...] = ("tensorrt", "cuda", "cpu")
EXECUTION_PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ALIASES = {"trt": "tensorrt", "gpu": "cuda", "auto": None}
NOT_IN_BUILD = "not in this onnxruntime build"

_GRAPH_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_CONV_SEARCH = ("HEURISTIC", "EXHAUSTIVE", "DEFAULT")
_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16", "tensor(int64)": "int64", "tensor(int32)": "int32",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RuntimeOptions:
    """Keyword options of :class:`InferenceModel` (and ``registry.load``). Hashable: part of the cache key."""

    intra_op_threads: int | None = None  # None: physical cores available to this process
    graph_optimization: str = "all"  # disable | basic | extended | all
    optimized_model_path: str | None = None  # write the optimised graph here (inspect it with Netron)
    cudnn_conv_algo_search: str = "HEURISTIC"  # HEURISTIC | EXHAUSTIVE | DEFAULT (see module docstring)
    use_tf32: bool = False  # CUDA: TF32 convs/matmuls; off for parity
    device_id: int = 0  # CUDA / TensorRT device
    trt_fp16: bool = False  # TensorRT: allow fp16 kernels (changes results)
    trt_cache_dir: str | None = None  # TensorRT: cache built engines here (first load builds them: minutes)
    log_severity: int = 3  # ORT log level for the session: 0 verbose .. 3 error, 4 fatal

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> "RuntimeOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(
                f"Unknown runtime option(s): {', '.join(map(repr, unknown))}",
                hint=f"valid options: {', '.join(sorted(known))}",
            )
        values = dict(options)
        for key in ("optimized_model_path", "trt_cache_dir"):
            if values.get(key) is not None:
                values[key] = os.fspath(values[key])
        if isinstance(values.get("cudnn_conv_algo_search"), str):  # one spelling: one cache entry
            values["cudnn_conv_algo_search"] = values["cudnn_conv_algo_search"].upper()
        opts = cls(**values)
        if opts.graph_optimization not in _GRAPH_LEVELS:
            raise InvalidInput(
                f"Expected graph_optimization in {', '.join(_GRAPH_LEVELS)}. Received: {opts.graph_optimization!r}"
            )
        if opts.cudnn_conv_algo_search not in _CONV_SEARCH:
            raise InvalidInput(
                f"Expected cudnn_conv_algo_search in {', '.join(_CONV_SEARCH)}. Received: {opts.cudnn_conv_algo_search!r}"
            )
        if opts.intra_op_threads is not None and (not isinstance(opts.intra_op_threads, int) or opts.intra_op_threads < 1):
            raise InvalidInput(f"Expected intra_op_threads >= 1 (or None). Received: {opts.intra_op_threads!r}")
        if opts.log_severity not in range(5):
            raise InvalidInput(f"Expected log_severity between 0 and 4. Received: {opts.log_severity!r}")
        return opts


def physical_cores() -> int:
    """Physical cores this process may run on: psutil's count, capped by the CPU affinity mask."""
    import psutil

    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = physical
    return max(1, min(physical, allowed))


# --------------------------------------------------------------------------- providers


@dataclass(frozen=True)
class ProviderChoice:
    """Which execution provider runs, the ORT provider list behind it, and why (one line)."""

    name: str  # "tensorrt" | "cuda" | "cpu"
    providers: tuple[str, ...]  # ORT names in precedence order, e.g. ("CUDAExecutionProvider", "CPUExecutionProvider")
    reason: str  # "provider: cpu (tensorrt: not in this onnxruntime build; cuda: not in this onnxruntime build)"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "providers": list(self.providers), "reason": self.reason}


def _tiny_model() -> bytes:
    """A one-node float graph: enough to make an execution provider load its libraries and run."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "zoo-probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@contextlib.contextmanager
def _quiet_ort(messages: list[str]) -> Iterator[None]:
    """Capture ORT's logs (instead of a wall of errors on stderr), its Python warnings and prints."""
    import onnxruntime as ort

    hook = getattr(ort, "set_default_logger_callback", None)
    if hook is not None:
        hook(lambda severity, category, logid, location, message: messages.append(str(message)), 3)
    else:
        ort.set_default_logger_severity(4)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        if hook is not None:
            hook(None, 2)
        ort.set_default_logger_severity(2)  # ORT's own default (warning)


_preload_lock = threading.Lock()
_preloaded = False


def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from pip's nvidia-* packages, so users need no LD_LIBRARY_PATH (ORT >= 1.21)."""
    global _preloaded
    import onnxruntime as ort

    with _preload_lock:
        if _preloaded:
            return
        _preloaded = True
        preload = getattr(ort, "preload_dlls", None)
        if preload is None:
            return
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                preload()
        except Exception as exc:  # a missing library is reported by the probe that needs it
            log.debug("onnxruntime.preload_dlls() failed: %s", exc)


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= 160 else line[:157] + "..."


@functools.cache
def probe(name: str) -> str | None:
    """Why execution provider ``name`` cannot run here, or None if it can. Cached per process."""
    import onnxruntime as ort

    ep = EXECUTION_PROVIDERS[name]
    if ep not in ort.get_available_providers():
        return NOT_IN_BUILD
    if name == "cpu":
        return None
    _preload_cuda_libraries()
    messages: list[str] = []
    try:
        with _quiet_ort(messages):
            so = ort.SessionOptions()
            so.log_severity_level = 3
            session = ort.InferenceSession(_tiny_model(), so, providers=[ep, "CPUExecutionProvider"], enable_fallback=0)
            active = session.get_providers()
            if ep in active:
                session.run(None, {"x": np.ones(1, dtype=np.float32)})
    except Exception as exc:
        return f"listed by onnxruntime but failed to load ({_first_line(str(exc))})"
    if ep in active:
        return None
    detail = next((_first_line(m) for m in messages if m.strip()), "")
    return "listed by onnxruntime but failed to load" + (f" ({detail})" if detail else "")


def reset_probes() -> None:
    """Forget the per-process probe results and announced choices (tests; after installing CUDA libraries)."""
    probe.cache_clear()
    _announced.clear()


def provider_report() -> dict[str, str | None]:
    """Every known provider and why it cannot run here (None: usable). Preference order."""
    return {name: probe(name) for name in PREFERENCE}


def _hint(name: str, why: str) -> str:
    if name == "cpu":
        return "reinstall onnxruntime: pip install --force-reinstall onnxruntime"
    if why == NOT_IN_BUILD:
        gpu = ("pip uninstall -y onnxruntime && pip install onnxruntime-gpu "
               "(same import name: keep only one of the two)")
        return gpu + ("; TensorRT also needs its libraries: pip install tensorrt" if name == "tensorrt" else "")
    if name == "tensorrt":
        return ("check that the TensorRT 10 libraries load (pip install tensorrt) and that CUDA works "
                "(`zoo run REF --provider cuda`); or let zoo choose with no --provider")
    return ("check that `nvidia-smi` sees a GPU and that the CUDA 12 and cuDNN 9 libraries are installed "
            "(pip install 'onnxruntime-gpu[cuda,cudnn]' brings them); or use --provider cpu")


def normalize_provider(provider: str | None) -> str | None:
    """``None``/"auto" -> None (choose); "gpu" -> "cuda"; "trt" -> "tensorrt"; unknown -> InvalidInput."""
    if provider is None:
        return None
    key: str | None = str(provider).strip().lower()
    assert key is not None
    if key.endswith("executionprovider"):  # accept ORT's own names too
        key = next((k for k, v in EXECUTION_PROVIDERS.items() if v.lower() == key), key)
    key = _ALIASES.get(key, key)
    if key is not None and key not in EXECUTION_PROVIDERS:
        raise InvalidInput(
            f"Expected a provider in {', '.join(PREFERENCE)} (or none, to choose). Received: {provider!r}"
        )
    return key


def _ort_providers(name: str) -> tuple[str, ...]:
    if name == "tensorrt":
        rest = ("CUDAExecutionProvider",) if probe("cuda") is None else ()
        return ("TensorrtExecutionProvider", *rest, "CPUExecutionProvider")
    if name == "cuda":
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    return ("CPUExecutionProvider",)


def choose_provider(provider: str | None = None) -> ProviderChoice:
    """The provider to run on: ``provider`` if usable (else ProviderUnavailable), or the fastest usable one."""
    requested = normalize_provider(provider)
    if requested is not None:
        why = probe(requested)
        if why is not None:
            usable = [p for p in PREFERENCE if probe(p) is None]
            raise ProviderUnavailable(
                f"Execution provider {requested!r} cannot run here: {why}. Usable here: {', '.join(usable) or 'none'}",
                hint=_hint(requested, why),
            )
        return ProviderChoice(requested, _ort_providers(requested), f"provider: {requested} (forced)")
    skipped: list[str] = []
    for name in PREFERENCE:
        why = probe(name)
        if why is None:
            detail = f" ({'; '.join(skipped)})" if skipped else " (fastest available)"
            return ProviderChoice(name, _ort_providers(name), f"provider: {name}{detail}")
        skipped.append(f"{name}: {why}")
    raise ProviderUnavailable(
        "No ONNX Runtime execution provider can run here (" + "; ".join(skipped) + ")",
        hint=_hint("cpu", NOT_IN_BUILD),
    )


_announced: set[str] = set()


def _announce(choice: ProviderChoice) -> None:
    """Log the provider line once per process; a warning only when a listed faster provider failed."""
    if choice.reason in _announced:
        return
    _announced.add(choice.reason)
    level = logging.WARNING if "failed to load" in choice.reason else logging.INFO
    log.log(level, choice.reason)


# --------------------------------------------------------------------------- sessions


def _provider_options(ep: str, opts: RuntimeOptions) -> dict[str, Any]:
    if ep == "CUDAExecutionProvider":
        return {
            "device_id": opts.device_id,
            "cudnn_conv_algo_search": opts.cudnn_conv_algo_search,
            "use_tf32": int(opts.use_tf32),
            "do_copy_in_default_stream": 1,
        }
    if ep == "TensorrtExecutionProvider":
        trt: dict[str, Any] = {"device_id": opts.device_id, "trt_fp16_enable": int(opts.trt_fp16)}
        if opts.trt_cache_dir:
            trt.update(trt_engine_cache_enable=1, trt_engine_cache_path=opts.trt_cache_dir,
                       trt_timing_cache_enable=1, trt_timing_cache_path=opts.trt_cache_dir)
        return trt
    return {}


def _create_session(path: Path, choice: ProviderChoice, opts: RuntimeOptions) -> "onnxruntime.InferenceSession":
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _GRAPH_LEVELS[opts.graph_optimization])
    so.intra_op_num_threads = opts.intra_op_threads or physical_cores()
    so.log_severity_level = opts.log_severity
    if opts.optimized_model_path:
        Path(opts.optimized_model_path).parent.mkdir(parents=True, exist_ok=True)
        so.optimized_model_filepath = opts.optimized_model_path
    providers = [(ep, _provider_options(ep, opts)) for ep in choice.providers]
    if choice.name != "cpu":
        _preload_cuda_libraries()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ort.InferenceSession(os.fspath(path), so, providers=providers, enable_fallback=0)
    except Exception as exc:
        raise InvalidModelFile(
            f"ONNX Runtime cannot load {os.fspath(path)!r} on {choice.name}: {_first_line(str(exc))}",
            hint="check the file (`zoo register` runs onnx.checker), or re-export it; --debug shows ORT's full error",
        ) from exc


_CACHE_SIZE = 8  # sessions hold the weights: VGG19 is ~0.55 GB each
_cache: "OrderedDict[tuple, Any]" = OrderedDict()
_cache_lock = threading.Lock()


def clear_session_cache() -> None:
    """Drop every cached session (frees their memory once no InferenceModel holds them)."""
    with _cache_lock:
        _cache.clear()


def _session(path: Path, sha256: str | None, choice: ProviderChoice, opts: RuntimeOptions, *, cache: bool):
    """A session from the per-process cache, keyed by (file, its content identity, provider, options)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFound(f"Model file not found: {os.fspath(path)!r}",
                       hint="give the path of an .onnx file, or a registry reference to zoo.load()") from None
    key = (os.fspath(path.resolve()), sha256, st.st_mtime_ns, st.st_size, choice.providers, opts)
    if cache:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    session = _create_session(path, choice, opts)
    if cache:
        with _cache_lock:
            _cache[key] = session
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return session


def _signature(session) -> Signature:
    def spec(node) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else (d or None) for d in (node.shape or ()))
        return TensorSpec(name=node.name, dtype=_ORT_DTYPES.get(node.type, node.type), shape=shape)

    return Signature(inputs=tuple(spec(n) for n in session.get_inputs()), outputs=tuple(spec(n) for n in session.get_outputs()))


# --------------------------------------------------------------------------- input checks


def _fmt_shape(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _preprocess_hint(version: ModelVersion | None) -> str:
    pre = version.preprocessing if version is not None else None
    if pre is None:
        return "convert with x.astype(np.float32) and normalise the way the model was trained"
    return (f"convert and normalise: x.astype(np.float32) * {pre.scale:.6g}, then per channel subtract "
            f"mean {tuple(pre.mean)} and divide by std {tuple(pre.std)}")


def check_input(images: Any, spec: TensorSpec, *, version: ModelVersion | None = None, stacklevel: int = 2) -> np.ndarray:
    """``images`` as a C-contiguous array of ``spec``'s dtype, or InvalidInput saying what is wrong and the fix.

    Runs before ORT sees the batch, so that a wrong layout is an explanation, not an ORT stack trace.
    ``stacklevel`` points warnings at the caller's line (as in ``warnings.warn``).
    """
    expected = tuple(spec.shape)
    rank = len(expected)
    if not isinstance(images, np.ndarray):
        try:
            images = np.asarray(images)
        except Exception as exc:
            raise InvalidInput(f"Expected a numpy array of images. Received: {type(images).__name__}",
                               hint=f"pass np.asarray(batch) with shape {_fmt_shape(expected)}") from exc
    shape = tuple(images.shape)
    try:
        want: np.dtype | None = np.dtype(spec.dtype)
    except TypeError:  # bfloat16 and friends: let ORT judge
        want = None

    # Layout and rank first: a wrong layout usually comes with the right dtype.
    channels = expected[1] if rank == 4 and isinstance(expected[1], int) else None
    if images.ndim != rank:
        if rank == 4 and images.ndim == 3 and channels is not None and shape[0] == channels:
            raise InvalidInput(f"Expected a batch {_fmt_shape(expected)} (NCHW). Received one image of shape {shape}",
                               hint="add the batch dimension: x[None] (or np.expand_dims(x, 0))")
        if rank == 4 and images.ndim == 3 and channels is not None and shape[-1] == channels:
            raise InvalidInput(f"Expected a batch {_fmt_shape(expected)} (NCHW). Received one HWC image of shape {shape}",
                               hint="transpose to CHW and add the batch dimension: x.transpose(2, 0, 1)[None]")
        raise InvalidInput(f"Expected a {rank}-d array {_fmt_shape(expected)}. Received shape {shape} ({images.ndim}-d)",
                           hint="see `zoo show REF` for the input signature")
    if rank == 4 and channels is not None and shape[1] != channels and shape[-1] == channels:
        raise InvalidInput(
            f"Expected {_fmt_shape(expected)} (NCHW). Received {shape}: looks like NHWC (channels last)",
            hint="transpose with x.transpose(0, 3, 1, 2)",
        )
    if shape and shape[0] == 0:
        raise InvalidInput(f"Received an empty batch: shape {shape}", hint="give at least one image")
    for axis, (want_dim, got) in enumerate(zip(expected, shape, strict=True)):
        if not isinstance(want_dim, int) or want_dim == got:
            continue
        if rank == 4 and axis in (2, 3) and isinstance(expected[2], int) and isinstance(expected[3], int):
            h, w = expected[2], expected[3]
            raise InvalidInput(
                f"This artifact has a fixed input size H x W = {h} x {w}. Received {shape[2]} x {shape[3]} (shape {shape})",
                hint=f"resize the images to {h}x{w}, or re-export with --input-size {shape[2]}",
            )
        what = {0: "batch size", 1: "channels"}.get(axis, f"size {want_dim} at axis {axis}")
        raise InvalidInput(f"Expected {what} {want_dim} at axis {axis} of {_fmt_shape(expected)}. Received shape {shape}",
                           hint="see `zoo show REF` for the input signature")

    if want is not None and images.dtype != want:
        if images.dtype.kind == "f" and want.kind == "f":
            warnings.warn(
                f"Model expects {want.name} input; received {images.dtype.name}: casting "
                f"(a copy on every call; pass x.astype(np.{want.name}) to skip it)",
                UserWarning, stacklevel=stacklevel,
            )
        else:
            hint = _preprocess_hint(version) if images.dtype.kind in "ui" else f"x.astype(np.{want.name})"
            raise InvalidInput(f"Expected {want.name} images. Received dtype {images.dtype.name}", hint=hint)
        images = images.astype(want)

    if images.dtype.kind == "f" and not np.isfinite(images).all():
        nan = int(np.isnan(images).sum())
        inf = int(np.isinf(images).sum())
        bad = int((~np.isfinite(images.reshape(shape[0], -1))).any(axis=1).sum()) if images.ndim else 1
        warnings.warn(
            f"Input batch contains {nan} NaN and {inf} Inf value(s), in {bad} of {shape[0] if shape else 1} "
            f"sample(s): their logits will be NaN or meaningless",
            RuntimeWarning, stacklevel=stacklevel,
        )
    return np.ascontiguousarray(images)


# --------------------------------------------------------------------------- the model


class InferenceModel:
    """An ONNX artifact ready to run: provider chosen, session cached, inputs checked.

    ``InferenceModel(path)`` picks the fastest usable provider; ``provider="cpu"|"cuda"|"tensorrt"``
    forces one (ProviderUnavailable if it cannot run here). Options: :class:`RuntimeOptions`,
    plus ``cache=False`` for a private session (benchmarks; one-off checks of large models).
    """

    def __init__(self, path: str | os.PathLike[str], *, provider: str | None = None,
                 version: ModelVersion | None = None, **options: Any):
        cache = bool(options.pop("cache", True))
        self.path = Path(path)
        self.version = version
        self.options = RuntimeOptions.parse(options)
        choice = choose_provider(provider)
        self.session = _session(self.path, version.sha256 if version else None, choice, self.options, cache=cache)
        active = self.session.get_providers()
        if choice.providers[0] not in active:  # loaded for the probe, but not for this model
            if provider is not None:
                raise ProviderUnavailable(
                    f"Execution provider {choice.name!r} could not load {os.fspath(self.path)!r} (ORT fell back to {active})",
                    hint=_hint(choice.name, "failed"),
                )
            actual = next((k for k, v in EXECUTION_PROVIDERS.items() if v == active[0]), active[0])
            choice = ProviderChoice(actual, tuple(active), f"provider: {actual} ({choice.name}: failed to load this model)")
        self.provider = choice
        _announce(choice)
        self.signature = _signature(self.session)
        if not self.signature.inputs:
            raise InvalidModelFile(f"{os.fspath(self.path)!r} has no graph inputs", hint="export it again")
        names = [o.name for o in self.signature.outputs]
        self.output_name = OUTPUT_NAME if OUTPUT_NAME in names else names[0]

    @property
    def input_spec(self) -> TensorSpec:
        return self.signature.inputs[0]

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
        return self.session.run([self.output_name], {self.input_spec.name: x})[0]

    def bind(self, images: np.ndarray) -> "BoundRun":
        """Pin ``images`` (and the outputs) on the provider's device for repeated runs: see :class:`BoundRun`."""
        return BoundRun(self, self.check(images))

    def __repr__(self) -> str:
        what = self.version.ref if self.version is not None else os.fspath(self.path)
        return f"InferenceModel({what!r}, provider={self.provider.name!r})"


class BoundRun:
    """Repeated runs at one input shape with I/O binding: buffers live on the device between runs.

    On CUDA the input is copied host->device once (``update`` copies a new batch in place) and the
    logits stay on the GPU until ``outputs()``; on CPU it saves the per-call allocations.

        run = model.bind(batch)
        for _ in range(100):
            run.run()
        logits = run.outputs()
    """

    def __init__(self, model: InferenceModel, images: np.ndarray):
        import onnxruntime as ort

        self.model = model
        self.shape = tuple(images.shape)
        self.device = "cuda" if model.provider.name in ("cuda", "tensorrt") else "cpu"
        device_id = model.options.device_id if self.device == "cuda" else 0
        # On the CPU an OrtValue shares the array's memory: bind a private copy, so that update()
        # never writes into the caller's array.
        self._host = np.array(images, copy=True) if self.device == "cpu" else images
        self._input = ort.OrtValue.ortvalue_from_numpy(self._host, self.device, device_id)
        self._binding = model.session.io_binding()
        self._binding.bind_ortvalue_input(model.input_spec.name, self._input)
        self._binding.bind_output(model.output_name, self.device, device_id)
        self._output_bound = False

    def update(self, images: np.ndarray) -> None:
        """Copy a new batch of the same shape into the bound input buffer."""
        x = self.model.check(images)
        if tuple(x.shape) != self.shape:
            raise InvalidInput(f"Expected a batch of shape {self.shape} (the shape bound). Received {tuple(x.shape)}",
                               hint="call model.bind(images) again for a new shape")
        self._input.update_inplace(x)

    def run(self) -> None:
        """Run once; outputs stay where the provider put them."""
        self.model.session.run_with_iobinding(self._binding)
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


__all__ = [
    "InferenceModel", "BoundRun", "ProviderChoice", "RuntimeOptions", "choose_provider", "probe",
    "provider_report", "reset_probes", "clear_session_cache", "check_input", "physical_cores",
    "normalize_provider", "runtime_versions", "PREFERENCE", "EXECUTION_PROVIDERS",
]
