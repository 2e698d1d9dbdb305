"""zoo.register_model: a team's own small CNN (3 convs, 5 classes, 32 px) from each built-in plugin.

Each is exported by the plugin that owns it, verified against the native model, registered with
params, MACs, signature, labels and transform, and then loaded and run with zoo.load.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import zoo
from conftest import subprocess_env
from zoo.errors import InvalidInput, InvalidName, NotFound
from zoo.labels import Labels, top_k
from zoo.plugins import get_plugin, plugin_statuses
from zoo.transforms import Transform

SIZE, CLASSES = 32, 5
WIDTHS = (8, 16, 16)  # three 3x3 convs: stride 1, 2, 2; BatchNorm after the first; then GAP, dropout, dense
LABELS = ("ok", "scratch", "dent", "crack", "stain")
TRANSFORM = Transform(resize=36, crop=(SIZE, SIZE), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
AVAILABLE = {s.name for s in plugin_statuses() if s.available}
PLUGINS = [pytest.param(name, id=name, marks=[getattr(pytest.mark, name),
                                             pytest.mark.skipif(name not in AVAILABLE, reason=f"{name} not installed")])
           for name in ("torch", "tensorflow")]


def torch_cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)

    class DefectNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            a, b, c = WIDTHS
            self.features = nn.Sequential(
                nn.Conv2d(3, a, 3, padding=1), nn.BatchNorm2d(a), nn.ReLU(),
                nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(b, c, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c, CLASSES))

        def forward(self, x):
            return self.head(self.features(x))

    net = DefectNet()
    with torch.no_grad():  # non-trivial BN statistics, so that folding them is tested
        net.features[1].running_mean.uniform_(-0.5, 0.5)
        net.features[1].running_var.uniform_(0.5, 2.0)
    net.train()  # as a training loop leaves it: register_model must not depend on, nor change, the mode
    return net


def keras_cnn():
    import keras

    keras.utils.set_random_seed(0)
    a, b, c = WIDTHS
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(a, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(moving_mean_initializer="random_uniform", moving_variance_initializer="ones")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(b, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(c, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(x), name="defect_net")


BUILDERS = {"torch": torch_cnn, "tensorflow": keras_cnn}


def expected_counts() -> tuple[int, int, int]:
    """(trainable, non-trainable, MACs per sample) of the CNN above, from its layer sizes."""
    a, b, c = WIDTHS
    convs = [(3, a, SIZE), (a, b, SIZE // 2), (b, c, SIZE // 4)]  # (in, out, output side)
    trainable = sum(cin * cout * 9 + cout for cin, cout, _ in convs) + 2 * a + c * CLASSES + CLASSES
    macs = sum(cin * cout * 9 * side * side for cin, cout, side in convs) + c * CLASSES
    return trainable, 2 * a, macs


def example_batch(n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, SIZE, SIZE), dtype=np.float32)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Register each plugin's CNN once (exports are the slow part); tests read the results."""
    done: dict[str, tuple] = {}

    def get(framework: str):
        if framework not in done:
            model = BUILDERS[framework]()
            store = tmp_path_factory.mktemp(f"store-{framework}")
            result = zoo.register_model(model, name="defects", example=example_batch(), labels=list(LABELS),
                                        transform=TRANSFORM, registry=store, tags={"team": "vision"})
            done[framework] = (result, model, store)
        return done[framework]

    return get


@pytest.mark.parametrize("framework", PLUGINS)
def test_registered_with_counts_signature_labels_and_transform(registered, framework):
    result, model, _ = registered(framework)
    version = result.version
    trainable, non_trainable, macs = expected_counts()
    assert result.created and result.verify_error <= 1e-4
    assert (version.ref, version.framework, version.arch, version.num_classes) == ("defects@1", framework, None, CLASSES)
    assert (version.params.trainable, version.params.non_trainable) == (trainable, non_trainable)
    assert version.macs == macs
    assert version.signature.inputs[0].shape == ("batch", 3, SIZE, SIZE)
    assert version.signature.outputs[0].shape == ("batch", CLASSES)
    assert version.labels == Labels("custom", LABELS)
    assert version.transform == TRANSFORM
    assert (version.input_size, version.transform.mean) == ((SIZE, SIZE), TRANSFORM.mean)
    assert version.provenance["source"] == "zoo.register_model"
    assert version.provenance["verify"]["max_rel_error"] == result.verify_error
    assert version.tags == {"team": "vision"}
    if framework == "torch":
        assert model.training, "register_model restores the model's training mode"


