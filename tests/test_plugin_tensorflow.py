"""The TensorFlow/Keras plugin: torchvision's architectures to the parameter, the ONNX contract, weights.

Full-size models are built once each and only counted (plus one full-size ResNet-50 export). Every
other check runs at a small configuration (10 classes, 64 px) on one model per architecture
(a module-scoped fixture), loaded with random canonical weights and random BatchNorm statistics so
that a layout or BN mistake cannot hide behind an identity-like initialisation.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from arch_params import arch_params
from conftest import SmallModel, core_export, meta_build
from zoo._exporting import export_onnx
from zoo.architectures import ARCHITECTURES, REFERENCE_PARAMS
from zoo.errors import InvalidInput, InvalidWeights, NotFound
from zoo.metrics import relative_error, verification_batch
from zoo.plugins import (
    FrameworkPlugin,
    install_command,
)
from zoo_tensorflow import TensorFlowPlugin
from zoo_torch import TorchPlugin

pytestmark = pytest.mark.tensorflow

PLUGIN = TensorFlowPlugin()
ARCHS = list(PLUGIN.architectures())
SMALL_CLASSES, SMALL_SIZE, BATCH = 10, 64, 3
RTOL = 1e-4  # relative to the output scale, as zoo._exporting verifies
ROOT = Path(__file__).resolve().parents[1]


def random_canonical_state(template: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Weights of a sensible scale in torchvision's layouts, with non-trivial BN statistics."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, ref in template.items():
        shape = ref.shape
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("running_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1 and name.endswith("weight"):  # BN gamma
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1:  # biases, BN beta
            value = rng.normal(0.0, 0.05, shape)
        else:  # conv OIHW / dense (out, in): He scale over fan-in (float32 draws: VGG has 10^8)
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
        state[name] = value.astype(np.float32, copy=False)
    return state


def batch(size: int = SMALL_SIZE, n: int = BATCH, seed: int = 0) -> np.ndarray:
    return verification_batch(size, batch=n, seed=seed)


# --- the plugin as zoo sees it -------------------------------------------------------------------

def test_plugin_declares_the_contract():
    assert isinstance(PLUGIN, FrameworkPlugin)
    assert (PLUGIN.name, PLUGIN.display_name) == ("tensorflow", "TensorFlow/Keras")
    assert PLUGIN.requires == ("tensorflow", "tf2onnx")
    assert "tensorflow-cpu" in PLUGIN.install_hint and install_command("tensorflow") in PLUGIN.install_hint
    assert tuple(ARCHS) == ARCHITECTURES
    import tensorflow as tf

    assert PLUGIN.framework_version() == tf.__version__


def test_importing_the_plugin_imports_no_framework():
    code = ("import sys, zoo_tensorflow as p; p.TensorFlowPlugin().architectures(); "
            "p.TensorFlowPlugin().framework_version(); "
            "heavy = ('tensorflow', 'keras', 'tf2onnx', 'onnx', 'torch', 'numpy'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_arch_and_options_are_named():
    with pytest.raises(NotFound, match="'resnet999'"):
        PLUGIN.build("resnet999")
    with pytest.raises(InvalidInput, match="aux_logits") as info:
        PLUGIN.build("resnet18", aux_logits=False)
    assert "seed" in info.value.hint
    with pytest.raises(InvalidInput, match="colour"):
        PLUGIN.build("googlenet", colour="red")
    with pytest.raises(InvalidInput, match="num_classes"):
        PLUGIN.build("resnet18", num_classes=0)


# --- full size: parameter counts -------------------------------------------------------------------

def _conv_filters(model) -> int:
    import keras

    return sum(layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("arch", ARCHS)
def test_full_size_counts_equal_torchvision(arch):
    """One shapes-only build per architecture (conftest.meta_build: no weight is allocated); GoogLeNet's
    training graph also gives the inference count."""
    from zoo_tensorflow.inference import inference_model

    model = meta_build(PLUGIN, arch, num_classes=1000)
    counts = PLUGIN.count_params(model)
    if arch == "googlenet":
        assert counts.trainable == REFERENCE_PARAMS["googlenet+aux"], "aux heads are in the training graph"
        counts = PLUGIN.count_params(inference_model(model))
    assert counts.trainable == REFERENCE_PARAMS[arch]
    if arch.startswith("resnet") or arch == "googlenet":
        # every conv of these two families is followed by one BatchNorm: 2 running stats per channel
        assert counts.non_trainable == 2 * _conv_filters(inference_model(model))
    else:
        assert counts.non_trainable == 0


def test_googlenet_without_aux_heads_is_the_inference_graph():
    model = meta_build(PLUGIN, "googlenet", aux_logits=False)
    assert PLUGIN.count_params(model).trainable == REFERENCE_PARAMS["googlenet"]
    assert not [layer.name for layer in model.layers if layer.name.startswith(("aux1", "aux2"))]


# --- small configuration: one model per architecture ------------------------------------------------

class Small:
    """The session's small model of ``arch`` (conftest.small_models: 10 classes, random canonical weights,
    exported once) with its logits on one batch."""

    def __init__(self, arch: str, small_models):
        self.arch = arch
        shared = small_models("tensorflow", arch)
        self.model, self.state = shared.model, shared.state
        self.images = batch()
        self.logits = PLUGIN.predict(self.model, self.images)
        self.export = lambda: small_models.export("tensorflow", arch)


@pytest.fixture(scope="module", params=arch_params(ARCHS))
def small(request, small_models) -> Small:
    return Small(request.param, small_models)


def test_state_dict_round_trip_is_exact(small):
    back = PLUGIN.state_dict(small.model)
    assert back.keys() == small.state.keys()
    for name, value in small.state.items():
        assert back[name].dtype == np.float32 and np.array_equal(back[name], value), name


def test_predict_returns_float32_logits(small):
    assert small.logits.dtype == np.float32 and small.logits.shape == (BATCH, SMALL_CLASSES)
    assert np.isfinite(small.logits).all() and np.abs(small.logits).max() > 0
    with pytest.raises(InvalidInput, match="NCHW"):
        PLUGIN.predict(small.model, small.images.transpose(0, 2, 3, 1))


def _signature(model_proto) -> tuple:
    def spec(value_info):
        t = value_info.type.tensor_type
        return (value_info.name, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                tuple(d.dim_param or d.dim_value for d in t.shape.dim))
    return tuple(spec(v) for v in model_proto.graph.input), tuple(spec(v) for v in model_proto.graph.output)


def test_small_export_honours_the_contract_and_matches_keras(small):
    path, info = small.export()  # the plugin's default opset, 18
    assert info.opset == 18 and info.exporter.startswith("tf2onnx") and info.exporter_version
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert _signature(proto) == (
        (("images", "float32", ("batch", 3, SMALL_SIZE, SMALL_SIZE)),),
        (("logits", "float32", ("batch", SMALL_CLASSES)),),
    )
    ops = [node.op_type for node in proto.graph.node]
    assert "Transpose" not in ops, "layout transposes must cancel: the graph is NCHW end to end"
    assert not [n.name for n in proto.graph.node if "aux" in n.name], "aux heads are not exported"
    # batch 3: the exporter never saw a concrete batch size, so this proves the dim is symbolic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": small.images})
    assert logits.shape == small.logits.shape
    assert relative_error(logits, small.logits) <= RTOL


def test_same_canonical_weights_give_torchs_logits(small, small_models):
    """torchvision-layout weights -> the torch plugin and this one -> the same logits."""
    reference = small_models("torch", small.arch)
    assert reference.state.keys() == small.state.keys()
    assert all(np.array_equal(reference.state[k], v) for k, v in small.state.items()), "the same canonical weights"
    expected = reference.plugin.predict(reference.model, small.images)
    assert relative_error(small.logits, expected) <= RTOL


@pytest.mark.parametrize("arch,size", [("googlenet", 71), ("resnet18", 57), ("alexnet", 97)])
def test_odd_input_sizes_match_torch_pooling_arithmetic(arch, size, tmp_path):
    """Ceil-mode / padded max pools and adaptive average pools at sizes that do not divide evenly."""
    torch_plugin = TorchPlugin()
    reference = torch_plugin.build(arch, num_classes=SMALL_CLASSES, seed=0)
    state = random_canonical_state(torch_plugin.state_dict(reference), seed=2)
    torch_plugin.load_state_dict(reference, state)
    model = PLUGIN.build(arch, num_classes=SMALL_CLASSES, aux_logits=False) if arch == "googlenet" else \
        PLUGIN.build(arch, num_classes=SMALL_CLASSES)
    PLUGIN.load_state_dict(model, state)
    images = batch(size, n=2)
    expected = torch_plugin.predict(reference, images)
    assert relative_error(PLUGIN.predict(model, images), expected) <= RTOL
    path = tmp_path / "m.onnx"
    export_onnx(PLUGIN, model, path, input_size=size)
    (logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images})
    assert relative_error(logits, expected) <= RTOL


def test_googlenet_aux_heads_compute_torchvisions_aux_logits(small_models):
    """The training graph's aux heads (adaptive pool 4x4, 1x1 conv, C,H,W flatten, fc1, fc2)."""
    reference = small_models("torch", "googlenet").model  # both: the training graph, the same canonical weights
    model = small_models("tensorflow", "googlenet").model
    assert reference.aux1 is not None
    images = batch(224, n=1)  # 14x14 -> 4x4: torch's overlapping adaptive windows
    reference.train()  # training mode returns the aux logits; BN and dropout kept in inference mode
    try:
        for module in reference.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.Dropout)):
                module.eval()
        with torch.no_grad():
            logits, aux2, aux1 = (t.numpy() for t in reference(torch.from_numpy(images)))
    finally:
        reference.eval()  # the session's model is shared: put its mode back
    ours = [np.asarray(t) for t in model(images.transpose(0, 2, 3, 1), training=False)]
    for name, expected, actual in zip(("logits", "aux1", "aux2"), (logits, aux1, aux2), ours, strict=True):
        assert relative_error(actual, expected) <= RTOL, name


