"""Execution providers: which ones really load here, which one runs, and why, in one line.

Invariant: :func:`probe` is the only place that decides whether a provider can run; it is cached
per process, prints nothing, and its reason for a GPU provider that failed to load names the
missing library and the pip package that ships it whenever the error text or the loader tells.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInput, ProviderUnavailable
from . import _libraries, _ort_log

log = logging.getLogger("zoo.runtime")

PREFERENCE: tuple[str, ...] = ("tensorrt", "cuda", "cpu")
EXECUTION_PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
GPU_PROVIDERS = ("tensorrt", "cuda")
_ALIASES = {"trt": "tensorrt", "gpu": "cuda", "auto": None}
NOT_IN_BUILD = "not in this onnxruntime build"
FAILED = "listed by onnxruntime but failed to load"


@dataclass(frozen=True)
class ProviderChoice:
    """Which execution provider runs, the ORT provider list behind it, and why (one line)."""

    name: str  # "tensorrt" | "cuda" | "cpu"
    providers: tuple[str, ...]  # ORT names in precedence order, e.g. ("CUDAExecutionProvider", "CPUExecutionProvider")
    reason: str  # "provider: cpu (tensorrt: not in this onnxruntime build; cuda: not in this onnxruntime build)"

    @property
    def device(self) -> str:
        """Where the model's tensors live: "cuda" for the GPU providers, else "cpu"."""
        return "cuda" if self.name in GPU_PROVIDERS else "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "providers": list(self.providers), "reason": self.reason, "device": self.device}


def _tiny_model() -> bytes:
    """A one-node float graph: enough to make an execution provider load its libraries and run."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "zoo-probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


_preload_lock = threading.Lock()
_preloaded: list[bool] = []


def preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from pip's nvidia-* packages, so users need no LD_LIBRARY_PATH (ORT >= 1.21)."""
    import onnxruntime as ort

    with _preload_lock:
        if _preloaded:
            return
        _preloaded.append(True)
        preload = getattr(ort, "preload_dlls", None)
        if preload is None:
            return
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                preload()
        except Exception as exc:  # a missing library is reported by the probe that needs it
            log.debug("onnxruntime.preload_dlls() failed: %s", exc)


def failure_reason(name: str, texts: list[str]) -> str:
    """The skip reason of GPU provider ``name`` from everything ORT said when it failed to load."""
    diagnosis = _libraries.diagnose(name, texts, cuda_major=_libraries.ort_cuda_major())
    if diagnosis is not None:
        return f"{FAILED}: {diagnosis.text()}"
    detail = next((_libraries.clean_error(t) for t in texts if t and t.strip()), "")
    return FAILED + (f" ({detail})" if detail else "")


@functools.cache
def probe(name: str) -> str | None:
    """Why execution provider ``name`` cannot run here, or None if it can. Cached per process."""
    import onnxruntime as ort

    ep = EXECUTION_PROVIDERS[name]
    if ep not in ort.get_available_providers():
        return NOT_IN_BUILD
    if name == "cpu":
        return None
    preload_cuda_libraries()
    printed = io.StringIO()
    active: list[str] = []
    error: str | None = None
    with _ort_log.silenced() as messages:
        try:
            with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
                warnings.simplefilter("always")
                so = ort.SessionOptions()
                so.log_severity_level = 3
                session = ort.InferenceSession(_tiny_model(), so, providers=[ep, "CPUExecutionProvider"],
                                               enable_fallback=0)
                active = session.get_providers()
                if ep in active:
                    session.run(None, {"x": np.ones(1, dtype=np.float32)})
        except Exception as exc:
            error = str(exc)
            caught = []
    if error is None and ep in active:
        return None
    texts = ([error] if error else []) + [text for _, text in messages] + [str(w.message) for w in caught]
    texts += printed.getvalue().splitlines()
    return failure_reason(name, texts)


def reset_probes() -> None:
    """Forget the per-process probe results and announced choices (tests; after installing CUDA libraries)."""
    probe.cache_clear()
    _announced.clear()


def provider_report() -> dict[str, str | None]:
    """Every known provider and why it cannot run here (None: usable). Preference order."""
    return {name: probe(name) for name in PREFERENCE}


def hint(name: str, why: str) -> str:
    """How to make provider ``name`` usable, given why it is not."""
    if name == "cpu":
        return "reinstall onnxruntime: pip install --force-reinstall onnxruntime"
    if why == NOT_IN_BUILD:
        gpu = ("pip uninstall -y onnxruntime && pip install onnxruntime-gpu "
               "(same import name: keep only one of the two)")
        return gpu + ("; TensorRT also needs its libraries: pip install tensorrt" if name == "tensorrt" else "")
    specific = ""
    if "pip install '" in why:
        package = why.split("pip install '", 1)[1].split("'", 1)[0]
        specific = f"pip install '{package}'; "
    if name == "tensorrt":
        return (specific + "check that the TensorRT 10 libraries load (pip install tensorrt) and that CUDA works "
                "(`zoo run REF --provider cuda`); or let zoo choose with no --provider")
    return (specific + "check that `nvidia-smi` sees a GPU and that the CUDA and cuDNN 9 libraries are installed "
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
                hint=hint(requested, why),
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
        hint=hint("cpu", NOT_IN_BUILD),
    )


_announced: set[str] = set()


def announce(choice: ProviderChoice) -> None:
    """Log the provider line once per process; a warning only when a listed faster provider failed."""
    if choice.reason in _announced:
        return
    _announced.add(choice.reason)
    level = logging.WARNING if "failed to load" in choice.reason else logging.INFO
    log.log(level, choice.reason)


__all__ = [
    "EXECUTION_PROVIDERS", "GPU_PROVIDERS", "NOT_IN_BUILD", "PREFERENCE", "ProviderChoice", "announce",
    "choose_provider", "failure_reason", "hint", "normalize_provider", "preload_cuda_libraries", "probe",
    "provider_report", "reset_probes",
]
