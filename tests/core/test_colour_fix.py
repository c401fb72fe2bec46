"""The colour fix: colours from the input, fine detail from the model, recorded as a stage."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

import cnaps_demo
from cnaps_demo import colour, fidelity
from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.image import read_png_metadata


def drawing(size: int = 128) -> Image.Image:
    image = Image.new("RGB", (size, size), (190, 205, 225))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.1, size * 0.1, size * 0.8, size * 0.75), fill=(235, 190, 160), outline=(30, 25, 40), width=4)
    draw.rectangle((size * 0.35, size * 0.5, size * 0.9, size * 0.95), fill=(70, 130, 210), outline=(30, 25, 40), width=3)
    for x in range(4, size, 9):  # fine hatching: detail the fix must keep
        draw.line((x, size * 0.8, x + 6, size - 2), fill=(40, 30, 50), width=1)
    return image


def drifted(image: Image.Image) -> Image.Image:
    """``image`` warmer and with a slow left-to-right darkening: the drift models are blamed for."""
    rgb = np.asarray(image, dtype=np.float32)
    ramp = np.linspace(0, -12, image.width, dtype=np.float32)[None, :, None]
    out = rgb + np.array([9, 3, -7], dtype=np.float32) + ramp
    return Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8))


def high_pass(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image, dtype=np.float32)
    return rgb - fidelity.blur(rgb, fidelity.gaussian_kernel(1.5))


@pytest.mark.parametrize("method", colour.METHODS)
def test_the_fix_removes_a_colour_drift_and_keeps_the_detail(method):
    truth = drawing(128)
    source = truth.resize((64, 64), Image.Resampling.BOX)
    output = drifted(truth)  # sharp like a model's output, colours off
    fixed = colour.colour_fix(output, source, method)
    before, after = fidelity.fidelity(output, source, truth), fidelity.fidelity(fixed, source, truth)
    assert before["colour_shift"] > 5
    assert after["colour_shift"] <= 1.0
    assert after["lr_psnr"] >= before["lr_psnr"] and after["psnr"] > before["psnr"]
    # detail kept: the fine part is the output's own, edge energy unchanged within 10%
    assert fidelity.psnr_db(high_pass(fixed), high_pass(output)) > 35
    assert after["sharpness"] == pytest.approx(before["sharpness"], rel=0.1)


def test_an_output_without_drift_is_left_almost_as_it_is():
    source = drawing(64)
    bicubic = source.resize((128, 128), Image.Resampling.BICUBIC)
    fixed = np.asarray(colour.colour_fix(bicubic, source), dtype=np.int16)
    assert np.abs(fixed - np.asarray(bicubic, dtype=np.int16)).max() <= 1


def test_the_switch_resolves_per_engine_and_refuses_nonsense():
    from cnaps_demo.engines import get_engine

    # Each engine declares its default: the models that drift in colour have it on, a formula off.
    assert cnaps_demo.plan("realcugan").colour_fix == cnaps_demo.plan("sd-img2img").colour_fix == colour.DEFAULT_METHOD
    assert cnaps_demo.plan("bicubic").colour_fix == "off"
    assert [e.colour_fix_by_default for e in map(get_engine, ("realesrgan-anime", "lanczos"))] == [True, False]
    assert colour.resolve(None, False) == "off"
    assert colour.resolve(None, True) == colour.DEFAULT_METHOD
    assert colour.resolve(True, False) == colour.DEFAULT_METHOD
    assert colour.resolve(False, True) == "off"
    assert colour.resolve("gaussian", False) == "gaussian"
    with pytest.raises(InvalidParameterError, match="colour_fix"):
        colour.resolve("sepia", True)
    with pytest.raises(InvalidParameterError, match="colour_fix"):
        cnaps_demo.plan("realcugan", colour_fix="sepia")


def test_a_cnn_run_with_the_fix_records_it_as_a_stage_and_in_the_png():
    source = drawing(48)
    plain = cnaps_demo.upscale(source, "realcugan", device="cpu", colour_fix=False)
    fixed = cnaps_demo.upscale(source, "realcugan", device="cpu", colour_fix=True)
    names = [stage.name for stage in fixed.stages]
    assert names[-1] == f"colour fix ({colour.DEFAULT_METHOD})"
    assert not any("colour fix" in stage.name for stage in plain.stages)
    assert fixed.stages[-1].output_shape == (3, 96, 96)
    assert read_png_metadata(fixed.png_bytes())["cnaps:colour_fix"] == colour.DEFAULT_METHOD
    assert fixed.fidelity["colour_shift"] <= max(1.0, plain.fidelity["colour_shift"])
    assert fixed.fidelity["lr_psnr"] >= plain.fidelity["lr_psnr"] - 0.1


def test_the_fix_keeps_transparency():
    source = drawing(48).convert("RGBA")
    source.putalpha(Image.new("L", source.size, 200))
    result = cnaps_demo.upscale(source, "realesrgan-anime", device="cpu", colour_fix=True)
    assert result.image.mode == "RGBA" and result.image.size == (96, 96)
    assert [s.name for s in result.stages][-2:] == [f"colour fix ({colour.DEFAULT_METHOD})", "alpha bicubic x2"]


def test_the_cli_switch_and_the_printed_figures(tmp_path, capsys):
    from cnaps_demo import cli

    source = tmp_path / "small.png"
    drawing(40).save(source)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "raw.png"), "--no-colour-fix"]) == 0
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "fixed.png")]) == 0  # realcugan, fix by default
    printed = capsys.readouterr().out
    assert printed.count("fidelity: LR-PSNR ") == 2 and "x bicubic" in printed and "/255" in printed
    assert read_png_metadata(tmp_path / "raw.png")["cnaps:colour_fix"] == "off"
    assert read_png_metadata(tmp_path / "fixed.png")["cnaps:colour_fix"] == colour.DEFAULT_METHOD


@pytest.mark.parametrize("method", colour.METHODS)
@pytest.mark.parametrize("workers", [2, 3])
def test_the_blur_in_bands_on_threads_is_the_whole_picture_blur_bit_for_bit(method, workers):
    rng = np.random.default_rng(workers)
    rgb = rng.normal(0, 40, (347, 129, 3)).astype(np.float32)  # edges and bands both matter
    whole = colour.low_frequencies(rgb, method)
    assert 347 // (4 * colour.reach(method)) >= 2  # so that the picture really is cut into bands
    banded = colour.low_frequencies(rgb, method, workers=workers)
    assert banded.dtype == whole.dtype and np.array_equal(banded, whole)
    # A band cut without its neighbours' rows would differ: the reach is really needed.
    cut = np.concatenate([colour.low_frequencies(rgb[:170], method), colour.low_frequencies(rgb[170:], method)])
    assert not np.allclose(cut, whole, atol=1e-3)
