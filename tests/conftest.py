"""Shared fixtures: a temporary registry on each backend and a factory of tiny, valid ONNX models."""
from __future__ import annotations

import glob
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import BACKENDS, PG_ENV, S3_ENV, Backend, start_services

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_tiny_onnx(path: Path, seed: int = 0, *, num_classes: int = 10, external_data: bool = False) -> Path:
    """Write images [batch,3,8,8] -> Flatten -> Gemm -> logits [batch,num_classes]; weights depend on ``seed``.

    With ``external_data`` the weights go to ``<name>.data`` beside the model (size_threshold=0), the
    layout models over 2 GB must use.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((num_classes, 3 * 8 * 8)).astype(np.float32)
    bias = rng.standard_normal(num_classes).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["images"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"], transB=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="zoo-tests")
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_data:
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, path)
    return path


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_onnx(seed=0, *, num_classes=10, external_data=False)`` -> path of a fresh model file."""
    counter = iter(range(1_000_000))

    def make(seed: int = 0, *, num_classes: int = 10, external_data: bool = False) -> Path:
        folder = tmp_path / "models" / f"m{next(counter)}"
        return make_tiny_onnx(folder / "model.onnx", seed, num_classes=num_classes, external_data=external_data)

    return make


# --- the shared backend without its services, outside CI -------------------------------------------

HOW_TO_RUN_SHARED = (f"apt-get install -y postgresql && pip install 'moto[server]' (or set {PG_ENV} and {S3_ENV}); "
                     "in CI (CI=true) they run and fail if the services cannot start")


_SHARED_SKIPPED = pytest.StashKey[str]()


def missing_shared_services() -> str | None:
    """Why ``.ci/services`` cannot start the shared backend here (None: it can, or external ones are set)."""
    if os.environ.get(PG_ENV) and os.environ.get(S3_ENV):
        return None
    missing = []
    if not shutil.which("pg_ctl") and not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        missing.append("PostgreSQL")
    if not os.environ.get(S3_ENV) and not shutil.which("moto_server"):
        missing.append("moto_server")
    return " and ".join(missing) + " not installed" if missing else None