def test_full_size_resnet50_export_matches_keras(tmp_path):
    model = PLUGIN.build("resnet50", seed=0)
    path = tmp_path / "resnet50.onnx"
    export_onnx(PLUGIN, model, path)
    images = batch(224, n=2)
    (logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images})
    assert logits.shape == (2, 1000)
    assert relative_error(logits, PLUGIN.predict(model, images)) <= RTOL


def test_an_input_too_small_for_alexnet_is_invalid_input_not_a_crash(tmp_path, small_models):
    """63 px is AlexNet's minimum in torchvision too; TensorFlow's pooling would SIGFPE below it."""
    model = small_models("tensorflow", "alexnet").model
    with pytest.raises(InvalidInput, match="too small") as info:
        PLUGIN.predict(model, batch(32, n=1))
    assert "input size" in info.value.hint
    with pytest.raises(InvalidInput, match="too small"):
        export_onnx(PLUGIN, model, tmp_path / "a.onnx", input_size=32)
    assert PLUGIN.predict(model, batch(63, n=1)).shape == (1, SMALL_CLASSES)


@pytest.mark.parametrize("opset", [13, 21])
def test_other_opsets_export_and_match(opset, tmp_path, small_models):
    """tf2onnx writes up to opset 18; above, onnx.version_converter upgrades the graph."""
    model = small_models("tensorflow", "googlenet").model
    path = tmp_path / "g.onnx"
    assert export_onnx(PLUGIN, model, path, opset=opset, input_size=SMALL_SIZE).opset == opset
    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    images = batch()
    (logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images})
    assert relative_error(logits, PLUGIN.predict(model, images)) <= RTOL


