"""One setting, the same behaviour on every surface: CNAPS_TILE through the API, the CLI and the web UI.

It used to reach the CNN engines from the CLI and the API but not the diffusion engines; the
UI applied it to both. Now ``api.plan`` resolves it once for every caller. The tile count a
run used is recorded in its stages and in the PNG (``cnaps:tiles``), so each surface is checked
from what the run really did.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import tiny_sd
from PIL import Image

import cnaps_demo
from cnaps_demo.image import read_png_metadata
from cnaps_demo.settings import get_settings

TILE = 128
SIZE = 136  # untiled by default on both engines (CNN up to 640 x 640, diffusion up to 1024 output px)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(tiny_sd.build_img2img_folder(tmp_path_factory.mktemp("tiny-sd")))


def engine_params(engine: str, model: str) -> dict:
    if engine == "sd-img2img":
        return {"model": model, "steps": 2, "strength": 0.5, "pre_upscaler": "lanczos", "controlnet": "none"}
    return {}


def picture(path=None) -> Image.Image:
    image = tiny_sd.noise_image(SIZE, SIZE)
    if path is not None:
        image.save(path)
    return image


def via_api(engine: str, model: str, tmp_path) -> int:
    return cnaps_demo.upscale(picture(), engine, device="cpu", **engine_params(engine, model)).tiles


def via_cli(engine: str, model: str, tmp_path) -> int:
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    picture(source)
    flags = []
    for name, value in engine_params(engine, model).items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(
        [sys.executable, "-m", "cnaps_demo", "upscale", str(source), "-o", str(target), "--engine", engine,
         "--device", "cpu", "--overwrite", *flags],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return int(read_png_metadata(target)["cnaps:tiles"])


def via_ui(engine: str, model: str, tmp_path) -> int:
    from cnaps_demo.web.running import run_engine
    from cnaps_demo.web.sources import Source
    from cnaps_demo.engines import get_engine

    image = picture()
    source = Source(image, image, None, "picture")
    settings = get_settings()
    import dataclasses

    settings = dataclasses.replace(settings, device="cpu")  # as CNAPS_DEVICE=cpu would
    result = run_engine(source, get_engine(engine), engine_params(engine, model), settings=settings, progress=lambda *a: None)
    return result.tiles


@pytest.mark.parametrize("engine", ["realcugan", "sd-img2img"])
def test_cnaps_tile_reaches_every_engine_from_every_surface(engine, tiny_model, tmp_path, monkeypatch):
    monkeypatch.delenv("CNAPS_TILE", raising=False)
    untiled = via_api(engine, tiny_model, tmp_path)
    assert untiled == 1
    explicit = cnaps_demo.upscale(picture(), engine, device="cpu", tile=TILE, **engine_params(engine, tiny_model)).tiles
    assert explicit > 1

    monkeypatch.setenv("CNAPS_TILE", str(TILE))
    seen = {surface.__name__: surface(engine, tiny_model, tmp_path) for surface in (via_api, via_cli, via_ui)}
    assert seen == {"via_api": explicit, "via_cli": explicit, "via_ui": explicit}
