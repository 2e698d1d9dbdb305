"""Class names (built-in, files, lists), top-k, and the records that carry labels and transform."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import REPO_ROOT
from zoo.errors import InvalidInput, NotFound
from zoo.labels import BUILTIN, Labels, Prediction, builtin_labels, check_labels_fit, read_labels, resolve_labels, top_k
from zoo.records import ModelVersion, Signature, TensorSpec, VersionMeta
from zoo.transforms import Transform


def test_imagenet_is_torchvisions_1000_distinct_names():
    labels = builtin_labels("imagenet-1k")
    assert len(labels) == 1000 and len(set(labels)) == 1000
    assert (labels[0], labels[1], labels[999]) == ("tench", "goldfish", "toilet tissue")
    # torchvision's newer names tell apart what older releases called "crane" and "maillot" twice
    assert "crane bird" in labels.classes and "maillot tank suit" in labels.classes
    assert labels.describe().startswith("imagenet-1k (1000 classes: tench, goldfish, great white shark")


def test_builtin_lists_are_package_data():
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads TOML")
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["zoo"]
    for filename in BUILTIN.values():
        assert any(pattern == f"labels/{filename}" or pattern == "labels/*.txt" for pattern in patterns)


def test_unknown_builtin_is_not_found():
    with pytest.raises(NotFound, match="imagenet-1k"):
        builtin_labels("imagenet-21k")


def test_resolve_accepts_every_spelling(tmp_path):
    path = tmp_path / "pets.txt"
    path.write_text("cat\ndog\n")
    from_file = resolve_labels(path)
    assert from_file == Labels("pets", ("cat", "dog")) == read_labels(str(path))
    assert resolve_labels(["cat", "dog"]) == Labels("custom", ("cat", "dog"))
    assert resolve_labels("imagenet-1k") == builtin_labels("imagenet-1k")
    assert resolve_labels(None) is None and resolve_labels(from_file) is from_file
    assert resolve_labels({"name": "pets", "classes": ["cat", "dog"]}) == from_file
    assert from_file.sha256 == Labels("other", ("cat", "dog")).sha256


def test_labels_must_fit_the_outputs():
    check_labels_fit(Labels("x", ("a", "b")), 2)
    with pytest.raises(InvalidInput, match="Expected 3 class names"):
        check_labels_fit(Labels("x", ("a", "b")), 3)


def softmax(row):
    e = [math.exp(v - max(row)) for v in row]
    return [v / sum(e) for v in e]


def test_top_k_orders_by_probability_with_softmax():
    logits = np.array([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 0.0]], np.float32)
    result = top_k(logits, ["a", "b", "c", "d"], k=2)
    assert [[p.label for p in row] for row in result] == [["b", "c"], ["c", "a"]]  # tie: lower id first
    expected = softmax([1.0, 3.0, 2.0, 0.0])
    assert result[0][0] == Prediction(label="b", class_id=1, probability=pytest.approx(expected[1]))
    assert result[0][1].probability == pytest.approx(expected[2])


def test_top_k_edges():
    full = top_k(np.array([1000.0, 1001.0, 999.0]), None, k=10)  # 1-D, huge logits, k > classes
    assert len(full) == 1 and len(full[0]) == 3
    assert [p.class_id for p in full[0]] == [1, 0, 2] and full[0][0].label is None
    assert sum(p.probability for p in full[0]) == pytest.approx(1.0)
    assert all(math.isfinite(p.probability) for p in full[0])
    assert json.loads(json.dumps(full[0][0].to_dict())) == {"label": None, "class_id": 1, "probability": full[0][0].probability}


@pytest.mark.parametrize("logits,labels,k,fragment", [
    (np.zeros((2, 3)), ["a", "b"], 1, "3 class names"),
    (np.zeros((2, 3)), None, 0, "top_k"),
    (np.zeros((2, 3)), None, True, "top_k"),
    (np.zeros((2, 3, 4)), None, 1, "shape"),
    (np.zeros((2, 0)), None, 1, "shape"),
    (np.array(["a", "b"]), None, 1, "shape"),
])
def test_top_k_refuses_bad_input(logits, labels, k, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        top_k(logits, labels, k)


def version_dict() -> dict:
    sig = Signature(inputs=(TensorSpec("images", "float32", ("batch", 3, 32, 32)),),
                    outputs=(TensorSpec("logits", "float32", ("batch", 2)),))
    return ModelVersion(name="m", version=1, sha256="0" * 64, size_bytes=1, created_at="2026-01-01T00:00:00+00:00",
                        signature=sig, opset=18, onnx_params=1, macs=1).to_dict()


def test_versions_written_before_labels_and_transform_still_load():
    old = version_dict()
    del old["transform"], old["labels"]
    version = ModelVersion.from_dict(old)
    assert version.transform is None and version.labels is None


def test_version_round_trips_labels_and_transform_through_json():
    record = version_dict()
    record["transform"] = Transform(resize=36, crop=(32, 32)).to_dict()
    record["labels"] = Labels("pets", ("cat", "dog")).to_dict()
    version = ModelVersion.from_dict(json.loads(json.dumps(record)))
    assert version.transform == Transform(resize=36, crop=(32, 32))
    assert version.labels == Labels("pets", ("cat", "dog"))
    assert ModelVersion.from_dict(json.loads(json.dumps(version.to_dict()))) == version
    meta = VersionMeta(transform=version.transform, labels=version.labels)
    assert meta.to_dict()["labels"] == {"name": "pets", "classes": ["cat", "dog"]}
