""""What it learned from": damage a bundled drawing the way the training pairs were damaged, let the
anime CNN restore it, and score it against the drawing itself (fp32, so AVX2 and AVX512-BF16 CPUs agree)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PIL import Image

import cnaps_demo
from cnaps_demo.errors import InvalidImageError, InvalidParameterError, JobCancelledError
from cnaps_demo.present.learned_from import restoration_trial, trained_on_sentence
from cnaps_demo.settings import get_settings

PACKAGE = Path(cnaps_demo.__file__).resolve().parent
FP32 = dataclasses.replace(get_settings(), cpu_bf16=False)
KNOBS = {"blur": 1.0, "noise": 4, "jpeg_quality": 70}


def drawing() -> Image.Image:
    with Image.open(PACKAGE / "testset" / "truth" / "mascot.png") as opened:
        return opened.convert("RGB")


def test_the_anime_cnn_undoes_the_training_damage_better_than_bicubic():
    trial = restoration_trial(drawing(), "realesrgan-anime", seed=1, window=128, settings=FP32, device="cpu", **KNOBS)
    assert trial.truth.size == (128, 128) and trial.box is not None and trial.cropped
    assert trial.small.size == (64, 64) and trial.small is trial.degradation.image
    assert trial.restored.size == trial.bicubic.size == trial.truth.size
    ours, plain = trial.scores["engine"], trial.scores["bicubic"]
    assert ours["psnr"] > plain["psnr"] + 1.0
    assert ours["ssim"] > plain["ssim"]
    assert "trained to undo exactly this" in trial.sentence
    assert "PSNR" in trial.scores_line and "bicubic" in trial.scores_line
    assert [s.name for s in trial.degradation.steps].count("jpeg") == 2
    assert trial.result.colour_fix != "off"  # the engine's default colour fix ran


def test_an_odd_picture_is_cut_to_even_sides_and_the_seed_repeats():
    odd = drawing().crop((300, 300, 341, 335))  # 41 x 35
    first = restoration_trial(odd, "bicubic", seed=4, **KNOBS)
    again = restoration_trial(odd, "bicubic", seed=4, **KNOBS)
    assert first.truth.size == (40, 34) and first.cropped and first.box is None
    assert first.small.tobytes() == again.small.tobytes()
    assert first.scores == again.scores
    assert "learned nothing" in first.sentence


def test_stop_is_honoured_before_the_engine_runs_and_bad_input_is_refused():
    def stop(done: int, total: int, text: str) -> None:
        raise JobCancelledError()

    with pytest.raises(JobCancelledError):
        restoration_trial(drawing(), "realesrgan-anime", progress=stop)
    with pytest.raises(InvalidParameterError, match="jpeg_quality"):
        restoration_trial(drawing(), "bicubic", jpeg_quality=101)
    with pytest.raises(InvalidParameterError, match="window"):
        restoration_trial(drawing(), "bicubic", window=8)
    with pytest.raises(InvalidImageError):
        restoration_trial("mascot.png", "bicubic")


def test_the_engines_own_parameters_reach_it():
    picture = drawing().crop((300, 300, 364, 364))
    plain = restoration_trial(picture, "realcugan", seed=2, settings=FP32, device="cpu", **KNOBS)
    other = restoration_trial(picture, "realcugan", seed=2, settings=FP32, device="cpu", engine_params={"denoise": "3"}, **KNOBS)
    assert plain.result.params["denoise"] == "conservative" and other.result.params["denoise"] == "3"
    assert other.restored.tobytes() != plain.restored.tobytes()
    with pytest.raises(InvalidParameterError):
        restoration_trial(picture, "realcugan", settings=FP32, denoise="loud")


def test_each_engine_family_says_what_it_learned_from():
    assert "damage like this" in trained_on_sentence("realcugan")
    assert "not trained on this damage" in trained_on_sentence("sd-img2img")
    assert "learned nothing" in trained_on_sentence("lanczos")
