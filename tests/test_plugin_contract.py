"""zoo's own plugins, and the toy third-party one, pass the contract kit plugin authors run (zoo.testing).

Each class runs every check of :class:`zoo.testing.PluginContract` per architecture: cheaply by default
(small exports at 64 px, ResNet-18 for each built-in plugin), every other declared architecture under
``-m slow``. The full-size counts of every architecture of every plugin, which ``zoo archs`` prints from
the tables, and GoogLeNet's training heads stay checked in the default run below (builds, no export).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from zoo import plugins
from zoo.architectures import ARCHITECTURES, REFERENCE_PARAMS, TRAINING_HEADS, param_counts
from zoo.plugins import get_plugin, plugin_statuses
from zoo.testing import PluginContract


def _toy_module():
    """The toy plugin from its source file, without putting its folder on sys.path (where a pip build leaves
    an egg-info whose entry point would make every later test of this session discover the toy)."""
    source = Path(__file__).parent / "fixtures" / "toy_plugin" / "zoo_toy" / "__init__.py"
    spec = importlib.util.spec_from_file_location("zoo_toy", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ToyPlugin = _toy_module().ToyPlugin

STATUSES = plugin_statuses()
AVAILABLE = {s.name for s in STATUSES if s.available}
PAIRS = [(s.name, arch) for s in STATUSES if s.available and s.name in ("torch", "tensorflow") for arch in s.architectures]
CHEAP = ("resnet18",)  # one export per built-in plugin by default (~30 s in torch on 2 cores, most of it warm-up)


@pytest.mark.torch
@pytest.mark.skipif("torch" not in AVAILABLE, reason="the PyTorch plugin is not available here")
class TestTorchContract(PluginContract):
    plugin = "torch"
    archs = CHEAP
    slow_rest = True


@pytest.mark.tensorflow
@pytest.mark.skipif("tensorflow" not in AVAILABLE, reason="the TensorFlow plugin is not available here")
class TestTensorFlowContract(PluginContract):
    plugin = "tensorflow"
    archs = CHEAP
    slow_rest = True


class TestToyContract(PluginContract):
    """A third-party plugin's architecture beyond the nine, checked against its own reference count."""

    plugin = ToyPlugin()
    input_size = 32


def test_builtin_plugins_are_installed():
    assert {"torch", "tensorflow"} <= {s.name for s in STATUSES}


@pytest.mark.parametrize("name,arch", [pytest.param(p, a, id=f"{p}-{a}", marks=[getattr(pytest.mark, p)])
                                       for p, a in PAIRS if a in ARCHITECTURES])
def test_full_size_counts_equal_the_tables(name, arch):
    """What `zoo archs` shows without building (zoo.architectures.param_counts) is what each plugin builds."""
    plugin = get_plugin(name)
    model = plugin.build(arch, num_classes=1000, **plugins.inference_options(plugin, arch))
    assert plugin.count_params(model) == param_counts(arch)


@pytest.mark.parametrize("name,arch", [pytest.param(p, a, id=f"{p}-{a}", marks=[getattr(pytest.mark, p)])
                                       for p, a in PAIRS if a in TRAINING_HEADS])
def test_training_graph_keeps_the_training_heads(name, arch):
    plugin = get_plugin(name)
    model = plugin.build(arch, num_classes=1000)  # the default is the training graph
    assert plugin.count_params(model).trainable == REFERENCE_PARAMS[f"{arch}+aux"]
    assert plugins.inference_options(plugin, arch) == {TRAINING_HEADS[arch].option: False}
    assert plugins.inference_options(plugin, arch, state=plugin.state_dict(model)) == {}
