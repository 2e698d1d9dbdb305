"""The PyTorch plugin: torchvision-exact builds, canonical weights, and ONNX exports that honour the contract.

Full-size models are only built on the "meta" device and counted (plus one full-size ResNet-18
export); exports use num_classes=10 at 64 px. The deepest and the largest (VGG's 0.5 GB
classifier) small exports run only with ``-m slow``.
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

from arch_params import DEEP_VARIANTS
from zoo._exporting import export_onnx
from zoo.architectures import ARCHITECTURES, REFERENCE_PARAMS
from zoo.errors import InvalidInput, InvalidWeights, NotFound
from zoo.metrics import relative_error, verification_batch
from zoo.plugins import (
    FrameworkPlugin,
    install_command,
)
from zoo.records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME
from zoo_torch import TorchPlugin

pytestmark = pytest.mark.torch

PLUGIN = TorchPlugin()
SMALL = {"num_classes": 10}
SMALL_SIZE = 64
CHECK_BATCH = 3  # differs from the exporter's trace batch (2): proves the batch dim is symbolic
RTOL = 1e-4
# Small exports of the deep ResNets trace hundreds of layers (> ~8 s each on 2 busy cores); ResNet-18 / -50 cover
# both block types in the fast run, which exports every other builder (VGG-16 too: no other default test does).
SLOW_EXPORTS = DEEP_VARIANTS


def _batch(size: int, *, n: int = CHECK_BATCH, seed: int = 1) -> np.ndarray:
    return verification_batch(size, batch=n, seed=seed)


def _dims(value_info) -> list:
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _bn_channels(model: torch.nn.Module) -> int:
    return sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.fixture
def exports(small_models):
    """Small exports, each made once per session (conftest.small_models): arch -> (model, path, ExportInfo)."""
    def get(arch: str):
        path, info = small_models.export("torch", arch)
        return small_models("torch", arch).model, path, info

    return get


@pytest.fixture
def small(small_models):
    """arch -> the session's small model (10 classes, random canonical weights; read-only)."""
    return lambda arch: small_models("torch", arch).model


# --- the plugin object ---------------------------------------------------------------------------

def test_plugin_satisfies_protocol_and_metadata():
    assert isinstance(PLUGIN, FrameworkPlugin)
    assert (PLUGIN.name, PLUGIN.display_name, PLUGIN.requires) == ("torch", "PyTorch", ("torch",))
    assert PLUGIN.version and install_command("torch") in PLUGIN.install_hint
    assert tuple(PLUGIN.architectures()) == ARCHITECTURES
    assert PLUGIN.framework_version() == torch.__version__


