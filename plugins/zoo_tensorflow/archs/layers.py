"""Keras layers with PyTorch's exact semantics, so a channels-last build computes torchvision's numbers.

Keras' own ``padding="same"`` pads stride-2 windows bottom/right only and pools have no ceil mode
or adaptive variant; these helpers reproduce ``nn.Conv2d(padding=p)``, ``nn.MaxPool2d(padding=p,
ceil_mode=...)``, ``nn.AdaptiveAvgPool2d`` and ``torch.flatten`` of an NCHW tensor. Shapes are
resolved from the static spatial size at call time (eager calls and the exporter's traced function
both have it), so one model serves every input size.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops


def pool_output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """torch's ``MaxPool2d`` output length (``ceil_mode`` included, with its last-window rule)."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # torch: the last window must start inside the input or the left padding
    return out


class TorchMaxPool2D(layers.Layer):
    """``nn.MaxPool2d(kernel, stride, padding, ceil_mode)``: pad with -inf (left ``padding``, right as
    far as the last torch window reaches), then a "valid" max pool. The padding never wins a max,
    exactly like torch's implicit padding."""

    def __init__(self, kernel: int, stride: int, *, padding: int = 0, ceil_mode: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.kernel, self.stride, self.padding, self.ceil_mode = kernel, stride, padding, ceil_mode

    def _pads(self, size: int) -> tuple[int, int]:
        out = pool_output_size(size, self.kernel, self.stride, self.padding, self.ceil_mode)
        return self.padding, max((out - 1) * self.stride + self.kernel - size - self.padding, 0)

    def call(self, x):
        h, w = _static_hw(x, self)
        _check_not_collapsed(self, *self.compute_output_shape((None, h, w, None))[1:3])
        (top, bottom), (left, right) = self._pads(h), self._pads(w)
        if top or bottom or left or right:
            x = ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=-np.inf)
        return ops.max_pool(x, self.kernel, self.stride, padding="valid")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape

        def size(s):
            return None if s is None else pool_output_size(s, self.kernel, self.stride, self.padding, self.ceil_mode)

        return (n, size(h), size(w), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "ceil_mode": self.ceil_mode}


