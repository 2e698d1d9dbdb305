"""`zoo eval`: accuracy on a labelled image set, computed by hand from a model whose answers are known.

The model is a colour classifier built here: logits are the mean of each RGB channel (classes red,
green, blue) plus three classes it never ranks first (constant logits -10, -11, -12), so a solid
red picture is "red" and "white" is never in its top 5. The images are made with Pillow.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import cli_on

CLASSES = ["red", "green", "blue", "cyan", "magenta", "white"]
COLOURS = {"red": (250, 10, 10), "green": (10, 250, 10), "blue": (10, 10, 250), "white": (250, 250, 250)}
# (folder, colour of the picture): 3 of 4 red right, 2 of 2 green, 2 of 3 blue, 0 of 1 white (not in top 5 either).
SET = [("red", "red")] * 3 + [("red", "green")] + [("green", "green")] * 2 + [("blue", "blue")] * 2 + [("blue", "red"), ("white", "white")]
TOP1, TOP5 = 7 / 10, 9 / 10


def colour_classifier(path: Path, *, bias_shift: float = 0.0, reads: tuple[int, int, int] = (0, 1, 2)) -> Path:
    """``reads[c]``: the channel class c scores (the default is right; (1, 0, 2) mistakes red for green)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.zeros((len(CLASSES), 3 * 8 * 8), np.float32)
    for c, channel in enumerate(reads):
        weight[c, channel * 64:(channel + 1) * 64] = 1 / 64
    bias = np.array([0, 0, 0, -10, -11, -12], np.float32) + np.float32(bias_shift)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"], transB=1)],
        "colours",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(CLASSES)])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save_model(model, path)
    return path


def picture(path: Path, colour: str, size: tuple[int, int] = (12, 10)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[colour]).save(path)
    return path


def register(zoo, tmp_path: Path, model: Path) -> None:
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    zoo("register", str(model), "--name", "colours", "--labels", str(tmp_path / "classes.txt"),
        "--resize", "8", "--crop", "8", "--mean", "0,0,0", "--std", "1,1,1")


@pytest.fixture
def setup(tmp_path):
    """A store with `colours@1` (labels + a transform that maps pixels to [0, 1]) and the labelled set."""
    zoo = cli_on(tmp_path / "store")
    register(zoo, tmp_path, colour_classifier(tmp_path / "colours.onnx"))
    data = tmp_path / "val"
    for i, (folder, colour) in enumerate(SET):
        picture(data / folder / f"{i:02d}.png", colour)
    (data / "cyan").mkdir()  # a class with no images
    return zoo, data, tmp_path


def test_eval_matches_the_accuracy_computed_by_hand_and_is_stored(setup):
    zoo, data, _ = setup
    payload = json.loads(zoo("eval", "colours@1", "--data", str(data), "--json").stdout)
    assert payload["top1"] == pytest.approx(TOP1) and payload["top5"] == pytest.approx(TOP5) and payload["k"] == 5
    per_class = {c["class"]: (c["images"], c["top1"]) for c in payload["per_class"]}
    assert per_class == {"red": (4, 0.75), "green": (2, 1.0), "blue": (3, pytest.approx(2 / 3)), "cyan": (0, None),
                         "white": (1, 0.0)}
    confusion = payload["confusion"]
    assert confusion["labels"] == ["red", "green", "blue", "cyan", "white", "other"]
    red, green, blue, cyan, white = confusion["matrix"]
    assert red == [3, 1, 0, 0, 0, 0] and blue == [1, 0, 2, 0, 0, 0] and white == [1, 0, 0, 0, 0, 0]  # white looks red
    assert payload["data"]["images"] == 10 and payload["data"]["empty_classes"] == ["cyan"]
    assert payload["images_per_s"] > 0
    import zoo as zoo_api

    (report,) = zoo_api.open_registry(data.parent / "store").reports("colours@1", "eval")
    assert report.payload["data"]["digest"] == payload["data"]["digest"] and report.payload["top1"] == pytest.approx(TOP1)


def test_the_digest_recognises_the_same_set_and_changes_with_a_byte(setup):
    zoo, data, _ = setup
    first = json.loads(zoo("eval", "colours@1", "--data", str(data), "--json", "--no-attach").stdout)["data"]["digest"]
    again = json.loads(zoo("eval", "colours@1", "--data", str(data), "--json", "--no-attach").stdout)["data"]["digest"]
    picture(data / "green" / "04.png", "green", size=(13, 10))
    changed = json.loads(zoo("eval", "colours@1", "--data", str(data), "--json", "--no-attach").stdout)["data"]["digest"]
    assert first == again != changed


def test_csv_layout_gives_the_same_figures(setup):
    zoo, data, tmp_path = setup
    lines = ["path,label", *(f"val/{folder}/{i:02d}.png,{folder}" for i, (folder, _) in enumerate(SET))]
    (tmp_path / "val.csv").write_text("\n".join(lines) + "\n")
    payload = json.loads(zoo("eval", "colours@1", "--data", str(tmp_path / "val.csv"), "--json", "--no-attach").stdout)
    assert payload["data"]["layout"] == "csv"
    assert (payload["top1"], payload["top5"]) == (pytest.approx(TOP1), pytest.approx(TOP5))


def test_limit_takes_a_seeded_sample(setup):
    zoo, data, _ = setup
    runs = [json.loads(zoo("eval", "colours@1", "--data", str(data), "--limit", "4", "--seed", str(s), "--json",
                           "--no-attach").stdout)["data"] for s in (1, 1, 2)]
    assert [r["images"] for r in runs] == [4, 4, 4] and runs[0]["total"] == 10
    assert runs[0]["digest"] == runs[1]["digest"] != runs[2]["digest"]
    assert runs[0]["sample"] == {"limit": 4, "seed": 1}


def test_against_evaluates_both_in_one_pass(setup):
    """A second version whose logits all move by +1: other bytes, the same predictions."""
    zoo, data, tmp_path = setup
    register(zoo, tmp_path, colour_classifier(tmp_path / "shifted.onnx", bias_shift=1.0))
    payload = json.loads(zoo("eval", "colours@2", "--data", str(data), "--against", "colours@1", "--json").stdout)
    against = payload["against"]
    assert against["ref"] == "colours@1" and against["top1_agreement"] == 1.0
    assert against["top1_delta"] == pytest.approx(0.0) and against["top1"] == pytest.approx(TOP1)
    import zoo as zoo_api

    registry = zoo_api.open_registry(tmp_path / "store")
    assert [r.payload["against"]["ref"] for r in registry.reports("colours@1", "eval")] == ["colours@2"]


def test_against_an_int8_variant(setup):
    zoo, data, tmp_path = setup
    zoo("convert", "colours@1", "--int8")
    payload = json.loads(zoo("eval", "colours@2", "--data", str(data), "--against", "colours@1", "--json").stdout)
    assert payload["against"]["top1_agreement"] == 1.0 and payload["top1"] == pytest.approx(TOP1)


def test_table_output_names_the_figures(setup):
    zoo, data, _ = setup
    out = zoo("eval", "colours@1", "--data", str(data)).stdout
    assert "70.00%" in out and "90.00%" in out and "red" in out