@pytest.mark.parametrize("framework", PLUGINS)
def test_loads_runs_and_classifies_with_zoo_load(registered, framework, tmp_path):
    result, model, store = registered(framework)
    batch = example_batch(3)
    loaded = zoo.load("defects", store=store)
    expected = get_plugin(framework).predict(model, batch)
    actual = loaded.predict(batch)
    assert float(np.abs(actual - expected).max() / np.abs(expected).max()) <= 1e-4
    version = zoo.open_registry(store).resolve("defects")
    assert version == result.version  # the stored JSON gives the same record back
    path = tmp_path / "part.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    from zoo.transforms import preprocess

    inputs = preprocess(path, version.transform)
    [[best, *_]] = top_k(loaded.predict(inputs), version.labels, k=3)
    assert best.label in LABELS and 0 < best.probability <= 1


@pytest.mark.parametrize("framework", PLUGINS)
def test_file_copied_out_says_how_to_feed_it(registered, framework):
    import onnx

    result, _, store = registered(framework)
    path = zoo.open_registry(store).path(result.version)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert Transform.from_dict(json.loads(props["zoo.transform"])) == TRANSFORM
    assert Labels.from_dict(json.loads(props["zoo.labels"])).classes == LABELS


# ------------------------------------------------------------------ refusals (nothing is registered)

def refused(tmp_path, model, error=InvalidInput, **kwargs):
    options = {"name": "defects", "example": example_batch(), "registry": tmp_path / "store", **kwargs}
    with pytest.raises(error) as info:
        zoo.register_model(model, **options)
    if (tmp_path / "store").exists():
        assert zoo.open_registry(tmp_path / "store").list() == []
    return info.value


@pytest.mark.torch
@pytest.mark.parametrize("example,fragment", [
    (np.zeros((2, SIZE, SIZE, 3), np.float32), "NCHW"),
    (np.zeros((2, 3, SIZE, SIZE), np.uint8), "float32"),
    (np.zeros((2, 3, SIZE, SIZE + 8), np.float32), "square"),
    (np.zeros((2, 3, 16, 16), np.float32), "at least 32"),
    (np.full((2, 3, SIZE, SIZE), np.nan, np.float32), "finite"),
    (np.zeros((0, 3, SIZE, SIZE), np.float32), "N >= 1"),
])
def test_bad_examples_are_refused(tmp_path, example, fragment):
    assert fragment in refused(tmp_path, torch_cnn(), example=example).message


@pytest.mark.torch
def test_wrong_labels_and_transform_are_refused_before_export(tmp_path):
    exc = refused(tmp_path, torch_cnn(), labels=["a", "b"])
    assert "Expected 5 class names" in exc.message
    exc = refused(tmp_path, torch_cnn(), transform=Transform(resize=256, crop=(224, 224)))
    assert "crop" in exc.message and "32 x 32" in exc.message
    refused(tmp_path, torch_cnn(), NotFound, labels=tmp_path / "missing.txt")
    refused(tmp_path, torch_cnn(), InvalidName, name="Bad Name")


@pytest.mark.torch
def test_models_no_plugin_owns_are_refused(tmp_path):
    exc = refused(tmp_path, object())
    assert "builtins.object" in exc.message and "ONNX" in exc.hint
    exc = refused(tmp_path, torch_cnn(), framework="tensorflow")
    assert "'tensorflow'" in exc.message
    refused(tmp_path, torch_cnn(), NotFound, framework="no-such-plugin")


@pytest.mark.torch
def test_a_model_that_does_not_return_logits_is_refused(tmp_path):
    from torch import nn

    exc = refused(tmp_path, nn.Sequential(nn.Conv2d(3, 4, 3)))  # returns feature maps, not [N, classes]
    assert "[N, classes]" in exc.message


def test_finding_the_owner_imports_no_framework():
    code = ("import sys\nfrom zoo.errors import InvalidInput\nfrom zoo.plugins import plugin_for\n"
            "try:\n    plugin_for(object())\nexcept InvalidInput:\n    pass\n"
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