def uses_shared_store(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return "shared_services" in getattr(item, "fixturenames", ()) or "shared" in params.values()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, without PostgreSQL/moto, the shared-store tests are deselected (one summary line says
    so and how to run them); in CI (``CI`` set) they stay, and fail if the services cannot start."""
    if os.environ.get("CI", "").lower() in ("", "0", "false"):
        why = missing_shared_services()
        shared = [item for item in items if uses_shared_store(item)] if why else []
        if shared:
            config.hook.pytest_deselected(items=shared)
            items[:] = [item for item in items if not uses_shared_store(item)]
            config.stash[_SHARED_SKIPPED] = f"{len(shared)} shared-store tests not run ({why}): {HOW_TO_RUN_SHARED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    line = config.stash.get(_SHARED_SKIPPED, None)
    if line:
        terminalreporter.write_line(line, yellow=True)


@pytest.fixture(scope="session")
def shared_services():
    """PostgreSQL + S3 for the shared backend: $ZOO_TEST_PG_URL / $ZOO_TEST_S3_URL, else started here (.ci/services).
    If they cannot start, every shared-backend test fails (never skips)."""
    services, stop = start_services()
    yield services
    stop()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path: Path, monkeypatch):
    """A fresh, empty store on each backend (embedded: a folder; shared: PostgreSQL + S3 + a local cache).
    ``backend.open()`` opens a registry on it; ``backend.env`` points a child process at it."""
    services = request.getfixturevalue("shared_services") if request.param == "shared" else None
    made = Backend.create(request.param, tmp_path, services)
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    yield made
    made.drop()


@pytest.fixture
def store(backend: Backend):
    """An empty registry, on each backend."""
    registry = backend.open()
    yield registry
    registry.close()


@pytest.fixture
def embedded_store(tmp_path: Path):
    """An empty embedded registry in a temporary folder (for tests about SQLite and files themselves)."""
    from zoo._registry import Registry

    registry = Registry.open(tmp_path / "store", create=True)
    yield registry
    registry.close()


# --- one build and one export per (plugin, arch), shared by the whole session -----------------------

SMALL_CLASSES, SMALL_SIZE = 10, 64  # the small configuration every per-architecture test uses


class SmallModel:
    """``plugin``'s ``arch`` at 10 classes (its default graph: GoogLeNet keeps its training heads), built
    with ``seed=0`` and then loaded with seeded random canonical weights (``zoo.weights``: non-trivial
    BatchNorm statistics, so a layout or BN mistake cannot hide behind an identity-like init).

    Invariant: the same (plugin, arch) always gives the same weights, so a rebuilt model still matches
    an export made earlier. Tests treat ``model`` and ``state`` as read-only (put back any mode they change).
    """

    def __init__(self, plugin_name: str, arch: str, *, same_as: "SmallModel | None" = None):
        from zoo.plugins import get_plugin
        from zoo.weights import random_canonical_weights, shapes_of

        self.plugin = get_plugin(plugin_name)
        self.arch = arch
        self.model = self.plugin.build(arch, num_classes=SMALL_CLASSES, seed=0)
        shapes = shapes_of(self.plugin.state_dict(self.model))
        # Another plugin's model of the same arch has the very same canonical weights (they are seeded per
        # tensor name): reuse them rather than draw VGG's 10^8 numbers twice.
        shared = same_as is not None and shapes_of(same_as.state) == shapes
        self.state = same_as.state if shared else random_canonical_weights(shapes, seed=1)
        self.plugin.load_state_dict(self.model, self.state)


class SmallModels:
    """``small_models(plugin, arch)`` -> :class:`SmallModel`; ``small_models.export(plugin, arch)`` -> (path,
    ExportInfo) of its ONNX export at 64 px, made once per session. Models are rebuilt on demand and
    only the last few are kept (a small VGG holds 0.5 GB); export files stay for the session."""

    KEEP = 3

    def __init__(self, folder: Path):
        self._folder = folder
        self._models: dict[tuple[str, str], SmallModel] = {}
        self._exports: dict[tuple[str, str], tuple[Path, object]] = {}

    def __call__(self, plugin_name: str, arch: str) -> SmallModel:
        key = (plugin_name, arch)
        model = self._models.pop(key, None)
        if model is None:
            same_arch = next((m for (_, a), m in self._models.items() if a == arch), None)
            model = SmallModel(plugin_name, arch, same_as=same_arch)
        self._models[key] = model  # most recent last
        while len(self._models) > self.KEEP:
            del self._models[next(iter(self._models))]
        return model

    def export(self, plugin_name: str, arch: str) -> tuple[Path, object]:
        key = (plugin_name, arch)
        if key not in self._exports:
            small = self(plugin_name, arch)
            path = self._folder / f"{plugin_name}-{arch}.onnx"
            info = core_export(small.plugin, small.model, path, input_size=SMALL_SIZE)
            self._exports[key] = (path, info)
        return self._exports[key]


@pytest.fixture(scope="session")
def small_models(tmp_path_factory: pytest.TempPathFactory) -> SmallModels:
    return SmallModels(tmp_path_factory.mktemp("small-exports"))


@pytest.fixture(scope="session")
def torch_resnet18_full_size(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """(model, path): torch's ResNet-18 at full size (1000 classes, seed 0) and its 224 px export, made once."""
    from zoo_torch import TorchPlugin

    plugin = TorchPlugin()
    model = plugin.build("resnet18", seed=0)
    path = tmp_path_factory.mktemp("full-size") / "resnet18.onnx"
    core_export(plugin, model, path)
    return model, path


def core_export(plugin: Any, model: Any, path: Path, **options: Any) -> Any:
    """What every artifact goes through: the plugin's exporter, then zoo's I/O-contract pass and opset check."""
    from zoo._exporting import export_onnx

    return export_onnx(plugin, model, path, **options)


def meta_build(plugin: Any, arch: str, **options: Any) -> Any:
    """A full-size build that allocates no weights, for counting: torch on the ``meta`` device, Keras in a
    ``StatelessScope`` that defers every variable's initialisation (shapes only)."""
    name = getattr(plugin, "name", None)
    if name == "torch":
        return plugin.build(arch, device="meta", **options)
    if name == "tensorflow":
        from zoo_tensorflow import _import_tensorflow_quietly

        _import_tensorflow_quietly()
        import keras

        with keras.StatelessScope(initialize_variables=False):
            return plugin.build(arch, **options)
    return plugin.build(arch, **options)


def cli_on(store: Path) -> Callable[..., object]:
    """``invoke(*args, code=0)``: the zoo CLI in-process on ``store``, asserting the exit code."""
    from click.testing import CliRunner

    from zoo.cli import main

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(main, ["--store", str(store), *args], catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    return invoke


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child ``python``: this one's, plus ``extra`` (zoo is installed, no path tricks)."""
    env = dict(os.environ)
    env.update(extra)
    return env


PYTHON = sys.executable
