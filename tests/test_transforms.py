"""zoo.transforms against a direct Pillow + numpy computation of torchvision's eval preset.

torchvision is not a dependency; the expected geometry below is its documented arithmetic
(``_compute_resized_output_size``: the longer side truncated; ``center_crop``: Python's round,
half to even), and the pixels come from Pillow's own resize and plain numpy.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zoo.errors import InvalidInput
from zoo.records import IMAGENET_MEAN, IMAGENET_STD, ModelVersion, Preprocessing
from zoo.transforms import INTERPOLATIONS, Transform, apply_transform, centre_crop, preprocess, resized_size

PIL_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST}


def random_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def by_hand(image: Image.Image, size: tuple[int, int], top: int, left: int, crop: int, interpolation: str,
            mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Resize with Pillow, slice, /255 and normalise in float32: what torchvision's preset does."""
    pixels = np.asarray(image.resize(size, PIL_FILTERS[interpolation]))
    pixels = pixels[top:top + crop, left:left + crop]
    x = pixels.astype(np.float32) / np.float32(255)
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return x.transpose(2, 0, 1)


@pytest.mark.parametrize("width,height,shorter,expected", [
    (500, 375, 256, (341, 256)),   # 256 * 500 / 375 = 341.33 -> 341 (truncated)
    (375, 500, 256, (256, 341)),   # portrait: the width is the shorter side
    (333, 500, 232, (232, 348)),   # ResNet-50 V2 preset: 232 * 500 / 333 = 348.35
    (300, 300, 256, (256, 256)),
    (256, 300, 256, (256, 300)),   # already there: unchanged
])
def test_resized_size_is_torchvisions(width, height, shorter, expected):
    assert resized_size(width, height, shorter) == expected


def test_centre_crop_rounds_half_to_even():
    grid = np.arange(256 * 341).reshape(256, 341, 1)
    crop = centre_crop(grid, 224, 224)
    # top = round(32 / 2) = 16; left = round(117 / 2) = round(58.5) = 58, not 59
    assert crop.shape == (224, 224, 1)
    assert crop[0, 0, 0] == grid[16, 58, 0]


def test_centre_crop_pads_small_images_with_zeros():
    image = np.full((3, 5, 3), 7, np.uint8)
    out = centre_crop(image, 6, 8)
    assert out.shape == (6, 8, 3)
    # torchvision: left pad (8 - 5) // 2 = 1, right 2; top (6 - 3) // 2 = 1, bottom 2
    assert (out[1:4, 1:6] == 7).all()
    assert out[0].sum() == 0 and out[4:].sum() == 0 and out[:, 0].sum() == 0 and out[:, 6:].sum() == 0


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_apply_matches_pillow_and_numpy(interpolation):
    image = random_rgb(500, 375)
    transform = Transform.imagenet(crop=224, resize=256, interpolation=interpolation)
    batch = apply_transform(transform, [image])
    expected = by_hand(image, (341, 256), top=16, left=58, crop=224, interpolation=interpolation)
    assert batch.dtype == np.float32 and batch.shape == (1, 3, 224, 224) and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch[0], expected)


def test_v2_preset_resizes_to_232():
    image = random_rgb(333, 500, seed=1)
    batch = apply_transform(Transform.imagenet(resize=232), [image])
    # (232, 348) resized; top = round((348 - 224) / 2) = 62, left = round(8 / 2) = 4
    np.testing.assert_array_equal(batch[0], by_hand(image, (232, 348), top=62, left=4, crop=224, interpolation="bilinear"))


def test_image_already_at_size_is_not_resampled():
    image = random_rgb(256, 300, seed=2)
    batch = apply_transform(Transform.imagenet(), [image])
    untouched = apply_transform(Transform(resize=None, crop=(224, 224)), [image])
    np.testing.assert_array_equal(batch, untouched)


def test_bgr_custom_mean_std_and_scale():
    image = random_rgb(40, 40, seed=3)
    transform = Transform(resize=None, crop=(32, 32), channels="bgr", mean=(0, 0, 0), std=(1, 1, 1), scale=1.0)
    out = apply_transform(transform, [image])[0]
    expected = np.asarray(image)[4:36, 4:36, ::-1].astype(np.float32).transpose(2, 0, 1)
    np.testing.assert_array_equal(out, expected)
    assert transform.channels == "BGR"


def test_batch_of_several_images_keeps_order():
    images = [random_rgb(64, 48, seed=s) for s in range(3)]
    transform = Transform(resize=40, crop=(32, 32))
    batch = apply_transform(transform, images)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(batch[i], apply_transform(transform, [image])[0])


def test_preprocess_decodes_paths_and_arrays_alike(tmp_path):
    image = random_rgb(50, 40, seed=4)
    path = tmp_path / "x.png"
    image.save(path)
    transform = Transform(resize=36, crop=(32, 32))
    from_path = preprocess(path, transform)
    from_array = preprocess(np.asarray(image), transform)
    from_list = preprocess([str(path), image], transform)
    np.testing.assert_array_equal(from_path, from_array)
    assert from_list.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(from_list[0], from_list[1])


