"""Fidelity figures on cases whose answer is known in advance, and their place on the result."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

import cnaps_demo
from cnaps_demo import fidelity
from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.image import read_png_metadata


def drawing(size: int = 96) -> Image.Image:
    """A small cartoon-like picture: flat fills, outlines, values kept inside 20..220 (room to shift)."""
    image = Image.new("RGB", (size, size), (200, 210, 220))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.15, size * 0.1, size * 0.85, size * 0.8), fill=(220, 180, 150), outline=(30, 25, 40), width=3)
    draw.rectangle((size * 0.3, size * 0.55, size * 0.7, size * 0.95), fill=(60, 120, 200), outline=(30, 25, 40), width=2)
    draw.line((0, size - 1, size - 1, 0), fill=(30, 25, 40), width=1)
    return image


def shifted(image: Image.Image, delta: tuple[int, int, int]) -> Image.Image:
    return Image.fromarray((np.asarray(image, dtype=np.int16) + np.array(delta, dtype=np.int16)).astype(np.uint8))


def box_down(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BOX)


def test_identical_images_score_perfectly():
    truth = np.asarray(drawing(), dtype=np.float32)
    assert fidelity.psnr_db(truth, truth) == math.inf
    assert fidelity.ssim(truth, truth) == pytest.approx(1.0, abs=1e-6)


def test_a_nearest_enlargement_is_exactly_consistent_with_its_input():
    source = drawing(48)
    big = source.resize((96, 96), Image.Resampling.NEAREST)
    figures = fidelity.fidelity(big, source)
    assert figures["lr_psnr"] == math.inf
    assert figures["colour_shift"] == 0.0 and figures["colour_shift_rgb"] == (0.0, 0.0, 0.0)
    assert float(fidelity.lr_disagreement(big, source).max()) == 0.0
    # ... while a bicubic enlargement is not exactly consistent (the check can fail)
    assert fidelity.lr_psnr(source.resize((96, 96), Image.Resampling.BICUBIC), source) < 60


def test_a_constant_colour_shift_is_measured_in_255ths_per_channel():
    truth = drawing(96)
    source = box_down(truth)
    result = shifted(truth, (10, 0, -4))
    figures = fidelity.fidelity(result, source, truth)
    assert figures["colour_shift_rgb"] == pytest.approx((10.0, 0.0, 4.0), abs=0.51)  # box rounding to 8 bits
    assert figures["colour_shift"] == pytest.approx(10.0, abs=0.51)
    expected = 10 * math.log10(255.0**2 / ((100 + 16) / 3))  # MSE over R, G, B
    assert figures["psnr"] == pytest.approx(expected, abs=1e-6)
    flat_a, flat_b = np.full((16, 16, 3), 100.0), np.full((16, 16, 3), 110.0)
    c1 = (0.01 * 255) ** 2
    assert fidelity.ssim(flat_a, flat_b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), rel=1e-5)


def test_a_blurred_copy_is_softer_than_bicubic_and_scores_lower():
    truth = drawing(96)
    source = box_down(truth)
    bicubic = source.resize(truth.size, Image.Resampling.BICUBIC)
    blurred = bicubic.filter(ImageFilter.GaussianBlur(2))
    assert fidelity.sharpness(bicubic, source) == pytest.approx(1.0)
    assert fidelity.sharpness(blurred, source) < 0.6
    assert fidelity.sharpness(truth, source) > 1.2  # the sharp original has more edge energy than bicubic
    sharp, soft = fidelity.fidelity(bicubic, source, truth), fidelity.fidelity(blurred, source, truth)
    assert soft["psnr"] < sharp["psnr"] and soft["ssim"] < sharp["ssim"] < 1.0
    assert soft["lr_psnr"] < sharp["lr_psnr"]
    assert fidelity.lr_disagreement(blurred, source).shape == (48, 48)


def test_sizes_that_do_not_fit_get_a_typed_error():
    with pytest.raises(InvalidParameterError, match="whole multiple"):
        fidelity.fidelity(drawing(95), drawing(48))
    with pytest.raises(InvalidParameterError, match="original picture"):
        fidelity.fidelity(drawing(96), drawing(48), truth=drawing(90))


def test_every_figure_has_a_label_and_a_plain_words_line():
    assert set(fidelity.METRIC_HELP) == set(fidelity.METRIC_LABELS) == set(fidelity.HIGHER_IS_BETTER)
    assert all(len(line.split()) >= 10 for line in fidelity.METRIC_HELP.values())
    assert fidelity.format_figure("lr_psnr", math.inf) == "identical"
    assert fidelity.format_figure("colour_shift", 3.456) == "3.46/255"


def test_every_result_carries_its_fidelity_and_the_truth_adds_psnr_and_ssim():
    truth = drawing(96)
    source = box_down(truth)
    plain = cnaps_demo.upscale(source, "nearest")
    assert set(plain.fidelity) == {"lr_psnr", "sharpness", "colour_shift", "colour_shift_rgb"}
    assert plain.fidelity["lr_psnr"] == math.inf
    judged = cnaps_demo.upscale(source, "bicubic", truth=truth)
    assert judged.fidelity["psnr"] == pytest.approx(fidelity.psnr_db(np.asarray(judged.image, np.float32), np.asarray(truth, np.float32)))
    assert 0.5 < judged.fidelity["ssim"] < 1.0
    assert judged.fidelity["sharpness"] == pytest.approx(1.0)
    assert read_png_metadata(judged.png_bytes())["cnaps:colour_fix"] == "off"


def test_a_truth_of_the_wrong_size_is_refused_before_the_run():
    with pytest.raises(InvalidParameterError, match="exactly 2x"):
        cnaps_demo.prepare(drawing(48), "bicubic", truth=drawing(90))


def test_transparent_inputs_are_judged_as_a_viewer_shows_them():
    source = drawing(48).convert("RGBA")
    source.putalpha(Image.new("L", source.size, 128))
    result = cnaps_demo.upscale(source, "nearest")
    assert result.image.mode == "RGBA"
    assert result.fidelity["lr_psnr"] > 40
