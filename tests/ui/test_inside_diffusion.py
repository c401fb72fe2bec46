""""Inside the network" for a diffusion run: its own denoising steps stand where a CNN's layers do,
from the run itself or from a result computed ahead (the example cache), on a tiny random SD model
loaded through the engine's real code (tests/tiny_sd.py); nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
import tiny_sd
from run_setups import run_setup
from cnaps_demo.present import inside_text
from cnaps_demo.present.result_cache import ExampleCache, kept_frames
from cnaps_demo.settings import get_settings
from cnaps_demo.ui.upscale import inside as inside_panel
from cnaps_demo.web import comparison as cmp
from cnaps_demo.web.sources import Source
from cnaps_demo.web.workdir import Workdir


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("CNAPS_SD_MODEL", raising=False)
    monkeypatch.delenv("CNAPS_SD_CONTROLNET", raising=False)


def diffusion_run(sd_dir, picture: Image.Image, frames: bool = True):
    return cnaps_demo.upscale(
        picture, "sd-img2img", device="cpu", frames=frames, colour_fix=False,
        model=str(sd_dir), steps=8, strength=0.5, pre_upscaler="lanczos", controlnet="none",
    )


def comparison_of(picture: Image.Image, result, tmp_path: Path) -> cmp.Comparison:
    source = Source(picture, picture, None, "picture")
    return cmp.build_comparison(source, {result.engine_id: result}, Workdir(tmp_path / "work"))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_a_cached_result_keeps_its_denoising_frames(sd_dir, tmp_path):
    picture = tiny_sd.noise_image(24, 24)
    result = diffusion_run(sd_dir, picture)
    cache = ExampleCache(tmp_path / "cache", get_settings())
    cache.put(picture, result)
    hit = cache.get(picture, "sd-img2img", result.params, colour_fix=result.colour_fix)
    assert hit is not None and len(hit.frames) == len(result.frames) == 4
    for kept, made in zip(hit.frames, result.frames):
        assert (kept.step, kept.total, kept.exact) == (made.step, made.total, made.exact)
        assert kept.sigma == pytest.approx(made.sigma) and kept.timestep == pytest.approx(made.timestep)
        assert np.array_equal(pixels(kept.image), pixels(made.image))  # PNG: lossless
    # A lost frame file makes the frames go, not the result.
    next((tmp_path / "cache").glob("*-step002.png")).unlink()
    again = cache.get(picture, "sd-img2img", result.params, colour_fix=result.colour_fix)
    assert again is not None and again.frames == []


def test_at_most_eight_frames_are_kept_evenly_from_first_to_last():
    frames = list(range(25))
    kept = kept_frames(frames)
    assert len(kept) == 8 and kept[0] == 0 and kept[-1] == 24
    assert all(b > a for a, b in zip(kept, kept[1:]))
    assert kept_frames(frames[:5]) == frames[:5]


def test_the_section_shows_the_runs_own_steps_and_traces_no_pixel(sd_dir, tmp_path):
    picture = tiny_sd.noise_image(24, 24)
    result = diffusion_run(sd_dir, picture)
    comparison = comparison_of(picture, result, tmp_path)
    view = inside_panel.inside_view(comparison, run_setup(get_settings(), tmp_path / "work"), None, None)
    assert [title for _, title in view.layers] == ["step 1/4", "step 2/4", "step 3/4", "step 4/4"]
    assert len(view.maps) == 4 and all(Path(path).is_file() for path, _ in view.layers)
    # A click on a step shows that step whole: the run's own frame, pixel for pixel.
    whole, title = view.maps[1][0]
    assert title == "step 2/4" and np.array_equal(pixels(Image.open(whole)), pixels(result.frames[1].image))
    assert "4 steps" in view.intro and f"{result.frames[0].sigma:.2f}" in view.intro
    assert view.layer_notes.count("\u03c3") == 4 and "since the step before" in view.layer_notes
    assert view.reading == inside_text.DENOISING_TRACE and view.base is None
    assert view.cnn_parts["visible"] is False  # no sum, no pixel trace: the seed map takes their place
    assert view.guess_box["visible"] is True
    assert Path(view.invented_added).is_file()  # "Where did it invent?" as for every engine
    assert inside_panel.attribution_view(comparison, (10, 10), get_settings(), None, None) == (
        None, inside_text.DENOISING_TRACE,
    )


def test_without_frames_the_section_says_where_they_come_from(sd_dir, tmp_path):
    picture = tiny_sd.noise_image(24, 24)
    comparison = comparison_of(picture, diffusion_run(sd_dir, picture, frames=False), tmp_path)
    view = inside_panel.inside_view(comparison, run_setup(get_settings(), tmp_path / "work"), None, None)
    assert view.layers == [] and "were not kept" in view.intro


# --- where is it guessing? the run's job at 3 seeds, in the section --------------------------------


def seeds_of(sd_dir, picture: Image.Image, seed: int):
    from cnaps_demo.engines.diffusion import seed_disagreement
    from cnaps_demo.engines import get_engine
    from cnaps_demo.engines.base import RunOptions

    engine = get_engine("sd-img2img")
    params = engine.check_params(
        {"model": str(sd_dir), "steps": 8, "strength": 0.5, "pre_upscaler": "lanczos", "controlnet": "none", "seed": seed}
    )
    return seed_disagreement(engine, picture, params, RunOptions(device="cpu"))


def test_the_cache_keeps_a_seed_map_losslessly_and_rebuilds_its_spread(sd_dir, tmp_path):
    picture = tiny_sd.noise_image(16, 16)
    found = seeds_of(sd_dir, picture, seed=5)
    cache = ExampleCache(tmp_path / "cache", get_settings())
    params = {"seed": 5, "model": "x"}
    assert cache.get_seeds(picture, "sd-img2img", params) is None
    cache.put_seeds(picture, "sd-img2img", params, found)
    kept = cache.get_seeds(picture, "sd-img2img", params)
    assert kept is not None and kept.seeds == (5, 6, 7)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(kept.images, found.images))
    assert np.allclose(kept.spread, found.spread) and np.array_equal(pixels(kept.image), pixels(found.image))
    assert cache.get_seeds(picture, "sd-img2img", {**params, "seed": 6}) is None  # another job: another map
    next((tmp_path / "cache").glob("*-seeds-6.png")).unlink()  # a lost picture: no map, no error
    assert cache.get_seeds(picture, "sd-img2img", params) is None


def test_a_stored_seed_map_shows_in_the_section_and_the_button_only_where_it_can_run(sd_dir, tmp_path, monkeypatch):
    picture = tiny_sd.noise_image(24, 24)
    result = diffusion_run(sd_dir, picture)
    comparison = comparison_of(picture, result, tmp_path)
    cache = ExampleCache(tmp_path / "cache", get_settings())
    # Nothing stored, no GPU and no CPU permission: no button to press, and the note says why.
    view = inside_panel.inside_view(comparison, run_setup(get_settings(), tmp_path / "w", cache=cache), None, None)
    assert view.guess_box["visible"] is True and view.guess_button["visible"] is False
    assert view.guess == [] and "cannot run on this server" in view.guess_note
    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")
    view = inside_panel.inside_view(comparison, run_setup(get_settings(), tmp_path / "w", cache=cache), None, None)
    assert view.guess_button["visible"] is True and "The button runs the same job" in view.guess_note
    # Stored with the example: shown at once, from the cache, with its own figures; no button.
    found = seeds_of(sd_dir, picture, seed=result.params["seed"])
    cache.put_seeds(picture, "sd-img2img", result.params, found)
    view = inside_panel.inside_view(comparison, run_setup(get_settings(), tmp_path / "w", cache=cache), None, None)
    assert view.guess_button["visible"] is False and len(view.guess) == 4
    assert [caption for _, caption in view.guess][:3] == [f"seed {seed}" for seed in found.seeds]
    assert np.array_equal(pixels(Image.open(view.guess[3][0])), pixels(found.image))
    assert "computed ahead" in view.guess_note and f"{found.guessing_share * 100:.1f}%" in view.guess_note


def test_the_seed_map_is_the_runs_own_job_and_is_kept_with_a_result_computed_ahead(sd_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")
    picture = tiny_sd.noise_image(24, 24)
    result = diffusion_run(sd_dir, picture, frames=False)
    cache = ExampleCache(tmp_path / "cache", get_settings())
    setup = run_setup(get_settings(), tmp_path / "w", cache=cache)
    found = setup.seed_map(result)
    assert found.seeds[0] == result.params["seed"]
    assert np.array_equal(pixels(found.images[0]), pixels(result.image))  # the first seed is the run itself
    assert cache.get_seeds(picture, "sd-img2img", result.params) is None  # a visitor's picture is not kept
    result.extra["cached"] = True  # a result computed ahead (an example): its map is kept beside it
    setup.seed_map(result)
    assert cache.get_seeds(picture, "sd-img2img", result.params) is not None
    assert setup.seed_map(result, compute=False) is not None
    cnn = cnaps_demo.upscale(picture, "realesrgan-anime", colour_fix=False)
    assert setup.seed_map(cnn) is None  # a CNN has no seeds to vary


def test_a_seed_map_made_at_a_click_stays_when_the_crops_move(sd_dir, tmp_path):
    from cnaps_demo.ui.upscale import guessing

    picture = tiny_sd.noise_image(24, 24)
    result = diffusion_run(sd_dir, picture, frames=False)
    comparison = comparison_of(picture, result, tmp_path)
    comparison.on_request[guessing.SEEDS] = seeds_of(sd_dir, picture, seed=result.params["seed"])
    moved = comparison.moved_to((4.0, 4.0))
    view = guessing.guess_view(run_setup(get_settings(), tmp_path / "w"), moved)
    assert len(view.guess) == 4 and "computed ahead" not in view.guess_note and view.guess_button["visible"] is False
