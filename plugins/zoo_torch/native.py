"""PyTorch on a chosen device and precision: the ``devices`` and ``native_runner`` hooks.

Decisions (the comparison against ONNX Runtime on the same device must be fair and reproducible):

- The runner works on its own copy of the inference graph (GoogLeNet without its aux heads): the
  caller's model is never moved or cast.
- CUDA: the copy lives on the GPU in ``channels_last`` (cuDNN's tensor-core layout, as ORT's
  ``prefer_nhwc``); fp16 is the whole network in half precision (``.half()``, as an fp16 ONNX
  artifact is), fp32 runs with TF32 *off* (as ORT's default ``use_tf32=0``) and cuDNN's
  autotuner on (as the bench's EXHAUSTIVE search). Those switches are set around each call and
  restored after it, so nothing leaks into the caller's process state.
- fp64 (CPU and CUDA): the whole copy in double precision, for the export check's measure of the
  model's own float32 rounding noise (:func:`zoo.metrics.rounding_noise`); logits come back float64.
- CPU: fp32 as ``predict``; fp16 works (ATen has CPU half kernels) but is slow without AVX512-FP16.
- ``runner(images)`` copies numpy in and logits out; ``runner.bind(images)`` keeps the batch on the
  device and returns a callable that runs and waits for the GPU (what ORT's I/O binding times).
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from zoo.errors import InvalidInput, PluginError

from .export import inference_graph

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "fp64": torch.float64}  # fp64: the rounding-noise reference


def devices() -> tuple[str, ...]:
    """``("cpu", "cuda")`` when torch sees a CUDA GPU, else ``("cpu",)``."""
    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


@contextlib.contextmanager
def _cuda_switches(precision: str) -> Iterator[None]:
    """TF32 off for fp32 (parity with ORT's default), cuDNN autotuning on; restored on exit."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    if precision == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


class TorchRunner:
    """A torch model copied to ``device`` at ``precision``; call it with an NCHW float batch."""

    def __init__(self, model: nn.Module, *, device: str, precision: str):
        if precision not in PRECISIONS:
            raise PluginError(f"Expected a precision in {', '.join(PRECISIONS)}. Received: {precision!r}",
                              hint="int8 artifacts are compared against the fp32 model")
        if device not in devices():
            raise PluginError(f"Expected a device torch can use here ({', '.join(devices())}). Received: {device!r}",
                              hint="install a CUDA build of torch for 'cuda' (see pytorch.org), or use 'cpu'")
        self.device = torch.device(device)
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.cuda = self.device.type == "cuda"
        module = copy.deepcopy(inference_graph(model)).eval()
        if self.cuda:
            module = module.to(self.device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.module = module.to(self.dtype) if self.dtype != torch.float32 else module

    def _to_device(self, images: np.ndarray) -> torch.Tensor:
        from . import _check_batch

        x = torch.from_numpy(_check_batch(images)).to(self.device).to(self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        switches = _cuda_switches(self.precision) if self.cuda else contextlib.nullcontext()
        with torch.inference_mode(), switches:
            out = self.module(x)
        return out[0] if isinstance(out, tuple) else out

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """float32 logits ``[N, classes]`` on the host (float64 for fp64: the export check's reference)."""
        out = self._forward(self._to_device(images))
        return out.to("cpu", torch.float64 if self.dtype == torch.float64 else torch.float32).numpy()

    def bind(self, images: np.ndarray) -> Callable[[], None]:
        """The batch copied to the device once; the callable runs the model and waits for it."""
        x = self._to_device(images)

        def run() -> None:
            self._forward(x)
            if self.cuda:
                torch.cuda.synchronize(self.device)

        return run

    def device_memory_mb(self) -> float | None:
        """Peak GPU memory torch's allocator handed out on this device (None on the CPU)."""
        if not self.cuda:
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20


def native_runner(model: nn.Module, *, device: str, precision: str) -> TorchRunner:
    params = next(model.parameters(), None)
    if params is not None and params.device.type == "meta":
        raise InvalidInput("Cannot run a model built on the 'meta' device", hint="build it without device='meta'")
    return TorchRunner(model, device=device, precision=precision)


def intermediate_groups(model: nn.Module) -> list[str]:
    """torchvision's module names of the layer groups, in execution order: every top-level child, and
    the children of a top-level ``nn.Sequential`` (``features.3``, ``layer2.1``, ``classifier.4``)."""
    names = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            names += [f"{name}.{sub}" for sub, _ in child.named_children()]
        else:
            names.append(name)
    return names


def intermediates(model: nn.Module, images: np.ndarray) -> dict[str, np.ndarray]:
    """The output of each layer group (:func:`intermediate_groups`) for ``images``, NCHW float32, in the
    order they ran (eval mode; GoogLeNet's aux heads do not run). The model is left as it was."""
    modules = dict(model.named_modules())
    out: dict[str, np.ndarray] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and name not in out:
                out[name] = output.detach().to("cpu", torch.float32).numpy().copy()
        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in intermediate_groups(model)]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return out


__all__ = ["PRECISIONS", "TorchRunner", "devices", "intermediate_groups", "intermediates", "native_runner"]
