"""Every installed plugin x every architecture it declares: one parametrized test per promise.

A new architecture or a new plugin is tested here without new test code (torchvision's
test_models.py habit). Models are built and counted (full size and 10 classes) against the
architecture tables and the published counts; exports run at a small configuration (10 classes,
64 px) and must honour the I/O contract of every artifact.
"""
from __future__ import annotations

import pytest

from arch_params import slow_if_deep
from zoo import plugins
from zoo.architectures import ARCHITECTURES, REFERENCE_PARAMS, TRAINING_HEADS, param_counts
from zoo.plugins import FrameworkPlugin, get_plugin, plugin_statuses

STATUSES = plugin_statuses()
AVAILABLE = [s.name for s in STATUSES if s.available]
PAIRS = [(s.name, arch) for s in STATUSES if s.available for arch in s.architectures]
SMALL = {"num_classes": 10, "input_size": 64}


def _marks(name: str):
    return [getattr(pytest.mark, name)] if name in ("torch", "tensorflow") else []


def _params(pairs, *, deep_slow: bool = False):
    return [pytest.param(p, a, id=f"{p}-{a}", marks=_marks(p) + (slow_if_deep(a) if deep_slow else [])) for p, a in pairs]


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


@pytest.mark.parametrize("num_classes", [1000, 10])
@pytest.mark.parametrize("name,arch", _params((p, a) for p, a in PAIRS if a in ARCHITECTURES))
def test_built_counts_equal_the_tables_and_the_reference(name, arch, num_classes):
    """What `zoo archs` shows without building (zoo.architectures.param_counts) is what the plugin builds."""
    plugin = get_plugin(name)
    model = plugin.build(arch, num_classes=num_classes, **plugins.inference_options(plugin, arch))
    counts = plugin.count_params(model)
    assert counts == param_counts(arch, num_classes=num_classes)
    if num_classes == 1000:
        assert counts.trainable == REFERENCE_PARAMS[arch]


@pytest.mark.parametrize("name,arch", _params((p, a) for p, a in PAIRS if a in TRAINING_HEADS))
def test_training_graph_keeps_the_training_heads(name, arch):
    plugin = get_plugin(name)
    model = plugin.build(arch, num_classes=1000)  # the default is the training graph
    counts = plugin.count_params(model)
    assert counts == param_counts(arch, training_graph=True)
    assert counts.trainable == REFERENCE_PARAMS[f"{arch}+aux"]
    assert plugins.inference_options(plugin, arch) == {TRAINING_HEADS[arch].option: False}
    state = plugin.state_dict(model)
    assert plugins.inference_options(plugin, arch, state=state) == {}, "weights with the heads build the graph that loads them"


@pytest.mark.parametrize("name", AVAILABLE)
def test_strict_fp32_says_what_it_did(name):
    plugin = get_plugin(name)
    with plugins.strict_fp32([plugin]) as notes:
        assert bool(notes) == callable(getattr(plugin, "strict_fp32", None)), "a plugin with the hook says what it turned off"
        assert all(isinstance(n, str) for n in notes)


@pytest.mark.parametrize("name,arch", _params(PAIRS, deep_slow=True))
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
