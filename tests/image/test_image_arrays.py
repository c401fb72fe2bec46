"""Float arrays and the float -> uint8 rule (cnaps_demo.image.arrays)."""

from __future__ import annotations

import numpy as np
import pytest
from image_samples import pixels
from PIL import Image

from cnaps_demo.errors import InvalidImageError
from cnaps_demo.image import from_float_array, to_float_array, to_uint8

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


# --- to_uint8 ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_uint8_rounds_exact_halves_up(dtype):
    halves = (np.arange(255, dtype=dtype) + dtype(0.5)) / dtype(255)  # v * 255 == k + 0.5 exactly
    assert np.array_equal(to_uint8(halves), np.arange(1, 256))  # half up, not half to even
    edge = np.array([0.5 / 255], dtype)
    assert to_uint8(edge).tolist() == [1]
    near = np.array([(0.5 - 1e-3) / 255, (0.5 + 1e-3) / 255], dtype)
    assert to_uint8(near).tolist() == [0, 1]  # either side of the half
    assert to_uint8(np.array([127.5 / 255, 128.5 / 255], dtype)).tolist() == [128, 129]


def test_to_uint8_clips_and_cleans():
    values = np.array([-1.0, -0.001, 0.0, 1.0, 1.001, 2.0, np.inf, -np.inf, np.nan], np.float32)
    assert to_uint8(values).tolist() == [0, 0, 0, 255, 255, 255, 255, 0, 0]


def test_to_uint8_is_the_cnn_engines_rule():
    values = np.random.default_rng(4).uniform(-0.1, 1.1, (33, 17, 3)).astype(np.float32)
    # The C++ engines' conversion, spelled out: v * 255 + 0.5, clipped, truncated.
    reference = np.clip(values * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)
    out = to_uint8(values)
    assert out.dtype == np.uint8 and out.shape == values.shape
    assert np.array_equal(out, reference)


def test_to_uint8_leaves_its_input_unless_told():
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    before = values.copy()
    expected = to_uint8(values)
    assert np.array_equal(values, before)
    assert np.array_equal(to_uint8(values, overwrite=True), expected)  # same bytes, scratch reused
    frozen = before.copy()
    frozen.flags.writeable = False
    assert np.array_equal(to_uint8(frozen, overwrite=True), expected)  # read-only: copies instead
    assert np.array_equal(to_uint8(before.astype(np.float16)), to_uint8(before.astype(np.float16).astype(np.float32)))
    with pytest.raises(TypeError, match="float"):
        to_uint8(np.zeros((2, 2), np.uint8))


def test_from_float_array_uses_to_uint8():
    array = np.random.default_rng(5).random((6, 7, 3))  # float64: converted in float32
    assert np.array_equal(np.asarray(from_float_array(array)), to_uint8(array.astype(np.float32)))
    assert from_float_array(np.full((4, 4, 3), 0.5 / 255, np.float32)).getpixel((0, 0)) == (1, 1, 1)
