"""Tests for the image contract (cnaps_demo.imaging). Every image is generated here."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin, features

from cnaps_demo.errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    InvalidParameterError,
    UnsupportedFormatError,
)
from cnaps_demo.imaging import (
    BLEED_ALPHA,
    SUPPORTED_FORMATS,
    LoadedImage,
    encode_png,
    from_float_array,
    load_image,
    merge_alpha,
    read_png_metadata,
    save_png,
    split_alpha,
    to_float_array,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RESAVE = "Save it as PNG, JPEG or WebP and try again."


# --- helpers -----------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    rows: bytes | None = None,
    extra: tuple[bytes, ...] = (),
) -> bytes:
    """A PNG written by hand (valid CRCs), for headers Pillow would never write."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    data = PNG_SIGNATURE + chunk(b"IHDR", ihdr) + b"".join(extra)
    if rows is not None:
        data += chunk(b"IDAT", zlib.compress(rows))
    return data + chunk(b"IEND", b"")


def chunk_types(png: bytes) -> list[bytes]:
    assert png.startswith(PNG_SIGNATURE)
    types, pos = [], 8
    while pos < len(png):
        length = struct.unpack(">I", png[pos : pos + 4])[0]
        types.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def gradient_rgb(width: int = 16, height: int = 8) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.dstack([x, y, 255 - x]))


# --- modes -------------------------------------------------------------------


def test_supported_formats_constant():
    assert SUPPORTED_FORMATS == ("PNG", "JPEG", "WEBP")


def test_rgb_png_round_trips_exactly():
    source = gradient_rgb()
    loaded = load_image(encode(source))
    assert isinstance(loaded, LoadedImage)
    assert (loaded.format, loaded.original_mode, loaded.image.mode) == ("PNG", "RGB", "RGB")
    assert loaded.notices == ()
    assert np.array_equal(pixels(loaded.image), pixels(source))


def test_rgba_png_keeps_alpha_and_colours():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = np.arange(8, dtype=np.uint8)[None, :] * 30
    rgba[..., 3] = np.arange(8, dtype=np.uint8)[:, None] * 36
    loaded = load_image(encode(Image.fromarray(rgba)))
    assert loaded.image.mode == "RGBA"
    assert np.array_equal(pixels(loaded.image), rgba.astype(int))


def test_fully_opaque_alpha_is_dropped():
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[..., 0] = 17
    loaded = load_image(encode(Image.fromarray(rgba)))
    assert loaded.image.mode == "RGB"
    assert loaded.original_mode == "RGBA"
    assert (pixels(loaded.image)[..., 0] == 17).all()


def test_mode_1_becomes_black_and_white_rgb():
    bits = Image.new("1", (8, 8), 0)
    bits.putpixel((2, 3), 1)
    loaded = load_image(encode(bits))
    assert loaded.original_mode == "1"
    out = pixels(loaded.image)
    assert out.shape == (8, 8, 3)
    assert (out[3, 2] == 255).all()
    assert out.sum() == 255 * 3


def test_mode_l_becomes_grey_rgb():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    loaded = load_image(encode(Image.fromarray(grey)))
    assert (loaded.original_mode, loaded.image.mode) == ("L", "RGB")
    out = pixels(loaded.image)
    for channel in range(3):
        assert np.array_equal(out[..., channel], grey.astype(int))


def test_mode_la_becomes_rgba():
    la = np.zeros((8, 8, 2), np.uint8)
    la[..., 0] = 90
    la[..., 1] = 0
    la[4:, :, 1] = 255
    loaded = load_image(
        encode(
            Image.fromarray(
                la,
            )
        )
    )
    assert (loaded.original_mode, loaded.image.mode) == ("LA", "RGBA")
    out = pixels(loaded.image)
    assert (out[4:, :, :3] == 90).all()
    assert (out[:4, :, 3] == 0).all() and (out[4:, :, 3] == 255).all()


def _palette_image() -> Image.Image:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0] + [0] * (256 * 3 - 9))
    for x in range(8):
        image.putpixel((x, 0), 1)
        image.putpixel((x, 7), 2)
    return image


def test_mode_p_without_transparency_becomes_rgb():
    loaded = load_image(encode(_palette_image()))
    assert (loaded.original_mode, loaded.image.mode) == ("P", "RGB")
    out = pixels(loaded.image)
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[3, 3].tolist() == [10, 20, 30]
    assert out[7, 5].tolist() == [0, 255, 0]


