"""Engines: ONNX Runtime, and the framework that built the artifact, on one device at one precision.

Invariant: the native engine of a benchmark runs on the device ONNX Runtime runs on (``cuda`` for
the CUDA and TensorRT providers, else ``cpu``), at the artifact's precision (fp32 for an int8
artifact: frameworks have no native int8 path here, and the engine says so). A framework that
cannot run on that device is refused with :class:`~zoo.errors.PluginUnavailable`, never timed
elsewhere: a speed-up across devices is a wrong number. Every engine's ``info`` names its
device, precision and I/O, and the core reaches the framework only through ``zoo.plugins``.
GPU memory: ORT's figure is this process' total (nvidia-smi); a native runner may report its
framework's own peak through ``runner.device_memory_mb()``.

A native runner may offer ``runner.bind(images)`` returning a zero-argument callable that keeps
the batch on the device and waits for the result (as ONNX Runtime's I/O binding does); with
device I/O the bench uses it, else it times ``runner(images)`` (host copies included).
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, PluginUnavailable
from ..records import ModelVersion
from ._memory import gpu_memory_mb, memory_window
from ._timing import Runner

NATIVE_PRECISIONS = ("fp32", "fp16")


@dataclass
class Engine:
    """Something that runs a batch: ONNX Runtime, or a native framework through its plugin."""

    name: str  # "onnxruntime", "torch", "tensorflow"
    prepare: Callable[[np.ndarray], Runner]  # bind a batch; returns a zero-argument runner
    load_s: float
    load_rss_mb: float
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able facts about the engine
    model: Any = None  # the loaded model (InferenceModel, nn.Module, keras.Model)
    device_memory: Callable[[], float | None] = lambda: None
    device: str = "cpu"  # "cpu" | "cuda"
    precision: str = "fp32"  # "fp32" | "fp16" | "int8"


def ort_engine(path: str | os.PathLike[str], *, version: ModelVersion | None = None, provider: str | None = None,
               io_binding: bool = True, name: str = "onnxruntime", **options: Any) -> Engine:
    """ONNX Runtime on a private (uncached) session, so that load time and memory are really measured.

    On a GPU: cuDNN's conv algorithm search is EXHAUSTIVE (the warm-up pays for it, the timed runs
    get the fastest algorithms) and, with device I/O, CUDA graphs are on (each batch size is bound
    once at a fixed shape), unless ``options`` say otherwise.
    """
    from ..convert import precision_of
    from ..runtime import InferenceModel, choose_provider

    options.setdefault("cudnn_conv_algo_search", "EXHAUSTIVE")
    if io_binding and choose_provider(provider).device == "cuda":
        options.setdefault("cuda_graph", True)
    with memory_window() as mem:
        t0 = time.perf_counter()
        model = InferenceModel(Path(path), provider=provider, version=version, cache=False, **options)
        load_s = time.perf_counter() - t0

    def prepare(images: np.ndarray) -> Runner:
        if io_binding:
            return model.bind(images).run
        x = model.check(images)
        return lambda: model.predict(x)

    precision = precision_of(version)
    return Engine(
        name=name, prepare=prepare, load_s=load_s, load_rss_mb=mem.delta_mb,
        info={"provider": model.provider.to_dict(), "io": "device" if io_binding else "host",
              "device": model.device, "precision": precision, "options": dataclasses.asdict(model.options)},
        model=model, device_memory=gpu_memory_mb if model.device == "cuda" else (lambda: None),
        device=model.device, precision=precision,
    )


def _native_plugin(version: ModelVersion) -> Any:
    from ..plugins import get_plugin

    if not version.framework or not version.arch:
        raise InvalidInput(
            f"{version.ref} was registered from an external ONNX file: there is no native framework to time",
            hint="drop --native, or bench a version made by `zoo export`",
        )
    return get_plugin(version.framework)


def check_native_device(version: ModelVersion, device: str) -> None:
    """PluginUnavailable unless the framework that built ``version`` can run on ``device`` here."""
    from ..plugins import devices

    plugin = _native_plugin(version)
    available = devices(plugin)
    if device not in available:
        fix = (f"install a CUDA build of {plugin.display_name} (`zoo plugins` shows what is installed), "
               f"or compare on the CPU: --provider cpu" if device == "cuda" else "compare on the device it runs on")
        raise PluginUnavailable(
            f"Expected {plugin.display_name} to run on {device}, where ONNX Runtime runs, for a same-device comparison. "
            f"Received: {plugin.display_name} runs on {', '.join(available)} only here",
            hint=fix,
        )


def native_engine(version: ModelVersion, *, device: str = "cpu", precision: str = "fp32", io_binding: bool = True) -> Engine:
    """The framework that built ``version``, through its plugin (randomly initialised: timing only).

    Runs on ``device`` at ``precision`` (fp32 for int8: see the module docstring).
    """
    from ..plugins import inference_options, native_runner

    check_native_device(version, device)
    plugin = _native_plugin(version)
    assert version.arch is not None  # _native_plugin checked it
    native_precision = precision if precision in NATIVE_PRECISIONS else "fp32"
    options: dict[str, Any] = {"num_classes": version.num_classes or 1000, **inference_options(plugin, version.arch)}
    with memory_window() as mem:
        t0 = time.perf_counter()
        model = plugin.build(version.arch, **options)
        runner = native_runner(plugin, model, device=device, precision=native_precision)
        load_s = time.perf_counter() - t0
    bind = getattr(runner, "bind", None)
    bound = io_binding and callable(bind)

    def prepare(images: np.ndarray) -> Runner:
        if bound:
            assert bind is not None
            return bind(images)
        return lambda: runner(images)

    info: dict[str, Any] = {"display_name": plugin.display_name, "framework_version": plugin.framework_version(),
                            "io": "device" if bound else "host", "device": device, "precision": native_precision}
    if native_precision != precision:
        info["note"] = f"{precision} artifact: {plugin.display_name} has no native {precision} path here, timed in fp32"
    return Engine(name=plugin.name, prepare=prepare, load_s=load_s, load_rss_mb=mem.delta_mb, info=info, model=model,
                  device_memory=getattr(runner, "device_memory_mb", None) or (lambda: None), device=device,
                  precision=native_precision)


__all__ = ["Engine", "check_native_device", "native_engine", "ort_engine"]
