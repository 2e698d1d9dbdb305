"""Running a built Keras model natively: the inference graph and NCHW -> NHWC at the boundary."""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from zoo.errors import InvalidInput


def inference_model(model: Any) -> Any:
    """The graph an artifact holds: ``logits`` only (GoogLeNet's training graph drops its aux heads)."""
    import keras

    if len(model.outputs) == 1:
        return model
    return keras.Model(model.inputs, model.outputs[0], name=model.name)


_COMPILED: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _compiled(model: Any) -> Any:
    """The model's inference graph as one ``tf.function`` (traced once per input shape class).

    Eager Keras calls dispatch op by op from Python; benchmarks compare ORT against the graph, as
    a TensorFlow user would deploy it. Variables are captured by reference, so weights loaded
    later are seen.
    """
    fn = _COMPILED.get(model)
    if fn is None:
        import tensorflow as tf

        infer = inference_model(model)
        fn = tf.function(lambda x: infer(x, training=False), reduce_retracing=True, autograph=False)
        _COMPILED[model] = fn
    return fn


def predict(model: Any, images: np.ndarray) -> np.ndarray:
    """float32 logits ``[N, num_classes]`` for an NCHW float batch (the artifact contract's layout)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or not np.issubdtype(images.dtype, np.floating):
        raise InvalidInput(
            f"Expected a float NCHW batch of shape [N, 3, H, W]. Received: {images.dtype} {tuple(images.shape)}",
            hint="transpose NHWC images with images.transpose(0, 3, 1, 2)",
        )
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1), dtype=np.float32)
    return np.asarray(_compiled(model)(nhwc), dtype=np.float32)