def test_export_is_byte_for_byte_reproducible(tmp_path, small_models):
    """The registry addresses artifacts by sha256: the same model must give the same file."""
    first, _ = small_models.export("tensorflow", "resnet18")
    second = tmp_path / "b.onnx"
    core_export(PLUGIN, SmallModel("tensorflow", "resnet18").model, second, input_size=SMALL_SIZE)  # a new build
    assert first.read_bytes() == second.read_bytes()


# --- weights that do not fit -------------------------------------------------------------------------

@pytest.fixture
def resnet18(small_models):
    """The session's small ResNet-18 (a failed load changes nothing; the one load that succeeds loads its own weights)."""
    shared = small_models("tensorflow", "resnet18")
    return shared.model, PLUGIN.state_dict(shared.model)


def test_invalid_weights_list_missing_unexpected_and_misshaped(resnet18):
    model, state = resnet18
    bad = dict(state)
    del bad["layer1.0.bn1.running_var"]
    bad["layer9.0.conv1.weight"] = np.zeros((1,), np.float32)
    bad["conv1.weight"] = state["conv1.weight"].transpose(2, 3, 1, 0)  # Keras' HWIO, not OIHW
    bad["fc.weight"] = state["fc.weight"].T
    bad["bn1.weight"] = np.array(["a"] * 64)
    before = PLUGIN.state_dict(model)
    with pytest.raises(InvalidWeights) as info:
        PLUGIN.load_state_dict(model, {k: v + 1 if v.dtype == np.float32 else v for k, v in bad.items()})
    message = info.value.message
    assert "1 missing: layer1.0.bn1.running_var" in message
    assert "1 unexpected: layer9.0.conv1.weight" in message
    assert "conv1.weight: expected (64, 3, 7, 7), got (7, 7, 3, 64)" in message
    assert f"fc.weight: expected ({SMALL_CLASSES}, 512), got (512, {SMALL_CLASSES})" in message
    assert "bn1.weight (dtype <U1)" in message
    assert info.value.hint and "num_classes" in info.value.hint
    after = PLUGIN.state_dict(model)
    assert all(np.array_equal(after[k], v) for k, v in before.items()), "a failed load changes nothing"


def test_num_batches_tracked_is_accepted_and_ignored(resnet18):
    model, state = resnet18
    with_counter = {**state, "bn1.num_batches_tracked": np.array(7, dtype=np.int64)}
    PLUGIN.load_state_dict(model, with_counter)
    assert "bn1.num_batches_tracked" not in PLUGIN.state_dict(model)


def test_not_a_mapping_is_invalid_weights(resnet18):
    model, _ = resnet18
    with pytest.raises(InvalidWeights, match="mapping"):
        PLUGIN.load_state_dict(model, [("conv1.weight", np.zeros(1))])


def test_googlenet_aux_weights_load_into_either_graph(small_models):
    with_aux = small_models("tensorflow", "googlenet").model  # the default: the training graph
    without = PLUGIN.build("googlenet", num_classes=SMALL_CLASSES, aux_logits=False, seed=1)
    full = PLUGIN.state_dict(with_aux)
    PLUGIN.load_state_dict(without, full)  # a torchvision checkpoint keeps its aux heads
    images = batch(n=1)
    assert relative_error(PLUGIN.predict(without, images), PLUGIN.predict(with_aux, images)) <= 1e-6
    with pytest.raises(InvalidWeights, match="missing") as info:
        PLUGIN.load_state_dict(with_aux, PLUGIN.state_dict(without))
    assert "aux_logits=False" in info.value.hint
