"""TensorFlow/Keras on a chosen device and precision: the ``devices`` and ``native_runner`` hooks.

Decisions (same comparison rules as the PyTorch plugin's):

- The runner compiles the inference graph (``logits`` only) as one ``tf.function`` that takes the
  contract's NCHW float32 batch, transposes it to NHWC *on the device*, casts it to the compute
  dtype and returns float32 logits.
- fp16 is a float16 copy of the model (every layer's dtype policy ``float16``, weights cast), as an
  fp16 ONNX artifact is; the caller's model is untouched.
- CUDA runs on ``/GPU:0`` with TF32 off for fp32 (TensorFlow enables it by default on Ampere and
  later; ORT's default is off), set around each call and restored after it.
- ``runner.bind(images)`` places the batch on the device once; its callable runs the function and
  fetches the (small) logits, which waits for the GPU.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from zoo.errors import PluginError

PRECISIONS = ("fp32", "fp16", "fp64")  # fp64: the reference of the export check's float32 rounding noise


def _tf() -> Any:
    from . import _import_tensorflow_quietly

    _import_tensorflow_quietly()
    import tensorflow as tf

    return tf


def devices() -> tuple[str, ...]:
    """``("cpu", "cuda")`` when TensorFlow sees a GPU, else ``("cpu",)``."""
    return ("cpu", "cuda") if _tf().config.list_physical_devices("GPU") else ("cpu",)


def as_float16(model: Any) -> Any:
    """A copy of the Keras model whose layers compute and keep their weights in float16."""
    return as_dtype(model, "float16")


def as_dtype(model: Any, dtype: str) -> Any:
    """A copy of the Keras model whose layers compute and keep their weights in ``dtype`` (float16, float64)."""
    import keras

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = dtype
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
        copy.set_weights([np.asarray(w).astype(dtype) if np.asarray(w).dtype.kind == "f" else w
                          for w in model.get_weights()])
    except Exception as exc:
        raise PluginError(f"Cannot make a {dtype} copy of {model.name!r}: {type(exc).__name__}: {exc}",
                          hint="compare the fp32 version instead") from exc
    return copy


@contextlib.contextmanager
def _tf32_off(tf: Any, active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    config = tf.config.experimental
    saved = config.tensor_float_32_execution_enabled()
    config.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        config.enable_tensor_float_32_execution(saved)


class KerasRunner:
    """A Keras model compiled for ``device`` at ``precision``; call it with an NCHW float batch."""

    def __init__(self, model: Any, *, device: str, precision: str):
        from .inference import inference_model

        if precision not in PRECISIONS:
            raise PluginError(f"Expected a precision in {', '.join(PRECISIONS)}. Received: {precision!r}",
                              hint="int8 artifacts are compared against the fp32 model")
        available = devices()
        if device not in available:
            raise PluginError(f"Expected a device TensorFlow can use here ({', '.join(available)}). Received: {device!r}",
                              hint="pip install 'tensorflow[and-cuda]' for 'cuda', or use 'cpu'")
        tf = self._tf = _tf()
        self.device = device
        self.precision = precision
        self._place = "/GPU:0" if device == "cuda" else "/CPU:0"
        infer = inference_model(model)
        if precision != "fp32":
            infer = as_dtype(infer, {"fp16": "float16", "fp64": "float64"}[precision])
        dtype = {"fp16": tf.float16, "fp64": tf.float64}.get(precision, tf.float32)
        self._out = np.float64 if precision == "fp64" else np.float32  # fp64 logits stay float64 (the reference)

        def forward(x: Any) -> Any:
            y = infer(tf.cast(tf.transpose(x, (0, 2, 3, 1)), dtype), training=False)
            return tf.cast(y, tf.float64 if precision == "fp64" else tf.float32)

        self._fn = tf.function(forward, reduce_retracing=True, autograph=False)

    def _run(self, x: Any) -> np.ndarray:
        with self._tf.device(self._place), _tf32_off(self._tf, self.device == "cuda" and self.precision == "fp32"):
            return np.asarray(self._fn(x), dtype=self._out)

    def _to_device(self, images: np.ndarray) -> Any:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != 3 or not np.issubdtype(images.dtype, np.floating):
            from zoo.errors import InvalidInput

            raise InvalidInput(f"Expected a float NCHW batch of shape [N, 3, H, W]. Received: {images.dtype} {images.shape}",
                               hint="transpose NHWC images with images.transpose(0, 3, 1, 2)")
        with self._tf.device(self._place):
            return self._tf.identity(self._tf.constant(np.ascontiguousarray(images, dtype=np.float32)))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """float32 logits ``[N, classes]`` on the host."""
        return self._run(self._to_device(images))

    def bind(self, images: np.ndarray) -> Callable[[], None]:
        """The batch placed on the device once; the callable runs the model and fetches its logits."""
        x = self._to_device(images)

        def run() -> None:
            self._run(x)

        return run


def native_runner(model: Any, *, device: str, precision: str) -> KerasRunner:
    return KerasRunner(model, device=device, precision=precision)


__all__ = ["PRECISIONS", "KerasRunner", "as_dtype", "as_float16", "devices", "native_runner"]
