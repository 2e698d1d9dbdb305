"""Every installed plugin x every architecture it declares: one parametrized test per promise.

A new architecture or a new plugin is tested here without new test code (torchvision's
test_models.py habit). Full-size models are built and counted; exports run at a small
configuration (10 classes, 64 px) and must honour the I/O contract of every artifact.
"""
from __future__ import annotations

import pytest

from zoo.plugins import FrameworkPlugin, get_plugin, plugin_statuses
from zoo.reference import REFERENCE_PARAMS

STATUSES = plugin_statuses()
AVAILABLE = [s.name for s in STATUSES if s.available]
PAIRS = [(s.name, arch) for s in STATUSES if s.available for arch in s.architectures]
SMALL = {"num_classes": 10, "input_size": 64}


def _marks(name: str):
    return [getattr(pytest.mark, name)] if name in ("torch", "tensorflow") else []


def _params(pairs):
    return [pytest.param(p, a, id=f"{p}-{a}", marks=_marks(p)) for p, a in pairs]


@pytest.mark.parametrize("name", AVAILABLE)
def test_plugin_declares_what_zoo_shows(name):
    plugin = get_plugin(name)
    assert isinstance(plugin, FrameworkPlugin)
    assert plugin.name == name and plugin.display_name and plugin.version and plugin.install_hint
    assert plugin.framework_version(), "an available plugin reports its framework version"
    archs = list(plugin.architectures())
    assert archs and len(archs) == len(set(archs)), "architectures are declared once each"


def test_builtin_plugins_are_installed():
    assert {"torch", "tensorflow"} <= {s.name for s in STATUSES}


@pytest.mark.parametrize("name,arch", _params((p, a) for p, a in PAIRS if a in REFERENCE_PARAMS))
def test_full_size_trainable_params_equal_reference(name, arch):
    plugin = get_plugin(name)
    options = {"aux_logits": False} if arch == "googlenet" else {}
    counts = plugin.count_params(plugin.build(arch, num_classes=1000, **options))
    assert counts.trainable == REFERENCE_PARAMS[arch]
    if arch.startswith("resnet") or arch == "googlenet":
        assert counts.non_trainable > 0, "BatchNorm running statistics are counted as non-trainable"
    else:
        assert counts.non_trainable == 0


@pytest.mark.parametrize("name,arch", _params((p, a) for p, a in PAIRS if a == "googlenet"))
def test_googlenet_training_graph_has_aux_heads(name, arch):
    plugin = get_plugin(name)
    counts = plugin.count_params(plugin.build(arch, num_classes=1000, aux_logits=True))
    assert counts.trainable == REFERENCE_PARAMS["googlenet+aux"]


@pytest.mark.parametrize("name,arch", _params(PAIRS))
def test_small_export_honours_the_io_contract(name, arch, tmp_path):
    import onnx

    from zoo import open_registry
    from zoo._exporting import export_and_register

    registry = open_registry(tmp_path / "store")
    result = export_and_register(registry, get_plugin(name), arch, seed=0, **SMALL)
    v = result.version
    assert result.created and result.verify_error <= 1e-4
    assert (v.framework, v.arch, v.num_classes) == (name, arch, SMALL["num_classes"])
    (inp,), (out,) = v.signature.inputs, v.signature.outputs
    assert (inp.name, inp.dtype, tuple(inp.shape)) == ("images", "float32", ("batch", 3, 64, 64))
    assert (out.name, out.dtype, tuple(out.shape)) == ("logits", "float32", ("batch", 10))
    assert v.params is not None and v.onnx_params > 0 and v.macs and v.macs > 0
    props = {p.key: p.value for p in onnx.load(str(registry.path(v)), load_external_data=False).metadata_props}
    assert props["zoo.arch"] == arch and props["zoo.framework"] == name
