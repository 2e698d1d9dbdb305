"""The TensorFlow/Keras 3 plugin: torchvision's reference CNNs, channels-last, exported by tf2onnx.

This module is what ``zoo plugins`` imports; it imports no framework (not even numpy). The heavy
modules (``archs``, ``export``, ``weights``, ``inference``) load inside the methods that need them.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import architectures
from zoo.architectures import ARCHITECTURES
from zoo.plugins import distribution_version, install_command
from zoo.records import ExportInfo, ParamCounts

if TYPE_CHECKING:
    import numpy as np

__version__ = distribution_version()  # the built-in plugins ship in zoo's own distribution
# Distributions that provide the ``tensorflow`` module, in the order zoo's extras install them.
_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tensorflow-macos", "tf-nightly")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow once with its C++ start-up notices (oneDNN, CPU features; written to fd 2
    before logging is configured, so TF_CPP_MIN_LOG_LEVEL misses some) kept out of zoo's output.

    Only those informational lines are dropped: anything else TensorFlow writes while importing,
    and everything if the import fails, is replayed to stderr.
    """
    import os
    import sys
    import tempfile

    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401

            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            benign = ("WARNING: All log messages before absl::InitializeLog()", "I0000 ")
            replay = lines if failed else [line for line in lines if not line.startswith(benign)]
            sys.stderr.write("".join(replay))


class TensorFlowPlugin:
    """TensorFlow/Keras 3 (TF backend). Models are functional ``keras.Model``s named after
    torchvision's modules; GoogLeNet's training graph outputs ``[logits, aux1, aux2]``."""

    name = "tensorflow"
    priority = 10
    display_name = "TensorFlow/Keras"
    version = __version__
    install_hint = install_command("tensorflow") + "  (installs tensorflow-cpu; GPU: pip install tensorflow[and-cuda])"
    requires = ("tensorflow", "tf2onnx")
    weight_formats = {".keras": "Keras safe_mode"}  # zoo.plugins.OptionalHooks.weight_formats

    def framework_version(self) -> str | None:
        for dist in _DISTRIBUTIONS:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    def architectures(self) -> Sequence[str]:
        return ARCHITECTURES

    def owns(self, model: Any) -> bool:
        """A Keras 3 ``keras.Model`` (optional hook ``owns``); keras is not imported if it is not already.

        ``tf.keras`` is Keras 3 under TensorFlow 2.16+, so its models pass too; the legacy ``tf_keras``
        (Keras 2) is not supported by the exporter and is not claimed.
        """
        keras = sys.modules.get("keras")
        model_class = getattr(keras, "Model", None) if keras is not None else None
        return isinstance(model_class, type) and isinstance(model, model_class)

    def build(self, arch: str, *, num_classes: int = 1000, **options: Any) -> Any:
        """``options``: ``seed`` (all), ``aux_logits`` (googlenet, default True), ``input_size`` (ignored:
        the models accept any size >= 32)."""
        _import_tensorflow_quietly()
        from .archs import build

        return build(arch, num_classes=num_classes, **options)

    def count_params(self, model: Any) -> ParamCounts:
        def size(weights: Sequence[Any]) -> int:
            return sum(math.prod(int(d) for d in w.shape) for w in weights)

        return ParamCounts(trainable=size(model.trainable_weights), non_trainable=size(model.non_trainable_weights))

    def predict(self, model: Any, images: "np.ndarray") -> "np.ndarray":
        from .inference import predict

        return predict(model, images)

    def export_onnx(self, model: Any, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
        from .export import export_onnx

        return export_onnx(model, Path(path), opset=opset, input_size=input_size)

    def intermediates(self, model: Any, images: "np.ndarray") -> "dict[str, np.ndarray]":
        """Optional hook: each layer group's output under torchvision's module name, NCHW (see
        ``zoo_tensorflow.inference.intermediates``), for the parity gate's first diverging group."""
        from .inference import intermediates

        return intermediates(model, images)

    def devices(self) -> tuple[str, ...]:
        """Optional hook: "cpu", plus "cuda" when TensorFlow sees a GPU (imports TensorFlow)."""
        from .native import devices

        return devices()

    def native_runner(self, model: Any, *, device: str, precision: str) -> "Callable[[np.ndarray], np.ndarray]":
        """Optional hook: ``model``'s inference graph as one tf.function on ``device`` at ``precision``
        (fp32 | fp16, a float16 copy), NCHW in, float32 logits out (see ``zoo_tensorflow.native``)."""
        from .native import native_runner

        return native_runner(model, device=device, precision=precision)

    def state_dict(self, model: Any) -> "dict[str, np.ndarray]":
        from .weights import state_dict

        return state_dict(model)

    def load_state_dict(self, model: Any, state: "Mapping[str, np.ndarray]") -> None:
        from .weights import load_state_dict

        load_state_dict(model, state)

    def read_weights(self, path: Path) -> "dict[str, np.ndarray]":
        """The canonical state of a ``.keras`` archive loaded with ``safe_mode=True`` (no code runs)."""
        _import_tensorflow_quietly()
        from .weights import read_keras

        return read_keras(path)

    # Optional hooks (zoo.plugins.OptionalHooks)

    def inference_options(self, arch: str, *, state: "Mapping[str, np.ndarray] | None" = None) -> dict[str, Any]:
        """The inference graph of the architecture tables (GoogLeNet without its auxiliary heads)."""
        return architectures.inference_options(arch, state=state)

    @contextmanager
    def strict_fp32(self) -> Iterator[list[str]]:
        """TensorFloat-32 execution off while active; the previous setting comes back on exit."""
        _import_tensorflow_quietly()
        import tensorflow as tf

        was = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield ["TF32 off in tensorflow (enable_tensor_float_32_execution(False))"]
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(was)


__all__ = ["TensorFlowPlugin"]