def test_mode_p_with_transparent_index_gets_alpha():
    data = encode(_palette_image(), transparency=0)  # index 0 (the background) transparent
    loaded = load_image(data)
    assert (loaded.original_mode, loaded.image.mode) == ("P", "RGBA")
    out = pixels(loaded.image)
    assert out[3, 3, 3] == 0
    assert out[0, 0].tolist() == [200, 100, 50, 255]
    assert out[7, 0].tolist() == [0, 255, 0, 255]


def test_mode_p_with_per_index_alpha_table():
    data = encode(_palette_image(), transparency=bytes([255, 128, 0]))
    out = pixels(load_image(data).image)
    assert out[3, 3, 3] == 255
    assert out[0, 0, 3] == 128
    assert out[7, 0, 3] == 0


def test_mode_pa_becomes_rgba():
    image = _palette_image().convert("PA")
    alpha = Image.new("L", (8, 8), 255)
    alpha.putpixel((3, 3), 40)
    image.putalpha(alpha)
    assert image.mode == "PA"
    loaded = load_image(image)
    assert (loaded.original_mode, loaded.image.mode) == ("PA", "RGBA")
    out = pixels(loaded.image)
    assert out[3, 3].tolist() == [10, 20, 30, 40]
    assert out[0, 0].tolist() == [200, 100, 50, 255]


def test_rgb_colour_key_transparency_gets_alpha():
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    image.putpixel((0, 0), (250, 0, 0))
    loaded = load_image(encode(image, transparency=(1, 2, 3)))
    assert loaded.image.mode == "RGBA"
    out = pixels(loaded.image)
    assert out[0, 0].tolist() == [250, 0, 0, 255]
    assert out[5, 5, 3] == 0


def test_grey_colour_key_transparency_gets_alpha():
    image = Image.new("L", (8, 8), 7)
    image.putpixel((1, 1), 200)
    out = pixels(load_image(encode(image, transparency=7)).image)
    assert out[1, 1].tolist() == [200, 200, 200, 255]
    assert out[4, 4, 3] == 0


def _gradient16() -> np.ndarray:
    return (np.arange(256, dtype=np.uint32).reshape(1, 256).repeat(4, 0) * 257).astype(np.uint16)


def test_16_bit_grey_png_scales_down_not_clips():
    values = _gradient16()
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    loaded = load_image(encode(image))
    assert loaded.original_mode == "I;16"
    out = pixels(loaded.image)[..., 0]
    # value / 257 exactly; clipping would make everything above 255/65535 white
    assert np.array_equal(out[0], np.arange(256))
    mid = Image.fromarray(np.full((8, 8), 32768, np.uint16))
    assert pixels(load_image(encode(mid)).image)[0, 0].tolist() == [128, 128, 128]


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16_bit_in_memory_modes(dtype):
    image = Image.fromarray(_gradient16().astype(dtype))
    assert image.mode in ("I;16", "I;16B")
    out = pixels(load_image(image).image)[..., 0]
    assert np.array_equal(out[0], np.arange(256))


def test_mode_i_is_treated_as_16_bit():
    values = np.array([[0, 257 * 128, 65535, 70000]] * 4, dtype=np.int32)
    image = Image.fromarray(values)
    assert image.mode == "I"
    out = pixels(load_image(image).image)[0, :, 0]
    assert out.tolist() == [0, 128, 255, 255]


def test_16_bit_rgb_png_written_by_hand():
    row = b"\x00" + struct.pack(">HHH", 0x8000, 0xFFFF, 0x0000) * 4
    data = raw_png(4, 4, bit_depth=16, colour_type=2, rows=row * 4)
    out = pixels(load_image(data).image)
    assert out[2, 2].tolist() == [128, 255, 0]


def test_16_bit_grey_png_with_transparency_key():
    rows = b"".join(b"\x00" + struct.pack(">HHHH", 0x1234, 0x8000, 0x8000, 0xFFFF) for _ in range(4))
    trns = chunk(b"tRNS", struct.pack(">H", 0x1234))
    loaded = load_image(raw_png(4, 4, bit_depth=16, colour_type=0, rows=rows, extra=(trns,)))
    assert loaded.image.mode == "RGBA"
    out = pixels(loaded.image)
    assert out[0, 0, 3] == 0
    assert out[0, 1].tolist() == [128, 128, 128, 255]
    assert out[0, 3].tolist() == [255, 255, 255, 255]