def test_plugin_module_does_not_import_torch():
    code = (
        "import sys; from zoo_torch import TorchPlugin; p = TorchPlugin(); "
        "p.architectures(); p.framework_version(); assert 'torch' not in sys.modules, 'torch imported'"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- builds and counts ---------------------------------------------------------------------------

def _count_cases() -> list:
    cases = []
    for arch in PLUGIN.architectures():
        if arch == "googlenet":
            cases += [pytest.param(arch, {"aux_logits": False}, "googlenet", id="googlenet"),
                      pytest.param(arch, {"aux_logits": True}, "googlenet+aux", id="googlenet+aux")]
        else:
            cases.append(pytest.param(arch, {}, arch, id=arch))
    return cases


@pytest.mark.parametrize("arch, options, reference", _count_cases())
def test_full_size_trainable_params_match_torchvision(arch: str, options: dict, reference: str):
    model = PLUGIN.build(arch, device="meta", **options)
    counts = PLUGIN.count_params(model)
    assert counts.trainable == REFERENCE_PARAMS[reference]
    # Non-trainable = BN running mean + var; the int64 num_batches_tracked counters are not counted.
    assert counts.non_trainable == 2 * _bn_channels(model)
    assert counts.total == counts.trainable + counts.non_trainable


def test_googlenet_default_is_training_graph_with_aux_heads():
    assert PLUGIN.count_params(PLUGIN.build("googlenet", device="meta")).trainable == REFERENCE_PARAMS["googlenet+aux"]


def test_real_build_counts_like_meta_build_and_is_in_eval_mode(torch_resnet18_full_size):
    real, _ = torch_resnet18_full_size
    assert not real.training
    assert PLUGIN.count_params(real) == PLUGIN.count_params(PLUGIN.build("resnet18", device="meta"))


def test_frozen_parameters_count_as_non_trainable():
    model = PLUGIN.build("resnet18", device="meta", **SMALL)
    before = PLUGIN.count_params(model)
    model.fc.requires_grad_(False)
    after = PLUGIN.count_params(model)
    frozen = 512 * 10 + 10
    assert after.trainable == before.trainable - frozen
    assert after.non_trainable == before.non_trainable + frozen


def test_unknown_arch_is_not_found_and_lists_the_known_ones():
    with pytest.raises(NotFound) as err:
        PLUGIN.build("resnet9000")
    assert "resnet9000" in err.value.message
    assert all(arch in err.value.message for arch in PLUGIN.architectures())


@pytest.mark.parametrize("arch, options, named", [
    ("resnet18", {"aux_logits": True}, "aux_logits"),
    ("googlenet", {"auxlogits": False}, "auxlogits"),
    ("vgg16", {"batch_norm": True}, "batch_norm"),
])
def test_unknown_option_is_invalid_input_naming_it(arch: str, options: dict, named: str):
    with pytest.raises(InvalidInput) as err:
        PLUGIN.build(arch, device="meta", **options)
    assert named in err.value.message


@pytest.mark.parametrize("options", [{"aux_logits": "yes"}, {"dropout": 1.5}, {"num_classes": 0}, {"seed": "1"}])
def test_bad_option_values_are_invalid_input(options: dict):
    with pytest.raises(InvalidInput) as err:
        PLUGIN.build("googlenet", device="meta", **options)
    assert repr(next(iter(options.values()))) in err.value.message


def test_seed_makes_init_deterministic_without_touching_global_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = PLUGIN.state_dict(PLUGIN.build("googlenet", seed=7, **SMALL))
    assert torch.equal(torch.rand(1), expected_next), "a seeded build must not consume the global RNG"
    b = PLUGIN.state_dict(PLUGIN.build("googlenet", seed=7, **SMALL))
    c = PLUGIN.state_dict(PLUGIN.build("googlenet", seed=8, **SMALL))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc.weight"], c["fc.weight"])
    u1 = PLUGIN.state_dict(PLUGIN.build("resnet18", **SMALL))
    u2 = PLUGIN.state_dict(PLUGIN.build("resnet18", **SMALL))
    assert not np.array_equal(u1["conv1.weight"], u2["conv1.weight"]), "unseeded builds must differ"


@pytest.mark.parametrize("arch", ["alexnet", "googlenet", "resnet18", "resnet50"])
def test_random_init_keeps_logits_well_scaled(arch: str):
    logits = PLUGIN.predict(PLUGIN.build(arch, seed=0, **SMALL), _batch(SMALL_SIZE, n=2))
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert 1e-3 < np.abs(logits).max() < 1e3
    assert np.abs(logits[0] - logits[1]).max() > 1e-4 * np.abs(logits).max(), "inputs must matter"


def test_googlenet_aux_heads_run_in_training_only_and_predict_restores_mode(small):
    model = small("googlenet")
    x = _batch(SMALL_SIZE, n=2)
    model.train()
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x))
        assert [t.shape for t in out] == [(2, 10)] * 3  # logits, aux2, aux1
        logits = PLUGIN.predict(model, x)
        assert model.training, "predict must restore the caller's mode"
    finally:
        model.eval()  # the session's model is shared: put its mode back
    assert np.array_equal(logits, PLUGIN.predict(model, x))


