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


def intermediates(model: Any, images: np.ndarray) -> dict[str, np.ndarray]:
    """Each layer group's output under torchvision's module name, NCHW float32, in graph order.

    The builders name layers after torchvision's modules, so a group is the layer of that name, or,
    where torchvision's module is a block, the block's last layer (``layer2.1.relu`` for a ResNet
    block, ``inception3a.concat``, ``conv1.relu`` for GoogLeNet's BasicConv2d). Only names with at
    most one dot are groups (torchvision's top-level children and their children). A layer with a
    fused ReLU (``Dense(activation="relu")`` as ``classifier.0``) stands for torchvision's next
    module, the ``nn.ReLU`` that follows its ``nn.Linear`` (``classifier.1``); other fused
    activations are left out.
    """
    import keras

    infer = inference_model(model)
    exact = {layer.name for layer in infer.layers}
    groups: dict[str, Any] = {}
    for layer in infer.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        base, _, suffix = layer.name.rpartition(".")
        activation = getattr(layer, "activation", None)
        if activation in (None, keras.activations.linear):
            group = base if suffix in ("relu", "concat") and base and base not in exact else layer.name
        elif activation is keras.activations.relu and suffix.isdigit():
            group = f"{base}.{int(suffix) + 1}"
        else:
            continue
        if group.count(".") <= 1:
            groups.setdefault(group, layer)
    probe = keras.Model(infer.inputs, [layer.output for layer in groups.values()])
    nhwc = np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 2, 3, 1))
    outputs = probe([nhwc], training=False)
    return {group: (a.transpose(0, 3, 1, 2) if a.ndim == 4 else a).copy()
            for group, a in zip(groups, (np.asarray(o, dtype=np.float32) for o in outputs), strict=True)}