def adaptive_pool_matrix(size: int, out: int) -> np.ndarray:
    """``[out, size]`` averaging weights of torch's ``adaptive_avg_pool`` along one axis.

    Window ``i`` spans ``floor(i*size/out)`` .. ``ceil((i+1)*size/out)`` (exclusive), as in ATen.
    """
    m = np.zeros((out, size), dtype=np.float32)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class AdaptiveAvgPool2D(layers.Layer):
    """``nn.AdaptiveAvgPool2d((out_h, out_w))`` on NHWC, exact for every input size.

    Identity when the map already has the target size (AlexNet/VGG at 224 px), a plain average pool
    when the size divides evenly, else torch's overlapping windows as one constant averaging matmul.
    """

    def __init__(self, output_size: tuple[int, int], **kwargs: Any):
        super().__init__(**kwargs)
        self.output_size = tuple(output_size)

    def call(self, x):
        (h, w), (oh, ow) = _static_hw(x, self), self.output_size
        if (h, w) == (oh, ow):
            return x
        if h % oh == 0 and w % ow == 0:
            return ops.average_pool(x, (h // oh, w // ow), (h // oh, w // ow), padding="valid")
        # Both axes at once as one constant matmul over the flattened map, in NCHW so that the
        # exported graph needs no extra layout transposes: [N,C,H*W] @ kron(Ph, Pw)^T.
        c = int(x.shape[3])
        pool = np.kron(adaptive_pool_matrix(h, oh), adaptive_pool_matrix(w, ow)).T
        x = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (-1, c, h * w))
        x = ops.reshape(ops.matmul(x, ops.convert_to_tensor(pool)), (-1, c, oh, ow))
        return ops.transpose(x, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_size": self.output_size}


def _static_hw(x, layer: layers.Layer) -> tuple[int, int]:
    """The feature map's (H, W), which the torch pooling arithmetic needs. A map that collapsed to
    nothing is the caller's input size, reported as such: TensorFlow's pooling kernels would
    crash the process (SIGFPE) instead of raising."""
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError(
            f"Layer {layer.name!r} needs a static height and width (torch pooling arithmetic). "
            f"Received: shape {tuple(x.shape)}"
        )
    _check_not_collapsed(layer, h, w)
    return int(h), int(w)


def _check_not_collapsed(layer: layers.Layer, h: int, w: int) -> None:
    if h < 1 or w < 1:
        from zoo.errors import InvalidInput

        error = InvalidInput(
            f"The input is too small for this architecture: the feature map at {layer.name!r} "
            f"would be {h}x{w}. Received: an input that shrinks to nothing",
            hint="use a larger input size (AlexNet needs at least 63 px, as in torchvision)",
        )
        setattr(error, "_keras_call_info_injected", True)  # noqa: B010  Keras would re-create it with its call info, hint lost
        raise error


class Init:
    """Seeded initializers, one fresh seed per layer, so ``build(seed=s)`` is reproducible.

    He-normal (fan in) for convs keeps activations O(1) at random init, so parity checks compare
    logits of a sensible scale; Keras' Glorot-uniform default is kept for dense layers.
    """

    def __init__(self, seed: int | None):
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _seed(self) -> int | None:
        return None if self._rng is None else int(self._rng.integers(0, 2**31 - 1))

    def conv(self) -> keras.initializers.Initializer:
        return keras.initializers.HeNormal(seed=self._seed())

    def dense(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=self._seed())


def conv2d(x, filters: int, kernel: int, *, name: str, init: Init, stride: int = 1, padding: int = 0,
           use_bias: bool = True):
    """``nn.Conv2d(..., padding=padding)``: symmetric zero padding, then a "valid" convolution."""
    if padding:
        x = layers.ZeroPadding2D(padding, name=f"{name}.pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=use_bias,
                         kernel_initializer=init.conv(), name=name)(x)


def dense(x, units: int, *, name: str, init: Init, activation: str | None = None):
    return layers.Dense(units, activation=activation, kernel_initializer=init.dense(), name=name)(x)


def batch_norm(x, *, name: str, eps: float):
    """``nn.BatchNorm2d(eps=eps)``; Keras momentum 0.9 is torch's momentum 0.1 (training only)."""
    return layers.BatchNormalization(axis=-1, epsilon=eps, momentum=0.9, name=name)(x)


def global_avg_pool(x, *, name: str):
    """``nn.AdaptiveAvgPool2d(1)`` + flatten, averaged over NCHW's axes (2, 3).

    Same numbers as a channels-last mean; the permute cancels against the exporter's layout
    transpose, so the ONNX graph reduces the NCHW map directly instead of transposing it first.
    """
    x = layers.Permute((3, 1, 2), name=f"{name}.to_chw")(x)
    return layers.GlobalAveragePooling2D(data_format="channels_first", name=name)(x)


def flatten_chw(x, *, name: str):
    """``torch.flatten(x, 1)`` of the NCHW tensor: channels first, then flatten.

    Keeping torch's C,H,W order in the graph means the first dense kernel has torchvision's row
    order (weights.py only transposes it) and the exported ONNX graph needs no Transpose here:
    the permute cancels against the exporter's NHWC->NCHW layout transpose.
    """
    x = layers.Permute((3, 1, 2), name=f"{name}.to_chw")(x)
    return layers.Flatten(name=name)(x)


__all__ = ["AdaptiveAvgPool2D", "TorchMaxPool2D", "Init", "adaptive_pool_matrix", "batch_norm", "conv2d",
           "dense", "flatten_chw", "global_avg_pool",
           "pool_output_size"]
