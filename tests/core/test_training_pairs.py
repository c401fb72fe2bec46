"""``cnaps_demo.degrade``: Real-ESRGAN's second-order degradation, deterministic per seed, inside the
published ranges, and its operations equal to what the recipe used (torch's resizing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

import cnaps_demo
from cnaps_demo import degradation_ops as ops
from cnaps_demo.errors import InvalidImageError, InvalidParameterError

# The published settings, restated here from xinntao/Real-ESRGAN (options/train_realesrgan_x2plus.yml,
# realesrgan/data/realesrgan_dataset.py), independently of the module's constants.
KERNEL_TYPES = {"iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso", "sinc"}
SIGMA = {1: (0.2, 3.0), 2: (0.2, 1.5)}
RESIZE = {1: (0.15, 1.5), 2: (0.3, 1.2)}
NOISE_SIGMA = {1: (1.0, 30.0), 2: (1.0, 25.0)}
POISSON = {1: (0.05, 3.0), 2: (0.05, 2.5)}


def drawing(width: int = 96, height: int = 80) -> Image.Image:
    image = Image.new("RGB", (width, height), (250, 240, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 8, width - 12, height - 10), fill=(120, 80, 200), outline=(20, 10, 30), width=3)
    draw.line((0, height - 1, width - 1, 0), fill=(230, 60, 60), width=2)
    return image


def within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 1e-9 <= value <= bounds[1] + 1e-9


def test_the_same_seed_gives_the_same_pair_and_another_seed_another():
    picture = drawing()
    first, again, other = (cnaps_demo.degrade(picture, seed=s) for s in (7, 7, 8))
    assert first.image.tobytes() == again.image.tobytes()
    assert [(s.name, s.params) for s in first.steps] == [(s.name, s.params) for s in again.steps]
    assert first.image.tobytes() != other.image.tobytes()
    assert [s.params for s in first.steps] != [s.params for s in other.steps]
    assert first.seed == 7 and isinstance(first, cnaps_demo.Degradation)


def test_the_small_copy_is_exactly_half_and_an_odd_picture_is_cropped_to_even_sides():
    result = cnaps_demo.degrade(drawing(97, 65), seed=1)
    assert result.truth.size == (96, 64)
    assert result.image.size == (48, 32)
    assert result.image.mode == "RGB"
    assert all(step.image.mode == "RGB" for step in result.steps)


def _check_step(step) -> None:
    p, r = step.params, step.round
    if step.name == "blur":
        assert p["kernel"] in KERNEL_TYPES and p["kernel_size"] in range(7, 22, 2)
        if p["kernel"] == "sinc":  # cut-off pi/5..pi radians/px (pi/3.. for kernels under 13 px), in cycles/px
            assert within(p["cutoff"], (1 / 6 if p["kernel_size"] < 13 else 1 / 10, 0.5))
        else:
            for name in ("sigma", "sigma_x", "sigma_y"):
                if name in p:
                    assert within(p[name], SIGMA[r]), (name, p)
            if "rotation" in p:
                assert within(p["rotation"], (-180, 180))
            if p["kernel"].startswith("generalized"):
                assert within(p["beta"], (0.5, 4))
            if p["kernel"].startswith("plateau"):
                assert within(p["beta"], (1, 2))
    elif step.name == "resize":
        assert p["mode"] in {"area", "bilinear", "bicubic"}
        if p["direction"] != "back":
            assert within(p["scale"], RESIZE[r]), p
    elif step.name == "noise":
        assert p["kind"] in {"gaussian", "poisson"} and isinstance(p["gray"], bool)
        assert within(p["noise"], (NOISE_SIGMA if p["kind"] == "gaussian" else POISSON)[r]), p
    elif step.name == "jpeg":
        assert 30 <= p["quality"] <= 95
    else:
        assert step.name == "sinc" and r == 2
        assert within(p["cutoff"], (1 / 6, 0.5)) and p["kernel_size"] in range(7, 22, 2)


def test_every_drawn_value_stays_inside_the_published_ranges_over_many_seeds():
    picture = drawing(48, 48)
    seen: dict[str, set] = {"kernel": set(), "noise": set(), "mode": set(), "direction": set()}
    sinc_steps, second_blurs, pairs = 0, 0, 60
    for seed in range(pairs):
        result = cnaps_demo.degrade(picture, seed=seed)
        assert result.image.size == (24, 24)
        names = [step.name for step in result.steps]
        assert names.count("jpeg") == 2 and names[-1] in {"jpeg", "sinc", "resize"}
        for step in result.steps:
            assert step.round in (1, 2)
            _check_step(step)
            seen["kernel"].add(step.params.get("kernel"))
            seen["noise"].add(step.params.get("kind"))
            seen["mode"].add(step.params.get("mode"))
            seen["direction"].add(step.params.get("direction"))
        sinc_steps += "sinc" in names
        second_blurs += any(s.name == "blur" and s.round == 2 for s in result.steps)
    # the draws are really drawn: both noises, several kernels and modes, the optional steps sometimes
    assert {"gaussian", "poisson"} <= seen["noise"]
    assert {"iso", "aniso"} <= seen["kernel"] and len(seen["kernel"] - {None}) >= 4
    assert {"area", "bilinear", "bicubic"} <= seen["mode"]
    assert {"up", "down"} <= seen["direction"]
    assert 0.6 * pairs < sinc_steps < pairs  # 80% published
    assert 0.6 * pairs < second_blurs < pairs  # 80% published


def test_the_knobs_override_their_draws_and_leave_the_others_alone():
    picture = drawing()
    plain = cnaps_demo.degrade(picture, seed=3)
    tuned = cnaps_demo.degrade(picture, seed=3, blur=1.2, noise=6, jpeg_quality=50)
    blurs = [s for s in tuned.steps if s.name == "blur"]
    assert blurs[0].params["kernel"] == "iso" and blurs[0].params["sigma"] == pytest.approx(1.2)
    assert all(s.params["sigma"] == pytest.approx(0.6) for s in blurs[1:])  # round 2: half, as its range is
    noises = [s for s in tuned.steps if s.name == "noise"]
    assert [s.params["kind"] for s in noises] == ["gaussian", "gaussian"]
    assert [s.params["noise"] for s in noises] == pytest.approx([6.0, 5.0])  # round 2: 25/30 of it
    assert {s.params["quality"] for s in tuned.steps if s.name == "jpeg"} == {50}
    resizes = lambda d: [s.params for s in d.steps if s.name in ("resize", "sinc")]  # noqa: E731
    assert resizes(tuned) == resizes(plain)
    assert tuned.knobs == {"blur": 1.2, "noise": 6.0, "jpeg_quality": 50}
    none = cnaps_demo.degrade(picture, seed=3, blur=0, noise=0)
    assert not [s for s in none.steps if s.name in ("blur", "noise")]
    assert any("noise" in text for text in none.skipped)


@pytest.mark.parametrize(
    ("knob", "value", "words"),
    [
        ("blur", 3.5, "0 to 3"),
        ("blur", -0.1, "0 to 3"),
        ("noise", 31, "0 to 30"),
        ("noise", "lots", "number"),
        ("jpeg_quality", 5, "10 to 100"),
        ("jpeg_quality", 50.5, "whole number"),
        ("jpeg_quality", True, "number"),
        ("blur", math.nan, "0 to 3"),
    ],
)
def test_a_bad_knob_is_refused_naming_it_and_its_range(knob, value, words):
    with pytest.raises(InvalidParameterError) as caught:
        cnaps_demo.degrade(drawing(), **{knob: value})
    assert knob in str(caught.value) and words in str(caught.value)


def test_a_bad_seed_or_picture_is_refused():
    with pytest.raises(InvalidParameterError, match="seed"):
        cnaps_demo.degrade(drawing(), seed=-1)
    with pytest.raises(InvalidImageError, match="16x16"):
        cnaps_demo.degrade(Image.new("RGB", (20, 14)))
    with pytest.raises(InvalidImageError):
        cnaps_demo.degrade("not a picture")


def test_every_step_has_a_plain_caption():
    for seed in range(6):
        for step in cnaps_demo.degrade(drawing(), seed=seed).steps:
            assert step.caption and "{" not in step.caption
            assert step.caption.split(":")[0].split()[0].lower() in {"blur", "shrink", "enlarge", "keep", "resize", "noise", "jpeg", "ringing"}


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
def test_resizing_is_torchs_interpolate_without_antialiasing(mode):
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(0).random((23, 31, 3)) * 255
    for size in ((11, 9), (47, 40), (31, 23)):
        ours = ops.resize(array, size, mode)
        theirs = torch.nn.functional.interpolate(
            torch.from_numpy(array).permute(2, 0, 1)[None], size=(size[1], size[0]), mode=mode
        )[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_the_kernels_have_the_published_shapes():
    assert ops.bessel_j1(np.array([1.0, 10.0]))[0] == pytest.approx(0.4400505857, abs=1e-9)
    assert ops.bessel_j1(np.array([10.0]))[0] == pytest.approx(0.0434727462, abs=1e-9)
    gauss = ops.gaussian_family_kernel(21, 2.0, 2.0, 0.0)
    offsets = np.arange(21) - 10
    assert gauss.sum() == pytest.approx(1.0)
    assert float((gauss.sum(axis=0) * offsets**2).sum()) == pytest.approx(4.0, rel=0.02)  # variance sigma^2
    stretched = ops.gaussian_family_kernel(21, 3.0, 1.0, math.pi / 2)  # the long axis turned to vertical
    assert float((stretched.sum(axis=1) * offsets**2).sum()) > 4 * float((stretched.sum(axis=0) * offsets**2).sum())
    sinc = ops.sinc_kernel(21, math.pi / 2)  # cut-off a quarter cycle per pixel
    response = np.abs(np.fft.rfft(np.pad(sinc.sum(axis=0), (0, 235))))
    frequencies = np.fft.rfftfreq(256)
    assert response[frequencies < 0.15].min() > 0.85
    assert response[frequencies > 0.35].max() < 0.15


def test_gray_noise_is_the_same_in_every_channel_and_colour_noise_is_not():
    rng = np.random.default_rng(0)
    gray = ops.gaussian_noise((8, 8, 3), 10.0, True, rng)
    colour = ops.gaussian_noise((8, 8, 3), 10.0, False, rng)
    assert np.array_equal(gray[..., 0], gray[..., 2]) and not np.array_equal(colour[..., 0], colour[..., 2])
    flat = np.full((32, 32, 3), 128.0)
    shot = ops.poisson_noise(flat, 1.0, True, rng)
    assert np.array_equal(shot[..., 0], shot[..., 1]) and shot.std() > 0
