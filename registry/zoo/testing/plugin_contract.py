"""The contract tests a framework plugin must pass, as a kit its author runs in their own test suite.

Subclass :class:`PluginContract` in a test module and pytest collects every check, once per
architecture::

    # tests/test_zoo_contract.py of the zoo-mxnet distribution
    from zoo.testing import PluginContract

    class TestMXNetContract(PluginContract):
        plugin = "mxnet"              # the entry-point name (or a plugin instance)
        archs = ("resnet18",)         # default: every architecture the plugin declares

The checks, cheapest first: the plugin passes zoo's load-time hook check and declares what ``zoo
plugins`` shows; each architecture builds, at 1,000 classes, exactly the published parameter count
(:mod:`zoo.architectures` for zoo's nine, the plugin's ``reference_params`` hook for its own) and, for
the nine, exactly the architecture tables' counts at 10 classes too; GoogLeNet-style training heads are
built by default and dropped by ``inference_options``; ``strict_fp32`` says what it did; and a small
export (10 classes, :attr:`PluginContract.input_size` px) goes through zoo's own pipeline (build, export,
the ONNX I/O-contract pass, verification, registration into a throwaway registry), honours the artifact
contract (``images`` float32 ``[batch, 3, H, W]`` -> ``logits`` float32 ``[batch, classes]``), and
agrees with the native model on a fresh batch when ONNX Runtime runs the registered file. One export
per architecture is shared by the checks that need it (a class-scoped fixture).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from .. import plugins as _plugins
from .._exporting import ExportResult, export_and_register
from .._plugin_check import check_plugin
from ..architectures import ARCHITECTURES, REFERENCE_PARAMS, TRAINING_HEADS, param_counts
from ..metrics import relative_error
from ..records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME

__all__ = ["PluginContract"]

SMALL_CLASSES = 10


class PluginContract:
    """Base class of a plugin's contract tests (see the module docstring); set :attr:`plugin`, maybe :attr:`archs`."""

    plugin: ClassVar[Any] = None  # an entry-point name (discovered like `zoo plugins` does) or a plugin instance
    archs: ClassVar[Sequence[str] | None] = None  # the architectures to check by default; None: all declared
    slow_rest: ClassVar[bool] = False  # also check the other declared architectures, marked `slow` (register the mark)
    input_size: ClassVar[int] = 64  # H = W of the small export
    rtol: ClassVar[float] = 1e-4  # native vs ONNX Runtime, relative to the largest native logit

    # ------------------------------------------------------------------ plumbing

    @classmethod
    def _plugin(cls) -> Any:
        if cls.plugin is None:
            raise TypeError(f"{cls.__name__}: set `plugin` to your plugin's entry-point name or an instance")
        return _plugins.get_plugin(cls.plugin) if isinstance(cls.plugin, str) else cls.plugin

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per architecture (pytest calls this hook on test classes)."""
        if "arch" not in metafunc.fixturenames:
            return
        declared = list(self._plugin().architectures())
        chosen = declared if self.archs is None else list(self.archs)
        params = [pytest.param(a, id=a) for a in chosen]
        if self.slow_rest:
            params += [pytest.param(a, id=a, marks=pytest.mark.slow) for a in declared if a not in chosen]
        metafunc.parametrize("arch", params, scope="class")

    @pytest.fixture(scope="class")
    def exported(self, arch: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ExportResult]]:
        """``arch`` exported small through zoo's pipeline into a throwaway registry: (registry, result)."""
        from .._open import open_registry

        registry = open_registry(tmp_path_factory.mktemp("contract") / "store")
        result = export_and_register(registry, self._plugin(), arch, num_classes=SMALL_CLASSES,
                                     input_size=self.input_size, seed=0)
        yield registry, result

    # ------------------------------------------------------------------ the plugin as a whole

    def test_passes_the_hook_check_and_declares_what_zoo_shows(self) -> None:
        plugin = self._plugin()
        check_plugin(plugin, _plugins.HOOKS, label=repr(plugin.name))
        assert plugin.name == plugin.name.lower() and plugin.display_name and plugin.install_hint
        assert plugin.version, "a version, from the distribution's metadata (zoo.plugins.distribution_version)"
        assert plugin.framework_version(), "an available plugin reports its framework version"
        archs = list(plugin.architectures())
        assert archs and len(archs) == len(set(archs)), "architectures are declared once each"
        assert set(_plugins.reference_params(plugin)) <= set(archs) - set(ARCHITECTURES)

    def test_strict_fp32_says_what_it_did(self) -> None:
        plugin = self._plugin()
        with _plugins.strict_fp32([plugin]) as notes:
            assert bool(notes) == callable(getattr(plugin, "strict_fp32", None)), "a plugin with the hook says what it did"
            assert all(isinstance(n, str) for n in notes)

    # ------------------------------------------------------------------ per architecture

    def test_counts_equal_the_reference(self, arch: str) -> None:
        plugin = self._plugin()
        options = _plugins.inference_options(plugin, arch)
        counts = plugin.count_params(plugin.build(arch, num_classes=1000, **options))
        if arch in ARCHITECTURES:
            assert counts == param_counts(arch), "the architecture tables (zoo archs) say otherwise"
            assert counts.trainable == REFERENCE_PARAMS[arch]
            small = plugin.count_params(plugin.build(arch, num_classes=SMALL_CLASSES, **options))
            assert small == param_counts(arch, num_classes=SMALL_CLASSES)
            return
        published = _plugins.reference_params(plugin).get(arch)
        if published is None:
            pytest.skip(f"{arch!r} has no published count: declare it in the plugin's reference_params hook")
        assert counts.trainable == published

    def test_training_graph_keeps_the_training_heads(self, arch: str) -> None:
        if arch not in TRAINING_HEADS:
            pytest.skip(f"{arch!r} has no training-only heads")
        plugin = self._plugin()
        model = plugin.build(arch, num_classes=1000)  # the default is the training graph
        counts = plugin.count_params(model)
        assert counts == param_counts(arch, training_graph=True)
        assert counts.trainable == REFERENCE_PARAMS[f"{arch}+aux"]
        assert _plugins.inference_options(plugin, arch) == {TRAINING_HEADS[arch].option: False}
        assert _plugins.inference_options(plugin, arch, state=plugin.state_dict(model)) == {}, \
            "weights with the heads build the graph that loads them"

    def test_export_honours_the_onnx_contract(self, arch: str, exported: tuple[Any, ExportResult]) -> None:
        import onnx

        registry, result = exported
        v = result.version
        assert result.verify_error <= self.rtol
        assert (v.framework, v.arch, v.num_classes) == (self._plugin().name, arch, SMALL_CLASSES)
        (inp,), (out,) = v.signature.inputs, v.signature.outputs
        size = self.input_size
        assert (inp.name, inp.dtype, tuple(inp.shape)) == (INPUT_NAME, "float32", (BATCH_DIM, 3, size, size))
        assert (out.name, out.dtype, tuple(out.shape)) == (OUTPUT_NAME, "float32", (BATCH_DIM, SMALL_CLASSES))
        assert v.params is not None and v.onnx_params > 0 and v.macs and v.macs > 0
        props = {p.key: p.value for p in onnx.load(str(registry.path(v)), load_external_data=False).metadata_props}
        assert (props["zoo.arch"], props["zoo.framework"]) == (arch, v.framework)

    def test_native_and_onnx_runtime_agree(self, arch: str, exported: tuple[Any, ExportResult]) -> None:
        """The registered file under ONNX Runtime vs the same build holding the same weights (zoo's seeded weights,
        as `zoo export` loads them), on a batch the export was not verified on."""
        from .._exporting import seeded_weights

        registry, result = exported
        plugin = self._plugin()
        model = plugin.build(arch, num_classes=SMALL_CLASSES, seed=0, **_plugins.inference_options(plugin, arch))
        seeded = seeded_weights(plugin, model, arch=arch, num_classes=SMALL_CLASSES, seed=0)
        if seeded is not None:  # a plugin without canonical tensors: its seeded build is the model
            plugin.load_state_dict(model, seeded[0])
        batch = np.random.default_rng(1234).standard_normal((2, 3, self.input_size, self.input_size), dtype=np.float32)
        native = plugin.predict(model, batch)
        onnx_logits = registry.load(result.version.ref, provider="cpu").predict(batch)
        assert native.shape == onnx_logits.shape == (2, SMALL_CLASSES)
        assert relative_error(onnx_logits, native) <= self.rtol

