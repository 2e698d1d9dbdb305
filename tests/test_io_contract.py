"""The I/O-contract pass (zoo.onnx.contract) on hand-made graphs, independent of any plugin.

Every exported file goes through it: one float32 input ``images`` [batch, 3, H, W], one float32
output ``logits`` [batch, classes], the batch dim named ``batch``; misnamed graphs are renamed
(weights untouched, never read), impossible ones raise ExportError.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from zoo import open_registry
from zoo._exporting import export_and_register
from zoo.errors import ExportError
from zoo.metrics import relative_error
from zoo.onnx.contract import enforce_io_contract
from zoo.records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, ExportInfo, ParamCounts

SIZE, CLASSES = 32, 5  # 32: the smallest input size the export pipeline accepts
RNG = np.random.default_rng(0)
W = RNG.standard_normal((CLASSES, 3 * SIZE * SIZE)).astype(np.float32)
B = RNG.standard_normal(CLASSES).astype(np.float32)


def classifier(*, inp: str = "x", out: str = "y", batch: str | int = "N", out_batch: str | int | None = None,
               dtype: int = TensorProto.FLOAT, ir_version: int = 8) -> onnx.ModelProto:
    """inp [batch, 3, SIZE, SIZE] -> Flatten -> Gemm -> out [batch, CLASSES]."""
    graph = helper.make_graph(
        [helper.make_node("Flatten", [inp], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], [out], transB=1)],
        "hand-made",
        [helper.make_tensor_value_info(inp, dtype, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(out, dtype, [batch if out_batch is None else out_batch, CLASSES])],
        [numpy_helper.from_array(W, "fc.w"), numpy_helper.from_array(B, "fc.b")],
        value_info=[helper.make_tensor_value_info("flat", dtype, [batch, 3 * SIZE * SIZE])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = ir_version
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def signature(path: Path) -> tuple:
    proto = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}

    def spec(vi):
        return vi.name, vi.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    return [spec(v) for v in proto.graph.input if v.name not in inits], [spec(v) for v in proto.graph.output]


CONTRACT = ([(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, 3, SIZE, SIZE])],
            [(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, CLASSES])])


def logits(path: Path, batch: int = 3) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((batch, 3, SIZE, SIZE), dtype=np.float32)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run([OUTPUT_NAME], {INPUT_NAME: x})
    assert relative_error(y, x.reshape(batch, -1) @ W.T + B) <= 1e-5
    return y


# ---------------------------------------------------------------------------------------------
# Renaming what is only misnamed


def test_other_names_are_renamed_everywhere(tmp_path):
    path = save(classifier(), tmp_path / "m.onnx")
    notes = enforce_io_contract(path, input_size=SIZE, num_classes=CLASSES)
    assert notes == ("renamed graph value 'x' to 'images'", "renamed graph value 'y' to 'logits'",
                     "named the batch dim 'batch'")
    assert signature(path) == CONTRACT
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [list(n.input) for n in proto.graph.node] == [[INPUT_NAME], ["flat", "fc.w", "fc.b"]]
    assert [d.dim_param for d in proto.graph.value_info[0].type.tensor_type.shape.dim] == [BATCH_DIM, ""]
    np.testing.assert_array_equal(numpy_helper.to_array(proto.graph.initializer[0]), W)  # weights as they were
    logits(path)


def test_a_contract_file_is_left_byte_for_byte(tmp_path):
    path = save(classifier(inp=INPUT_NAME, out=OUTPUT_NAME, batch=BATCH_DIM), tmp_path / "m.onnx")
    before = path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino
    assert enforce_io_contract(path, input_size=SIZE, num_classes=CLASSES) == ()
    assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_the_rewrite_is_reproducible_and_a_second_pass_is_a_no_op(tmp_path):
    first, second = save(classifier(), tmp_path / "a" / "m.onnx"), save(classifier(), tmp_path / "b" / "m.onnx")
    enforce_io_contract(first)
    enforce_io_contract(second)
    assert first.read_bytes() == second.read_bytes()
    assert enforce_io_contract(first) == ()
    expected = classifier(inp=INPUT_NAME, out=OUTPUT_NAME, batch=BATCH_DIM)
    assert first.read_bytes() == expected.SerializeToString(deterministic=True), "the bytes protobuf itself writes"


def test_a_graph_streamed_in_several_fields_is_read_merged(tmp_path):
    """Protobuf merges a repeated message field: an exporter may write each initializer as its own
    ``graph {initializer {...}}`` after the rest (the TensorFlow plugin does, to bound memory)."""
    model = classifier()
    weights = list(model.graph.initializer)
    del model.graph.initializer[:]
    chunks = [model.SerializeToString()]
    chunks += [onnx.ModelProto(graph=onnx.GraphProto(initializer=[t])).SerializeToString() for t in weights]
    path = tmp_path / "m.onnx"
    path.write_bytes(b"".join(chunks))
    enforce_io_contract(path)
    expected = classifier(inp=INPUT_NAME, out=OUTPUT_NAME, batch=BATCH_DIM)
    assert path.read_bytes() == expected.SerializeToString(deterministic=True)
    logits(path)


def test_different_input_and_output_batch_symbols_and_an_unnamed_one(tmp_path):
    model = classifier(batch="unk__616", out_batch="unk__617")
    path = save(model, tmp_path / "m.onnx")
    enforce_io_contract(path)
    assert signature(path) == CONTRACT
    model = classifier()
    model.graph.input[0].type.tensor_type.shape.dim[0].Clear()  # neither value nor name
    model.graph.output[0].type.tensor_type.shape.dim[0].Clear()
    path = save(model, tmp_path / "u.onnx")
    enforce_io_contract(path)
    assert signature(path) == CONTRACT
    logits(path)


def test_subgraphs_that_read_the_input_are_renamed(tmp_path):
    """An If whose branches read the outer input: the reference inside the subgraph follows the rename."""
    def branch(name: str, scale: float) -> onnx.GraphProto:
        return helper.make_graph(
            [helper.make_node("Flatten", ["x"], [f"{name}.flat"], axis=1),
             helper.make_node("Gemm", [f"{name}.flat", "fc.w", "fc.b"], [f"{name}.out"], transB=1, alpha=scale, beta=scale)],
            name, [], [helper.make_tensor_value_info(f"{name}.out", TensorProto.FLOAT, ["N", CLASSES])])

    model = classifier()
    graph = model.graph
    del graph.node[:]
    del graph.value_info[:]
    graph.initializer.append(numpy_helper.from_array(np.array(True), "cond"))
    graph.node.append(helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", 1.0), else_branch=branch("else", -1.0)))
    path = save(model, tmp_path / "m.onnx")
    enforce_io_contract(path, input_size=SIZE, num_classes=CLASSES)
    proto = onnx.load(str(path))
    then = next(a.g for a in proto.graph.node[0].attribute if a.name == "then_branch")
    assert then.node[0].input[0] == INPUT_NAME
    logits(path)


def test_initializers_listed_as_inputs_do_not_count_as_inputs(tmp_path):
    model = classifier(ir_version=3)
    model.graph.input.extend([helper.make_tensor_value_info("fc.w", TensorProto.FLOAT, list(W.shape)),
                              helper.make_tensor_value_info("fc.b", TensorProto.FLOAT, list(B.shape))])
    path = save(model, tmp_path / "m.onnx")
    enforce_io_contract(path)
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == [INPUT_NAME, "fc.w", "fc.b"]


def test_external_data_is_never_opened_and_stays_valid(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save_model(classifier(), str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    data = tmp_path / "m.onnx.data"
    kept = data.read_bytes()
    data.rename(tmp_path / "elsewhere")  # the pass must not need it: it never reads weights
    enforce_io_contract(path)
    (tmp_path / "elsewhere").rename(data)
    assert data.read_bytes() == kept
    assert signature(path) == CONTRACT
    assert all(t.data_location == TensorProto.EXTERNAL for t in onnx.load(str(path), load_external_data=False).graph.initializer)
    logits(path)


def test_the_file_mode_is_kept_and_no_temp_file_is_left(tmp_path):
    path = save(classifier(), tmp_path / "m.onnx")
    os.chmod(path, 0o640)
    enforce_io_contract(path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ---------------------------------------------------------------------------------------------
# Graphs that cannot satisfy the contract


def two_inputs() -> onnx.ModelProto:
    model = classifier()
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 1]))
    return model


def clashing_name() -> onnx.ModelProto:
    model = classifier()
    model.graph.node[0].output[0] = INPUT_NAME
    model.graph.node[1].input[0] = INPUT_NAME
    model.graph.value_info[0].name = INPUT_NAME
    return model


def wrong_channels() -> onnx.ModelProto:
    model = classifier()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
    return model


REFUSED = {
    "two-inputs": (two_inputs, {}, r"Expected exactly one graph input and one output .*Received: inputs \['x', 'extra'\]"),
    "two-outputs": (lambda: _with_second_output(), {}, r"Received: inputs \['x'\], outputs \['y', 'flat'\]"),
    "fixed-batch": (lambda: classifier(batch=2), {}, r"Expected a symbolic batch dim on 'x'. Received shape \[2, 3, 32, 32\]"),
    "fixed-output-batch": (lambda: classifier(out_batch=2), {}, r"symbolic batch dim on 'y'"),
    "float16": (lambda: classifier(dtype=TensorProto.FLOAT16), {}, r"Expected the graph input 'x' to be a float32 tensor. "
                r"Received: float16"),
    "channels": (wrong_channels, {}, r"Expected the graph input of shape \['batch', 3, 'H', 'W'\]. Received: \['N', 1, 32, 32\]"),
    "input-size": (classifier, {"input_size": 8}, r"Expected the graph input of shape \['batch', 3, 8, 8\]"),
    "num-classes": (classifier, {"num_classes": 7}, r"Expected the graph output of shape \['batch', 7\]. Received: \['N', 5\]"),
    "clash": (clashing_name, {}, r"Expected no other value named 'images'"),
}


def _with_second_output() -> onnx.ModelProto:
    model = classifier()
    model.graph.output.append(helper.make_tensor_value_info("flat", TensorProto.FLOAT, ["N", 3 * SIZE * SIZE]))
    return model


@pytest.mark.parametrize("factory, options, problem", REFUSED.values(), ids=REFUSED.keys())
def test_a_graph_that_cannot_honour_the_contract_is_an_export_error(tmp_path, factory, options, problem):
    path = save(factory(), tmp_path / "m.onnx")
    before = path.read_bytes()
    with pytest.raises(ExportError, match=problem) as info:
        enforce_io_contract(path, **options)
    assert info.value.hint and info.value.exit_code == 8
    assert path.read_bytes() == before, "a refused file is not rewritten"


def test_a_file_that_is_not_onnx_is_an_export_error(tmp_path):
    (tmp_path / "m.onnx").write_text("not a model")
    with pytest.raises(ExportError, match=r"Expected an ONNX model .*Received: .*text file"):
        enforce_io_contract(tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=r"Received: No such file"):
        enforce_io_contract(tmp_path / "missing.onnx")


# ---------------------------------------------------------------------------------------------
# The core runs it for every plugin


class OddNamesPlugin:
    """A plugin whose exporter names things its own way; the core's pass makes it a contract artifact."""

    name, display_name, version, install_hint, requires = "odd", "Odd", "0.1", "pip install odd", ()

    def framework_version(self) -> str:
        return "0"

    def architectures(self) -> tuple[str, ...]:
        return ("odd-linear",)

    def build(self, arch: str, *, num_classes: int = CLASSES, **options) -> dict:
        return {}

    def count_params(self, model: dict) -> ParamCounts:
        return ParamCounts(trainable=W.size + B.size, non_trainable=0)

    def predict(self, model: dict, images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1) @ W.T + B).astype(np.float32)

    def export_onnx(self, model: dict, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
        save(classifier(inp="pixels", out="scores", batch="n"), path)
        return ExportInfo(exporter="onnx.helper", exporter_version=onnx.__version__, opset=opset)

    def state_dict(self, model: dict) -> dict:
        return {}

    def load_state_dict(self, model: dict, state) -> None:
        pass


def test_the_core_export_pipeline_applies_the_contract_to_any_plugin(tmp_path):
    registry = open_registry(tmp_path / "store")
    result = export_and_register(registry, OddNamesPlugin(), "odd-linear", num_classes=CLASSES, input_size=SIZE)  # type: ignore[arg-type]
    v = result.version
    assert [(t.name, t.shape) for t in v.signature.inputs] == [(INPUT_NAME, (BATCH_DIM, 3, SIZE, SIZE))]
    assert [(t.name, t.shape) for t in v.signature.outputs] == [(OUTPUT_NAME, (BATCH_DIM, CLASSES))]
    assert "renamed graph value 'pixels' to 'images'" in v.provenance["export_notes"]
    logits(registry.path(v))


def test_register_model_runs_the_contract_pass_for_the_plugin_that_owns_the_model(tmp_path, monkeypatch):
    """zoo.register_model goes through the one pipeline: a plugin's own model gets the contract pass too."""
    import zoo._register_model as register_module
    from zoo import register_model

    monkeypatch.setattr(register_module, "plugin_for", lambda model, framework=None: OddNamesPlugin())
    example = np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE), dtype=np.float32)
    result = register_model({}, name="odd-own", example=example, registry=tmp_path / "store")
    v = result.version
    assert [t.name for t in v.signature.inputs] == [INPUT_NAME] and [t.name for t in v.signature.outputs] == [OUTPUT_NAME]
    assert "renamed graph value 'pixels' to 'images'" in v.provenance["export_notes"]
    assert v.provenance["verify"]["input"] == "example"
