"""Pure comparison helpers: baseline, blurry-source simulation, crop region, crops, maps, PSNR."""

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnaps_demo import fidelity
from cnaps_demo.fidelity import format_figure
from cnaps_demo.present import compare


def flat(size=(64, 48), colour=(200, 120, 80)):
    return Image.new("RGB", size, colour)


def with_detail(size=(120, 90), at=(70, 20), side=24):
    """A flat picture with one busy square (stripes) at ``at``."""
    image = flat(size)
    draw = ImageDraw.Draw(image)
    for i in range(0, side, 2):
        draw.line((at[0] + i, at[1], at[0] + i, at[1] + side - 1), fill=(10, 10, 10))
    return image


def test_bicubic_baseline_is_a_plain_bicubic_resize():
    image = with_detail()
    out = compare.bicubic_baseline(image, (240, 180))
    assert out.size == (240, 180)
    assert np.array_equal(np.asarray(out), np.asarray(image.resize((240, 180), Image.Resampling.BICUBIC)))


def psnr(image, reference):
    return fidelity.psnr_db(fidelity.rgb_array(image), fidelity.rgb_array(reference))


def test_simulated_blurry_source_is_half_size_soft_and_lossy():
    image = with_detail(size=(121, 91))  # odd sizes: the truth is cropped to even
    small, truth = compare.simulate_blurry_source(image)
    assert truth.size == (120, 90) and small.size == (60, 45)
    assert np.array_equal(np.asarray(truth), np.asarray(image.crop((0, 0, 120, 90))))
    plain = truth.resize((60, 45), Image.Resampling.BOX)
    # blur + JPEG: close to the plain downscale, but not equal to it, and with softer edges
    assert 25 < psnr(small, plain) < 45
    assert compare.edge_strength(small).max() < 0.85 * compare.edge_strength(plain).max()
    # the blur and the JPEG quality both matter
    sharper, _ = compare.simulate_blurry_source(image, blur_radius=0, jpeg_quality=95)
    assert psnr(sharper, plain) > psnr(small, plain) + 3
    assert small.mode == "RGB"


def test_simulation_refuses_a_too_small_image():
    with pytest.raises(ValueError):
        compare.simulate_blurry_source(flat((1, 1)))


def test_edge_richest_box_finds_the_busy_region():
    image = with_detail(at=(70, 20), side=24)
    left, top, right, bottom = compare.edge_richest_box(image, 24)
    assert (right - left, bottom - top) == (24, 24)
    assert 64 <= left <= 76 and 14 <= top <= 26  # overlaps the stripes, not the flat area


def test_edge_richest_box_is_clipped_to_the_image():
    box = compare.edge_richest_box(with_detail(size=(40, 30), at=(5, 5), side=10), 100)
    assert box == (0, 0, 40, 30)


def test_boxes_scale_and_stay_inside():
    assert compare.scale_box((10, 20, 30, 40), 2) == (20, 40, 60, 80)
    assert compare.centered_box((2, 2), 10, (50, 40)) == (0, 0, 10, 10)
    assert compare.centered_box((49, 39), 10, (50, 40)) == (40, 30, 50, 40)


def test_crop_is_one_to_one_and_zoom_repeats_pixels():
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    crop = compare.crop_1to1(image, (1, 1, 3, 3))
    assert np.array_equal(np.asarray(crop), np.asarray(image)[1:3, 1:3])
    zoomed = np.asarray(compare.crop_1to1(image, (1, 1, 3, 3), zoom=3))
    assert zoomed.shape == (6, 6, 3)
    assert np.array_equal(zoomed[::3, ::3], np.asarray(image)[1:3, 1:3])


def test_added_detail_map_is_dark_where_nothing_changed_and_bright_where_it_did():
    base = flat((40, 40))
    changed = base.copy()
    ImageDraw.Draw(changed).rectangle((10, 10, 19, 19), fill=(0, 0, 0))
    same = np.asarray(compare.added_detail_map(base, base))
    assert same.max() <= 4  # all black
    diff = np.asarray(compare.added_detail_map(changed, base)).astype(int)
    assert diff[15, 15].sum() > 600 and diff[30, 30].sum() <= 12


def test_added_detail_map_needs_equal_sizes():
    with pytest.raises(ValueError):
        compare.added_detail_map(flat((10, 10)), flat((12, 10)))


def test_psnr_values():
    a = flat((16, 16), (10, 10, 10))
    assert math.isinf(psnr(a, a))
    b = flat((16, 16), (11, 11, 11))  # MSE = 1
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2), abs=1e-9)
    assert format_figure("psnr", psnr(a, b)) == "48.13 dB"
    assert format_figure("psnr", math.inf) == "identical"


def test_transparent_images_are_compared_on_white():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert math.isinf(psnr(rgba, flat((8, 8), (255, 255, 255))))


def test_colourise_endpoints():
    values = np.array([[0.0, 1.0, 2.0, -1.0]])
    out = np.asarray(compare.colourise(values))
    assert tuple(out[0, 0]) == (0, 0, 4) and tuple(out[0, 3]) == (0, 0, 4)
    assert tuple(out[0, 1]) == (252, 255, 164) and tuple(out[0, 2]) == (252, 255, 164)


def test_helpers_do_not_modify_their_inputs():
    image = with_detail()
    before = np.asarray(image).copy()
    compare.simulate_blurry_source(image)
    compare.draw_box(image, (0, 0, 10, 10))
    compare.crop_1to1(image, (0, 0, 10, 10), zoom=2)
    assert np.array_equal(before, np.asarray(image))
