"""The denoising filmstrip, the strength sweep and the seed disagreement map, on tiny random SD models.

The pipelines are built and saved here (tests/tiny_sd.py) and loaded by the engines through
their real loading code; nothing is downloaded.
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
import tiny_sd
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.base import RunOptions
from cnaps_demo.engines.diffusion import (
    Frame,
    filmstrip_bytes,
    seed_disagreement,
    strength_sweep,
)
from cnaps_demo.engines.diffusion import filmstrip as filmstrip_module
from cnaps_demo.errors import InvalidParameterError

IMG2IMG = get_engine("sd-img2img")
LATENT = get_engine("sd-latent-x2")


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("CNAPS_SD_MODEL", raising=False)
    monkeypatch.delenv("CNAPS_SD_CONTROLNET", raising=False)
    monkeypatch.delenv("CNAPS_TORCH_COMPILE", raising=False)


@pytest.fixture(scope="module")
def latent_dir(tmp_path_factory):
    return tiny_sd.build_latent_upscaler_folder(tmp_path_factory.mktemp("tiny-latent"))


def params(sd_dir, **overrides):
    values = {"model": str(sd_dir), "steps": 8, "strength": 0.5, "pre_upscaler": "lanczos", "controlnet": "none"}
    return IMG2IMG.check_params({**values, **overrides})


def arrays_equal(a, b) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def test_one_frame_per_unet_step_and_the_last_is_the_result(sd_dir):
    frames = []
    image = tiny_sd.noise_image(24, 20)
    output = IMG2IMG.run(image, scale=2, params=params(sd_dir), options=RunOptions(device="cpu", frames=frames.append))
    assert [f.step for f in frames] == [1, 2, 3, 4]  # 8 steps x 0.5 = 4 UNet steps
    assert all(isinstance(f, Frame) and f.total == 4 and f.image.size == (48, 40) for f in frames)
    assert [f.exact for f in frames] == [False, False, False, True]
    assert arrays_equal(frames[-1].image, output.image)
    # Each preview is the clean estimate at that step: they differ from each other and from the end.
    assert not arrays_equal(frames[0].image, frames[-1].image)
    timesteps = [f.timestep for f in frames]
    sigmas = [f.sigma for f in frames]
    assert timesteps == sorted(timesteps, reverse=True) and len(set(timesteps)) == 4
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[-1] > 0
    assert frames[0].caption.startswith("step 1/4 · timestep ")


def test_frames_through_the_api_end_on_the_picture_returned(sd_dir):
    streamed = []
    result = cnaps_demo.upscale(
        tiny_sd.noise_image(16, 16), "sd-img2img", device="cpu", frames=streamed.append, colour_fix=False,
        model=str(sd_dir), steps=8, strength=0.5, pre_upscaler="lanczos", controlnet="none",
    )
    assert len(result.frames) == 4 and result.frames == streamed  # streamed as made, kept in order
    assert (result.frames[-1].step, result.frames[-1].image.size) == (4, (32, 32))
    assert arrays_equal(result.frames[-1].image, result.image)
    plain = cnaps_demo.upscale(tiny_sd.noise_image(16, 16), "lanczos", frames=True)
    assert plain.frames == []  # only the diffusion engines have steps to show


def test_preview_switched_off_costs_nothing(sd_dir, monkeypatch):
    image = tiny_sd.noise_image(24, 20)
    frames = []
    options = RunOptions(device="cpu", frames=frames.append)
    with_frames = IMG2IMG.run(image, scale=2, params=params(sd_dir), options=options)

    def forbidden(*args, **kwargs):
        raise AssertionError("a preview was made with frames off")

    # Without a frame callback: no latent->RGB conversion, no filmstrip, and the scheduler is not wrapped.
    monkeypatch.setattr(filmstrip_module, "latents_to_rgb", forbidden)
    monkeypatch.setattr(filmstrip_module.Filmstrip, "__init__", forbidden)
    from cnaps_demo.engines.diffusion import pipelines

    without = IMG2IMG.run(image, scale=2, params=params(sd_dir), options=RunOptions(device="cpu"))
    assert arrays_equal(with_frames.image, without.image)  # previews never change the result
    for resident in pipelines._RESIDENT.values():
        assert "step" not in vars(resident.pipe.scheduler)  # the wrapper was undone


def test_latents_to_rgb_is_the_published_linear_map():
    import torch

    latents = torch.zeros(1, 4, 2, 3)
    latents[0, 0] = 1.0  # channel 0 only: (v + 1) / 2 of its row of weights
    rgb = filmstrip_module.latents_to_rgb(latents)
    assert rgb.shape == (1, 3, 2, 3)
    expected = (torch.tensor([0.3512, 0.2297, 0.3227]) + 1) / 2
    assert torch.allclose(rgb[0, :, 0, 0], expected, atol=1e-6)
    assert torch.allclose(filmstrip_module.latents_to_rgb(torch.zeros(1, 4, 1, 1)), torch.full((1, 3, 1, 1), 0.5))


def test_tiled_runs_show_the_whole_picture_and_end_on_the_blend(sd_dir):
    frames = []
    output = IMG2IMG.run(
        tiny_sd.noise_image(96, 48), scale=2, params=params(sd_dir, steps=4),
        options=RunOptions(device="cpu", tile=128, frames=frames.append),
    )
    assert [(f.step, f.tile, f.tiles) for f in frames] == [(1, 1, 2), (2, 1, 2), (3, 2, 2), (4, 2, 2)]
    assert all(f.image.size == (192, 96) for f in frames)
    assert [f.exact for f in frames] == [False, True, False, True]
    assert arrays_equal(frames[-1].image, output.image)
    assert "tile 2/2" in frames[-1].caption


def test_latent_upscaler_frames(latent_dir):
    frames = []
    p = LATENT.check_params({"model": str(latent_dir), "steps": 3})
    options = RunOptions(device="cpu", frames=frames.append)
    output = LATENT.run(tiny_sd.noise_image(40, 24), scale=2, params=p, options=options)
    assert [f.step for f in frames] == [1, 2, 3] and all(f.image.size == (80, 48) for f in frames)
    assert arrays_equal(frames[-1].image, output.image)
    assert frames[0].sigma > frames[1].sigma > frames[2].sigma


def test_filmstrip_as_animated_webp_and_gif(sd_dir, tmp_path):
    frames = []
    options = RunOptions(device="cpu", frames=frames.append)
    IMG2IMG.run(tiny_sd.noise_image(16, 16), scale=2, params=params(sd_dir), options=options)
    for fmt in ("webp", "gif"):
        strip = Image.open(io.BytesIO(filmstrip_bytes(frames, fmt)))
        assert strip.format == fmt.upper() and strip.n_frames == len(frames) and strip.size == (32, 32)
    webp = Image.open(io.BytesIO(filmstrip_bytes(frames, "webp")))
    webp.seek(len(frames) - 1)
    assert arrays_equal(webp.convert("RGB"), frames[-1].image)  # lossless: the last frame is the result
    with pytest.raises(InvalidParameterError):
        filmstrip_bytes(frames, "bmp")
    with pytest.raises(InvalidParameterError):
        filmstrip_bytes([], "webp")


def test_cli_writes_the_frames(sd_dir, tmp_path):
    source = tmp_path / "in.png"
    tiny_sd.noise_image(16, 16).save(source)
    command = [sys.executable, "-m", "cnaps_demo", "upscale", str(source), "-o", str(tmp_path / "out.png"),
               "--engine", "sd-img2img", "--model", str(sd_dir), "--steps", "4", "--strength", "0.5",
               "--pre-upscaler", "lanczos", "--controlnet", "none", "--device", "cpu",
               "--frames", str(tmp_path / "frames")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "frames" / "out"
    assert sorted(p.name for p in folder.iterdir()) == ["filmstrip.webp", "step_1.png", "step_2.png"]
    assert arrays_equal(Image.open(folder / "step_2.png"), Image.open(tmp_path / "out.png"))


# --- strength sweep and seed disagreement ----------------------------------------------------


def test_strength_sweep_is_each_strength_run_alone_with_one_load(sd_dir):
    image = tiny_sd.noise_image(16, 16)
    p = params(sd_dir, steps=10)
    events = []
    options = RunOptions(device="cpu", progress=lambda *e: events.append(e))
    sweep = strength_sweep(IMG2IMG, image, p, options, (0.1, 0.3, 0.6))
    assert [f.strength for f in sweep] == [0.1, 0.3, 0.6]
    assert [f.unet_steps for f in sweep] == [1, 3, 6]
    assert sweep[0].caption == "strength 0.1 · 1 UNet step"
    # The sweep's pictures are the ones each strength gives on its own (one load, same seed).
    alone = IMG2IMG.run(image, scale=2, params={**p, "strength": 0.3}, options=RunOptions(device="cpu"))
    assert arrays_equal(sweep[1].image, alone.image)
    assert not arrays_equal(sweep[0].image, sweep[2].image)
    steps = [e for e in events if e[2].startswith("denoising")]
    assert steps[-1][:2] == (10, 10)  # progress counts all 1 + 3 + 6 steps
    with pytest.raises(InvalidParameterError):
        strength_sweep(LATENT, image, {}, RunOptions(device="cpu"))
    with pytest.raises(InvalidParameterError):
        strength_sweep(IMG2IMG, image, p, RunOptions(device="cpu"), (0.1, 1.5))


def test_seed_disagreement_map(sd_dir):
    image = tiny_sd.noise_image(16, 16)
    spread = seed_disagreement(IMG2IMG, image, params(sd_dir, seed=5), RunOptions(device="cpu"))
    assert spread.seeds == (5, 6, 7)
    assert spread.spread.shape == (32, 32) and spread.image.size == (32, 32) and spread.image.mode == "RGB"
    stack = np.stack([np.asarray(im, np.float32) / 255 for im in spread.images])
    assert np.allclose(spread.spread, stack.std(axis=0).mean(axis=-1), atol=1e-6)
    assert spread.mean > 0 and 0 < spread.guessing_share <= 1
    same = seed_disagreement(IMG2IMG, image, params(sd_dir), RunOptions(device="cpu"), seeds=(3, 3, 4))
    assert arrays_equal(same.images[0], same.images[1])  # a seed repeated gives the same picture
    with pytest.raises(InvalidParameterError):
        seed_disagreement(IMG2IMG, image, params(sd_dir), RunOptions(device="cpu"), seeds=(1, 1))
    from cnaps_demo.seed_spread import heat_image

    heat = np.asarray(heat_image(np.array([[0.0, 1.0]], np.float32)))
    assert heat[0, 0].sum() < 10 and heat[0, 1].sum() > 600  # agreement dark, disagreement bright
