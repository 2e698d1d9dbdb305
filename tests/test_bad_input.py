"""Hostile input to a model: wrong rank, layout, dtype, size, empty and non-finite batches.

Every refusal is an InvalidInput that names what was received and the fix, raised *before* ONNX
Runtime sees the batch; recoverable oddities (float64, NaN) are warnings, not errors.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from onnx_models import reference_logits, tiny_cnn
from zoo.errors import InvalidInput
from zoo.runtime import InferenceModel

SIZE = 16


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return InferenceModel(tiny_cnn(tmp_path_factory.mktemp("m") / "fixed.onnx", size=SIZE))


@pytest.fixture(scope="module")
def any_size_model(tmp_path_factory):
    return InferenceModel(tiny_cnn(tmp_path_factory.mktemp("m") / "any.onnx", size=None))


@pytest.fixture
def good():
    return np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE), dtype=np.float32)


def refusal(model, images) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        model.predict(images)
    assert err.value.hint, "every refusal names the fix"
    assert err.value.exit_code == 2
    return err.value


def test_nhwc_batch_is_recognised(model, good):
    err = refusal(model, good.transpose(0, 2, 3, 1))
    assert "(2, 16, 16, 3)" in err.message and "NHWC" in err.message and "[batch, 3, 16, 16]" in err.message
    assert "x.transpose(0, 3, 1, 2)" in err.hint


def test_single_chw_image_needs_a_batch_dim(model, good):
    err = refusal(model, good[0])
    assert "one image of shape (3, 16, 16)" in err.message and "x[None]" in err.hint


def test_single_hwc_image(model, good):
    err = refusal(model, good[0].transpose(1, 2, 0))
    assert "HWC" in err.message and "x.transpose(2, 0, 1)[None]" in err.hint


@pytest.mark.parametrize("shape", [(2, 3 * SIZE * SIZE), (1, 2, 3, SIZE, SIZE), (SIZE,)])
def test_wrong_rank(model, shape):
    err = refusal(model, np.zeros(shape, dtype=np.float32))
    assert f"Received shape {shape}" in err.message and "4-d" in err.message


def test_wrong_channel_count(model):
    err = refusal(model, np.zeros((2, 1, SIZE, SIZE), dtype=np.float32))
    assert "channels 3 at axis 1" in err.message and "(2, 1, 16, 16)" in err.message


def test_fixed_spatial_size_mismatch(model):
    err = refusal(model, np.zeros((1, 3, 32, 24), dtype=np.float32))
    assert "fixed input size H x W = 16 x 16" in err.message and "32 x 24" in err.message
    assert "resize the images to 16x16" in err.hint


def test_symbolic_spatial_size_accepts_any_size(any_size_model):
    x = np.random.default_rng(2).standard_normal((1, 3, 20, 12), dtype=np.float32)
    np.testing.assert_allclose(any_size_model.predict(x), reference_logits(x), rtol=1e-4, atol=1e-4)


def test_empty_batch(model):
    err = refusal(model, np.zeros((0, 3, SIZE, SIZE), dtype=np.float32))
    assert "empty batch" in err.message


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_non_float_dtypes_are_refused_with_the_conversion(model, good, dtype):
    err = refusal(model, good.astype(dtype))
    assert f"Expected float32 images. Received dtype {np.dtype(dtype).name}" in err.message
    assert "astype(np.float32)" in err.hint


def test_uint8_hint_spells_out_the_artifacts_normalisation(tmp_path, good):
    from zoo import open_registry
    from zoo.records import Transform, VersionMeta

    registry = open_registry(tmp_path / "store")
    meta = VersionMeta(transform=Transform.for_input_size(SIZE))
    registry.register(tiny_cnn(tmp_path / "m.onnx", size=SIZE), name="tiny", meta=meta)
    err = refusal(registry.load("tiny"), (good * 40 + 128).clip(0, 255).astype(np.uint8))
    assert "0.00392157" in err.hint and "(0.485, 0.456, 0.406)" in err.hint and "(0.229, 0.224, 0.225)" in err.hint


def test_float64_is_cast_with_a_warning_and_same_result(model, good):
    with pytest.warns(UserWarning, match="expects float32 input; received float64") as record:
        logits = model.predict(good.astype(np.float64))
    assert record[0].filename == __file__  # points at the caller's line, not into zoo
    np.testing.assert_array_equal(logits, model.predict(good))


def test_float32_input_gives_no_warning(model, good):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(good)
        model.predict(good[:, :, ::-1, :])  # a non-contiguous view is fine too


@pytest.mark.parametrize("bad,counts", [
    ({(0, 0, 0, 0): np.nan, (0, 1, 2, 3): np.nan}, "2 NaN and 0 Inf value(s), in 1 of 2 sample(s)"),
    ({(0, 0, 0, 0): np.inf, (1, 2, 5, 5): -np.inf, (1, 0, 0, 0): np.nan}, "1 NaN and 2 Inf value(s), in 2 of 2 sample(s)"),
])
def test_non_finite_values_warn_with_the_count(model, good, bad, counts):
    for index, value in bad.items():
        good[index] = value
    with pytest.warns(RuntimeWarning, match=counts.replace("(", r"\(").replace(")", r"\)")):
        logits = model.predict(good)
    clean = [i for i in range(2) if all(k[0] != i for k in bad)]
    assert np.isfinite(logits[clean]).all()  # the clean samples still get valid logits


def test_non_array_input(model):
    err = refusal(model, [[1, 2], [3]])  # ragged: no array can be made of it
    assert "numpy array" in err.message and "list" in err.message
    nested = np.zeros((1, 3, SIZE, SIZE), dtype=np.float32).tolist()
    with pytest.warns(UserWarning, match="float64"):  # a nested list is accepted (as float64, cast)
        assert model.predict(nested).shape == (1, 10)


def test_zoo_run_reports_bad_input_without_traceback(tmp_path, good):
    from zoo import open_registry
    from zoo.cli import main

    store = tmp_path / "store"
    open_registry(store).register(tiny_cnn(tmp_path / "m.onnx", size=SIZE), name="tiny")
    np.save(tmp_path / "nhwc.npy", good.transpose(0, 2, 3, 1))
    result = CliRunner().invoke(main, ["--store", str(store), "run", "tiny", "--input", str(tmp_path / "nhwc.npy")])
    assert result.exit_code == 2, result.output
    assert "looks like NHWC" in result.stderr and "x.transpose(0, 3, 1, 2)" in result.stderr
    assert "Traceback" not in result.stderr