def test_different_sizes_without_crop_are_refused():
    with pytest.raises(InvalidInput, match="one size") as info:
        apply_transform(Transform(resize=32, crop=None), [random_rgb(40, 32), random_rgb(64, 32)])
    assert "crop" in info.value.hint


def test_no_images_and_undecoded_modes_are_refused():
    with pytest.raises(InvalidInput, match="at least one image"):
        apply_transform(Transform(), [])
    with pytest.raises(InvalidInput, match="mode 'L'"):
        apply_transform(Transform(), [Image.new("L", (8, 8))])


def test_round_trips_through_json():
    transform = Transform(resize=232, crop=(224, 200), interpolation="BICUBIC", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    again = Transform.from_dict(json.loads(json.dumps(transform.to_dict())))
    assert again == transform
    assert transform.interpolation == "bicubic"
    assert Transform(crop=224).crop == (224, 224)


def test_presets_match_torchvisions_image_classification():
    v1, v2 = Transform.imagenet(), Transform.imagenet(resize=232)
    assert (v1.resize, v1.crop, v1.interpolation, v1.mean, v1.std, v1.channels) == (
        256, (224, 224), "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "RGB")
    assert v2.resize == 232
    assert v1.describe() == "resize 256 (bilinear), crop 224x224, RGB, /255, mean 0.485,0.456,0.406, std 0.229,0.224,0.225"


OLD_RECORD = {"name": "m", "version": 1, "sha256": "0" * 64, "size_bytes": 1, "created_at": "2026-01-01T00:00:00Z",
              "signature": {"inputs": [], "outputs": []}, "opset": 18, "onnx_params": 0, "macs": None,
              "preprocessing": {"layout": "NCHW", "color": "RGB", "scale": 1 / 255, "mean": [0.1, 0.2, 0.3],
                                "std": [0.4, 0.5, 0.6], "input_size": [32, 32]}}


def test_one_record_of_how_to_feed_a_model():
    """The old ``preprocessing`` shape reads as the transform it implies; a recorded transform wins over it."""
    version = ModelVersion.from_dict(OLD_RECORD)
    assert "preprocessing" not in version.to_dict() and version.input_size == (32, 32)
    assert version.transform == Transform(resize=36, crop=(32, 32), mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    recorded = Transform(resize=40, crop=(32, 32), interpolation="bicubic")
    assert ModelVersion.from_dict({**OLD_RECORD, "transform": recorded.to_dict()}).transform == recorded
    assert Transform.for_input_size(224) == Transform.imagenet()
    with pytest.warns(DeprecationWarning, match="Transform"):
        assert Preprocessing(input_size=(224, 224)) == Transform.imagenet()


@pytest.mark.parametrize("kwargs,fragment", [
    ({"resize": 0}, "resize size"),
    ({"resize": True}, "resize size"),
    ({"resize": 2.5}, "resize size"),
    ({"crop": (0, 4)}, "crop side"),
    ({"crop": (1, 2, 3)}, "crop"),
    ({"interpolation": "lanczos"}, "interpolation"),
    ({"mean": (0.5, 0.5)}, "--mean"),
    ({"mean": (0.5, float("nan"), 0.5)}, "--mean"),
    ({"std": (0.2, 0.0, 0.2)}, "--std"),
    ({"channels": "RGBA"}, "channel order"),
    ({"scale": -1.0}, "scale"),
])
def test_invalid_transforms_are_refused(kwargs, fragment):
    with pytest.raises(InvalidInput, match=fragment) as info:
        Transform(**kwargs)
    assert info.value.message.startswith("Expected") and "Received" in info.value.message


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(InvalidInput, match="antialias"):
        Transform.from_dict({"resize": 256, "antialias": False})


@pytest.mark.parametrize("kwargs, fragment", [
    ({"scale": 1e308}, "scale"), ({"scale": 2.0}, "scale"), ({"resize": 1_000_000_000}, "resize size"),
    ({"crop": (16385, 16)}, "crop side"), ({"std": (0.2, 1e-300, 0.2)}, "--std"),
])
def test_transform_scale_and_sizes_are_validated_when_recorded(kwargs, fragment, tmp_path):
    """A scale of 1e308 once gave null logits with exit 0 and --resize 1e9 was refused only at run: every field
    is bounded when the transform is made, so `zoo register --resize` refuses it (exit 2) before anything is stored."""
    from click.testing import CliRunner

    from conftest import make_tiny_onnx
    from zoo.cli import main

    with pytest.raises(InvalidInput, match=fragment):
        Transform(**kwargs)
    if "resize" in kwargs:
        out = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "register", str(make_tiny_onnx(tmp_path / "m.onnx")),
                                        "--name", "m", "--resize", str(kwargs["resize"])])
        assert out.exit_code == 2 and "resize" in out.output, out.output
        assert not (tmp_path / "s").exists()
