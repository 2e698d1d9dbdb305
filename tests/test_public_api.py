"""The public API is ``zoo.__all__``: held here, so a change to it is a deliberate (semver) decision."""
from __future__ import annotations

import dataclasses
import inspect
import subprocess

import pytest

import zoo
from conftest import PYTHON, subprocess_env

PUBLIC = {
    "open_registry", "load", "export", "register_model", "default_store", "Registry", "InferenceModel", "ExportResult",
    "ModelVersion", "ParamCounts", "Signature", "TensorSpec", "VersionMeta", "ZooError", "Labels", "serve",
    "Transform", "VersionRow",
}


def test_the_public_names_are_exactly_these_and_all_resolve():
    assert set(zoo.__all__) == PUBLIC and len(zoo.__all__) == len(PUBLIC)
    for name in zoo.__all__:
        assert getattr(zoo, name) is not None, name
    returns = {f.__name__: getattr(zoo, f.__annotations__["return"].strip("'\""))
               for f in (zoo.load, zoo.export, zoo.register_model)}
    assert returns == {"load": zoo.InferenceModel, "export": zoo.ExportResult, "register_model": zoo.ExportResult}


@pytest.mark.parametrize("function", [zoo.load, zoo.export, zoo.register_model])
def test_public_functions_take_explicit_keywords_not_options(function):
    kinds = {p.kind for p in inspect.signature(function).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds


def test_load_session_defaults_are_the_runtimes():
    from zoo.runtime._options import RuntimeOptions

    params = inspect.signature(zoo.load).parameters
    for field in dataclasses.fields(RuntimeOptions):
        assert params[field.name].default == field.default, field.name
    from zoo._exporting import VERIFY_RTOL
    from zoo._register_model import register_model
    from zoo.plugins import DEFAULT_OPSET

    inner = inspect.signature(register_model).parameters
    assert (inner["opset"].default, inner["rtol"].default) == (DEFAULT_OPSET, VERIFY_RTOL)
    assert set(inner) == set(inspect.signature(zoo.register_model).parameters)


def test_importing_the_public_api_stays_cold():
    heavy = "('numpy', 'onnx', 'onnxruntime', 'torch', 'tensorflow')"
    code = f"import sys, zoo; zoo.__all__; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=subprocess_env(), check=True).stdout
    assert out.strip() == "[]"


def test_export_goes_through_the_one_pipeline(tmp_path, monkeypatch):
    """zoo.export: a reference architecture from Python, as `zoo export` does it; the same call is one version."""
    import zoo.plugins as plugins_module
    from test_parity import FakePlugin

    fake = FakePlugin("fa")
    monkeypatch.setattr(plugins_module, "resolve_frameworks", lambda spec, *, arch=None: [fake])
    first = zoo.export("tiny", framework="fa", num_classes=10, input_size=32, registry=tmp_path / "store")
    again = zoo.export("tiny", framework="fa", num_classes=10, input_size=32, registry=tmp_path / "store")
    v = first.version
    assert first.created and not again.created and again.version.ref == v.ref == "tiny@1"
    assert v.provenance["weights_init"]["seed"] == 0 and v.provenance["verify"]["max_rel_error"] == first.verify_error
    assert v.transform is not None and v.transform.crop == (32, 32) and v.signature.inputs[0].name == "images"
