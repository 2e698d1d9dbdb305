"""The ONNX Runtime executor: provider choice, session cache, session settings, I/O binding, fp16.

Passes on the CPU build and on onnxruntime-gpu. The onnxruntime-gpu situation (CUDA listed, but
its libraries or the GPU missing) is *simulated* on any build: ORT is made to list CUDA and
TensorRT, and a session asked for them raises the loader error ORT raises on such a machine
(``gpu_listed``). On the CPU build, ``cpu_only`` tests also exercise ORT's own fallback for a
provider that is listed but not built in. Provider options, skip reasons and ORT's log routing
are pure functions or callbacks, tested with simulated inputs.
"""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnx_models import reference_logits, tiny_cnn
from zoo import runtime
from zoo.errors import InvalidInput, InvalidModelFile, NotFound, ProviderUnavailable
from zoo.runtime import InferenceModel, ProviderChoice, _libraries, choose_provider, physical_cores

CPU_ONLY = not ({"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers()))
cpu_only = pytest.mark.skipif(not CPU_ONLY, reason="needs the CPU-only onnxruntime build")


@pytest.fixture(autouse=True)
def fresh_probes():
    runtime.reset_probes()
    runtime.clear_session_cache()
    yield
    runtime.reset_probes()
    runtime.clear_session_cache()


@pytest.fixture
def model_path(tmp_path):
    return tiny_cnn(tmp_path / "tiny.onnx", size=16)


@pytest.fixture
def batch():
    return np.random.default_rng(1).standard_normal((4, 3, 16, 16), dtype=np.float32)


GPU_EPS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# What onnxruntime-gpu 1.31 (a CUDA 13 build) said on an H200 without the TensorRT libraries.
TRT_ERROR = ("/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:729 void onnxruntime::python::"
             "RegisterTensorRTPluginsAsCustomOps(PySessionOptions&, const onnxruntime::ProviderOptions&) Please install "
             "TensorRT libraries as mentioned in the GPU requirements page, make sure they're in the PATH or "
             "LD_LIBRARY_PATH, and that your GPU is supported.")
CUDNN_ERROR = "libcudnn.so.9: cannot open shared object file: No such file or directory"


@pytest.fixture
def gpu_listed(monkeypatch):
    """onnxruntime-gpu on a machine without usable CUDA: both GPU providers listed, neither loads (any build)."""
    real = [p for p in ort.get_available_providers() if p not in GPU_EPS]
    monkeypatch.setattr(ort, "get_available_providers", lambda: [*GPU_EPS, *real])
    real_session = ort.InferenceSession

    def session(model, options=None, providers=None, **kw):
        names = [p[0] if isinstance(p, tuple) else p for p in providers or ()]
        if "TensorrtExecutionProvider" in names:
            raise RuntimeError(TRT_ERROR)
        if "CUDAExecutionProvider" in names:
            raise RuntimeError(CUDNN_ERROR + "\nmore")
        return real_session(model, options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(_libraries, "loadable", lambda soname: False)
    monkeypatch.setattr(_libraries, "ort_cuda_major", lambda: 13)
    runtime.reset_probes()


# --------------------------------------------------------------------------- provider choice


@cpu_only
def test_auto_choice_is_cpu_with_a_reason_line():
    choice = choose_provider()
    assert isinstance(choice, ProviderChoice)
    assert (choice.name, choice.providers) == ("cpu", ("CPUExecutionProvider",))
    assert choice.reason == ("provider: cpu (tensorrt: not in this onnxruntime build; "
                             "cuda: not in this onnxruntime build)")
    assert "\n" not in choice.reason


@cpu_only
@pytest.mark.parametrize("forced", ["cuda", "tensorrt", "CUDAExecutionProvider", "gpu", "trt"])
def test_forcing_a_missing_gpu_provider_raises_with_an_install_hint(forced, model_path):
    with pytest.raises(ProviderUnavailable) as err:
        InferenceModel(model_path, provider=forced)
    name = runtime.normalize_provider(forced)
    assert repr(name) in err.value.message and "not in this onnxruntime build" in err.value.message
    assert "Usable here: cpu" in err.value.message
    assert "pip install onnxruntime-gpu" in err.value.hint
    assert err.value.exit_code == 9


def test_unknown_provider_names_the_value():
    with pytest.raises(InvalidInput, match="Received: 'rocm'"):
        choose_provider("rocm")


def test_forced_cpu_says_forced(model_path):
    model = InferenceModel(model_path, provider="cpu")
    assert model.provider.name == "cpu" and model.provider.reason == "provider: cpu (forced)"


def test_listed_but_unloadable_gpu_falls_back_to_cpu_quietly(gpu_listed, model_path, batch, capfd, caplog):
    caplog.set_level(logging.INFO, logger="zoo.runtime")
    model = InferenceModel(model_path)
    assert model.provider.name == "cpu" and model.device == "cpu"
    assert model.provider.reason == (
        "provider: cpu (tensorrt: listed by onnxruntime but failed to load: libnvinfer.so.10 not found "
        "(pip install 'tensorrt-cu13-libs==10.*'); cuda: listed by onnxruntime but failed to load: "
        "libcudnn.so.9 not found (pip install 'nvidia-cudnn-cu13'))")
    np.testing.assert_allclose(model.predict(batch), reference_logits(batch), rtol=1e-4, atol=1e-4)
    out, err = capfd.readouterr()
    assert out == "" and "EP Error" not in err and "Specified provider" not in err  # no wall of ORT errors
    # The surprise (a GPU build that runs on the CPU) is logged once, as a warning.
    InferenceModel(model_path)
    records = [r for r in caplog.records if r.name == "zoo.runtime"]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.WARNING, model.provider.reason)]


@cpu_only
def test_listed_but_not_built_gpu_uses_orts_own_fallback_quietly(monkeypatch, model_path, capfd):
    """The CPU build asked for CUDA: ORT itself falls back; the reason names the first library the loader lacks."""
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [*GPU_EPS, *real])
    monkeypatch.setattr(_libraries, "loadable", lambda soname: not soname.startswith("libcublasLt"))
    monkeypatch.setattr(_libraries, "ort_cuda_major", lambda: 12)
    runtime.reset_probes()
    model = InferenceModel(model_path)
    assert model.provider.name == "cpu"
    assert ("cuda: listed by onnxruntime but failed to load: libcublasLt.so.12 not found "
            "(pip install 'nvidia-cublas-cu12')") in model.provider.reason
    out, err = capfd.readouterr()
    assert out == "" and "Specified provider" not in err


