"""What decoding refuses (cnaps_demo.image.decode): size limits, other formats, damaged files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_samples import LIMIT, RESAVE, encode, gradient_rgb, raw_png
from PIL import Image, PngImagePlugin

from cnaps_demo.errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    InvalidParameterError,
    UnsupportedFormatError,
)
from cnaps_demo.image import load_image
from cnaps_demo.settings import get_settings

# --- size limits ------------------------------------------------------------------


def test_huge_png_header_is_refused_without_decoding(monkeypatch):
    data = raw_png(100_000, 100_000)  # a valid IHDR and no pixel data at all
    assert len(data) < 100

    def boom(self):  # decoding must never be attempted
        raise AssertionError("load() was called")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", boom)
    monkeypatch.delenv("CNAPS_MAX_PIXELS", raising=False)
    default_limit = get_settings().max_input_pixels  # what callers pass by default
    assert default_limit == LIMIT == 4096 * 4096
    with pytest.raises(ImageTooLargeError) as caught:
        load_image(data, max_pixels=default_limit)
    message = str(caught.value)
    assert "100000 x 100000" in message
    assert "CNAPS_MAX_PIXELS" in message
    assert f"{4096 * 4096:,}" in message  # the default limit is named


def test_pixel_limit_is_checked_before_decoding(monkeypatch):
    # 5000 x 5000 is below Pillow's own guard, so only our check can refuse it; the
    # file has no pixel data, so reaching the decoder would give a different error.
    data = raw_png(5000, 5000)
    calls = []
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: calls.append(1))
    with pytest.raises(ImageTooLargeError, match="5000 x 5000 = 25,000,000 pixels"):
        load_image(data, max_pixels=1_000_000)
    assert calls == []


def test_pixel_limit_argument_and_env_var(monkeypatch):
    # The caller reads CNAPS_MAX_PIXELS (get_settings) and passes it; load_image reads nothing.
    data = encode(gradient_rgb(16, 16))  # 256 pixels
    monkeypatch.setenv("CNAPS_MAX_PIXELS", "255")
    with pytest.raises(ImageTooLargeError, match="limit of 255 pixels"):
        load_image(data, max_pixels=get_settings().max_input_pixels)
    monkeypatch.setenv("CNAPS_MAX_PIXELS", "256")
    assert load_image(data, max_pixels=get_settings().max_input_pixels).image.size == (16, 16)
    monkeypatch.delenv("CNAPS_MAX_PIXELS")
    with pytest.raises(ImageTooLargeError):
        load_image(data, max_pixels=100)
    monkeypatch.setenv("CNAPS_MAX_PIXELS", "10")
    assert load_image(data, max_pixels=1000).image.size == (16, 16)  # argument wins
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((16, 16, 3), np.uint8), max_pixels=get_settings().max_input_pixels)


def test_pixel_limit_is_required_and_checked():
    data = encode(gradient_rgb(16, 16))
    with pytest.raises(TypeError):
        load_image(data)  # no default: the caller decides the limit
    with pytest.raises(TypeError, match="max_pixels"):
        load_image(data, max_pixels=None)
    with pytest.raises(InvalidParameterError, match="max_pixels=0"):
        load_image(data, max_pixels=0)


def test_limit_setting_is_named_in_the_hint():
    with pytest.raises(ImageTooLargeError) as caught:
        load_image(encode(gradient_rgb(16, 16)), max_pixels=100, limit_setting="CNAPS_UI_MAX_PIXELS")
    assert "CNAPS_UI_MAX_PIXELS" in str(caught.value) and "Shrink it to about" in str(caught.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_decompression_bomb_warning_and_error_become_too_large(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    warn_size = encode(gradient_rgb(40, 40))  # 1600: Pillow only warns
    with pytest.raises(ImageTooLargeError, match="Pillow"):
        load_image(warn_size, max_pixels=10**6)
    error_size = encode(gradient_rgb(50, 50))  # 2500 > 2 * 1000: Pillow raises in open()
    with pytest.raises(ImageTooLargeError, match="50 x 50"):
        load_image(error_size, max_pixels=10**6)
    jpeg = encode(gradient_rgb(50, 50), "JPEG")  # no header peek for JPEG: still typed
    with pytest.raises(ImageTooLargeError):
        load_image(jpeg, max_pixels=10**6)


@pytest.mark.parametrize("size", [(3, 3), (100, 2), (1, 1)])
def test_too_small_images(size):
    with pytest.raises(ImageTooSmallError, match=r"at least 4 x 4"):
        load_image(encode(Image.new("RGB", size)), max_pixels=LIMIT)


def test_minimum_size_is_accepted():
    assert load_image(encode(Image.new("RGB", (4, 4))), max_pixels=LIMIT).image.size == (4, 4)


# --- refused and damaged inputs ---------------------------------------------------


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty") as caught:
        load_image(empty, max_pixels=LIMIT)
    assert "empty.png" in str(caught.value)
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(b"", max_pixels=LIMIT)


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "cat.png"
    with pytest.raises(InvalidImageError) as caught:
        load_image(missing, max_pixels=LIMIT)
    assert str(missing) in str(caught.value)
    with pytest.raises(InvalidImageError, match="not a file"):
        load_image(tmp_path, max_pixels=LIMIT)


def test_truncated_png_is_invalid_not_partially_loaded():
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy))
    with pytest.raises(InvalidImageError, match="damaged or incomplete") as caught:
        load_image(data[: len(data) // 2], max_pixels=LIMIT)
    assert type(caught.value) is InvalidImageError


def test_damaged_png_header():
    data = encode(gradient_rgb())
    broken = data[:20]  # signature and part of IHDR
    with pytest.raises(InvalidImageError, match="starts like a PNG image") as caught:
        load_image(broken, max_pixels=LIMIT)
    assert type(caught.value) is InvalidImageError


def test_truncated_jpeg_is_invalid():
    noisy = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy), "JPEG")
    with pytest.raises(InvalidImageError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_html_renamed_png_is_refused(tmp_path):
    page = tmp_path / "download.png"
    page.write_text("\n  <!DOCTYPE html><html><body>Not found</body></html>", encoding="utf-8")
    with pytest.raises(UnsupportedFormatError) as caught:
        load_image(page, max_pixels=LIMIT)
    message = str(caught.value)
    assert "HTML" in message and "download.png" in message and RESAVE in message


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_other_formats_are_refused_by_name(fmt, name):
    data = encode(gradient_rgb(), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself could read it
    with pytest.raises(UnsupportedFormatError) as caught:
        load_image(data, max_pixels=LIMIT)
    message = str(caught.value)
    assert name in message and "only PNG, JPEG and WebP" in message and RESAVE in message


def test_pil_image_of_other_format_is_refused():
    gif = Image.open(io.BytesIO(encode(gradient_rgb(), "GIF")))
    with pytest.raises(UnsupportedFormatError, match="GIF"):
        load_image(gif, max_pixels=LIMIT)


def test_random_bytes_are_invalid():
    noise = bytes(np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8))
    with pytest.raises(InvalidImageError) as caught:
        load_image(b"x" + noise, max_pixels=LIMIT)
    assert type(caught.value) is InvalidImageError
    assert RESAVE in str(caught.value)




def test_corrupted_files_only_raise_invalid_image_error():
    rng = np.random.default_rng(3)
    source = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    for fmt in ("PNG", "JPEG", "WEBP"):
        data = encode(source, fmt)
        for _ in range(150):
            damaged = bytearray(data)
            for _ in range(int(rng.integers(1, 5))):
                damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
            if rng.random() < 0.3:
                damaged = damaged[: int(rng.integers(1, len(damaged)))]
            try:
                loaded = load_image(bytes(damaged), max_pixels=LIMIT)
            except InvalidImageError:
                continue
            assert loaded.image.mode in ("RGB", "RGBA")  # a harmless flip may still decode
