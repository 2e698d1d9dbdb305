"""``InferenceModel.preprocess`` and ``classify``: images in, the recorded labels out."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.errors import InvalidInput
from zoo.labels import Labels, top_k
from zoo.records import VersionMeta
from zoo.runtime import InferenceModel
from zoo.transforms import Transform, preprocess

LABELS = Labels(name="tiny", classes=tuple(f"class {i}" for i in range(10)))
TRANSFORM = Transform(resize=8, crop=8)


@pytest.fixture
def model(store, tiny_onnx):
    store.register(tiny_onnx(0), name="tiny", meta=VersionMeta(labels=LABELS, transform=TRANSFORM))
    return store.load("tiny", provider="cpu")


def _images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), rng.integers(0, 256, (9, 9), dtype=np.uint8)]


def test_preprocess_applies_the_recorded_transform(model):
    batch = model.preprocess(_images())
    assert batch.shape == (2, 3, 8, 8) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, preprocess(_images(), TRANSFORM))


def test_classify_names_the_recorded_labels(model):
    predictions = model.classify(_images(), top_k=3)
    expected = top_k(model.predict(preprocess(_images(), TRANSFORM)), LABELS, 3)
    assert predictions == expected
    assert [len(p) for p in predictions] == [3, 3]
    assert all(p.label == f"class {p.class_id}" for row in predictions for p in row)
    assert all(row[0].probability >= row[1].probability >= row[2].probability for row in predictions)


def test_a_bare_file_is_fed_at_its_fixed_input_size_and_named_by_class_id(tiny_onnx):
    bare = InferenceModel(tiny_onnx(0), provider="cpu")
    assert bare.preprocess(_images()).shape == (2, 3, 8, 8)
    assert [p.label for p in bare.classify(_images(), top_k=2)[0]] == [None, None]


def test_top_k_must_be_positive(model):
    with pytest.raises(InvalidInput, match="top_k"):
        model.classify(_images(), top_k=0)