def test_forcing_a_listed_but_unloadable_cuda_names_the_failure(gpu_listed, model_path):
    with pytest.raises(ProviderUnavailable) as err:
        InferenceModel(model_path, provider="cuda")
    assert "'cuda' cannot run here: listed by onnxruntime but failed to load: libcudnn.so.9" in err.value.message
    assert err.value.hint.startswith("pip install 'nvidia-cudnn-cu13'")
    assert "nvidia-smi" in err.value.hint and "cudnn" in err.value.hint.lower()


def test_probe_reports_the_loader_error(monkeypatch):
    """When creating the CUDA session raises (missing cuDNN), the reason names the library and its package."""
    real = [p for p in ort.get_available_providers() if p not in GPU_EPS]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    real_session = ort.InferenceSession

    def session(model, options=None, providers=None, **kw):
        names = [p[0] if isinstance(p, tuple) else p for p in providers or ()]
        if "CUDAExecutionProvider" in names:
            raise RuntimeError(CUDNN_ERROR + "\nmore")
        return real_session(model, options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(_libraries, "ort_cuda_major", lambda: 12)
    runtime.reset_probes()
    assert runtime.probe("cuda") == ("listed by onnxruntime but failed to load: "
                                     "libcudnn.so.9 not found (pip install 'nvidia-cudnn-cu12')")
    assert choose_provider().name == "cpu"


def test_probe_is_cached_per_process(gpu_listed, monkeypatch):
    first = runtime.probe("cuda")
    calls = []
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: calls.append(a))
    assert runtime.probe("cuda") == first and calls == []
    assert runtime.provider_report() == {"tensorrt": runtime.probe("tensorrt"), "cuda": first, "cpu": None}


# --------------------------------------------------------------------------- sessions


def test_predict_returns_the_logits_output(model_path, batch):
    model = InferenceModel(model_path)
    logits = model.predict(batch)
    assert logits.shape == (4, 10) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference_logits(batch), rtol=1e-4, atol=1e-4)
    assert [t.name for t in model.signature.inputs] == ["images"]
    assert model.signature.inputs[0].shape == ("batch", 3, 16, 16) and model.signature.inputs[0].dtype == "float32"
    assert model.signature.outputs[0].shape == ("batch", 10) and model.version is None


def test_session_cache_returns_the_same_session(model_path):
    a = InferenceModel(model_path)
    assert InferenceModel(model_path).session is a.session
    assert InferenceModel(model_path, provider="cpu").session is a.session  # same effective provider
    assert InferenceModel(model_path, intra_op_threads=1).session is not a.session
    assert InferenceModel(model_path, graph_optimization="basic").session is not a.session
    assert InferenceModel(model_path, cache=False).session is not a.session


def test_session_cache_sees_a_changed_file(model_path, batch):
    before = InferenceModel(model_path)
    old = before.predict(batch)
    tiny_cnn(model_path, size=16, seed=7)  # same path, new content
    after = InferenceModel(model_path)
    assert after.session is not before.session
    np.testing.assert_allclose(after.predict(batch), reference_logits(batch, seed=7), rtol=1e-4, atol=1e-4)
    assert not np.allclose(after.predict(batch), old)


