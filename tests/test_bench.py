"""The benchmark engine and `zoo bench`: figures are consistent with each other, never asserted as timings."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import cli_on
from onnx_models import tiny_cnn, tiny_cnn_macs
from zoo import bench
from zoo.errors import InvalidInput

SIZE = 24
QUICK = {"warmup": 1, "min_time": 0.05, "min_iters": 3}


def assert_consistent(stats: dict, *, batch: int, macs: int | None) -> None:
    assert stats["batch"] == batch and stats["iterations"] >= QUICK["min_iters"]
    assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"]
    assert stats["throughput"] == pytest.approx(batch / (stats["mean_ms"] / 1e3), rel=1e-9)
    if macs is None:
        assert stats["gflops"] is None
    else:
        assert stats["gflops"] == pytest.approx(2 * macs * batch / (stats["mean_ms"] / 1e3) / 1e9, rel=1e-9)


# --------------------------------------------------------------------------- statistics and timing


def test_summarize_is_self_consistent():
    seconds = np.random.default_rng(0).lognormal(-5, 0.5, size=200)
    stats = bench.summarize(seconds, batch=8, macs=1_000_000).to_dict()
    assert_consistent(stats, batch=8, macs=1_000_000)
    assert stats["iterations"] == 200
    assert stats["p50_ms"] == pytest.approx(np.median(seconds) * 1e3)
    assert bench.summarize(seconds, batch=1).gflops is None
    with pytest.raises(InvalidInput):
        bench.summarize([], batch=1)


def test_measure_interleaves_and_honours_both_minimums():
    order: list[str] = []
    runners = {"a": lambda: (order.append("a"), time.sleep(0.001)), "b": lambda: order.append("b")}
    samples = bench.measure(runners, min_time=0.03, min_iters=20, rounds=3)
    assert len(samples["a"]) == order.count("a") and len(samples["b"]) == order.count("b")
    assert sum(samples["a"]) >= 0.03 and len(samples["b"]) >= 20
    switches = sum(1 for x, y in zip(order, order[1:], strict=False) if x != y)
    assert switches >= 3  # a, b, a, b ...: not all of a, then all of b


@pytest.mark.parametrize("kwargs", [{"warmup": -1}, {"min_time": -1.0}, {"min_iters": 0}, {"batches": [0, 1]}])
def test_bad_settings_are_refused(tmp_path, kwargs):
    path = tiny_cnn(tmp_path / "m.onnx", size=SIZE)
    with pytest.raises(InvalidInput, match="Received"):
        bench.bench_artifact(path, **{**QUICK, **kwargs})


def test_memory_window_sees_a_transient_peak():
    """In a fresh process: memory freed earlier by other tests' frameworks would hide the peak here."""
    probe = (
        "import numpy as np; from zoo import bench; from zoo.bench import _memory\n"
        "if not _memory._reset_peak(): print('skip'); raise SystemExit\n"
        "with bench.memory_window() as mem:\n"
        "    block = np.ones(64 * 1024 * 1024 // 8); del block\n"
        "print(mem.peak_delta_mb, mem.delta_mb)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    if out == ["skip"]:
        pytest.skip("peak RSS cannot be reset on this OS")
    peak_delta, delta = map(float, out)
    assert peak_delta >= 60 and delta < 30


def test_machine_description():
    machine = bench.describe_machine(frameworks={"torch": "9.9"})
    assert machine["cores_logical"] >= machine["cores_physical"] >= 1 and machine["memory_gb"] > 0
    assert machine["versions"]["onnxruntime"] and machine["versions"]["numpy"] == np.__version__
    assert machine["versions"]["torch"] == "9.9"
    assert machine["cpu"] in bench.machine_line(machine)


# --------------------------------------------------------------------------- the engine on a real artifact


def test_bench_artifact_figures_are_sane(tmp_path):
    path = tiny_cnn(tmp_path / "m.onnx", size=SIZE)
    macs = tiny_cnn_macs(SIZE)
    payload = bench.bench_artifact(path, batches=[4, 1], macs=macs, **QUICK)
    assert payload["input_size"] == SIZE and payload["macs_per_sample"] == macs
    assert payload["provider"]["name"] == "cpu" and payload["provider"]["reason"].startswith("provider: cpu")
    assert payload["settings"]["session_options"]["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert payload["settings"]["ort_io"] == "device" and payload["settings"]["interleaved"] is False
    assert payload["machine"]["provider"] == "cpu"
    assert [r["batch"] for r in payload["results"]] == [1, 4]
    for row in payload["results"]:
        assert row["native"] is None and row["speedup"] is None
        ort = row["onnxruntime"]
        assert_consistent(ort, batch=row["batch"], macs=macs)
        assert ort["load_s"] > 0 and ort["peak_rss_mb"] >= ort["load_rss_mb"] - 1e-9
    json.dumps(payload)  # attachable as is


def test_host_io_gives_the_same_kind_of_figures(tmp_path):
    path = tiny_cnn(tmp_path / "m.onnx", size=SIZE)
    payload = bench.bench_artifact(path, batches=[2], io_binding=False, **QUICK)
    assert payload["settings"]["ort_io"] == "host" and payload["macs_per_sample"] is None
    assert_consistent(payload["results"][0]["onnxruntime"], batch=2, macs=None)


def test_interleaved_engines_and_the_speedup(tmp_path):
    """Two real ORT engines (same artifact, different thread counts) through the interleaving path."""
    path = tiny_cnn(tmp_path / "m.onnx", size=SIZE)
    engines = [bench.ort_engine(path), bench.ort_engine(path, name="ort-1-thread", intra_op_threads=1)]
    images = np.zeros((2, 3, SIZE, SIZE), dtype=np.float32)
    figures = bench.bench_batch(engines, images, macs=tiny_cnn_macs(SIZE), **QUICK)
    assert set(figures) == {"onnxruntime", "ort-1-thread"}
    for stats in figures.values():
        assert_consistent(stats, batch=2, macs=tiny_cnn_macs(SIZE))
    with pytest.raises(InvalidInput, match="Expected one engine per name"):
        bench.bench_batch([engines[0], engines[0]], images, **QUICK)


def test_artifacts_are_timed_together_each_at_its_own_input_size(tmp_path):
    """--compare's engine: every artifact loaded first (its own load memory), then all timed interleaved."""
    small, large = tiny_cnn(tmp_path / "s.onnx", size=SIZE), tiny_cnn(tmp_path / "l.onnx", size=2 * SIZE)
    seen: list[str] = []
    payloads = bench.bench_artifacts([(small, None), (large, None)], batches=[1, 2], progress=seen.append, **QUICK)
    assert [p["input_size"] for p in payloads] == [SIZE, 2 * SIZE]
    assert [p["settings"]["interleaved_with"] for p in payloads] == [[str(large)], [str(small)]]
    assert seen[:2] == [f"{small}: loading onnxruntime", f"{large}: loading onnxruntime"], "all loaded before timing"
    for payload in payloads:
        assert [r["batch"] for r in payload["results"]] == [1, 2]
        for row in payload["results"]:
            assert_consistent(row["onnxruntime"], batch=row["batch"], macs=None)
    with pytest.raises(InvalidInput, match="Expected each artifact once"):
        bench.bench_artifacts([(small, None), (small, None)], **QUICK)
    with pytest.raises(InvalidInput, match="at least one artifact"):
        bench.bench_artifacts([], **QUICK)


# --------------------------------------------------------------------------- zoo bench


@pytest.fixture
def store(tmp_path):
    from zoo import open_registry
    from zoo.records import Transform, VersionMeta

    registry = open_registry(tmp_path / "store")
    meta = VersionMeta(transform=Transform.for_input_size(SIZE))
    registry.register(tiny_cnn(tmp_path / "a.onnx", size=SIZE), name="tiny", meta=meta)
    registry.register(tiny_cnn(tmp_path / "b.onnx", size=SIZE, seed=1), name="tiny", meta=meta)
    return tmp_path / "store"


@pytest.fixture
def zoo(store):
    return cli_on(store)


FAST = ["--warmup", "1", "--min-time", "0.05", "--min-iters", "3"]


def test_zoo_bench_measures_attaches_and_shows_stored(zoo, store):
    from zoo import open_registry

    payload = json.loads(zoo("bench", "tiny@1", "--batch", "1,2", *FAST, "--json").stdout)
    assert payload["ref"] == "tiny@1" and [r["batch"] for r in payload["results"]] == [1, 2]
    macs = open_registry(store).resolve("tiny@1").macs
    assert macs and payload["macs_per_sample"] == macs
    for row in payload["results"]:
        assert_consistent(row["onnxruntime"], batch=row["batch"], macs=macs)
    (report,) = open_registry(store).reports("tiny@1", kind="bench")
    assert report.payload["results"] == payload["results"]
    assert json.loads(zoo("bench", "tiny@1", "--stored", "--json").stdout)["results"] == payload["results"]
    table = zoo("bench", "tiny@1", "--stored").stdout
    assert "tiny@1" in table and "p99" in table and "provider: cpu" in table


def test_zoo_bench_compare_and_no_save(zoo, store):
    from zoo import open_registry

    payloads = json.loads(zoo("bench", "--compare", "tiny@1", "tiny@2", *FAST, "--no-save", "--json").stdout)
    assert [p["ref"] for p in payloads] == ["tiny@1", "tiny@2"]
    assert [p["settings"]["interleaved_with"] for p in payloads] == [["tiny@2"], ["tiny@1"]], "one run, not two"
    assert all(p["settings"]["interleaved"] for p in payloads)
    assert open_registry(store).reports("tiny@2", kind="bench") == []
    assert "zoo bench --compare" in zoo("bench", "--compare", "tiny@1", "tiny@2", *FAST).stdout


@pytest.mark.parametrize("args,code,needle", [
    (["tiny@1", "tiny@2"], 2, "--compare"),
    (["--compare", "tiny@1"], 2, "at least two"),
    (["tiny", "--batch", "1,x"], 2, "Received: 'x'"),
    (["tiny", "--native"], 2, "external ONNX file"),
    (["tiny", "--provider", "cuda"], 9, "'cuda'"),
    (["tiny@2", "--stored"], 3, "No stored benchmark for tiny@2"),
    (["nothing"], 3, "nothing"),
])
def test_zoo_bench_errors(zoo, args, code, needle):
    if "--provider" in args and not bench_cpu_only():
        pytest.skip("a CUDA build is installed")
    result = zoo("bench", *args, *FAST, code=code)
    assert needle in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def bench_cpu_only() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" not in ort.get_available_providers()


@pytest.mark.torch
def test_native_bench_through_the_torch_plugin(tmp_path):
    """ORT vs the framework that built the artifact, in one run (small ResNet-18: 10 classes, 32 px)."""
    from zoo import open_registry
    from zoo._exporting import export_and_register
    from zoo.plugins import get_plugin

    registry = open_registry(tmp_path / "store")
    version = export_and_register(registry, get_plugin("torch"), "resnet18", num_classes=10, input_size=32, seed=0).version
    payload = bench.bench_artifact(registry.path(version), version=version, batches=[2], native=True, **QUICK)
    (row,) = payload["results"]
    assert row["native"]["framework"] == "torch" and payload["settings"]["interleaved"] is True
    assert_consistent(row["onnxruntime"], batch=2, macs=version.macs)
    assert_consistent(row["native"], batch=2, macs=version.macs)
    assert row["speedup"] == pytest.approx(row["native"]["p50_ms"] / row["onnxruntime"]["p50_ms"])
    assert payload["machine"]["versions"]["torch"] == get_plugin("torch").framework_version()
    assert (row["native"]["device"], row["native"]["precision"]) == ("cpu", "fp32")
    assert payload["engines"] == [{"name": "onnxruntime", "device": "cpu", "precision": "fp32", "io": "device"},
                                  {"name": "torch", "device": "cpu", "precision": "fp32", "io": "device"}]


# --------------------------------------------------------------------------- native engines: device and precision


class FakeFramework:
    """A plugin seen only through zoo.plugins' hooks: records what the bench asked its native runner for."""

    name = "fake"
    display_name = "FakeFramework"

    def __init__(self, devices=("cpu",)):
        self._devices = devices
        self.calls: list[tuple[str, str]] = []

    def devices(self):
        return self._devices

    def framework_version(self):
        return "1.0"

    def inference_options(self, arch, *, state=None):
        return {"aux_logits": False}

    def build(self, arch, *, num_classes=1000, **options):
        assert options == {"aux_logits": False}  # the core asks the plugin, not an arch special case
        return {"arch": arch, "classes": num_classes}

    def native_runner(self, model, *, device, precision):
        self.calls.append((device, precision))
        return lambda images: np.zeros((len(images), model["classes"]), np.float32)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    from zoo import open_registry
    from zoo.records import Transform, VersionMeta

    framework = FakeFramework()
    monkeypatch.setattr("zoo.plugins.get_plugin", lambda name: framework)
    registry = open_registry(tmp_path / "fake-store")
    meta = VersionMeta(framework="fake", arch="tiny", num_classes=10, transform=Transform.for_input_size(SIZE))
    versions = {p: registry.register(tiny_cnn(tmp_path / f"{p}.onnx", size=SIZE), name=f"tiny-{p}", meta=meta,
                                     tags={} if p == "fp32" else {"precision": p}).version
                for p in ("fp32", "fp16", "int8")}
    return framework, registry, versions


@pytest.mark.parametrize("precision,native", [("fp32", "fp32"), ("fp16", "fp16"), ("int8", "fp32")])
def test_native_runs_on_orts_device_at_the_artifacts_precision(fake, precision, native):
    framework, registry, versions = fake
    version = versions[precision]
    payload = bench.bench_artifact(registry.path(version), version=version, batches=[2], native=True, **QUICK)
    assert framework.calls == [("cpu", native)]
    (row,) = payload["results"]
    assert (row["native"]["device"], row["native"]["precision"]) == ("cpu", native)
    ort_facts, native_facts = payload["engines"]
    assert (ort_facts["device"], ort_facts["precision"]) == ("cpu", precision) and payload["precision"] == precision
    assert native_facts["io"] == "host"  # the runner offers no bind(): numpy in, numpy out
    assert ("note" in native_facts) == (precision == "int8")


def test_a_cross_device_comparison_is_refused_before_anything_runs(fake, monkeypatch):
    from zoo.errors import PluginUnavailable
    from zoo.runtime import ProviderChoice

    framework, registry, versions = fake
    cuda = ProviderChoice("cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "provider: cuda (simulated)")
    monkeypatch.setattr("zoo.runtime.choose_provider", lambda provider=None: cuda)
    version = versions["fp32"]
    with pytest.raises(PluginUnavailable) as err:
        bench.bench_artifact(registry.path(version), version=version, batches=[1], native=True, **QUICK)
    assert "Expected FakeFramework to run on cuda, where ONNX Runtime runs" in err.value.message
    assert "runs on cpu only here" in err.value.message and "--provider cpu" in err.value.hint
    assert err.value.exit_code == 4 and framework.calls == []
    framework._devices = ("cpu", "cuda")
    bench.check_native_device(version, "cuda")  # a framework that has the GPU is let through


def test_compare_shows_each_precision(zoo, store):
    zoo("convert", "tiny@1", "--fp16")
    zoo("convert", "tiny@1", "--int8")
    payloads = json.loads(zoo("bench", "--compare", "tiny@1", "tiny@3", "tiny@4", *FAST, "--no-save", "--json").stdout)
    assert [p["precision"] for p in payloads] == ["fp32", "fp16", "int8"]
    table = zoo("bench", "--compare", "tiny@1", "tiny@3", "tiny@4", *FAST, "--no-save").stdout
    assert "precision" in table and "fp16" in table and "int8" in table