def test_mode_f_is_rounded_and_clipped():
    values = np.array([[-5.0, 0.4, 127.6, 300.0]] * 4, dtype=np.float32)
    out = pixels(load_image(Image.fromarray(values)).image)[0, :, 0]
    assert out.tolist() == [0, 0, 128, 255]


def test_premultiplied_modes_are_unpremultiplied():
    rgba = Image.new("RGBa", (4, 4), (64, 32, 0, 128))
    out = pixels(load_image(rgba).image)
    assert out[0, 0, 3] == 128
    assert abs(out[0, 0, 0] - 127) <= 1 and abs(out[0, 0, 1] - 64) <= 1
    la = Image.new("La", (4, 4), (64, 128))
    out = pixels(load_image(la).image)
    assert out[0, 0].tolist() == [128, 128, 128, 128]


def test_cmyk_jpeg_becomes_rgb_with_notice():
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan ink
    loaded = load_image(encode(cmyk, "JPEG", quality=95))
    assert (loaded.format, loaded.original_mode, loaded.image.mode) == ("JPEG", "CMYK", "RGB")
    r, g, b = pixels(loaded.image)[8, 8]
    assert r < 20 and g > 235 and b > 235
    assert any("CMYK" in notice for notice in loaded.notices)


def test_webp_and_jpeg_sources_report_their_format():
    image = gradient_rgb()
    assert load_image(encode(image, "JPEG")).format == "JPEG"
    webp = load_image(encode(image, "WEBP", lossless=True))
    assert webp.format == "WEBP"
    assert np.array_equal(pixels(webp.image), pixels(image))


# --- EXIF orientation ----------------------------------------------------------


def _two_colour(width: int = 8, height: int = 4) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


def _with_orientation(orientation: int, fmt: str = "PNG") -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(_two_colour(), fmt, exif=exif.tobytes())


def test_exif_orientation_6_rotates_clockwise():
    loaded = load_image(_with_orientation(6))
    assert loaded.image.size == (4, 8)
    out = pixels(loaded.image)
    assert out[0, 0].tolist() == [255, 0, 0]  # the left (red) half is now on top
    assert out[7, 0].tolist() == [0, 0, 255]


def test_exif_orientation_3_and_2():
    out = pixels(load_image(_with_orientation(3)).image)
    assert out[0, 0].tolist() == [0, 0, 255] and out[0, 7].tolist() == [255, 0, 0]
    out = pixels(load_image(_with_orientation(2)).image)
    assert out[0, 0].tolist() == [0, 0, 255] and out[3, 7].tolist() == [255, 0, 0]


def test_exif_orientation_in_jpeg():
    loaded = load_image(_with_orientation(8, "JPEG"))
    assert loaded.image.size == (4, 8)
    r, _, b = pixels(loaded.image)[7, 1]  # rotated counter-clockwise: red at the bottom
    assert r > 200 and b < 60


# --- sources -------------------------------------------------------------------


def test_all_source_kinds_give_the_same_pixels(tmp_path):
    source = gradient_rgb()
    data = encode(source)
    path = tmp_path / "in.png"
    path.write_bytes(data)

    class Pipe(io.RawIOBase):  # a stream that cannot seek
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk_ = self._inner.read(len(buffer))
            buffer[: len(chunk_)] = chunk_
            return len(chunk_)

    offset = io.BytesIO(data)
    offset.seek(10)  # a file object not at position 0 still loads from the start
    sources = [
        data,
        bytearray(data),
        memoryview(data),
        str(path),
        path,
        io.BytesIO(data),
        offset,
        Pipe(data),
        Image.open(io.BytesIO(data)),
        source,
        np.asarray(source),
    ]
    with open(path, "rb") as handle:
        sources.append(handle)
        for item in sources:
            loaded = load_image(item)
            assert np.array_equal(pixels(loaded.image), pixels(source)), type(item)
        assert not handle.closed  # the caller's file is left open


