"""`zoo convert`: fp16 and INT8 versions, registered with their error against the fp32 version.

Runs on the tiny test CNN (milliseconds) and, with the PyTorch plugin, on a small ResNet-18
(10 classes, 64 px). Error bounds are bounds, not recorded values: fp16 carries ~3 decimal digits,
int8 ~2; agreement is with the fp32 model's own top-1 class.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from conftest import cli_on
from onnx_models import tiny_cnn
from zoo import open_registry
from zoo.convert import convert_version, load_calibration, precision_of
from zoo.errors import InvalidInput, NotFound
from zoo.labels import Labels
from zoo.transforms import Transform

SIZE = 24
REPORT_FIELDS = {"reference", "max_abs_error", "max_rel_error", "top1_agreement", "top5_agreement", "batch", "seed",
                 "input_size", "provider"}
BOUND = {"fp16": 5e-3, "int8": 5e-2}


@pytest.fixture
def store(tmp_path):
    from zoo.records import VersionMeta

    registry = open_registry(tmp_path / "store")
    meta = VersionMeta(transform=Transform(resize=SIZE, crop=SIZE),
                       labels=Labels(name="tiny", classes=tuple(f"c{i}" for i in range(10))))
    registry.register(tiny_cnn(tmp_path / "a.onnx", size=SIZE), name="tiny", meta=meta)
    return tmp_path / "store"


@pytest.fixture
def zoo(store):
    return cli_on(store)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_convert_registers_a_version_with_its_report(zoo, store, precision):
    out = json.loads(zoo("convert", "tiny@1", f"--{precision}", "--json").stdout)
    assert out["created"] is True and out["precision"] == precision and out["source"] == "tiny@1"
    registry = open_registry(store)
    version = registry.resolve(out["version"]["name"] + "@" + str(out["version"]["version"]))
    assert precision_of(version) == precision and version.tags["precision"] == precision
    assert version.provenance["converted_from"]["ref"] == "tiny@1"
    source = registry.resolve("tiny@1")
    assert (version.transform, version.labels) == (source.transform, source.labels), "fed and read like its source"
    (report,) = registry.reports(version, kind=f"{precision}-parity")
    assert set(report.payload) == REPORT_FIELDS and report.payload["reference"] == "tiny@1"
    assert report.payload["input_size"] == SIZE and report.payload["provider"] == "cpu"
    assert 0 < report.payload["max_rel_error"] < BOUND[precision]
    assert report.payload["top1_agreement"] == 1.0 and report.payload["top5_agreement"] == 1.0
    assert {k: out["parity"][k] for k in REPORT_FIELDS - {"reference"}} == {
        k: v for k, v in report.payload.items() if k != "reference"}
    # The converted file keeps the float32 contract, and converting again is the same version.
    graph = onnx.load(str(registry.path(version))).graph
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in graph.output] == [onnx.TensorProto.FLOAT]
    again = json.loads(zoo("convert", "tiny@1", f"--{precision}", "--json").stdout)
    assert again["created"] is False and again["version"]["version"] == out["version"]["version"]


def test_int8_is_qdq_with_the_head_in_float_and_says_how_it_was_calibrated(store):
    registry = open_registry(store)
    converted = convert_version(registry, "tiny@1", precision="int8")
    graph = onnx.load(str(registry.path(converted.version))).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    conv_inputs = next(n.input for n in graph.node if n.op_type == "Conv")
    producers = {o: n.op_type for n in graph.node for o in n.output}
    assert producers[conv_inputs[0]] == producers[conv_inputs[1]] == "DequantizeLinear"  # int8 activations and weights
    head = next(n for n in graph.node if "logits" in n.output)
    weights = {t.name: t.data_type for t in graph.initializer}
    assert head.op_type == "Gemm" and weights[head.input[1]] == onnx.TensorProto.FLOAT  # the head stays float
    quant = converted.version.provenance["quantization"]
    assert quant["format"] == "QDQ" and quant["calibration"]["source"] == "seeded"
    assert quant["calibration"]["images"] == 16 and len(quant["calibration"]["sha256"]) == 64


def test_calibration_from_a_file_and_from_a_folder(tmp_path, zoo, store):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "calib.npy", rng.standard_normal((6, 3, SIZE, SIZE), dtype=np.float32))
    folder = tmp_path / "calib"
    folder.mkdir()
    np.save(folder / "a.npy", rng.standard_normal((2, 3, SIZE, SIZE), dtype=np.float32))
    np.save(folder / "b.npy", rng.standard_normal((3, SIZE, SIZE)).astype(np.float64))  # one image, float64
    (folder / "notes.txt").write_text("ignored")
    one = json.loads(zoo("convert", "tiny@1", "--int8", "--calibration", str(tmp_path / "calib.npy"), "--json").stdout)
    two = json.loads(zoo("convert", "tiny@1", "--int8", "--calibration", str(folder), "--json").stdout)
    assert one["version"]["provenance"]["quantization"]["calibration"]["source"] == "calib.npy"
    assert one["version"]["provenance"]["quantization"]["calibration"]["images"] == 6
    assert two["version"]["provenance"]["quantization"]["calibration"] == {
        "source": "calib", "files": 2, "images": 3, "sha256": two["version"]["provenance"]["quantization"]["calibration"]["sha256"]}
    assert one["version"]["sha256"] != two["version"]["sha256"]  # other data, other ranges
    assert one["parity"]["max_rel_error"] < BOUND["int8"] * 4  # few images: looser, still bounded


@pytest.mark.parametrize("make,code,needle,hint", [
    (lambda d: d / "missing.npy", 3, "Calibration data not found", ".npy"),
    (lambda d: _save(d / "nhwc.npy", np.zeros((2, SIZE, SIZE, 3), np.float32)), 2, "Received (2, 24, 24, 3)", "transpose"),
    (lambda d: _save(d / "small.npy", np.zeros((2, 3, 8, 8), np.float32)), 2, "[N, 3, 24, 24]", "resize"),
    (lambda d: _save(d / "pixels.npy", np.zeros((2, 3, SIZE, SIZE), np.uint8)), 2, "Expected float calibration", "normalise"),
    (lambda d: _save(d / "nan.npy", np.full((1, 3, SIZE, SIZE), np.nan, np.float32)), 2, "NaN or Inf", "non-finite"),
    (lambda d: _write(d / "calib.txt"), 2, "Expected a .npy file", "numpy.save"),
    (lambda d: _mkdir(d / "empty"), 2, "Expected .npy files", "numpy.save"),
])
def test_bad_calibration_is_refused_with_a_hint(tmp_path, zoo, store, make, code, needle, hint):
    result = zoo("convert", "tiny@1", "--int8", "--calibration", str(make(tmp_path)), code=code)
    assert needle in result.stderr and "hint:" in result.stderr and hint in result.stderr
    assert "Traceback" not in result.stderr
    assert len(open_registry(store).list("tiny")) == 1  # nothing registered


@pytest.mark.parametrize("args,code,needle", [
    (["tiny@1"], 2, "Received: neither"),
    (["tiny@1", "--fp16", "--int8"], 2, "Received: both"),
    (["tiny@1", "--fp16", "--calibration", "x.npy"], 2, "Expected calibration data with int8 only"),
    (["nothing", "--int8"], 3, "nothing"),
])
def test_convert_usage_errors(zoo, args, code, needle):
    result = zoo("convert", *args, code=code)
    assert needle in result.stderr and "hint:" in result.stderr


def test_a_converted_version_is_not_converted_again(zoo):
    zoo("convert", "tiny@1", "--int8")
    result = zoo("convert", "tiny@2", "--fp16", code=2)
    assert "Expected an fp32 version to convert. Received tiny@2 (int8)" in result.stderr
    assert "zoo convert tiny@1 --fp16" in result.stderr


def test_load_calibration_default_is_the_documented_seeded_set():
    from zoo.convert.int8 import CALIBRATION_IMAGES, CALIBRATION_SEED
    from zoo.metrics import VERIFY_SEED, verification_batch

    images, about = load_calibration(None, input_size=8)
    np.testing.assert_array_equal(images, verification_batch(8, batch=CALIBRATION_IMAGES, seed=CALIBRATION_SEED))
    assert about["source"] == "seeded" and CALIBRATION_SEED != VERIFY_SEED
    with pytest.raises(NotFound):
        load_calibration("/nonexistent/calib.npy", input_size=8)
    with pytest.raises(InvalidInput):
        convert_version(None, "tiny@1", precision="int4")


@pytest.mark.torch
def test_int8_resnet18_error_is_bounded(tmp_path):
    """A real architecture (ResNet-18, 10 classes, 64 px, torch-built): the report's error stays small."""
    from zoo._exporting import export_and_register
    from zoo.plugins import get_plugin

    registry = open_registry(tmp_path / "store")
    plugin = get_plugin("torch")  # torch's own seeded init: the error bound below was set on it
    state = plugin.state_dict(plugin.build("resnet18", num_classes=10, seed=0))
    version = export_and_register(registry, plugin, "resnet18", num_classes=10, input_size=64, state=state).version
    converted = convert_version(registry, version, precision="int8")
    assert converted.created and converted.version.arch == "resnet18" and converted.version.framework == "torch"
    assert converted.version.macs == version.macs
    assert 0 < converted.report["max_rel_error"] < 0.1
    assert converted.report["top1_agreement"] >= 0.75 and converted.report["top5_agreement"] == 1.0
    assert converted.version.size_bytes < version.size_bytes / 2  # int8 weights: a quarter, plus the float head


def _save(path, array):
    np.save(path, array)
    return path


def _write(path):
    path.write_text("not an array")
    return path


def _mkdir(path):
    path.mkdir()
    return path
