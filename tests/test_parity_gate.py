"""The parity gate catches the bugs it exists for: break a weight conversion or an exporter on
purpose, and parity must fail, name the failing pair, and blame the right side.

Each fault is a one-line slip a plugin author could make: a conv kernel transposed with H and W
swapped, a reshape where a transpose belongs, the first classifier layer's rows left in H,W,C
order while the graph flattens C,H,W (AlexNet/VGG), an exporter that writes a wrong bias.
"""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.errors import ParityFailure
from zoo.parity import raise_for_failures, run_parity

pytestmark = [
    pytest.mark.torch,
    pytest.mark.tensorflow,
]
SMALL = {"num_classes": 10, "input_size": 64, "batch": 4, "seed": 0}


def _plugins():
    from zoo.plugins import get_plugin

    return [get_plugin("torch"), get_plugin("tensorflow")]


def _swap_hw(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(3, 2, 1, 0)  # OIHW -> W,H,I,O: the right shape, H and W swapped


def _reshape_not_transpose(weight: np.ndarray) -> np.ndarray:
    o, i, h, w = weight.shape
    return np.ascontiguousarray(weight).reshape(h, w, i, o)  # the right shape, scrambled data


@pytest.mark.parametrize("fault,export", [(_swap_hw, True), (_reshape_not_transpose, False)], ids=["swapped-hw", "reshape"])
def test_broken_conv_conversion_fails_the_gate(monkeypatch, fault, export):
    import zoo_tensorflow.weights as tf_weights

    monkeypatch.setattr(tf_weights, "conv_from_canonical", fault)
    report = run_parity("resnet18", _plugins(), export=export, **SMALL)
    assert not report.passed
    native = next(p for p in report.pairs if p.kind == "native-native")
    assert not native.passed and native.max_rel_error > 1e-2, "a real bug is orders of magnitude over the tolerance"
    if export:
        assert {p.kind for p in report.failures} == {"native-native", "onnx-onnx", "cross"}
        assert all(p.passed for p in report.pairs if p.kind == "export"), "each export still matches its framework"
        assert any("exporters are not at fault" in d for d in report.diagnosis)
    assert report.divergence is not None and report.divergence["group"] == "conv1", "the first conv is the first broken one"
    assert any("first diverging layer group: 'conv1'" in d for d in report.diagnosis)
    broken = set(report.roundtrip_mismatches["tensorflow"])
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer4.1.conv2.weight"} <= broken
    assert not any(".bn" in k or k.startswith(("bn1", "fc")) for k in broken), "only conv kernels are named"
    if fault is _swap_hw:
        assert "layer2.0.downsample.0.weight" not in broken, "swapping H and W of a 1x1 kernel is harmless"
    with pytest.raises(ParityFailure) as err:
        raise_for_failures([report])
    assert "tensorflow vs torch [native-native]" in err.value.message


def _hwc_rows(original):
    """Wrap dense_from_canonical: the flatten-fed layer gets its inputs in H,W,C order (the graph flattens C,H,W)."""
    feature_maps = {256 * 6 * 6: (256, 6, 6), 512 * 7 * 7: (512, 7, 7)}  # AlexNet, VGG

    def convert(weight: np.ndarray) -> np.ndarray:
        if weight.shape[1] in feature_maps:
            c, h, w = feature_maps[weight.shape[1]]
            weight = weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        return original(weight)

    return convert


def test_missing_flatten_permutation_fails_the_cli_gate(monkeypatch, tmp_path):
    import zoo_tensorflow.weights as tf_weights
    from zoo.cli import main

    monkeypatch.setattr(tf_weights, "dense_from_canonical", _hwc_rows(tf_weights.dense_from_canonical))
    junit = tmp_path / "parity.xml"
    out = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), "parity", "alexnet", "--native-only",
                                    "--input-size", "64", "--num-classes", "10", "--junit", str(junit)])
    assert out.exit_code == ParityFailure.exit_code, out.output
    assert "tensorflow vs torch [native-native]" in out.output
    assert "classifier.1.weight" in out.output, "the round trip names the mis-converted tensor"
    assert "first diverging layer group: 'classifier.2'" in out.output, "features agree; the flatten-fed Linear (+ReLU) not"
    assert 'type="native-native"' in junit.read_text()


@pytest.mark.slow  # the same fault on AlexNet runs by default (above); VGG-16's own flatten order: test_plugin_tensorflow
def test_missing_flatten_permutation_fails_vgg(monkeypatch):
    import zoo_tensorflow.weights as tf_weights

    monkeypatch.setattr(tf_weights, "dense_from_canonical", _hwc_rows(tf_weights.dense_from_canonical))
    report = run_parity("vgg16", _plugins(), export=False, **SMALL)
    assert not report.passed
    assert report.roundtrip_mismatches == {"tensorflow": ["classifier.0.weight"]}
    assert report.divergence["group"] == "classifier.1", "every features.* group agrees; classifier.0 (+ReLU) does not"


def test_broken_exporter_is_blamed_on_the_exporter(monkeypatch):
    """An exporter that writes a wrong classifier bias: only pairs with torch's ONNX fail."""
    import onnx
    from onnx import numpy_helper

    from zoo_torch import TorchPlugin

    original = TorchPlugin.export_onnx

    def export_with_wrong_bias(self, model, path, **kwargs):
        info = original(self, model, path, **kwargs)
        proto = onnx.load(str(path))
        for i, init in enumerate(proto.graph.initializer):
            array = numpy_helper.to_array(init)
            if array.shape == (SMALL["num_classes"],):
                proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(array + np.float32(0.5), init.name))
        onnx.save(proto, str(path))
        return info

    monkeypatch.setattr(TorchPlugin, "export_onnx", export_with_wrong_bias)
    report = run_parity("resnet18", _plugins(), **SMALL)
    failed = {p.label for p in report.failures}
    assert failed == {"torch-onnx vs torch", "tensorflow-onnx vs torch-onnx", "torch-onnx vs tensorflow"}
    assert any("exporter at fault for torch" in d for d in report.diagnosis)
    assert not report.roundtrip_mismatches
