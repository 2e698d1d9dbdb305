"""The executor's GPU decisions, tested on any build with simulated inputs.

Provider options are a pure function of the runtime options; skip reasons are a pure function of
ORT's error text (plus an injected loader check); ORT's log is routed by a callback that is called
here directly with the messages ORT printed on a real H200 run; session creation is checked with
a recording stand-in for ``onnxruntime.InferenceSession`` given a simulated CUDA provider choice.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnx_models import tiny_cnn
from zoo.errors import InvalidInput
from zoo.runtime import RuntimeOptions, _libraries, _ort_log, _sessions, cache_dir, provider_options
from zoo.runtime._providers import ProviderChoice, failure_reason

CUDA = ProviderChoice("cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "provider: cuda (simulated)")
TRT = ProviderChoice("tensorrt", ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
                     "provider: tensorrt (simulated)")


# --------------------------------------------------------------------------- provider options


def test_cuda_defaults_are_fast_and_keep_fp32_results():
    opts = provider_options("CUDAExecutionProvider", RuntimeOptions())
    assert opts == {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": 0, "prefer_nhwc": 1,
                    "enable_cuda_graph": 0, "do_copy_in_default_stream": 1}


def test_cuda_options_follow_the_runtime_options():
    opts = provider_options("CUDAExecutionProvider", RuntimeOptions.parse(
        {"cuda_graph": True, "use_tf32": True, "prefer_nhwc": False, "device_id": 1, "cudnn_conv_algo_search": "exhaustive"}))
    assert (opts["enable_cuda_graph"], opts["use_tf32"], opts["prefer_nhwc"], opts["device_id"]) == (1, 1, 0, 1)
    assert opts["cudnn_conv_algo_search"] == "EXHAUSTIVE"


def test_tensorrt_gets_an_engine_cache_under_the_zoo_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    opts = provider_options("TensorrtExecutionProvider", RuntimeOptions())
    folder = str(tmp_path / "cache" / "tensorrt")
    assert opts == {"device_id": 0, "trt_fp16_enable": 0, "trt_engine_cache_enable": 1, "trt_engine_cache_path": folder,
                    "trt_timing_cache_enable": 1, "trt_timing_cache_path": folder, "trt_cuda_graph_enable": 0}
    mine = provider_options("TensorrtExecutionProvider", RuntimeOptions.parse({"trt_fp16": True, "trt_cache_dir": tmp_path}))
    assert mine["trt_fp16_enable"] == 1 and mine["trt_engine_cache_path"] == str(tmp_path)


def test_platform_cache_folder_without_zoo_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")
    assert cache_dir() == tmp_path / "zoo"


def test_cpu_gets_no_provider_options():
    assert provider_options("CPUExecutionProvider", RuntimeOptions.parse({"cuda_graph": True})) == {}


@pytest.mark.parametrize("options,needle", [
    ({"cuda_graph": "yes"}, "cuda_graph=True or False"),
    ({"prefer_nhwc": 1}, "prefer_nhwc=True or False"),
    ({"device_id": -1}, "device_id >= 0"),
])
def test_bad_gpu_options_name_the_value(options, needle):
    with pytest.raises(InvalidInput, match=needle):
        RuntimeOptions.parse(options)


# --------------------------------------------------------------------------- sessions on a simulated CUDA choice


@pytest.fixture
def recorded(monkeypatch):
    """ort.InferenceSession records its providers and, like ORT on a GPU, logs through the default logger."""
    calls: list[list] = []
    real = ort.InferenceSession

    def session(model, options=None, providers=None, **kw):
        calls.append(list(providers or ()))
        _ort_log.route(2, "", "", "", "No registered plugin EP device found for 'CUDAExecutionProvider'")
        _ort_log.route(2, "", "", "", "2 Memcpy nodes are added to the graph main_graph for CUDAExecutionProvider.")
        return real(model, options, providers=["CPUExecutionProvider"], **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr("zoo.runtime._sessions.preload_cuda_libraries", lambda: None)
    return calls


def test_a_cuda_session_gets_its_options_and_a_note_for_the_provider_line(recorded, tmp_path, capfd):
    path = tiny_cnn(tmp_path / "m.onnx", size=16)
    made = _sessions.create_session(path, CUDA, RuntimeOptions.parse({"cuda_graph": True}))
    ((cuda, cuda_opts), (cpu, cpu_opts)), = recorded
    assert (cuda, cpu, cpu_opts) == ("CUDAExecutionProvider", "CPUExecutionProvider", {})
    assert cuda_opts["enable_cuda_graph"] == 1 and cuda_opts["prefer_nhwc"] == 1 and cuda_opts["use_tf32"] == 0
    assert made.notes == ("2 Memcpy node(s) added: some ops run on the CPU",)
    assert capfd.readouterr().err == ""


def test_a_tensorrt_session_creates_its_engine_cache(recorded, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    _sessions.create_session(tiny_cnn(tmp_path / "m.onnx", size=16), TRT, RuntimeOptions())
    assert [ep for ep, _ in recorded[0]] == list(TRT.providers)
    assert (tmp_path / "cache" / "tensorrt").is_dir()


# --------------------------------------------------------------------------- skip reasons


@pytest.mark.parametrize("provider,texts,cuda,missing,expected", [
    ("tensorrt", ["EP Error " + "x", "Failed to load library libonnxruntime_providers_tensorrt.so with error: "
                  "libnvinfer.so.10: cannot open shared object file: No such file or directory"], 13, (),
     "libnvinfer.so.10 not found (pip install 'tensorrt-cu13-libs==10.*')"),
    ("tensorrt", ["/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:729 void onnxruntime::python::"
                  "RegisterTensorRTPluginsAsCustomOps(PySessionOptions&, const onn..."], 12, ("libnvinfer.so.10",),
     "libnvinfer.so.10 not found (pip install 'tensorrt-cu12-libs==10.*')"),
    ("cuda", ["libcudnn.so.9: cannot open shared object file: No such file or directory"], 12, (),
     "libcudnn.so.9 not found (pip install 'nvidia-cudnn-cu12')"),
    ("cuda", ["libcudnn_adv.so.9: cannot open shared object file"], 13, (),
     "libcudnn_adv.so.9 not found (pip install 'nvidia-cudnn-cu13')"),
    ("cuda", ["libcublasLt.so.12: cannot open shared object file"], None, (),
     "libcublasLt.so.12 not found (pip install 'nvidia-cublas-cu12')"),
    ("cuda", ["libcublasLt.so.13: cannot open shared object file"], None, (),
     "libcublasLt.so.13 not found (pip install 'nvidia-cublas')"),
    ("cuda", ["Failed to create CUDAExecutionProvider"], 13, ("libcudart.so.13",),
     "libcudart.so.13 not found (pip install 'nvidia-cuda-runtime')"),
    ("cuda", ["libcuda.so.1: cannot open shared object file"], 12, (),
     "libcuda.so.1: the NVIDIA driver is not installed (it ships this library; `nvidia-smi` must see the GPU)"),
])
def test_the_missing_library_and_its_package_are_named(provider, texts, cuda, missing, expected):
    diagnosis = _libraries.diagnose(provider, texts, cuda_major=cuda, can_load=lambda soname: soname not in missing)
    assert diagnosis is not None and diagnosis.text() == expected


def test_no_gpu_is_not_a_library_problem():
    text = "CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=h ; file=cuda_call.cc"
    assert _libraries.diagnose("cuda", [text], cuda_major=12, can_load=lambda _: False) is None
    assert "no CUDA-capable GPU is visible" in _libraries.clean_error(text)


def test_the_skip_reason_drops_orts_source_location(monkeypatch):
    monkeypatch.setattr(_libraries, "loadable", lambda soname: True)
    monkeypatch.setattr(_libraries, "ort_cuda_major", lambda: 13)
    text = ("/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:729 void onnxruntime::python::"
            "RegisterTensorRTPluginsAsCustomOps(PySessionOptions&, const onnxruntime::ProviderOptions&) "
            "Please install TensorRT libraries")
    assert failure_reason("tensorrt", [text]) == "listed by onnxruntime but failed to load (Please install TensorRT libraries)"
    monkeypatch.setattr(_libraries, "loadable", lambda soname: soname != "libnvinfer.so.10")
    assert failure_reason("tensorrt", [text]) == ("listed by onnxruntime but failed to load: libnvinfer.so.10 not found "
                                                  "(pip install 'tensorrt-cu13-libs==10.*')")


def test_the_cpu_build_has_no_cuda_major():
    if {"CUDAExecutionProvider"} & set(ort.get_available_providers()):
        assert _libraries.ort_cuda_major() in (11, 12, 13)
    else:
        assert _libraries.ort_cuda_major() is None


# --------------------------------------------------------------------------- ORT's log


@pytest.fixture
def log_state():
    _ort_log.reset()
    yield
    _ort_log.reset()
    _ort_log.quiet(3)


def test_cudnn_frontend_noise_is_counted_not_printed(log_state, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="zoo.onnxruntime")
    for _ in range(47):
        _ort_log.route(3, "", "", "cudnn_fe_call.cc:33 CudaCall",
                       "CUDNN_FE failure 11: GRAPH_EXECUTION_PLAN_CREATION_FAILED ; GPU=0 ; "
                       "[cudnn_frontend] Error: No execution plans support the graph.")
    _ort_log.route(2, "", "", "", "No registered plugin EP device found for 'CUDAExecutionProvider'")
    assert _ort_log.counts() == {_ort_log.NOISE["No execution plans support the graph"]: 47}
    assert capfd.readouterr() == ("", "") and caplog.records == []


def test_other_ort_messages_reach_the_zoo_logger(log_state, caplog):
    caplog.set_level(logging.DEBUG, logger="zoo.onnxruntime")
    _ort_log.route(3, "", "", "", "Something real went wrong")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.ERROR, "onnxruntime: Something real went wrong")]


def test_quiet_sets_the_default_logger(log_state, monkeypatch):
    calls: list[tuple] = []
    if hasattr(ort, "set_default_logger_callback"):
        monkeypatch.setattr(ort, "set_default_logger_callback", lambda cb, sev=2: calls.append(("callback", cb, sev)))
        _ort_log.quiet(3)
        _ort_log.quiet(3)  # idempotent
        assert calls == [("callback", _ort_log.route, 3)]
        calls.clear()
        monkeypatch.delattr(ort, "set_default_logger_callback")
    monkeypatch.setattr(ort, "set_default_logger_severity", lambda sev: calls.append(("severity", sev)))
    _ort_log.reset()
    _ort_log.quiet(3)
    _ort_log.quiet(3, gpu=True)  # no callback: the noise is logged at ERROR, so GPU sessions go to fatal only
    _ort_log.quiet(1, gpu=True)  # asked for verbose: verbose it is
    assert calls == [("severity", 3), ("severity", 4), ("severity", 1)]


def test_summarised_notes():
    msgs = [(2, "3 Memcpy nodes are added to the graph main_graph for CUDAExecutionProvider."),
            (2, "Some nodes were not assigned to the preferred execution providers which may or may not have an negative")]
    assert _ort_log.summarise(msgs) == ["3 Memcpy node(s) added: some ops run on the CPU"]
    assert _ort_log.summarise(msgs[1:]) == ["some nodes run on the CPU"]
    assert _ort_log.summarise([]) == []


# --------------------------------------------------------------------------- CUDA graphs and fp16 I/O on the CPU build


def test_cuda_graph_option_is_harmless_on_the_cpu(tmp_path):
    from zoo.runtime import InferenceModel

    model = InferenceModel(tiny_cnn(tmp_path / "m.onnx", size=16), provider="cpu", cuda_graph=True)
    assert model.options.cuda_graph and not model.uses_cuda_graph
    x = np.ones((2, 3, 16, 16), np.float32)
    run = model.bind(x)
    run.run()
    np.testing.assert_array_equal(run.outputs(), model.predict(x))


def test_binding_a_float32_batch_to_a_float16_model_casts_once(tmp_path, recwarn):
    from zoo.convert import convert_to_fp16
    from zoo.runtime import InferenceModel

    half = convert_to_fp16(tiny_cnn(tmp_path / "m.onnx", size=16), tmp_path / "h.onnx", keep_io_types=False)
    model = InferenceModel(Path(half), provider="cpu")
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16), dtype=np.float32)
    run = model.bind(x)
    run.run()
    run.run()
    assert run.outputs().dtype == np.float16 and run.outputs().shape == (2, 10)
    assert not [w for w in recwarn if "casting" in str(w.message)]  # bound once: no per-call cast warning
