"""Spectrum, edge profile, softness and verdicts (``cnaps_demo.frequency`` / ``cnaps_demo.fidelity``),
and the plots drawn from them (``present.plots``, ``present.result_plots``, ``evaluate``)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import cnaps_demo
from cnaps_demo import fidelity, frequency
from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.present import plots, result_plots

PACKAGE = Path(cnaps_demo.__file__).resolve().parent
TRUTHS = sorted((PACKAGE / "testset" / "truth").glob("*.png"))
CRISP_EXAMPLES = [PACKAGE / "examples" / name for name in ("chibi_face.png", "starry_night.png", "cat_sticker.png")]


def stripes(frequency_x: float, frequency_y: float = 0.0, size: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return 128 + 100 * np.cos(2 * np.pi * (frequency_x * x + frequency_y * y))


@pytest.mark.parametrize(("fx", "fy"), [(0.125, 0.0), (0.3, 0.0), (0.1, 0.1)])
def test_the_spectrum_of_a_sinusoid_peaks_at_its_frequency(fx, fy):
    freqs, power = fidelity.spectrum(stripes(fx, fy))
    assert freqs.min() > 0 and freqs.max() <= 0.5 and len(freqs) == len(power)
    assert freqs[int(np.argmax(power))] == pytest.approx(math.hypot(fx, fy), abs=1 / 128)


def test_fidelity_re_exports_the_frequency_functions():
    assert fidelity.spectrum is frequency.spectrum and fidelity.edge_profile is frequency.edge_profile
    assert fidelity.rgb_array is frequency.rgb_array


def step(blur: float = 0.0) -> Image.Image:
    picture = np.zeros((40, 40, 3), np.uint8)
    picture[:, 20:] = 255
    image = Image.fromarray(picture)
    return image.filter(ImageFilter.GaussianBlur(blur)) if blur else image


def between(profile: np.ndarray) -> int:
    """Samples strictly between 10% and 90% of the way from dark to light: the width of the ramp."""
    return int(np.sum((profile > 25.5) & (profile < 229.5)))


def test_a_steps_profile_is_a_step_and_a_blurred_steps_a_ramp():
    crisp = fidelity.edge_profile(step(), (10, 20), (30, 20))
    soft = fidelity.edge_profile(step(3), (10, 20), (30, 20))
    assert len(crisp) == 21 and crisp[0] == pytest.approx(0) and crisp[-1] == pytest.approx(255)
    assert between(crisp) <= 1
    assert between(soft) >= 5
    assert np.all(np.diff(soft) >= -1e-3)  # a ramp, rising all the way
    half = fidelity.edge_profile(step(), (19.5, 5), (19.5, 5.0001), samples=2)  # between two pixels: their mean
    assert half[0] == pytest.approx(127.5)


def test_the_default_line_crosses_the_strongest_outline_from_dark_to_light():
    (x0, y0), (x1, y1) = fidelity.strongest_edge_line(step(1))
    assert x0 < 19.5 < x1 and abs(y1 - y0) < 1e-6
    assert x1 - x0 == pytest.approx(frequency.EDGE_LINE_LENGTH)
    corner = fidelity.strongest_edge_line(step(1), (0, 0, 12, 40))  # no outline in the box: still inside the picture
    assert all(0 <= v <= 39 for point in corner for v in point)
    assert math.dist(*corner) == pytest.approx(frequency.EDGE_LINE_LENGTH)
    with pytest.raises(InvalidParameterError, match="box"):
        fidelity.strongest_edge_line(step(), (50, 50, 60, 60))


@pytest.mark.parametrize("path", TRUTHS + CRISP_EXAMPLES, ids=lambda p: p.name)
def test_a_bundled_drawing_is_crisp_and_its_blurred_copy_soft(path):
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    assert not fidelity.is_soft(picture)
    assert fidelity.is_soft(picture.filter(ImageFilter.GaussianBlur(1.0)))
    enlarged = picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.BICUBIC)
    assert fidelity.is_soft(enlarged)  # a plain 2x enlargement has nothing in its finest octave


def test_the_blurry_example_is_soft():
    with Image.open(PACKAGE / "examples" / "chibi_face_blurry.png") as opened:
        assert fidelity.fine_detail_share(opened) < frequency.SOFT_BELOW


@pytest.mark.parametrize(
    ("metric", "value", "word"),
    [
        ("lr_psnr", math.inf, "faithful"),
        ("lr_psnr", 35.0, "faithful"),
        ("lr_psnr", 34.99, "changed"),
        ("lr_psnr", 27.0, "changed"),
        ("lr_psnr", 26.99, "invented"),
        ("sharpness", 1.19, "as soft as bicubic"),
        ("sharpness", 1.2, "a little crisper"),
        ("sharpness", 2.0, "crisp"),
        ("sharpness", 4.0, "very crisp"),
        ("colour_shift", 0.0, "invisible"),
        ("colour_shift", 0.99, "invisible"),
        ("colour_shift", 1.0, "slight"),
        ("colour_shift", 2.0, "visible"),
        ("psnr", 35.0, "very close"),
        ("psnr", 29.99, "differs in detail"),
        ("psnr", 24.0, "far"),
        ("ssim", 0.95, "nearly the same"),
        ("ssim", 0.9499, "similar"),
        ("ssim", 0.5, "different"),
    ],
)
def test_each_figure_gets_its_word_on_the_stated_scale(metric, value, word):
    got, sentence = fidelity.verdict(metric, value)
    assert got == word and sentence.endswith(".")
    assert word in fidelity.scale_text(metric)


def test_the_scale_states_its_boundaries_and_a_soft_truth_is_said_first():
    assert fidelity.scale_text("lr_psnr") == "LR-PSNR: 35 dB and above faithful \u00b7 27 to 35 dB changed \u00b7 below 27 dB invented"
    assert fidelity.scale_text("colour_shift").startswith("colour shift: under 1/255 invisible")
    _, sentence = fidelity.verdict("psnr", 31.0, truth_soft=True)
    assert fidelity.SOFT_TRUTH_NOTE in sentence
    assert fidelity.SOFT_TRUTH_NOTE not in fidelity.verdict("lr_psnr", 31.0, truth_soft=True)[1]
    with pytest.raises(InvalidParameterError, match="verdict scale"):
        fidelity.verdict("loudness", 3.0)
    with pytest.raises(InvalidParameterError):
        fidelity.verdict("psnr", math.nan)


def test_the_old_figures_still_work():
    picture = step(1)
    figures = fidelity.fidelity(picture.resize((80, 80), Image.Resampling.BICUBIC), picture)
    assert {"lr_psnr", "sharpness", "colour_shift"} <= set(figures)
    assert "LR-PSNR" in fidelity.summary_line(figures) and set(fidelity.METRIC_HELP) >= set(fidelity.VERDICT_SCALES)


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # raises on anything that is not well-formed XML


def test_the_spectrum_plot_marks_the_limit_and_escapes_its_labels():
    curves = {"<b>bicubic & co</b>": fidelity.spectrum(stripes(0.1)), "AI \"result\"": fidelity.spectrum(stripes(0.4))}
    svg = plots.spectrum_svg(curves, 0.25)
    root = parse(svg)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<b>bicubic & co</b>" in texts and 'AI "result"' in texts
    assert "&lt;b&gt;bicubic &amp; co&lt;/b&gt;" in svg
    assert plots.MARKER_LABEL in texts
    assert plots.MARKER_LABEL not in "".join(parse(plots.spectrum_svg(curves, None)).itertext())
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_the_edge_plot_is_a_step_against_a_ramp_and_its_legend_wraps():
    series = {f"engine number {k}": fidelity.edge_profile(step(k), (10, 20), (30, 20)) for k in range(6)}
    one = parse(plots.edge_profile_svg(dict(list(series.items())[:1])))
    many = parse(plots.edge_profile_svg(series))
    height = lambda root: float(root.get("viewBox").split()[3])  # noqa: E731
    assert height(many) > height(one)  # six long labels take more legend rows
    image = plots.edge_profile_png(series)
    assert image.width == int(plots.WIDTH * plots.PNG_ZOOM) and image.mode == "RGB"
    assert plots.spectrum_png({"a": fidelity.spectrum(stripes(0.2))}).width == image.width


def test_one_results_plots_are_written_for_the_cli(tmp_path):
    small = step(1).resize((24, 24))
    result = cnaps_demo.upscale(small, "bicubic")
    written = result_plots.write_result_plots(result, tmp_path, png=True)
    assert set(written) == {"spectrum", "edge", "spectrum_png", "edge_png"}
    edge_svg = written["edge"].read_text()
    assert "your picture" in edge_svg and result.engine_name in edge_svg
    parse(written["spectrum"].read_text())
    with Image.open(written["edge_png"]) as png:
        assert png.width == int(plots.WIDTH * plots.PNG_ZOOM)


def test_evaluate_writes_a_spectrum_and_an_edge_plot_per_picture(tmp_path):
    from cnaps_demo.evaluate import evaluate

    originals = tmp_path / "originals"
    originals.mkdir()
    step(1).resize((64, 64)).save(originals / "edge.png")
    written = evaluate(["nearest"], originals).write(tmp_path / "out")
    assert written["plots"] == tmp_path / "out" / "plots"
    spectrum_svg = (written["plots"] / "edge-spectrum.svg").read_text()
    assert "nearest" in spectrum_svg and "original" in spectrum_svg and "bicubic" in spectrum_svg
    assert "nearest" in (written["plots"] / "edge-edge.svg").read_text()
