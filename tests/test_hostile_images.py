"""Hostile and odd images: every input is generated here with Pillow or numpy (no downloaded data).

Each refusal is a ZooError with the documented exit code, a message that reads "Expected ...
Received: ..." and names the input, and a hint; each odd mode decodes to the documented RGB pixels.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from zoo.errors import InvalidInput, NotFound, ZooError
from zoo.images import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, load_image, load_images, pixel_limit


def refused(source, error=InvalidInput, **kwargs) -> ZooError:
    with pytest.raises(error) as info:
        load_image(source, **kwargs)
    exc = info.value
    assert exc.message.startswith("Expected") and "Received:" in exc.message, exc.message
    assert exc.hint, exc.message
    return exc


def encoded(image: Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def noise(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height RGB pixels, with almost no pixel data behind it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ files that are not there or not images

def test_missing_file_is_not_found_exit_3(tmp_path):
    exc = refused(tmp_path / "nope.jpg", NotFound)
    assert exc.exit_code == 3 and "nope.jpg" in exc.message


def test_dangling_symlink_is_not_found(tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "gone.png")
    assert refused(link, NotFound).exit_code == 3


def test_folder_is_refused(tmp_path):
    assert "folder" in refused(tmp_path).message


@pytest.mark.parametrize("content", [b"", b"hello, world\n", b"\x00" * 1024, b"PK\x03\x04" + b"\x00" * 60,
                                     b"\x89PNG\r\n\x1a\n" + b"garbage" * 10], ids=["empty", "text", "zeros", "zip", "png-magic"])
def test_non_image_files_are_refused(tmp_path, content):
    path = tmp_path / "file.jpg"
    path.write_bytes(content)
    exc = refused(path)
    assert exc.exit_code == 2 and str(path) in exc.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_truncated_files_are_refused(tmp_path, fmt):
    data = encoded(noise(), fmt)
    assert load_image(data).size == (64, 48)  # whole: decodes
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert str(path) in refused(path).message


def test_formats_outside_the_allowed_list_are_refused():
    eps = encoded(noise(8, 8), "EPS")  # Pillow would run Ghostscript to decode it
    assert "not an image in a format zoo decodes" in refused(eps).message
    assert refused(encoded(noise(16, 16), "ICO")).exit_code == 2


# ------------------------------------------------------------------ decompression bombs

def test_header_over_the_limit_is_refused_before_decoding():
    exc = refused(png_declaring(10_000, 10_000))  # 100 MP declared in 70 bytes
    assert f"{DEFAULT_MAX_PIXELS:,}" in exc.message and "10000 x 10000" in exc.message
    assert MAX_PIXELS_ENV in exc.hint and "max_pixels" in exc.hint


def test_header_over_twice_pillows_limit_is_refused_cleanly():
    exc = refused(png_declaring(100_000, 100_000))  # Pillow's own DecompressionBombError
    assert f"{DEFAULT_MAX_PIXELS:,}" in exc.message and MAX_PIXELS_ENV in exc.hint


def test_limit_can_be_lowered_and_raised(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    noise(64, 48).save(path)
    assert "3,072 pixels" in refused(path, max_pixels=3000).message
    assert load_image(path, max_pixels=3072).size == (64, 48)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    refused(path)
    assert load_image(path, max_pixels=10_000).size == (64, 48)  # the argument wins over the environment
    monkeypatch.setenv(MAX_PIXELS_ENV, "200_000_000")
    assert pixel_limit() == 200_000_000


@pytest.mark.parametrize("value", ["many", "-5", "0", "1e9"])
def test_bad_limit_setting_is_refused(monkeypatch, value):
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    with pytest.raises(InvalidInput, match=MAX_PIXELS_ENV):
        pixel_limit()


def test_compressed_text_chunk_bomb_is_refused():
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * 20_000_000, zip=True)  # 20 MB of text in a ~20 kB file
    data = encoded(Image.new("RGB", (4, 4)), "PNG", pnginfo=info)
    assert len(data) < 100_000
    assert "too large" in refused(data).message


# ------------------------------------------------------------------ odd modes: decoded to documented RGB

def rgb(source) -> np.ndarray:
    image = load_image(source)
    assert image.mode == "RGB"
    return np.asarray(image)


def test_gray_and_bilevel_replicate_to_three_channels():
    gray = np.arange(0, 256, 16, dtype=np.uint8).reshape(4, 4)
    np.testing.assert_array_equal(rgb(Image.fromarray(gray, "L")), np.repeat(gray[..., None], 3, axis=2))
    bits = rgb(Image.fromarray(gray > 100).convert("1"))
    assert set(np.unique(bits)) == {0, 255}


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_alpha_is_composited_on_white(mode):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (200, 200, 200, 0)      # fully transparent: white, not its hidden colour
    rgba[0, 1] = (200, 200, 200, 255)    # opaque: itself
    rgba[0, 2] = (0, 0, 0, 128)          # half: 255 * (1 - 128/255) = 127
    image = Image.fromarray(rgba, "RGBA").convert(mode) if mode != "PA" else Image.fromarray(rgba, "RGBA").convert("P").convert("PA")
    out = rgb(image).astype(int)
    assert (out[0, 0] == 255).all()
    np.testing.assert_allclose(out[0, 1], [200, 200, 200], atol=1 if mode != "PA" else 16)
    np.testing.assert_allclose(out[0, 2], [127, 127, 127], atol=1 if mode != "PA" else 16)


def test_palette_with_and_without_transparency():
    base = np.zeros((2, 2, 3), np.uint8)
    base[0, 0] = (255, 0, 0)
    palette = Image.fromarray(base, "RGB").convert("P")
    np.testing.assert_array_equal(rgb(palette), base)
    index = palette.getpixel((1, 1))
    data = encoded(palette, "PNG", transparency=index)  # black becomes transparent: white on decode
    out = rgb(data)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)


def test_cmyk_converts():
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))
    cmyk.putpixel((1, 0), (0, 0, 0, 255))
    out = rgb(encoded(cmyk, "JPEG", quality=100))
    assert (out[0, 0] > 245).all() and (out[0, 1] < 10).all()


@pytest.mark.parametrize("via", ["image", "png-file", "tiff-file"])
def test_sixteen_bit_scales_to_eight(tmp_path, via):
    values = np.array([[0, 257, 257 * 100, 128 * 257, 65535, 65535 - 128]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    if via != "image":
        path = tmp_path / ("x.png" if via == "png-file" else "x.tif")
        image.save(path)
        image = path  # type: ignore[assignment]
    out = rgb(image)
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 100, 128, 255, 255])  # round(v * 255 / 65535), not clipped
    assert (out[..., 0] == out[..., 2]).all()


def test_thirty_two_bit_integers_are_read_as_sixteen_bit_or_refused():
    ok = np.array([[0, 65535]], dtype=np.int32)
    np.testing.assert_array_equal(rgb(Image.fromarray(ok, "I"))[0, :, 0], [0, 255])
    for bad in ([[0, 70_000]], [[-1, 5]]):
        exc = refused(Image.fromarray(np.array(bad, dtype=np.int32), "I"))
        assert "0..65535" in exc.message


def test_float_images_in_unit_range_or_refused():
    ok = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(rgb(Image.fromarray(ok, "F"))[0, :, 0], [0, 128, 255])
    assert "[0, 1]" in refused(Image.fromarray(np.array([[0.0, 2.0]], np.float32), "F")).message
    assert "NaN" in refused(Image.fromarray(np.array([[0.0, np.nan]], np.float32), "F")).message


@pytest.mark.parametrize("mode", ["HSV", "LAB"])
def test_unsupported_modes_are_named(mode):
    assert repr(mode) in refused(Image.new(mode, (4, 4))).message


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert tuple(rgb(data)[0, 0]) == (255, 0, 0)


def test_exif_orientation_is_applied():
    image = noise(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert load_image(encoded(image, "JPEG", exif=exif.tobytes())).size == (20, 40)


# ------------------------------------------------------------------ arrays and other objects

@pytest.mark.parametrize("array,fragment,hint", [
    (np.zeros((8, 8, 3), np.float32), "uint8", "predict"),
    (np.zeros((8, 8, 3), np.uint16), "uint8", "257"),
    (np.zeros((8, 8, 3), np.int64), "uint8", "astype"),
    (np.zeros((8, 8, 3), bool), "uint8", "astype"),
    (np.zeros((2, 8, 8, 3), np.uint8), "not a batch", "list"),
    (np.zeros((3, 8, 8), np.uint8), "channels last", "transpose"),
    (np.zeros((8, 8, 2), np.uint8), "HxW or HxWxC", "RGBA"),
    (np.zeros((8,), np.uint8), "HxW or HxWxC", "RGB"),
    (np.zeros((0, 8, 3), np.uint8), "non-empty", "HxW"),
], ids=["float", "uint16", "int64", "bool", "batch", "chw", "two-channels", "1d", "empty"])
def test_bad_arrays_are_refused(array, fragment, hint):
    exc = refused(array)
    assert fragment in exc.message and str(tuple(array.shape)) in exc.message
    assert hint in exc.hint


def test_good_arrays_decode():
    pixels = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rgb(pixels), pixels)
    np.testing.assert_array_equal(rgb(pixels[::-1, ::2]), pixels[::-1, ::2])  # not contiguous
    np.testing.assert_array_equal(rgb(pixels[..., :1])[..., 2], pixels[..., 0])
    rgba = np.dstack([pixels, np.zeros((6, 5), np.uint8)])
    assert (rgb(rgba) == 255).all()


@pytest.mark.parametrize("thing", [42, None, {"path": "x.jpg"}, 3.5])
def test_other_objects_are_refused(thing):
    refused(thing)


def test_a_bad_item_in_a_list_is_named_by_index(tmp_path):
    good = tmp_path / "good.png"
    noise(8, 8).save(good)
    with pytest.raises(InvalidInput, match=r"image #1 \(an array\)"):
        load_images([good, np.zeros((8, 8), np.float64)])
    with pytest.raises(NotFound, match="missing.png"):
        load_images([str(good), Path(tmp_path / "missing.png")])
    assert len(load_images((good, str(good), good.read_bytes()))) == 3


def test_extreme_aspect_ratio_cannot_blow_up_the_resize():
    from zoo.transforms import Transform, apply_transform

    strip = load_image(np.zeros((1, 20_000, 3), np.uint8))  # 20,000 pixels: within the limit
    with pytest.raises(InvalidInput, match="aspect ratio|5120000 x 256") as info:
        apply_transform(Transform.imagenet(), [strip])
    assert "5120000 x 256" in info.value.message and "aspect ratio" in info.value.hint
