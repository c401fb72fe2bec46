"""The diffusion engines on the CPU with tiny random models: real pipelines, real loading code.

Each tiny pipeline is saved to a temporary folder once and loaded by the engine with
``model=str(folder)``. Nothing is downloaded (HF_HUB_OFFLINE=1, private Hub cache).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
import tiny_sd
from cnaps_demo.api import availability, prepare
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.base import RunOptions
from cnaps_demo.engines.diffusion import (
    estimate_cpu_seconds,
    tiling_plan,
    unet_steps,
)
from cnaps_demo.errors import (
    DeviceUnavailableError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidParameterError,
    JobCancelledError,
)
from cnaps_demo.settings import get_settings

IMG2IMG = get_engine("sd-img2img")
LATENT = get_engine("sd-latent-x2")
CPU = RunOptions(device="cpu")


@pytest.fixture(autouse=True)
def _offline_private_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.delenv("CNAPS_ALLOW_CPU_DIFFUSION", raising=False)
    monkeypatch.delenv("CNAPS_SD_MODEL", raising=False)
    monkeypatch.setenv("CNAPS_SD_CONTROLNET", "none")  # plain img2img here; tests/engines/test_controlnet.py has the ControlNet
    monkeypatch.delenv("CNAPS_DEVICE", raising=False)
    monkeypatch.delenv("CNAPS_TORCH_COMPILE", raising=False)


@pytest.fixture(scope="module")
def smooth_sd_dir(tmp_path_factory):
    return tiny_sd.build_img2img_folder(tmp_path_factory.mktemp("tiny-sd-smooth"), smooth=True)


@pytest.fixture(scope="module")
def latent_dir(tmp_path_factory):
    return tiny_sd.build_latent_upscaler_folder(tmp_path_factory.mktemp("tiny-latent"))


def img2img_params(sd_dir, **overrides):
    # 4 scheduler steps at strength 0.5 -> 2 UNet steps; no ControlNet (tests/engines/test_controlnet.py has it).
    values = {"model": str(sd_dir), "steps": 4, "strength": 0.5, "pre_upscaler": "lanczos", "controlnet": "none"}
    return IMG2IMG.check_params({**values, **overrides})


def pixels(image):
    return np.asarray(image, dtype=np.float32) / 255.0


# --- plain helpers ---------------------------------------------------------------------------


def test_unet_steps_is_int_of_steps_times_strength_and_at_least_one():
    assert unet_steps(25, 0.3) == (25, 7)
    assert unet_steps(25, 1.0) == (25, 25)
    assert unet_steps(4, 0.5) == (4, 2)
    total, k = unet_steps(2, 0.3)  # 0.6 -> raise scheduler steps, keep the noise level
    assert k == 1 and total == 4


def test_tiling_plan_defaults_and_limits():
    assert tiling_plan(0) == (1024, 128)
    assert tiling_plan(300) == (256, 64)
    with pytest.raises(InvalidParameterError):
        tiling_plan(64)


def test_cpu_estimate_is_minutes_for_512_and_grows_with_size():
    small = estimate_cpu_seconds(512, 512, None, engine=IMG2IMG, cores=2)
    assert 3 * 60 < small < 20 * 60
    assert estimate_cpu_seconds(1024, 1024, None, engine=IMG2IMG, cores=2) > 3 * small
    assert estimate_cpu_seconds(512, 512, {"pre_upscaler": "lanczos", "guidance": 1.0}, engine=IMG2IMG, cores=2) < small
    assert estimate_cpu_seconds(512, 512, None, engine=LATENT, cores=2) > 60
    assert estimate_cpu_seconds(256, 256, None, engine=type(IMG2IMG)) > 0  # the class prices the same


def test_param_names_and_defaults_are_documented():
    names = [spec.name for spec in IMG2IMG.params]
    assert names == [
        "model", "strength", "steps", "guidance", "prompt", "negative_prompt", "seed", "pre_upscaler",
        "controlnet", "controlnet_scale",
    ]
    defaults = IMG2IMG.check_params({})
    assert defaults["model"] == "Lykon/dreamshaper-8"
    # strength 0.4: the middle of the 0.35-0.5 that SD upscalers use with the tile ControlNet (issue 11)
    assert (defaults["strength"], defaults["steps"], defaults["guidance"], defaults["seed"]) == (0.4, 25, 6.0, 0)
    assert defaults["controlnet"] == "lllyasviel/control_v11f1e_sd15_tile" and defaults["controlnet_scale"] == 1.0
    assert defaults["pre_upscaler"] == "realcugan"
    assert defaults["prompt"] == "anime illustration, clean line art, sharp details, high quality"
    assert defaults["negative_prompt"] == "blurry, lowres, jpeg artifacts, noise, watermark, text"
    latent = LATENT.check_params({})
    assert latent["model"] == "stabilityai/sd-x2-latent-upscaler"
    assert (latent["steps"], latent["guidance"], latent["prompt"]) == (20, 0.0, "")
    for bad in (
        {"strength": 1.5}, {"strength": 0.01}, {"steps": 0}, {"guidance": 0.5}, {"pre_upscaler": "nearest"},
        {"controlnet_scale": 2.5},
    ):
        with pytest.raises(InvalidParameterError):
            IMG2IMG.check_params(bad)


def test_model_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("CNAPS_SD_MODEL", "someone/anime-sd15")
    assert IMG2IMG.check_params({}, get_settings())["model"] == "someone/anime-sd15"


# --- availability -----------------------------------------------------------------------------


def test_available_with_a_local_folder_and_explicit_cpu(sd_dir):
    assert availability(IMG2IMG, device="cpu", params={"model": str(sd_dir)}).ok


def test_missing_default_weights_name_the_download_command():
    ok, reason = availability(IMG2IMG, device="cpu")
    assert not ok
    assert "python -m cnaps_demo download sd-img2img --model Lykon/dreamshaper-8" in reason
    ok, reason = availability(LATENT, device="cpu")
    assert not ok
    assert "python -m cnaps_demo download sd-latent-x2 --model stabilityai/sd-x2-latent-upscaler" in reason


def test_without_a_gpu_auto_needs_an_opt_in(sd_dir, monkeypatch):
    from cnaps_demo import devices

    # A machine without a GPU, also when the tests run on one.
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    ok, reason = availability(IMG2IMG, params={"model": str(sd_dir)})
    assert not ok
    assert "needs a CUDA or Apple GPU" in reason
    assert "--device cpu" in reason and "CNAPS_ALLOW_CPU_DIFFUSION=1" in reason
    assert " min for a 512 px image at 25 steps x 0.4 strength" in reason
    with pytest.raises(DeviceUnavailableError):  # what upscale() raises before any model loads
        cnaps_demo.upscale(
            tiny_sd.noise_image(16, 16), "sd-img2img", model=str(sd_dir), pre_upscaler="lanczos", controlnet="none"
        )
    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")
    assert availability(IMG2IMG, params={"model": str(sd_dir)}).ok


# --- img2img ----------------------------------------------------------------------------------


def test_img2img_doubles_and_is_deterministic_per_seed(sd_dir):
    image = tiny_sd.noise_image(24, 20)
    first = IMG2IMG.run(image, scale=2, params=img2img_params(sd_dir), options=CPU)
    again = IMG2IMG.run(image, scale=2, params=img2img_params(sd_dir), options=CPU)
    other = IMG2IMG.run(image, scale=2, params=img2img_params(sd_dir, seed=1), options=CPU)
    assert first.image.size == (48, 40) and first.image.mode == "RGB"
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert np.abs(pixels(first.image) - pixels(other.image)).mean() > 1e-3


def test_img2img_reports_every_denoising_step(sd_dir):
    events = []
    IMG2IMG.run(
        tiny_sd.noise_image(24, 20),
        scale=2,
        params=img2img_params(sd_dir),
        options=RunOptions(device="cpu", progress=lambda *event: events.append(event)),
    )
    steps = [event for event in events if event[2].startswith("denoising step")]
    assert steps == [(1, 2, "denoising step 1/2"), (2, 2, "denoising step 2/2")]
    assert all(total == 2 for _, total, _ in events)


def test_cancel_stops_within_a_step_and_the_next_job_still_works(sd_dir):
    image = tiny_sd.noise_image(24, 20)
    params = img2img_params(sd_dir, steps=8)  # 4 UNet steps
    reference = IMG2IMG.run(image, scale=2, params=params, options=CPU)
    seen = []

    def cancel_after_first_step(done, total, description):
        seen.append(description)
        if description.startswith("denoising step"):
            raise JobCancelledError()

    with pytest.raises(JobCancelledError):
        IMG2IMG.run(image, scale=2, params=params, options=RunOptions(device="cpu", progress=cancel_after_first_step))
    assert [d for d in seen if d.startswith("denoising")] == ["denoising step 1/4"]
    after = IMG2IMG.run(image, scale=2, params=params, options=CPU)
    assert np.array_equal(pixels(reference.image), pixels(after.image))


def test_img2img_stage_records(sd_dir):
    output = IMG2IMG.run(tiny_sd.noise_image(24, 20), scale=2, params=img2img_params(sd_dir), options=CPU)
    stages = {stage.name: stage for stage in output.stages}
    names = [stage.name for stage in output.stages]
    assert names == [
        "pre-enlarge x2 (Lanczos)",
        "text encoder",
        "VAE encoder",
        "add noise",
        "UNet x2 with CFG",
        "VAE decoder",
    ]
    assert stages["pre-enlarge x2 (Lanczos)"].input_shape == (3, 20, 24)
    assert stages["pre-enlarge x2 (Lanczos)"].output_shape == (3, 40, 48)
    assert stages["text encoder"].input_shape == (77,)
    assert stages["text encoder"].output_shape == (77, 32)  # 77 x 768 with the real CLIP
    assert stages["text encoder"].detail["prompt"].startswith("anime illustration")
    assert stages["VAE encoder"].input_shape == (3, 40, 48)
    assert stages["VAE encoder"].output_shape == (4, 10, 12)  # the tiny VAE downsamples 4x (SD: 8x)
    noise = stages["add noise"].detail
    assert (noise["strength"], noise["start_step"], noise["scheduler"]) == (0.5, 2, "DPMSolverMultistepScheduler")
    unet = stages["UNet x2 with CFG"].detail
    assert (unet["steps"], unet["guidance"], unet["cfg"], unet["scheduler_steps"]) == (2, 6.0, True, 4)
    assert stages["VAE decoder"].input_shape == (4, 10, 12)
    assert stages["VAE decoder"].output_shape == (3, 40, 48)
    assert all(stage.seconds >= 0 for stage in output.stages)


def test_guidance_one_runs_without_cfg(sd_dir):
    output = IMG2IMG.run(tiny_sd.noise_image(16, 16), scale=2, params=img2img_params(sd_dir, guidance=1), options=CPU)
    assert [s.name for s in output.stages][4] == "UNet x2"
    assert output.stages[1].detail["passes"] == 1


def _column_jumps(image):
    """jumps[x - 1]: mean (over rows and channels) absolute step from column x-1 to column x."""
    array = pixels(image)
    return np.abs(np.diff(array, axis=1)).mean(axis=(0, 2))


def test_tiled_run_shows_no_seams_on_a_smooth_gradient(smooth_sd_dir):
    image = tiny_sd.gradient_image(96, 48)  # -> 192 x 96 output
    # strength 0.05 of 20 steps: one UNet step at a low noise level; the "smooth" tiny model keeps
    # a smooth input smooth, so what is left to see is how tiles meet.
    params = IMG2IMG.check_params(
        {"model": str(smooth_sd_dir), "steps": 20, "strength": 0.05, "pre_upscaler": "lanczos", "controlnet": "none"}
    )
    events = []
    tiled = IMG2IMG.run(
        image, scale=2, params=params, options=RunOptions(device="cpu", tile=128, progress=lambda *e: events.append(e))
    )
    whole = IMG2IMG.run(image, scale=2, params=params, options=RunOptions(device="cpu", tile=256))
    assert tiled.image.size == whole.image.size == (192, 96)
    unet = next(stage for stage in tiled.stages if stage.name.startswith("UNet"))
    assert unet.detail["tiles"] == 2 and unet.detail["tile"] == 128 and unet.detail["overlap"] == 32
    assert events[-1][:2] == (2, 2) and "tile 2/2" in events[-1][2]
    assert not any(stage.detail.get("tiles") for stage in whole.stages)
    # Tiles [0, 128) and [64, 192): their edges, where a seam would show, are columns 64 and 128.
    # A hard cut between tiles jumps by ~0.1 here; the feathered blend must stay within 2/255 of the
    # largest step the untiled run takes nearby.
    tiled_jumps, whole_jumps = _column_jumps(tiled.image), _column_jumps(whole.image)
    for border in (64, 128):
        nearby = whole_jumps[border - 5 : border + 4].max()
        assert tiled_jumps[border - 2 : border + 1].max() <= nearby + 2 / 255, border


def test_two_tile_run_has_no_seam_step_larger_than_inside_the_tiles(smooth_sd_dir):
    """Overlapping tiles, each seeing 32 px of real neighbours, blended with feathered (linear) seams:
    the largest column-to-column step where the tiles meet is no larger than inside either tile."""
    params = IMG2IMG.check_params(
        {"model": str(smooth_sd_dir), "steps": 20, "strength": 0.05, "pre_upscaler": "lanczos", "controlnet": "none"}
    )
    options = RunOptions(device="cpu", tile=128)
    output = IMG2IMG.run(tiny_sd.gradient_image(96, 48), scale=2, params=params, options=options)
    assert next(s for s in output.stages if s.name.startswith("UNet")).detail["tiles"] == 2
    # Tiles [0, 128) and [64, 192) are blended over columns 64..127: every step there, against the
    # steps within 24 columns on either side, where only one tile counts. (A hard cut at column 96
    # steps by ~14/255 here; the untiled neighbourhood by at most ~9/255.)
    jumps = _column_jumps(output.image)
    seam = jumps[63:127].max()
    inside = max(jumps[39:63].max(), jumps[128:152].max())
    assert seam <= inside + 0.5 / 255, (seam * 255, inside * 255)


def test_the_default_prompt_names_no_objects():
    """Quality and style words only: a prompt naming things paints small copies of them into tiles."""
    style_words = {"anime", "illustration", "clean", "line", "art", "sharp", "details", "high", "quality"}
    words = set(IMG2IMG.check_params({})["prompt"].replace(",", " ").split())
    assert words <= style_words, words - style_words


def test_big_decodes_use_vae_tiling(sd_dir, monkeypatch):
    from cnaps_demo.engines.diffusion import job

    image, params = tiny_sd.noise_image(40, 24), img2img_params(sd_dir)
    untiled = IMG2IMG.run(image, scale=2, params=params, options=CPU)
    with monkeypatch.context() as patch:
        patch.setattr(job, "VAE_TILING_ABOVE", 0)  # the threshold of the documented "decodes above 1536 x 1536"
        output = IMG2IMG.run(image, scale=2, params=params, options=CPU)
    assert output.image.size == (80, 48)
    decoder = next(stage for stage in output.stages if stage.name == "VAE decoder")
    assert decoder.detail["vae_tiling"] is True and decoder.output_shape == (3, 48, 80)
    assert not np.array_equal(pixels(output.image), pixels(untiled.image))  # the tiled decode really ran
    # Switched off again after the decode: the same (resident) pipeline decodes the next job whole, as before.
    after = IMG2IMG.run(image, scale=2, params=params, options=CPU)
    assert next(stage for stage in after.stages if stage.name == "VAE decoder").detail["vae_tiling"] is False
    assert np.array_equal(pixels(after.image), pixels(untiled.image))


def test_size_limits_are_checked_before_loading(sd_dir):
    from PIL import Image

    params = {"model": str(sd_dir), "pre_upscaler": "lanczos"}
    with pytest.raises(ImageTooLargeError, match="2048x2048"):
        prepare(Image.new("RGB", (2049, 2048)), "sd-img2img", device="cpu", **params)
    with pytest.raises(ImageTooSmallError):
        prepare(Image.new("RGB", (4, 64)), "sd-img2img", device="cpu", **params)


# --- latent upscaler ----------------------------------------------------------------------------


def test_latent_x2_doubles_is_deterministic_and_records_stages(latent_dir):
    params = LATENT.check_params({"model": str(latent_dir), "steps": 2})
    events = []
    image = tiny_sd.noise_image(96, 64)
    first = LATENT.run(
        image, scale=2, params=params, options=RunOptions(device="cpu", progress=lambda *e: events.append(e))
    )
    again = LATENT.run(image, scale=2, params=params, options=CPU)
    other = LATENT.run(image, scale=2, params={**params, "seed": 5}, options=CPU)
    assert first.image.size == (192, 128)
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(other.image))
    assert [e for e in events if e[2].startswith("denoising")] == [
        (1, 2, "denoising step 1/2"),
        (2, 2, "denoising step 2/2"),
    ]
    names = [stage.name for stage in first.stages]
    assert names == ["text encoder", "VAE encoder", "noise", "UNet x2", "VAE decoder"]
    stages = {stage.name: stage for stage in first.stages}
    assert stages["VAE encoder"].output_shape == (4, 8, 12)  # the tiny VAE downsamples 8x, like SD's
    assert stages["UNet x2"].input_shape == (8, 16, 24)  # noisy latents + upsampled low-res latents
    assert stages["UNet x2"].output_shape == (4, 16, 24)
    assert stages["VAE decoder"].output_shape == (3, 128, 192)
    assert stages["text encoder"].detail["prompt_ignored"] is True


def test_latent_x2_pads_small_inputs_and_crops_back(latent_dir):
    params = LATENT.check_params({"model": str(latent_dir), "steps": 1, "guidance": 2.0, "prompt": "lines"})
    output = LATENT.run(tiny_sd.noise_image(20, 12), scale=2, params=params, options=CPU)
    assert output.image.size == (40, 24)
    assert "with CFG" in output.stages[3].name


def test_latent_x2_cancel_then_next_job(latent_dir):
    params = LATENT.check_params({"model": str(latent_dir), "steps": 3})
    image = tiny_sd.noise_image(64, 64)
    reference = LATENT.run(image, scale=2, params=params, options=CPU)

    def cancel(done, total, description):
        if done >= 1:
            raise JobCancelledError()

    with pytest.raises(JobCancelledError):
        LATENT.run(image, scale=2, params=params, options=RunOptions(device="cpu", progress=cancel))
    after = LATENT.run(image, scale=2, params=params, options=CPU)
    assert np.array_equal(pixels(reference.image), pixels(after.image))


# --- the public entry point -----------------------------------------------------------------------


def test_cli_level_upscale_with_a_local_folder(sd_dir, monkeypatch):
    # No opt-in variable and the default model is absent: an explicit device="cpu" and
    # model=DIR are what make this run, exactly as on the command line.
    monkeypatch.delenv("CNAPS_ALLOW_CPU_DIFFUSION", raising=False)
    result = cnaps_demo.upscale(
        tiny_sd.noise_image(24, 16), "sd-img2img", model=str(sd_dir), steps=2, device="cpu", pre_upscaler="lanczos"
    )
    assert result.image.size == (48, 32)
    assert any(stage.name.startswith("UNet x1") for stage in result.stages)


def test_command_line_accepts_a_tiny_model_folder(sd_dir, tmp_path):
    import subprocess

    from PIL import Image

    source = tmp_path / "in.png"
    tiny_sd.noise_image(24, 16).save(source)
    target = tmp_path / "out.png"
    command = [sys.executable, "-m", "cnaps_demo", "upscale", str(source), "-o", str(target),
               "--engine", "sd-img2img", "--model", str(sd_dir), "--steps", "2", "--device", "cpu"]
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert Image.open(target).size == (48, 32)


def test_presenter_mode_computes_diffusion_ahead_only_with_a_gpu(sd_dir, monkeypatch, tmp_path):
    from cnaps_demo import devices
    from cnaps_demo.present.result_cache import ExampleCache

    monkeypatch.setenv("CNAPS_SD_MODEL", str(sd_dir))
    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")  # runnable here, but slow on a real model
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert availability(IMG2IMG).ok
    example = tmp_path / "example.png"
    tiny_sd.noise_image(16, 16).save(example)
    cache = ExampleCache(tmp_path / "cache", get_settings())
    report = cache.warm([example], engines=("sd-img2img",), simulate=(False,), progress=lambda line: None)
    assert report == ["example.png / sd-img2img: skipped (no GPU: too slow to compute ahead)"]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

    # A GPU machine computes it ahead (the tiny pipeline really runs, on the CPU: CNAPS_DEVICE=cpu).
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setenv("CNAPS_DEVICE", "cpu")
    cache = ExampleCache(tmp_path / "cache", get_settings())  # a server started with these settings
    report = cache.warm([example], engines=("sd-img2img",), simulate=(False,), progress=lambda line: None)
    assert report[0].startswith("example.png / sd-img2img: computed"), report
    params = IMG2IMG.check_params({}, get_settings())
    hit = cache.get(Image.open(example).convert("RGB"), "sd-img2img", params, colour_fix="wavelet")  # the default
    assert hit is not None and hit.image.size == (32, 32)
    # With it, its seed map (the same job at 3 seeds), so a talk without a GPU shows where it guesses.
    assert report[1] == "example.png / sd-img2img / seed map: computed", report
    kept = cache.get_seeds(Image.open(example).convert("RGB"), "sd-img2img", params)
    assert kept is not None and kept.seeds == (params["seed"], params["seed"] + 1, params["seed"] + 2)
    report = cache.warm([example], engines=("sd-img2img",), simulate=(False,), progress=lambda line: None)
    assert report == ["example.png / sd-img2img: cached"]  # nothing computed twice