@pytest.mark.parametrize("images, fragment", [
    (np.zeros((2, 64, 64, 3), np.float32), "NCHW"),
    (np.zeros((3, 64, 64), np.float32), "NCHW"),
    (np.zeros((1, 3, 64, 64), np.uint8), "uint8"),
])
def test_predict_rejects_bad_batches(images: np.ndarray, fragment: str, small):
    with pytest.raises(InvalidInput) as err:
        PLUGIN.predict(small("resnet18"), images)
    assert fragment in err.value.message


# --- ONNX export ---------------------------------------------------------------------------------

def _assert_contract(path: Path, *, num_classes: int, size: int) -> "onnx.ModelProto":
    assert not list(path.parent.glob(path.name + "*.data")) and not (path.parent / (path.name + ".data")).exists()
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL
                   for t in proto.graph.initializer), "a model < 2 GB must be one self-contained file"
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    assert [i.name for i in inputs] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    assert _dims(inputs[0]) == [BATCH_DIM, 3, size, size]
    assert _dims(proto.graph.output[0]) == [BATCH_DIM, num_classes]
    assert inputs[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    onnx.checker.check_model(proto)
    return proto


def _ort_matches_eager(model, path: Path, size: int) -> float:
    x = _batch(size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    expected = PLUGIN.predict(model, x)
    assert actual.shape == expected.shape == (CHECK_BATCH, expected.shape[1])
    return relative_error(actual, expected)


@pytest.mark.parametrize("arch", [
    pytest.param(a, marks=pytest.mark.slow) if a in SLOW_EXPORTS else a for a in PLUGIN.architectures()
])
def test_small_export_honours_contract_and_matches_eager(arch: str, exports):
    model, path, info = exports(arch)
    assert info.exporter == "torch.onnx.export(dynamo=True)", info.notes
    assert info.opset == 18 and info.exporter_version == torch.__version__
    proto = _assert_contract(path, num_classes=10, size=SMALL_SIZE)
    assert any(o.domain in ("", "ai.onnx") and o.version == 18 for o in proto.opset_import)
    assert _ort_matches_eager(model, path, SMALL_SIZE) <= RTOL


def test_googlenet_export_holds_no_aux_heads(exports):
    model, path, _ = exports("googlenet")
    assert model.aux1 is not None and model.aux2 is not None, "the fixture exports the training graph"
    proto = onnx.load(str(path))
    names = [t.name for t in proto.graph.initializer] + [n.name for n in proto.graph.node]
    assert not [n for n in names if "aux" in n.lower()]
    exported = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    inference = PLUGIN.count_params(PLUGIN.build("googlenet", aux_logits=False, device="meta", **SMALL))
    training = PLUGIN.count_params(model)
    # BN may be folded into the convs (its scale/shift become conv biases): allow 1%, but the aux
    # heads (~3.2 M parameters at 10 classes) would be far outside that.
    assert abs(exported - inference.total) <= 0.01 * inference.total
    assert training.trainable - inference.trainable > 0.3 * inference.trainable


def test_export_falls_back_to_torchscript_and_says_so(exports, tmp_path, monkeypatch):
    from zoo_torch import export as export_module

    def broken(*args, **kwargs):
        raise RuntimeError("simulated dynamo failure")

    monkeypatch.setattr(export_module, "_dynamo_export", broken)
    model, _, _ = exports("resnet18")
    path = tmp_path / "ts.onnx"
    info = export_onnx(PLUGIN, model, path, input_size=SMALL_SIZE)
    assert info.exporter == "torch.onnx.export(dynamo=False)"
    assert any("simulated dynamo failure" in note for note in info.notes)
    _assert_contract(path, num_classes=10, size=SMALL_SIZE)
    assert _ort_matches_eager(model, path, SMALL_SIZE) <= RTOL


def test_full_size_resnet18_export(torch_resnet18_full_size):
    model, path = torch_resnet18_full_size
    _assert_contract(path, num_classes=1000, size=224)
    assert _ort_matches_eager(model, path, 224) <= RTOL


def test_export_rejects_what_cannot_work(tmp_path, small):
    with pytest.raises(InvalidInput, match="meta"):
        export_onnx(PLUGIN, PLUGIN.build("resnet18", device="meta"), tmp_path / "m.onnx")
    with pytest.raises(InvalidInput, match="input_size 32"):  # AlexNet's 3x3 pools need >= 63 px
        export_onnx(PLUGIN, small("alexnet"), tmp_path / "a.onnx", input_size=32)
    with pytest.raises(InvalidInput, match="opset"):
        export_onnx(PLUGIN, small("resnet18"), tmp_path / "o.onnx", opset=7)
    assert not list(tmp_path.iterdir())


# --- canonical weights ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch, options", [("resnet18", {}), ("googlenet", {"aux_logits": True})])
def test_state_dict_round_trip_reproduces_predictions(arch: str, options: dict, small):
    source = small(arch)  # GoogLeNet's default graph is the training graph (aux_logits=True)
    state = PLUGIN.state_dict(source)
    native = {k for k in source.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(state) == native
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    assert {k for k in state if k.endswith(("running_mean", "running_var"))}, "BN statistics are part of the weights"

    target = PLUGIN.build(arch, seed=1, **SMALL, **options)
    x = _batch(SMALL_SIZE)
    assert not np.array_equal(PLUGIN.predict(target, x), PLUGIN.predict(source, x))
    PLUGIN.load_state_dict(target, state)
    assert np.array_equal(PLUGIN.predict(target, x), PLUGIN.predict(source, x))
    state["fc.bias"][:] = 42.0  # the returned arrays are copies, not views of the model
    assert not np.any(PLUGIN.state_dict(source)["fc.bias"] == 42.0)


def test_torchvision_checkpoint_extras_are_accepted(small):
    """num_batches_tracked counters and GoogLeNet's aux heads (for a model without them) load silently."""
    trained = small("googlenet")  # the training graph: aux heads included
    assert trained.aux1 is not None
    checkpoint = {k: v.numpy() for k, v in trained.state_dict().items()}
    assert any(k.endswith("num_batches_tracked") for k in checkpoint)
    inference = PLUGIN.build("googlenet", seed=1, aux_logits=False, **SMALL)
    PLUGIN.load_state_dict(inference, checkpoint)
    x = _batch(SMALL_SIZE)
    assert np.array_equal(PLUGIN.predict(inference, x), PLUGIN.predict(trained, x))


def test_load_state_dict_lists_missing_unexpected_and_misshaped(small):
    model = small("resnet18")  # the load must fail and change nothing, so the shared model stays as it was
    before = PLUGIN.state_dict(model)
    state = PLUGIN.state_dict(PLUGIN.build("resnet18", seed=1, num_classes=1000))
    del state["layer1.0.bn1.running_var"]
    state["head.weight"] = np.zeros((10, 512), np.float32)
    with pytest.raises(InvalidWeights) as err:
        PLUGIN.load_state_dict(model, state)
    message = err.value.message
    assert "missing" in message and "layer1.0.bn1.running_var" in message
    assert "unexpected" in message and "head.weight" in message
    assert "mis-shaped" in message and "fc.weight: expected (10, 512), got (1000, 512)" in message
    assert "fc.bias: expected (10,), got (1000,)" in message
    assert "conv1.weight" not in message
    after = PLUGIN.state_dict(model)
    assert all(np.array_equal(before[k], after[k]) for k in before), "a failed load must change nothing"


def test_googlenet_weights_without_aux_heads_say_how_to_build():
    state = PLUGIN.state_dict(PLUGIN.build("googlenet", seed=0, aux_logits=False, **SMALL))
    with pytest.raises(InvalidWeights) as err:
        PLUGIN.load_state_dict(PLUGIN.build("googlenet", device="meta", **SMALL), state)  # refused before any copy
    assert "aux1.fc1.weight" in err.value.message and "aux_logits=False" in (err.value.hint or "")