def test_cpu_threads_and_optimisation_level(model_path):
    opts = InferenceModel(model_path).session.get_session_options()
    assert opts.intra_op_num_threads == physical_cores()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert InferenceModel(model_path, intra_op_threads=1).session.get_session_options().intra_op_num_threads == 1


def test_physical_cores_respects_psutil_and_affinity():
    import os

    import psutil

    cores = physical_cores()
    assert 1 <= cores <= (psutil.cpu_count(logical=False) or psutil.cpu_count())
    if hasattr(os, "sched_getaffinity"):
        assert cores <= len(os.sched_getaffinity(0))


def test_optimized_model_is_saved_and_runs(model_path, tmp_path, batch):
    out = tmp_path / "opt" / "tiny.optimized.onnx"
    expected = InferenceModel(model_path).predict(batch)
    InferenceModel(model_path, optimized_model_path=out)
    assert out.is_file()
    onnx.checker.check_model(onnx.load(str(out)))
    np.testing.assert_allclose(InferenceModel(out).predict(batch), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options,needle", [
    ({"threads": 2}, "'threads'"),
    ({"graph_optimization": "max"}, "Received: 'max'"),
    ({"intra_op_threads": 0}, "Received: 0"),
    ({"cudnn_conv_algo_search": "FASTEST"}, "Received: 'FASTEST'"),
])
def test_bad_options_name_the_value(model_path, options, needle):
    with pytest.raises(InvalidInput) as err:
        InferenceModel(model_path, **options)
    assert needle in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(NotFound, match="nope.onnx"):
        InferenceModel(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07not a model at all")
    with pytest.raises(InvalidModelFile, match="junk.onnx") as err:
        InferenceModel(junk)
    assert err.value.hint


def test_registry_load_gives_a_versioned_model(tmp_path, batch):
    from zoo import open_registry

    registry = open_registry(tmp_path / "store")
    version = registry.register(tiny_cnn(tmp_path / "m.onnx", size=16), name="tiny").version
    model = registry.load("tiny")
    assert model.version == version and model.version.ref == "tiny@1"
    np.testing.assert_allclose(model.predict(batch), reference_logits(batch), rtol=1e-4, atol=1e-4)
    assert "tiny@1" in repr(model)


# --------------------------------------------------------------------------- I/O binding


def test_bound_runs_match_predict_and_never_touch_the_callers_array(model_path, batch):
    model = InferenceModel(model_path)
    original = batch.copy()
    run = model.bind(batch)
    for _ in range(3):
        run.run()
    np.testing.assert_array_equal(run.outputs(), model.predict(batch))
    other = batch[::-1] * 2
    run.update(other)
    run.run()
    np.testing.assert_allclose(run.outputs(), model.predict(other), rtol=1e-6)
    np.testing.assert_array_equal(batch, original)
    with pytest.raises(InvalidInput, match=r"\(2, 3, 16, 16\)"):
        run.update(batch[:2])


# --------------------------------------------------------------------------- fp16


def test_fp16_keeps_float32_io_and_small_error(model_path, tmp_path):
    from zoo.convert import conversion_report, convert_to_fp16

    half = convert_to_fp16(model_path, tmp_path / "half.onnx")
    onnx.checker.check_model(str(half))  # what `zoo register` requires; the converter leaves nodes unsorted
    graph = onnx.load(str(half)).graph
    f32 = onnx.TensorProto.FLOAT
    assert [i.type.tensor_type.elem_type for i in graph.input] == [f32]
    assert [o.type.tensor_type.elem_type for o in graph.output] == [f32]
    assert {t.data_type for t in graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert half.stat().st_size < model_path.stat().st_size
    parity = conversion_report(model_path, half, batch=8, seed=3)
    assert parity["input_size"] == 16 and parity["provider"] == "cpu" and parity["batch"] == 8
    assert 0 < parity["max_rel_error"] < 5e-3  # fp16 has ~3 decimal digits: nonzero, small
    assert parity["max_abs_error"] > 0
    assert parity["top1_agreement"] == 1.0


def test_fp16_io_when_asked_and_float32_input_is_cast(model_path, tmp_path, batch):
    from zoo.convert import convert_to_fp16

    half = InferenceModel(convert_to_fp16(model_path, tmp_path / "half16.onnx", keep_io_types=False))
    assert half.signature.inputs[0].dtype == "float16"
    with pytest.warns(UserWarning, match="expects float16 input; received float32"):
        logits = half.predict(batch)
    assert logits.dtype == np.float16
    np.testing.assert_allclose(logits.astype(np.float32), reference_logits(batch), rtol=2e-2, atol=2e-2)


# --------------------------------------------------------------------------- import hygiene


def test_importing_the_executor_and_bench_imports_no_framework():
    probe = ("import sys, zoo.runtime, zoo.bench, zoo.convert, zoo.cli.bench, zoo.cli.export\n"
             "heavy = sorted(m for m in ('torch', 'tensorflow', 'onnx', 'onnxruntime', 'psutil') if m in sys.modules)\n"
             "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
