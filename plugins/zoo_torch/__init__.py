"""zoo's PyTorch plugin: torchvision-exact reference CNNs, built natively and exported to ONNX.

This module is imported by plugin discovery, so it must stay light: torch (and everything that
imports it: ``archs``, ``export``, ``weights``) is imported inside the methods that need it.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo import architectures
from zoo.architectures import ARCHITECTURES
from zoo.errors import InvalidInput
from zoo.plugins import DEFAULT_OPSET, distribution_version, install_command
from zoo.records import ExportInfo, ParamCounts

if TYPE_CHECKING:
    from torch import nn

__all__ = ["TorchPlugin"]


def _check_batch(images: np.ndarray) -> np.ndarray:
    """An NCHW float batch as float32, C-contiguous; InvalidInput naming what is wrong otherwise."""
    if not isinstance(images, np.ndarray):
        raise InvalidInput(f"Expected a numpy array. Received: {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise InvalidInput(f"Expected an NCHW batch of shape [N, 3, H, W]. Received shape: {images.shape}",
                           hint="NHWC images need images.transpose(0, 3, 1, 2)")
    if not np.issubdtype(images.dtype, np.floating):
        raise InvalidInput(f"Expected a float batch. Received dtype: {images.dtype}",
                           hint="scale uint8 pixels to floats and normalise them first")
    return np.ascontiguousarray(images, dtype=np.float32)


class TorchPlugin:
    """The ``torch`` plugin (see :class:`zoo.plugins.FrameworkPlugin` for each hook's contract)."""

    name = "torch"
    priority = 0  # the reference: its build *is* torchvision's definition (zoo.plugins.OptionalHooks)
    display_name = "PyTorch"
    version = distribution_version()  # the built-in plugins ship in zoo's own distribution
    install_hint = install_command("torch") + "  (CPU: torch==2.13.0)"
    requires: tuple[str, ...] = ("torch",)
    # Native weight files this plugin reads safely (zoo.plugins.OptionalHooks.weight_formats).
    weight_formats = {".pth": "torch.load(weights_only=True)", ".pt": "torch.load(weights_only=True)"}

    def framework_version(self) -> str | None:
        try:
            return metadata.version("torch")
        except metadata.PackageNotFoundError:
            return None

    def architectures(self) -> Sequence[str]:
        return ARCHITECTURES

    def owns(self, model: Any) -> bool:
        """A ``torch.nn.Module`` (optional hook ``owns``); torch is not imported if it is not already."""
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(model, torch.nn.Module)

    def build(self, arch: str, *, num_classes: int = 1000, **options: Any) -> "nn.Module":
        """Options: ``seed`` (deterministic init), ``device`` ("meta" to only count), and per arch:
        alexnet/vgg ``dropout``; googlenet ``aux_logits`` (default True: the training graph),
        ``dropout``, ``dropout_aux``."""
        from .archs import build

        return build(arch, num_classes=num_classes, **options)

    def count_params(self, model: "nn.Module") -> ParamCounts:
        """Trainable = parameters with requires_grad; non-trainable = frozen parameters plus float
        buffers (BN running mean/var; not the integer ``num_batches_tracked`` counter)."""
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
        return ParamCounts(trainable=trainable, non_trainable=frozen + buffers)

    def export_onnx(self, model: "nn.Module", path: Path, *, opset: int = DEFAULT_OPSET,
                    input_size: int = 224) -> ExportInfo:
        from .export import export_onnx

        return export_onnx(model, Path(path), opset=opset, input_size=input_size)

    def predict(self, model: "nn.Module", images: np.ndarray) -> np.ndarray:
        """Eval-mode logits (aux heads unused) under ``torch.inference_mode``; the model's mode is restored."""
        import torch

        batch = _check_batch(images)
        params = next(model.parameters(), None)
        device = params.device if params is not None else torch.device("cpu")
        if device.type == "meta":
            raise InvalidInput("Cannot run a model built on the 'meta' device", hint="build it without device='meta'")
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                out = model(torch.from_numpy(batch).to(device))
        finally:
            model.train(was_training)
        if isinstance(out, tuple):  # defensive: a training-graph output tuple starts with the logits
            out = out[0]
        return out.detach().to("cpu", torch.float32).numpy()

    def intermediates(self, model: "nn.Module", images: np.ndarray) -> dict[str, np.ndarray]:
        """Optional hook: each layer group's output (torchvision's module names, NCHW), for the parity
        gate's "first diverging layer group" (see ``zoo_torch.native.intermediates``)."""
        from .native import intermediates

        return intermediates(model, images)

    def devices(self) -> tuple[str, ...]:
        """Optional hook: "cpu", plus "cuda" when torch sees a CUDA GPU (imports torch)."""
        from .native import devices

        return devices()

    def native_runner(self, model: "nn.Module", *, device: str, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        """Optional hook: a copy of ``model`` on ``device`` at ``precision`` (fp32 | fp16), called with
        NCHW float batches; CUDA in channels_last with TF32 off for fp32 (see ``zoo_torch.native``)."""
        from .native import native_runner

        return native_runner(model, device=device, precision=precision)

    def state_dict(self, model: "nn.Module") -> dict[str, np.ndarray]:
        from .weights import state_dict

        return state_dict(model)

    def load_state_dict(self, model: "nn.Module", state: Mapping[str, np.ndarray]) -> None:
        from .weights import load_state_dict

        load_state_dict(model, state)

    def read_weights(self, path: Path) -> dict[str, np.ndarray]:
        """A ``.pth``/``.pt`` state dict, read with ``torch.load(weights_only=True)`` (no code runs)."""
        from .weights import read_weights

        return read_weights(path)

    # Optional hooks (zoo.plugins.OptionalHooks)

    def inference_options(self, arch: str, *, state: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
        """The inference graph of the architecture tables (GoogLeNet without its auxiliary heads)."""
        return architectures.inference_options(arch, state=state)

    @contextmanager
    def strict_fp32(self) -> Iterator[list[str]]:
        """TF32 matmuls and cuDNN convs off while active; the previous settings come back on exit."""
        import torch

        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield ["TF32 off in torch (cuda.matmul.allow_tf32 = cudnn.allow_tf32 = False)"]
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
