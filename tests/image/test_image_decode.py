"""Decoding (cnaps_demo.image.decode): modes, EXIF orientation, every source kind, animation."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from image_samples import LIMIT, chunk, encode, gradient_rgb, pixels, raw_png
from PIL import ExifTags, Image, features

from cnaps_demo.errors import InvalidImageError
from cnaps_demo.image import SUPPORTED_FORMATS, LoadedImage, load_image

# --- modes -------------------------------------------------------------------


def test_supported_formats_constant():
    assert SUPPORTED_FORMATS == ("PNG", "JPEG", "WEBP")


def test_rgb_png_round_trips_exactly():
    source = gradient_rgb()
    loaded = load_image(encode(source), max_pixels=LIMIT)
    assert isinstance(loaded, LoadedImage)
    assert (loaded.format, loaded.original_mode, loaded.image.mode) == ("PNG", "RGB", "RGB")
    assert loaded.notices == ()
    assert np.array_equal(pixels(loaded.image), pixels(source))


def test_rgba_png_keeps_alpha_and_colours():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = np.arange(8, dtype=np.uint8)[None, :] * 30
    rgba[..., 3] = np.arange(8, dtype=np.uint8)[:, None] * 36
    loaded = load_image(encode(Image.fromarray(rgba)), max_pixels=LIMIT)
    assert loaded.image.mode == "RGBA"
    assert np.array_equal(pixels(loaded.image), rgba.astype(int))


def test_fully_opaque_alpha_is_dropped():
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[..., 0] = 17
    loaded = load_image(encode(Image.fromarray(rgba)), max_pixels=LIMIT)
    assert loaded.image.mode == "RGB"
    assert loaded.original_mode == "RGBA"
    assert (pixels(loaded.image)[..., 0] == 17).all()


def test_mode_1_becomes_black_and_white_rgb():
    bits = Image.new("1", (8, 8), 0)
    bits.putpixel((2, 3), 1)
    loaded = load_image(encode(bits), max_pixels=LIMIT)
    assert loaded.original_mode == "1"
    out = pixels(loaded.image)
    assert out.shape == (8, 8, 3)
    assert (out[3, 2] == 255).all()
    assert out.sum() == 255 * 3


def test_mode_l_becomes_grey_rgb():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    loaded = load_image(encode(Image.fromarray(grey)), max_pixels=LIMIT)
    assert (loaded.original_mode, loaded.image.mode) == ("L", "RGB")
    out = pixels(loaded.image)
    for channel in range(3):
        assert np.array_equal(out[..., channel], grey.astype(int))


def test_mode_la_becomes_rgba():
    la = np.zeros((8, 8, 2), np.uint8)
    la[..., 0] = 90
    la[..., 1] = 0
    la[4:, :, 1] = 255
    loaded = load_image(encode(Image.fromarray(la)), max_pixels=LIMIT)
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
    loaded = load_image(encode(_palette_image()), max_pixels=LIMIT)
    assert (loaded.original_mode, loaded.image.mode) == ("P", "RGB")
    out = pixels(loaded.image)
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[3, 3].tolist() == [10, 20, 30]
    assert out[7, 5].tolist() == [0, 255, 0]


def test_mode_p_with_transparent_index_gets_alpha():
    data = encode(_palette_image(), transparency=0)  # index 0 (the background) transparent
    loaded = load_image(data, max_pixels=LIMIT)
    assert (loaded.original_mode, loaded.image.mode) == ("P", "RGBA")
    out = pixels(loaded.image)
    assert out[3, 3, 3] == 0
    assert out[0, 0].tolist() == [200, 100, 50, 255]
    assert out[7, 0].tolist() == [0, 255, 0, 255]


def test_mode_p_with_per_index_alpha_table():
    data = encode(_palette_image(), transparency=bytes([255, 128, 0]))
    out = pixels(load_image(data, max_pixels=LIMIT).image)
    assert out[3, 3, 3] == 255
    assert out[0, 0, 3] == 128
    assert out[7, 0, 3] == 0


def test_mode_pa_becomes_rgba():
    image = _palette_image().convert("PA")
    alpha = Image.new("L", (8, 8), 255)
    alpha.putpixel((3, 3), 40)
    image.putalpha(alpha)
    assert image.mode == "PA"
    loaded = load_image(image, max_pixels=LIMIT)
    assert (loaded.original_mode, loaded.image.mode) == ("PA", "RGBA")
    out = pixels(loaded.image)
    assert out[3, 3].tolist() == [10, 20, 30, 40]
    assert out[0, 0].tolist() == [200, 100, 50, 255]


def test_rgb_colour_key_transparency_gets_alpha():
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    image.putpixel((0, 0), (250, 0, 0))
    loaded = load_image(encode(image, transparency=(1, 2, 3)), max_pixels=LIMIT)
    assert loaded.image.mode == "RGBA"
    out = pixels(loaded.image)
    assert out[0, 0].tolist() == [250, 0, 0, 255]
    assert out[5, 5, 3] == 0


def test_grey_colour_key_transparency_gets_alpha():
    image = Image.new("L", (8, 8), 7)
    image.putpixel((1, 1), 200)
    out = pixels(load_image(encode(image, transparency=7), max_pixels=LIMIT).image)
    assert out[1, 1].tolist() == [200, 200, 200, 255]
    assert out[4, 4, 3] == 0


def _gradient16() -> np.ndarray:
    return (np.arange(256, dtype=np.uint32).reshape(1, 256).repeat(4, 0) * 257).astype(np.uint16)


def test_16_bit_grey_png_scales_down_not_clips():
    values = _gradient16()
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    loaded = load_image(encode(image), max_pixels=LIMIT)
    assert loaded.original_mode == "I;16"
    out = pixels(loaded.image)[..., 0]
    # value / 257 exactly; clipping would make everything above 255/65535 white
    assert np.array_equal(out[0], np.arange(256))
    mid = Image.fromarray(np.full((8, 8), 32768, np.uint16))
    assert pixels(load_image(encode(mid), max_pixels=LIMIT).image)[0, 0].tolist() == [128, 128, 128]


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16_bit_in_memory_modes(dtype):
    image = Image.fromarray(_gradient16().astype(dtype))
    assert image.mode in ("I;16", "I;16B")
    out = pixels(load_image(image, max_pixels=LIMIT).image)[..., 0]
    assert np.array_equal(out[0], np.arange(256))


def test_mode_i_is_treated_as_16_bit():
    values = np.array([[0, 257 * 128, 65535, 70000]] * 4, dtype=np.int32)
    image = Image.fromarray(values)
    assert image.mode == "I"
    out = pixels(load_image(image, max_pixels=LIMIT).image)[0, :, 0]
    assert out.tolist() == [0, 128, 255, 255]


def test_16_bit_rgb_png_written_by_hand():
    row = b"\x00" + struct.pack(">HHH", 0x8000, 0xFFFF, 0x0000) * 4
    data = raw_png(4, 4, bit_depth=16, colour_type=2, rows=row * 4)
    out = pixels(load_image(data, max_pixels=LIMIT).image)
    assert out[2, 2].tolist() == [128, 255, 0]


def test_16_bit_grey_png_with_transparency_key():
    rows = b"".join(b"\x00" + struct.pack(">HHHH", 0x1234, 0x8000, 0x8000, 0xFFFF) for _ in range(4))
    trns = chunk(b"tRNS", struct.pack(">H", 0x1234))
    loaded = load_image(raw_png(4, 4, bit_depth=16, colour_type=0, rows=rows, extra=(trns,)), max_pixels=LIMIT)
    assert loaded.image.mode == "RGBA"
    out = pixels(loaded.image)
    assert out[0, 0, 3] == 0
    assert out[0, 1].tolist() == [128, 128, 128, 255]
    assert out[0, 3].tolist() == [255, 255, 255, 255]


def test_mode_f_is_rounded_and_clipped():
    values = np.array([[-5.0, 0.4, 127.6, 300.0]] * 4, dtype=np.float32)
    out = pixels(load_image(Image.fromarray(values), max_pixels=LIMIT).image)[0, :, 0]
    assert out.tolist() == [0, 0, 128, 255]


def test_premultiplied_modes_are_unpremultiplied():
    rgba = Image.new("RGBa", (4, 4), (64, 32, 0, 128))
    out = pixels(load_image(rgba, max_pixels=LIMIT).image)
    assert out[0, 0, 3] == 128
    assert abs(out[0, 0, 0] - 127) <= 1 and abs(out[0, 0, 1] - 64) <= 1
    la = Image.new("La", (4, 4), (64, 128))
    out = pixels(load_image(la, max_pixels=LIMIT).image)
    assert out[0, 0].tolist() == [128, 128, 128, 128]


def test_cmyk_jpeg_becomes_rgb_with_notice():
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan ink
    loaded = load_image(encode(cmyk, "JPEG", quality=95), max_pixels=LIMIT)
    assert (loaded.format, loaded.original_mode, loaded.image.mode) == ("JPEG", "CMYK", "RGB")
    r, g, b = pixels(loaded.image)[8, 8]
    assert r < 20 and g > 235 and b > 235
    assert any("CMYK" in notice for notice in loaded.notices)


def test_webp_and_jpeg_sources_report_their_format():
    image = gradient_rgb()
    assert load_image(encode(image, "JPEG"), max_pixels=LIMIT).format == "JPEG"
    webp = load_image(encode(image, "WEBP", lossless=True), max_pixels=LIMIT)
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
    loaded = load_image(_with_orientation(6), max_pixels=LIMIT)
    assert loaded.image.size == (4, 8)
    out = pixels(loaded.image)
    assert out[0, 0].tolist() == [255, 0, 0]  # the left (red) half is now on top
    assert out[7, 0].tolist() == [0, 0, 255]


def test_exif_orientation_3_and_2():
    out = pixels(load_image(_with_orientation(3), max_pixels=LIMIT).image)
    assert out[0, 0].tolist() == [0, 0, 255] and out[0, 7].tolist() == [255, 0, 0]
    out = pixels(load_image(_with_orientation(2), max_pixels=LIMIT).image)
    assert out[0, 0].tolist() == [0, 0, 255] and out[3, 7].tolist() == [255, 0, 0]


def test_exif_orientation_in_jpeg():
    loaded = load_image(_with_orientation(8, "JPEG"), max_pixels=LIMIT)
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
            loaded = load_image(item, max_pixels=LIMIT)
            assert np.array_equal(pixels(loaded.image), pixels(source)), type(item)
        assert not handle.closed  # the caller's file is left open


def test_loaded_image_is_detached_and_has_no_metadata():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    source = gradient_rgb()
    loaded = load_image(encode(source, "JPEG", exif=exif.tobytes()), max_pixels=LIMIT)
    assert loaded.image.info == {}
    assert not loaded.image.getexif()
    in_memory = gradient_rgb()
    in_memory.info["exif"] = exif.tobytes()
    result = load_image(in_memory, max_pixels=LIMIT).image
    assert result is not in_memory
    result.putpixel((0, 0), (1, 2, 3))
    assert in_memory.getpixel((0, 0)) != (1, 2, 3)
    assert "exif" in in_memory.info  # the caller's object is not modified


def test_numpy_arrays():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    loaded = load_image(grey, max_pixels=LIMIT)
    assert (loaded.format, loaded.original_mode, loaded.image.mode) == ("PNG", "L", "RGB")
    assert np.array_equal(pixels(loaded.image)[..., 1], grey.astype(int))

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 10
    assert load_image(rgba, max_pixels=LIMIT).image.mode == "RGBA"
    rgba[..., 3] = 255
    assert load_image(rgba, max_pixels=LIMIT).image.mode == "RGB"

    for dtype in ("<u2", ">u2"):
        sixteen = np.full((8, 8, 3), 32768, dtype)
        sixteen[0, 0] = [0, 257, 65535]
        loaded = load_image(sixteen, max_pixels=LIMIT)
        assert loaded.original_mode == "RGB;16"
        assert (pixels(loaded.image)[1:] == 128).all()
        assert pixels(loaded.image)[0, 0].tolist() == [0, 1, 255]

    floats = np.full((8, 8, 3), 0.5, np.float64)
    floats[0, 0] = [0.0, 1.0, 0.999]
    out = pixels(load_image(floats, max_pixels=LIMIT).image)
    assert out[1, 1].tolist() == [128, 128, 128]  # 127.5 rounds, not truncates
    assert out[0, 0].tolist() == [0, 255, 255]

    assert load_image(np.zeros((8, 8, 1), np.uint8), max_pixels=LIMIT).image.mode == "RGB"


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
        load_image(array, max_pixels=LIMIT)
    assert words in str(caught.value)


def test_unknown_source_type():
    with pytest.raises(InvalidImageError, match="Cannot read an image from a int"):
        load_image(42, max_pixels=LIMIT)




# --- animation ---------------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]


def test_apng_uses_first_frame_with_notice():
    first, *rest = _frames()
    data = encode(first, "PNG", save_all=True, append_images=rest, duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    loaded = load_image(data, max_pixels=LIMIT)
    assert pixels(loaded.image)[4, 4].tolist() == [255, 0, 0]
    assert loaded.notices == ("Animated image: only the first frame of 3 was used.",)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_animated_webp_uses_first_frame_with_notice():
    first, *rest = _frames()
    data = encode(first, "WEBP", save_all=True, append_images=rest, duration=100, lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    loaded = load_image(data, max_pixels=LIMIT)
    assert loaded.format == "WEBP"
    assert pixels(loaded.image)[4, 4].tolist() == [255, 0, 0]
    assert any("first frame of 3" in notice for notice in loaded.notices)


def test_animated_pil_image_is_left_where_it_was():
    first, *rest = _frames()
    image = Image.open(io.BytesIO(encode(first, "PNG", save_all=True, append_images=rest)))
    image.seek(2)
    loaded = load_image(image, max_pixels=LIMIT)
    assert pixels(loaded.image)[0, 0].tolist() == [255, 0, 0]
    assert image.tell() == 2
