"""zoo.onnx: signature, opset, initializer count, MACs and metadata, read from the graph.

Every expected value is computed from the model the test builds (layer shapes -> MACs), and the
full-size ResNets are checked against torchvision's published GMACs and parameter counts.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zoo import onnx as onnx_info
from zoo._exporting import export_onnx
from zoo.architectures import (
    ARCHITECTURES,
    BLOCK_EXPANSION,
    REFERENCE_GMACS,
    REFERENCE_PARAMS,
    RESNET_PLANS,
    RESNET_STEM,
    RESNET_WIDTHS,
)
from zoo.errors import InvalidInput
from zoo.records import Signature, TensorSpec

OPSET = 18
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------
# Small model factories (onnx.helper only)


def _weights(name: str, *shape: int) -> TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def _out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _model(nodes, inputs, outputs, initializers=(), *, opset: int = OPSET, extra_opsets=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    model.ir_version = 8
    return model


def small_cnn(*, batch: int | str = "batch", height: int | str = "height", width: int | str = "width",
              classes: int = 10) -> onnx.ModelProto:
    """conv 3->8 (3x3, stride 2) -> depthwise 8 (3x3, groups 8) -> conv 1x1 8->16 -> GAP -> Gemm 16->classes."""
    inits = [
        _weights("c1.w", 8, 3, 3, 3), _weights("c1.b", 8),
        _weights("dw.w", 8, 1, 3, 3),
        _weights("pw.w", 16, 8, 1, 1),
        _weights("fc.w", classes, 16), _weights("fc.b", classes),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "c1.w", "c1.b"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["a_r"]),
        helper.make_node("Conv", ["a_r", "dw.w"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Conv", ["b", "pw.w"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        inits,
    )


def small_cnn_macs(height: int, width: int, classes: int = 10) -> int:
    """MACs of small_cnn from its layer definitions: |W| per output pixel, plus the Gemm."""
    h, w = _out(height, 3, 2, 1), _out(width, 3, 2, 1)
    conv1 = (8 * 3 * 3 * 3) * h * w
    depthwise = (8 * 1 * 3 * 3) * h * w
    pointwise = (16 * 8) * h * w
    return conv1 + depthwise + pointwise + 16 * classes


def reshape_cnn(*, shape_from_graph: bool) -> onnx.ModelProto:
    """conv 3->4 then a Reshape to [N, -1] whose target is an initializer or computed (Shape/Gather/Concat)."""
    inits = [_weights("c.w", 4, 3, 3, 3), _weights("fc.w", 4 * 8 * 8, 5)]
    if shape_from_graph:
        inits += [numpy_helper.from_array(np.array(0, np.int64), "zero"),
                  numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
        flatten = [
            helper.make_node("Shape", ["c"], ["c_shape"]),
            helper.make_node("Gather", ["c_shape", "zero"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
            helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        ]
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "axes0"))
    else:
        inits.append(numpy_helper.from_array(np.array([1, -1], np.int64), "target"))
        flatten = []
    nodes = [
        helper.make_node("Conv", ["images", "c.w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        *flatten,
        helper.make_node("Reshape", ["c", "target"], ["f"]),
        helper.make_node("MatMul", ["f", "fc.w"], ["logits"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        inits,
    )


def reshape_cnn_macs() -> int:
    return (4 * 3 * 3 * 3) * 8 * 8 + (4 * 8 * 8) * 5


def save_external(model: onnx.ModelProto, folder: Path, *, location: str = "weights.bin") -> Path:
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


# ---------------------------------------------------------------------------------------------
# Hand-made full-size ResNets: initializers are external-data stubs (dims only, no bytes), which is
# exactly what inspect() must cope with; torchvision's layer plan (v1.5, no conv bias) from
# zoo.architectures.RESNET_PLANS.


class _ResNetBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.offset = 0
        self.bn_channels = 0
        self.n = 0

    def stub(self, name: str, shape: tuple[int, ...]) -> str:
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape, data_location=TensorProto.EXTERNAL)
        nbytes = 4 * math.prod(shape)
        for key, value in (("location", "weights.bin"), ("offset", str(self.offset)), ("length", str(nbytes))):
            t.external_data.add(key=key, value=value)
        self.offset += nbytes
        self.inits.append(t)
        return name

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int, *, relu: bool) -> str:
        w = self.stub(self.fresh("w"), (cout, cin, k, k))
        y = self.fresh("conv")
        self.nodes.append(helper.make_node("Conv", [x, w], [y], kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4))
        bn = [self.stub(self.fresh(p), (cout,)) for p in ("gamma", "beta", "mean", "var")]
        self.bn_channels += cout
        z = self.fresh("bn")
        self.nodes.append(helper.make_node("BatchNormalization", [y, *bn], [z], epsilon=1e-5))
        if not relu:
            return z
        r = self.fresh("relu")
        self.nodes.append(helper.make_node("Relu", [z], [r]))
        return r

    def block(self, x: str, kind: str, cin: int, planes: int, stride: int) -> tuple[str, int]:
        cout = planes * BLOCK_EXPANSION[kind]
        if kind == "basic":
            y = self.conv_bn(x, cin, planes, 3, stride, relu=True)
            y = self.conv_bn(y, planes, planes, 3, 1, relu=False)
        else:  # v1.5: the stride sits on the 3x3 conv
            y = self.conv_bn(x, cin, planes, 1, 1, relu=True)
            y = self.conv_bn(y, planes, planes, 3, stride, relu=True)
            y = self.conv_bn(y, planes, cout, 1, 1, relu=False)
        shortcut = self.conv_bn(x, cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else x
        s, r = self.fresh("add"), self.fresh("relu")
        self.nodes += [helper.make_node("Add", [y, shortcut], [s]), helper.make_node("Relu", [s], [r])]
        return r, cout

    def build(self, arch: str, classes: int = 1000) -> onnx.ModelProto:
        kind, counts = RESNET_PLANS[arch]
        x = self.conv_bn("images", 3, RESNET_STEM, 7, 2, relu=True)
        self.nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
        x, cin = "pool", RESNET_STEM
        for stage, (planes, count) in enumerate(zip(RESNET_WIDTHS, counts, strict=True)):
            for i in range(count):
                x, cin = self.block(x, kind, cin, planes, 2 if stage > 0 and i == 0 else 1)
        fc_w, fc_b = self.stub("fc.weight", (classes, cin)), self.stub("fc.bias", (classes,))
        self.nodes += [
            helper.make_node("GlobalAveragePool", [x], ["gap"]),
            helper.make_node("Flatten", ["gap"], ["flat"]),
            helper.make_node("Gemm", ["flat", fc_w, fc_b], ["logits"], transB=1),
        ]
        return _model(
            self.nodes,
            [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
            self.inits,
        )


# ---------------------------------------------------------------------------------------------
# Import hygiene


def test_import_does_not_import_onnx():
    code = "import sys, zoo.onnx; assert 'onnx' not in sys.modules, 'onnx imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ---------------------------------------------------------------------------------------------
# Signature, opset, initializer count


def test_signature_names_dtypes_and_shapes():
    unknown = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])
    unknown.type.tensor_type.shape.dim[1].Clear()  # neither value nor param: an unknown dim
    model = small_cnn()
    model.graph.input.append(unknown)
    model.graph.node.append(helper.make_node("Identity", ["ids"], ["ids_out"]))
    model.graph.node.append(helper.make_node("Cast", ["logits"], ["logits16"], to=TensorProto.FLOAT16))
    model.graph.output.append(helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["batch", 7]))
    model.graph.output.append(helper.make_tensor_value_info("logits16", TensorProto.FLOAT16, ["batch", 10]))

    sig = onnx_info.read_signature(model)

    assert sig == Signature(
        inputs=(TensorSpec("images", "float32", ("batch", 3, "height", "width")),
                TensorSpec("ids", "int64", ("batch", None))),
        outputs=(TensorSpec("logits", "float32", ("batch", 10)),
                 TensorSpec("ids_out", "int64", ("batch", 7)),
                 TensorSpec("logits16", "float16", ("batch", 10))),
    )
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


def test_signature_excludes_initializers_listed_as_inputs():
    """IR < 4 exporters list every initializer as a graph input too; those are not inputs."""
    model = small_cnn(height=32, width=32)
    for init in model.graph.initializer:
        model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    assert [t.name for t in onnx_info.read_signature(model).inputs] == ["images"]
    assert onnx_info.count_macs(model) == small_cnn_macs(32, 32)


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opset_is_the_default_domain_version(opset):
    model = small_cnn(height=16, width=16)
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("com.microsoft", 1), helper.make_opsetid("", opset)])
    assert onnx_info.inspect(model).opset == opset


def test_count_initializer_elements_includes_constants():
    model = small_cnn()
    expected = sum(numpy_helper.to_array(t).size for t in model.graph.initializer)
    const = RNG.standard_normal((2, 5)).astype(np.float32)
    model.graph.node.extend([
        helper.make_node("Constant", [], ["k1"], value=numpy_helper.from_array(const)),
        helper.make_node("Constant", [], ["k2"], value_ints=[1, 2, 3]),
        helper.make_node("Constant", [], ["k3"], value_float=0.5),
    ])
    scalar = numpy_helper.from_array(np.array(3.0, np.float32), "scalar")
    model.graph.initializer.append(scalar)
    assert onnx_info.count_initializer_elements(model) == expected + const.size + 3 + 1 + 1


# ---------------------------------------------------------------------------------------------
# MACs


@pytest.mark.parametrize("input_size, hw", [(32, (32, 32)), ((40, 24), (40, 24)), (33, (33, 33))])
def test_macs_of_conv_and_gemm(input_size, hw):
    facts = onnx_info.inspect(small_cnn(), input_size=input_size)
    assert facts.macs == small_cnn_macs(*hw)


def test_macs_none_without_input_size_for_symbolic_spatial_dims():
    assert onnx_info.count_macs(small_cnn()) is None
    assert onnx_info.count_macs(small_cnn(height=20, width=28)) == small_cnn_macs(20, 28)


def test_macs_are_per_sample_for_a_static_batch():
    assert onnx_info.count_macs(small_cnn(batch=4, height=32, width=32)) == small_cnn_macs(32, 32)


def test_fixed_spatial_dims_win_over_input_size():
    assert onnx_info.count_macs(small_cnn(height=16, width=16), input_size=224) == small_cnn_macs(16, 16)


@pytest.mark.parametrize("shape_from_graph", [False, True], ids=["constant-target", "computed-target"])
def test_macs_through_reshape(shape_from_graph):
    """A computed Reshape target needs data propagation (Shape -> Gather -> Concat)."""
    assert onnx_info.count_macs(reshape_cnn(shape_from_graph=shape_from_graph)) == reshape_cnn_macs()


def test_macs_of_batched_matmul_and_transposed_gemm():
    t, k, n, m = 7, 12, 5, 3
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["y"]),  # [batch, t, k] x [k, n]
        helper.make_node("Gemm", ["a", "b"], ["z"], transA=1),  # a: [k, m] -> A^T [m, k]
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", t, k]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [k, m])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", t, n]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [m, n])],
        [_weights("w", k, n), _weights("b", k, n)],
    )
    assert onnx_info.count_macs(model) == t * k * n + m * k * n


def test_macs_of_conv_transpose():
    cin, cout, k, size = 4, 6, 3, 10
    model = _model(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[k, k], strides=[2, 2])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", cin, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weights("w", cin, cout, k, k)],
    )
    assert onnx_info.count_macs(model, input_size=size) == cin * cout * k * k * size * size


def test_input_size_is_validated():
    with pytest.raises(InvalidInput, match="input_size"):
        onnx_info.count_macs(small_cnn(), input_size=0)
    with pytest.raises(InvalidInput, match="input_size"):
        onnx_info.count_macs(small_cnn(), input_size=(1, 2, 3))


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a in RESNET_PLANS])
def test_hand_built_resnet_matches_torchvision(arch):
    builder = _ResNetBuilder()
    model = builder.build(arch)
    facts = onnx_info.inspect(model, input_size=224)
    # torchvision rounds to 3 decimals: exact MACs must round to the published figure.
    assert round(facts.macs / 1e9, 3) == pytest.approx(REFERENCE_GMACS[arch], abs=1e-9)
    # Trainable parameters plus BatchNorm running mean/variance (2 per channel).
    assert facts.onnx_params == REFERENCE_PARAMS[arch] + 2 * builder.bn_channels
    assert facts.signature.inputs == (TensorSpec("images", "float32", ("batch", 3, "height", "width")),)


# ---------------------------------------------------------------------------------------------
# External data


@pytest.mark.parametrize("location", ["weights.bin", "data/weights.bin"])
def test_external_data_model_is_inspected_without_loading_data(tmp_path, location):
    model = small_cnn()
    expected = onnx_info.inspect(model, input_size=32)
    path = save_external(model, tmp_path / "m", location=location)

    checked = onnx_info.check_model_file(path)

    assert checked.path == path
    assert checked.external_files == (location,)
    facts = onnx_info.inspect(checked, input_size=32)
    assert facts == expected
    for t in checked.model.graph.initializer:
        assert t.data_location == TensorProto.EXTERNAL and not t.raw_data, t.name


def test_small_external_shape_tensors_are_read_for_shape_inference(tmp_path):
    path = save_external(reshape_cnn(shape_from_graph=False), tmp_path / "m")
    checked = onnx_info.check_model_file(path)
    target = next(t for t in checked.model.graph.initializer if t.name == "target")
    assert target.data_location == TensorProto.EXTERNAL
    assert onnx_info.count_macs(checked) == reshape_cnn_macs()


def test_weights_over_2gb_are_never_read(tmp_path):
    """A 3 GiB (sparse) external-data file: checked and counted from dims, in constant memory."""
    resource = pytest.importorskip("resource")
    n = 3 * 2**30 // 4
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[n], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "w.bin"), ("offset", "0"), ("length", str(4 * n))):
        w.external_data.add(key=key, value=value)
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], [w])
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    with open(folder / "w.bin", "wb") as f:
        f.truncate(4 * n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    checked = onnx_info.check_model_file(folder / "model.onnx")
    facts = onnx_info.inspect(checked)

    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # Linux: KiB
    assert facts.onnx_params == n
    assert grown_mib < 512, f"peak memory grew by {grown_mib:.0f} MiB"


# ---------------------------------------------------------------------------------------------
# Metadata


def test_metadata_round_trip(tmp_path):
    model = small_cnn(height=32, width=32)
    helper.set_model_props(model, {"author": "someone", "zoo.arch": "old"})
    props = {"zoo.arch": "resnet18", "zoo.params": json.dumps({"trainable": 1, "non_trainable": 2})}

    onnx_info.embed_metadata(model, props)
    onnx_info.embed_metadata(model, {"zoo.framework": "torch"})
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path))

    expected = {"author": "someone", **props, "zoo.framework": "torch"}
    assert onnx_info.read_metadata(path) == expected
    assert onnx_info.read_metadata(str(path)) == expected
    assert onnx_info.read_metadata(model) == expected
    assert [p.key for p in model.metadata_props] == ["author", "zoo.arch", "zoo.params", "zoo.framework"]
    checked = onnx_info.check_model_file(path)  # no duplicate keys: the checker would refuse them
    assert onnx_info.read_metadata(checked) == expected


def test_metadata_of_external_data_model(tmp_path):
    model = small_cnn()
    onnx_info.embed_metadata(model, {"zoo.num_classes": "10"})
    path = save_external(model, tmp_path / "m")
    assert onnx_info.read_metadata(path) == {"zoo.num_classes": "10"}


def test_embed_metadata_rejects_non_strings():
    with pytest.raises(InvalidInput, match="zoo.num_classes"):
        onnx_info.embed_metadata(small_cnn(), {"zoo.num_classes": 10})  # type: ignore[dict-item]


# ---------------------------------------------------------------------------------------------
# The PyTorch plugin's exports (the dev install has the plugin: an import failure fails these tests)


def _torch_plugin():
    from zoo_torch import TorchPlugin

    return TorchPlugin()


def _plugin_archs() -> tuple[str, ...]:
    from zoo.plugins import get_plugin

    return tuple(get_plugin("torch").architectures())


def _export_and_check(arch: str, tmp_path: Path) -> tuple[float, onnx_info.OnnxFacts]:
    plugin = _torch_plugin()
    model = plugin.build(arch, num_classes=1000)
    path = tmp_path / f"{arch}.onnx"
    export_onnx(plugin, model, path, input_size=224)
    del model
    facts = onnx_info.inspect(onnx_info.check_model_file(path), input_size=224)
    return facts.macs / 1e9, facts


@pytest.mark.torch
def test_torch_resnet18_export_macs_match_torchvision(torch_resnet18_full_size):
    _, path = torch_resnet18_full_size  # the session's full-size export (shared with test_plugin_torch)
    facts = onnx_info.inspect(onnx_info.check_model_file(path), input_size=224)
    gmacs = facts.macs / 1e9
    assert gmacs == pytest.approx(REFERENCE_GMACS["resnet18"], rel=0.01)
    assert facts.signature.inputs[0].name == "images" and facts.signature.outputs[0].name == "logits"


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("arch", [a for a in _plugin_archs() if a in REFERENCE_GMACS])
def test_torch_exports_macs_match_torchvision(arch, tmp_path):
    gmacs, _ = _export_and_check(arch, tmp_path)
    assert gmacs == pytest.approx(REFERENCE_GMACS[arch], rel=0.01)
