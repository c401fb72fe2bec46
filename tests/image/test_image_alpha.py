"""Alpha split/merge and colour bleed (cnaps_demo.image.alpha)."""

from __future__ import annotations

import numpy as np
from image_samples import gradient_rgb, pixels
from PIL import Image

from cnaps_demo.image import BLEED_ALPHA, merge_alpha, split_alpha

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