def test_loaded_image_is_detached_and_has_no_metadata():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    source = gradient_rgb()
    loaded = load_image(encode(source, "JPEG", exif=exif.tobytes()))
    assert loaded.image.info == {}
    assert not loaded.image.getexif()
    in_memory = gradient_rgb()
    in_memory.info["exif"] = exif.tobytes()
    result = load_image(in_memory).image
    assert result is not in_memory
    result.putpixel((0, 0), (1, 2, 3))
    assert in_memory.getpixel((0, 0)) != (1, 2, 3)
    assert "exif" in in_memory.info  # the caller's object is not modified


def test_numpy_arrays():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    loaded = load_image(grey)
    assert (loaded.format, loaded.original_mode, loaded.image.mode) == ("PNG", "L", "RGB")
    assert np.array_equal(pixels(loaded.image)[..., 1], grey.astype(int))

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 10
    assert load_image(rgba).image.mode == "RGBA"
    rgba[..., 3] = 255
    assert load_image(rgba).image.mode == "RGB"

    for dtype in ("<u2", ">u2"):
        sixteen = np.full((8, 8, 3), 32768, dtype)
        sixteen[0, 0] = [0, 257, 65535]
        loaded = load_image(sixteen)
        assert loaded.original_mode == "RGB;16"
        assert (pixels(loaded.image)[1:] == 128).all()
        assert pixels(loaded.image)[0, 0].tolist() == [0, 1, 255]

    floats = np.full((8, 8, 3), 0.5, np.float64)
    floats[0, 0] = [0.0, 1.0, 0.999]
    out = pixels(load_image(floats).image)
    assert out[1, 1].tolist() == [128, 128, 128]  # 127.5 rounds, not truncates
    assert out[0, 0].tolist() == [0, 255, 255]

    assert load_image(np.zeros((8, 8, 1), np.uint8)).image.mode == "RGB"


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((8, 8), np.int64), "dtype int64"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (np.zeros((8, 8, 5), np.uint8), "shape (8, 8, 5)"),
        (np.zeros((8,), np.uint8), "shape (8,)"),
        (np.zeros((3, 16, 16), np.uint8), "channels-first"),
        (np.full((8, 8), 255.0), "[0, 1]"),
        (np.full((8, 8), np.nan), "NaN"),
    ],
)
def test_bad_numpy_arrays_are_explained(array, words):
    with pytest.raises(InvalidImageError) as caught:
        load_image(array)
    assert words in str(caught.value)


def test_unknown_source_type():
    with pytest.raises(InvalidImageError, match="Cannot read an image from a int"):
        load_image(42)


# --- size limits ------------------------------------------------------------------


def test_huge_png_header_is_refused_without_decoding(monkeypatch):
    data = raw_png(100_000, 100_000)  # a valid IHDR and no pixel data at all
    assert len(data) < 100

    def boom(self):  # decoding must never be attempted
        raise AssertionError("load() was called")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", boom)
    with pytest.raises(ImageTooLargeError) as caught:
        load_image(data)
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
    data = encode(gradient_rgb(16, 16))  # 256 pixels
    monkeypatch.setenv("CNAPS_MAX_PIXELS", "255")
    with pytest.raises(ImageTooLargeError, match="limit of 255 pixels"):
        load_image(data)
    monkeypatch.setenv("CNAPS_MAX_PIXELS", "256")
    assert load_image(data).image.size == (16, 16)
    monkeypatch.delenv("CNAPS_MAX_PIXELS")
    with pytest.raises(ImageTooLargeError):
        load_image(data, max_pixels=100)
    monkeypatch.setenv("CNAPS_MAX_PIXELS", "10")
    assert load_image(data, max_pixels=1000).image.size == (16, 16)  # argument wins
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((16, 16, 3), np.uint8))


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
        load_image(encode(Image.new("RGB", size)))


def test_minimum_size_is_accepted():
    assert load_image(encode(Image.new("RGB", (4, 4)))).image.size == (4, 4)


# --- refused and damaged inputs ---------------------------------------------------


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty") as caught:
        load_image(empty)
    assert "empty.png" in str(caught.value)
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(b"")


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "cat.png"
    with pytest.raises(InvalidImageError) as caught:
        load_image(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(InvalidImageError, match="not a file"):
        load_image(tmp_path)


def test_truncated_png_is_invalid_not_partially_loaded():
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy))
    with pytest.raises(InvalidImageError, match="damaged or incomplete") as caught:
        load_image(data[: len(data) // 2])
    assert type(caught.value) is InvalidImageError


def test_damaged_png_header():
    data = encode(gradient_rgb())
    broken = data[:20]  # signature and part of IHDR
    with pytest.raises(InvalidImageError, match="starts like a PNG image") as caught:
        load_image(broken)
    assert type(caught.value) is InvalidImageError


def test_truncated_jpeg_is_invalid():
    noisy = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy), "JPEG")
    with pytest.raises(InvalidImageError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2])


