"""sd-img2img with the tile ControlNet, and its A1111 ``parameters`` PNG chunk, on tiny random models.

A tiny ControlNet is built next to the tiny SD pipeline (tests/tiny_sd.py), saved with
save_pretrained and loaded by the engine through its real loading code, as a local folder and
from a (private, offline) Hub cache.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import cnaps_demo
import tiny_sd
from cnaps_demo.api import availability
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.base import RunOptions
from cnaps_demo.engines.diffusion import release_pipelines
from cnaps_demo.engines.diffusion.a1111 import parse_parameters
from cnaps_demo.image import read_png_metadata
from cnaps_demo.present.diagram import render_svg
from cnaps_demo.settings import get_settings

IMG2IMG = get_engine("sd-img2img")
CPU = RunOptions(device="cpu")
TILE_CONTROLNET = "lllyasviel/control_v11f1e_sd15_tile"


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.delenv("CNAPS_SD_MODEL", raising=False)
    monkeypatch.delenv("CNAPS_SD_CONTROLNET", raising=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sd-cn")
    yield tiny_sd.build_img2img_folder(folder), tiny_sd.build_controlnet_folder(folder)
    release_pipelines()


def params(sd_dir, controlnet, **overrides):
    values = {"model": str(sd_dir), "steps": 4, "strength": 0.5, "pre_upscaler": "lanczos"}
    values["controlnet"] = str(controlnet)
    return IMG2IMG.check_params({**values, **overrides})


def pixels(image):
    return np.asarray(image, dtype=np.float32) / 255


def test_defaults_are_the_tile_controlnet_at_the_anchor_strength():
    defaults = IMG2IMG.check_params({})
    assert defaults["controlnet"] == TILE_CONTROLNET
    assert defaults["controlnet_scale"] == 1.0
    assert 0.35 <= defaults["strength"] <= 0.5  # where SD upscalers run the tile ControlNet


def test_controlnet_runs_beside_the_unet_and_reads_the_pre_enlarged_picture(models):
    sd_dir, cn_dir = models
    image = tiny_sd.noise_image(24, 20)
    with_cn = IMG2IMG.run(image, scale=2, params=params(sd_dir, cn_dir), options=CPU)
    again = IMG2IMG.run(image, scale=2, params=params(sd_dir, cn_dir), options=CPU)
    plain = IMG2IMG.run(image, scale=2, params=params(sd_dir, "none"), options=CPU)
    assert with_cn.image.size == (48, 40)
    assert np.array_equal(pixels(with_cn.image), pixels(again.image))
    assert np.abs(pixels(with_cn.image) - pixels(plain.image)).mean() > 1e-3  # the ControlNet changed the result
    names = [stage.name for stage in with_cn.stages]
    assert names == [
        "pre-enlarge x2 (Lanczos)",
        "text encoder",
        "VAE encoder",
        "add noise",
        "ControlNet tile x2 with CFG",
        "UNet x2 with CFG",
        "VAE decoder",
    ]
    stage = with_cn.stages[4]
    assert stage.input_shape == (3, 40, 48)  # the pre-enlarged picture is its condition
    assert stage.output_shape == (16, 10, 12)  # first residual: the tiny UNet's 16 channels at latent size
    assert stage.detail["model"] == "tiny-controlnet-tile" and stage.detail["scale"] == 1.0
    drawn = render_svg(with_cn.stages, input_shape=(3, 20, 24), output_shape=(3, 40, 48))
    assert "ControlNet tile" in drawn  # the diagram draws its stage
    assert "ControlNet" not in " ".join(s.name for s in plain.stages)


def test_controlnet_scale_zero_is_plain_img2img(models):
    sd_dir, cn_dir = models
    image = tiny_sd.noise_image(24, 20)
    off = IMG2IMG.run(image, scale=2, params=params(sd_dir, cn_dir, controlnet_scale=0.0), options=CPU)
    plain = IMG2IMG.run(image, scale=2, params=params(sd_dir, "none"), options=CPU)
    half = IMG2IMG.run(image, scale=2, params=params(sd_dir, cn_dir, controlnet_scale=0.5), options=CPU)
    assert np.abs(pixels(off.image) - pixels(plain.image)).max() <= 1 / 255
    assert np.abs(pixels(half.image) - pixels(plain.image)).mean() > 1e-4


def test_controlnet_from_the_hub_cache(models, tmp_path):
    sd_dir, cn_dir = models
    cache = get_settings().hub_cache
    snapshot = cache / "models--someone--tile-cn" / "snapshots" / ("ab" * 20)
    shutil.copytree(cn_dir, snapshot)
    (snapshot.parent.parent / "refs").mkdir(parents=True)
    (snapshot.parent.parent / "refs" / "main").write_text("ab" * 20)
    assert availability(IMG2IMG, device="cpu", params=params(sd_dir, "someone/tile-cn")).ok
    result = cnaps_demo.upscale(
        tiny_sd.noise_image(16, 16), "sd-img2img", device="cpu", colour_fix=False,
        model=str(sd_dir), steps=4, strength=0.5, pre_upscaler="lanczos", controlnet="someone/tile-cn",
    )
    assert any(stage.name.startswith("ControlNet tile") for stage in result.stages)


def test_missing_or_unsafe_controlnet_says_what_to_do(models, tmp_path):
    sd_dir, cn_dir = models
    ok, reason = availability(IMG2IMG, device="cpu", params={"model": str(sd_dir)})
    assert not ok
    assert "python -m cnaps_demo download sd-img2img" in reason and "controlnet=none" in reason
    assert TILE_CONTROLNET in reason
    pickled = tmp_path / "pickled-cn"
    pickled.mkdir()
    shutil.copy(cn_dir / "config.json", pickled / "config.json")
    (pickled / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    ok, reason = availability(IMG2IMG, device="cpu", params={"model": str(sd_dir), "controlnet": str(pickled)})
    assert not ok and "pickle" in reason and "safetensors" in reason
    assert availability(IMG2IMG, device="cpu", params={"model": str(sd_dir), "controlnet": "none"}).ok


def test_the_default_comes_from_cnaps_sd_controlnet(monkeypatch):
    monkeypatch.setenv("CNAPS_SD_CONTROLNET", "none")
    assert IMG2IMG.check_params({}, get_settings())["controlnet"] == "none"


# --- reproducible elsewhere: the A1111 "parameters" chunk ----------------------------------------


def test_result_png_carries_a1111_parameters_that_read_back(models, tmp_path):
    sd_dir, cn_dir = models
    result = cnaps_demo.upscale(
        tiny_sd.noise_image(24, 20), "sd-img2img", device="cpu", colour_fix=False, model=str(sd_dir),
        steps=4, strength=0.5, pre_upscaler="lanczos", controlnet=str(cn_dir), seed=42,
        prompt="clean lines, flat colours", negative_prompt="blurry: soft",
    )
    path = result.save(tmp_path / "out.png")
    text = read_png_metadata(path)
    assert "cnaps:engine" in text  # our own chunks stay
    fields = parse_parameters(text["parameters"])
    assert fields["Prompt"] == "clean lines, flat colours"
    assert fields["Negative prompt"] == "blurry: soft"
    assert fields["Steps"] == "4" and fields["Sampler"] == "DPM++ 2M"
    assert float(fields["CFG scale"]) == 6.0 and fields["Seed"] == "42"
    assert fields["Size"] == "48x40" and fields["Model"] == "tiny-sd-img2img"
    assert float(fields["Denoising strength"]) == 0.5
    assert "Model: tiny-controlnet-tile" in fields["ControlNet 0"]
    assert text["parameters"].splitlines()[0] == "clean lines, flat colours"  # A1111's layout: prompt first
    assert text["parameters"].splitlines()[1] == "Negative prompt: blurry: soft"


def test_latent_upscaler_parameters_without_guidance_have_no_prompt(tmp_path):
    from cnaps_demo.engines.diffusion.a1111 import a1111_parameters

    engine = get_engine("sd-latent-x2")
    latent = engine.check_params({"prompt": "ignored", "steps": 20})
    text = a1111_parameters(engine, latent, (1024, 768))
    fields = parse_parameters(text)
    assert fields["Prompt"] == "" and fields["Sampler"] == "Euler" and fields["Size"] == "1024x768"
    assert "Denoising strength" not in fields and fields["Model"] == "sd-x2-latent-upscaler"