def test_html_renamed_png_is_refused(tmp_path):
    page = tmp_path / "download.png"
    page.write_text("\n  <!DOCTYPE html><html><body>Not found</body></html>", encoding="utf-8")
    with pytest.raises(UnsupportedFormatError) as caught:
        load_image(page)
    message = str(caught.value)
    assert "HTML" in message and "download.png" in message and RESAVE in message


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_other_formats_are_refused_by_name(fmt, name):
    data = encode(gradient_rgb(), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself could read it
    with pytest.raises(UnsupportedFormatError) as caught:
        load_image(data)
    message = str(caught.value)
    assert name in message and "only PNG, JPEG and WebP" in message and RESAVE in message


def test_pil_image_of_other_format_is_refused():
    gif = Image.open(io.BytesIO(encode(gradient_rgb(), "GIF")))
    with pytest.raises(UnsupportedFormatError, match="GIF"):
        load_image(gif)


def test_random_bytes_are_invalid():
    noise = bytes(np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8))
    with pytest.raises(InvalidImageError) as caught:
        load_image(b"x" + noise)
    assert type(caught.value) is InvalidImageError
    assert RESAVE in str(caught.value)


# --- animation ---------------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]


def test_apng_uses_first_frame_with_notice():
    first, *rest = _frames()
    data = encode(first, "PNG", save_all=True, append_images=rest, duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    loaded = load_image(data)
    assert pixels(loaded.image)[4, 4].tolist() == [255, 0, 0]
    assert loaded.notices == ("Animated image: only the first frame of 3 was used.",)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_animated_webp_uses_first_frame_with_notice():
    first, *rest = _frames()
    data = encode(first, "WEBP", save_all=True, append_images=rest, duration=100, lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    loaded = load_image(data)
    assert loaded.format == "WEBP"
    assert pixels(loaded.image)[4, 4].tolist() == [255, 0, 0]
    assert any("first frame of 3" in notice for notice in loaded.notices)


def test_animated_pil_image_is_left_where_it_was():
    first, *rest = _frames()
    image = Image.open(io.BytesIO(encode(first, "PNG", save_all=True, append_images=rest)))
    image.seek(2)
    loaded = load_image(image)
    assert pixels(loaded.image)[0, 0].tolist() == [255, 0, 0]
    assert image.tell() == 2


# --- PNG output ----------------------------------------------------------------------


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    data = encode(gradient_rgb(), "JPEG", exif=exif.tobytes(), icc_profile=b"fake-icc" * 8)
    reread = Image.open(io.BytesIO(data)).getexif()
    assert reread.get_ifd(ExifTags.IFD.GPSInfo)  # the input really carries GPS
    return data


def test_png_output_has_metadata_and_no_exif():
    loaded = load_image(_jpeg_with_gps())
    metadata = {"Software": "cnaps-demo", "cnaps:engine": "bicubic", "note": "ünïcode ✓"}
    png = encode_png(loaded.image, metadata)
    types = chunk_types(png)
    assert b"eXIf" not in types and b"iCCP" not in types
    assert b"Exif" not in png and b"SecretCam" not in png and b"fake-icc" not in png
    assert types.count(b"tEXt") == 2 and types.count(b"iTXt") == 1  # non-Latin-1 -> iTXt
    assert read_png_metadata(png) == metadata
    reopened = Image.open(io.BytesIO(png))
    assert not reopened.getexif()
    assert dict(reopened.text) == metadata
    assert np.array_equal(pixels(reopened), pixels(loaded.image))  # lossless


def test_encode_png_ignores_the_info_dict_of_its_input():
    image = gradient_rgb()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    image.info.update({"exif": exif.tobytes(), "icc_profile": b"fake-icc", "dpi": (300, 300)})
    png = encode_png(image, {})
    assert not {b"eXIf", b"iCCP", b"pHYs", b"tEXt"} & set(chunk_types(png))
    assert b"SecretCam" not in png


def test_encode_png_keeps_alpha_and_rejects_bad_keys():
    rgba = Image.new("RGBA", (4, 4), (1, 2, 3, 4))
    out = Image.open(io.BytesIO(encode_png(rgba, {"k": "v"})))
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (1, 2, 3, 4)
    for key in ["", " lead", "x" * 80, "double  space", "snow☃"]:
        with pytest.raises(InvalidParameterError):
            encode_png(rgba, {key: "v"})
    with pytest.raises(InvalidParameterError, match="NUL"):
        encode_png(rgba, {"k": "a\x00b"})


def test_save_png_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.png"
    result = save_png(gradient_rgb(), target, {"k": "v"})
    assert result == target and isinstance(result, Path)
    assert target.read_bytes() == encode_png(gradient_rgb(), {"k": "v"})
    assert read_png_metadata(target) == {"k": "v"}
    assert read_png_metadata(str(target)) == {"k": "v"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]  # no temp left


def test_read_png_metadata_compressed_chunks_and_non_png(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("plain", "latin é")
    info.add_text("zipped", "z" * 500, zip=True)
    info.add_itxt("intl", "日本語", lang="ja", tkey="x", zip=True)
    data = encode(gradient_rgb(), "PNG", pnginfo=info)
    assert set(chunk_types(data)) >= {b"tEXt", b"zTXt", b"iTXt"}
    expected = {"plain": "latin é", "zipped": "z" * 500, "intl": "日本語"}
    assert read_png_metadata(data) == expected
    assert read_png_metadata(io.BytesIO(data)) == expected
    assert read_png_metadata(encode(gradient_rgb(), "JPEG")) == {}
    with pytest.raises(InvalidImageError):
        read_png_metadata(tmp_path / "missing.png")


# --- alpha -----------------------------------------------------------------------------


def _red_left_transparent_right(size: int = 16) -> Image.Image:
    rgba = np.zeros((size, size, 4), np.uint8)  # transparent *black* on the right
    rgba[:, : size // 2] = (255, 0, 0, 255)
    rgba[:, size // 2] = (0, 200, 0, 128)  # a half-transparent anti-aliased column
    return Image.fromarray(rgba)


def test_split_alpha_keeps_opaque_colours_and_bleeds_into_transparent():
    image = _red_left_transparent_right()
    rgb, alpha = split_alpha(image)
    assert rgb.mode == "RGB" and alpha is not None and alpha.mode == "L"
    source = pixels(image)
    out = pixels(rgb)
    assert np.array_equal(pixels(alpha), source[..., 3])
    visible = source[..., 3] >= BLEED_ALPHA
    assert np.array_equal(out[visible], source[..., :3][visible])
    hidden = out[source[..., 3] == 0]
    assert (hidden.max(axis=1) > 100).all()  # no black left under transparent pixels
    assert (hidden[:, 0] + hidden[:, 1] >= 200).all()  # red/green from the neighbours


def test_bleed_prefers_the_nearest_colour():
    rgba = np.zeros((8, 32, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)
    rgba[:, -4:] = (0, 0, 255, 255)
    rgb, _ = split_alpha(Image.fromarray(rgba))
    out = pixels(rgb)
    assert out[4, 4, 0] > 200 and out[4, 4, 2] < 60  # next to red: red
    assert out[4, 27, 2] > 200 and out[4, 27, 0] < 60  # next to blue: blue


def test_bleed_thin_line_is_not_drowned_by_a_large_region():
    rgba = np.zeros((32, 64, 4), np.uint8)
    rgba[:, :24] = (0, 0, 255, 255)  # a big blue area
    rgba[:, 40] = (255, 0, 0, 255)  # a one-pixel red line (e.g. an outline)
    out = pixels(split_alpha(Image.fromarray(rgba))[0])
    beside_line = out[:, 41:48]
    assert (beside_line[..., 0] > 200).all() and (beside_line[..., 2] < 60).all()
    assert out[16, 25, 2] > 200  # and beside the blue area it is blue


def test_bleed_fills_a_large_gap_from_a_single_pixel():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[20, 20] = (10, 200, 30, 255)
    rgb, _ = split_alpha(Image.fromarray(rgba))
    out = pixels(rgb)
    assert np.abs(out - [10, 200, 30]).max() <= 1


def test_bleeding_keeps_upscaled_edges_clean():
    image = _red_left_transparent_right()
    rgb, alpha = split_alpha(image)
    size = (32, 32)
    ours = merge_alpha(rgb.resize(size, Image.Resampling.BICUBIC), alpha)
    naive = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    ours_px, naive_px = pixels(ours), pixels(naive)
    edge = ours_px[..., 3] > 0
    # without bleeding the black under the transparent half darkens the edge
    assert naive_px[..., :3][edge].sum(axis=1).min() < 150
    assert ours_px[..., :3][edge].sum(axis=1).min() > 180


def test_split_alpha_without_transparency():
    rgb_image = gradient_rgb()
    rgb, alpha = split_alpha(rgb_image)
    assert alpha is None and np.array_equal(pixels(rgb), pixels(rgb_image))
    opaque = rgb_image.convert("RGBA")
    rgb, alpha = split_alpha(opaque)
    assert alpha is None and rgb.mode == "RGB"
    clear = Image.new("RGBA", (8, 8), (5, 6, 7, 0))  # nothing to bleed from: no crash
    rgb, alpha = split_alpha(clear)
    assert alpha is not None and pixels(rgb)[0, 0].tolist() == [5, 6, 7]
    rgb, alpha = split_alpha(Image.new("LA", (8, 8), (50, 100)))
    assert rgb.mode == "RGB" and pixels(alpha)[0, 0] == 100


def test_merge_alpha():
    rgb = gradient_rgb(8, 8)
    alpha = Image.new("L", (8, 8), 77)
    merged = merge_alpha(rgb, alpha)
    assert merged.mode == "RGBA"
    assert np.array_equal(pixels(merged)[..., :3], pixels(rgb))
    assert (pixels(merged)[..., 3] == 77).all()
    assert rgb.mode == "RGB"  # input untouched
    assert merge_alpha(rgb, None) is rgb

    small = Image.new("L", (4, 4), 0)
    small.paste(255, (0, 0, 2, 4))  # left half opaque
    big = merge_alpha(gradient_rgb(16, 16), small)
    assert big.size == (16, 16)
    out = pixels(big)[..., 3]
    assert out[:, :6].min() == 255 and out[:, 10:].max() == 0


def test_split_then_merge_round_trip():
    image = _red_left_transparent_right()
    merged = merge_alpha(*split_alpha(image))
    source, out = pixels(image), pixels(merged)
    assert np.array_equal(out[..., 3], source[..., 3])
    visible = source[..., 3] > 0
    assert np.array_equal(out[visible], source[visible])


# --- float arrays ------------------------------------------------------------------------


def test_to_float_array_and_back_is_exact():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(np.dstack([values, 255 - values, values]))
    array = to_float_array(image)
    assert array.dtype == np.float32 and array.shape == (16, 16, 3)
    assert array.min() == 0.0 and array.max() == 1.0
    assert np.array_equal(pixels(from_float_array(array)), pixels(image))
    assert to_float_array(Image.new("RGBA", (4, 4))).shape == (4, 4, 4)
    assert to_float_array(Image.new("L", (4, 4), 255)).shape == (4, 4, 3)


def test_from_float_array_rounds_and_clips():
    row = np.array([100.4, 100.6, 254.6, -30.0, 400.0, np.nan]) / 255.0
    array = np.repeat(row[None, :, None], 3, axis=2).repeat(2, axis=0)
    out = pixels(from_float_array(array))
    assert out.shape == (2, 6, 3)
    assert out[0, :, 0].tolist() == [100, 101, 255, 0, 255, 0]


def test_from_float_array_shapes_and_dtypes():
    assert from_float_array(np.zeros((4, 5))).mode == "RGB"
    assert from_float_array(np.zeros((4, 5, 1), np.float32)).size == (5, 4)
    rgba = from_float_array(np.full((4, 4, 4), 0.5, np.float32))
    assert rgba.mode == "RGBA" and rgba.getpixel((0, 0)) == (128, 128, 128, 128)
    with pytest.raises(InvalidImageError):
        from_float_array(np.zeros((4, 4, 2)))
    with pytest.raises(InvalidImageError):
        from_float_array(np.zeros((4, 4, 3), np.int32))


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
                loaded = load_image(bytes(damaged))
            except InvalidImageError:
                continue
            assert loaded.image.mode in ("RGB", "RGBA")  # a harmless flip may still decode
