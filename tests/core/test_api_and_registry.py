"""The public Python entry point and the engine registry, on the always-present engines."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnaps_demo.api import availability
import cnaps_demo
from cnaps_demo.image import read_png_metadata
from cnaps_demo.engines import all_engines, get_engine
from cnaps_demo.errors import (
    EngineUnavailableError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    UnknownEngineError,
)

REQUIRED_IDS = {"nearest", "bicubic", "lanczos", "realcugan", "realesrgan-anime", "sd-img2img", "sd-latent-x2"}


def small_picture(size=(48, 40), mode="RGB"):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_registry_lists_every_engine_with_its_facts():
    engines = {engine.id: engine for engine in all_engines()}
    assert REQUIRED_IDS <= set(engines)
    for engine in engines.values():
        assert engine.display_name and engine.family in {"classical", "cnn", "diffusion"}
        assert 2 in engine.scales
        assert engine.device_need in {"cpu", "gpu"}
        ok, reason = availability(engine)
        assert isinstance(ok, bool)
        assert ok or reason, f"{engine.id} is unavailable without saying why"


def test_importing_the_package_loads_no_torch_gradio_or_diffusers():
    code = (
        "import sys, cnaps_demo; cnaps_demo.all_engines();"
        "print([m for m in ('torch', 'gradio', 'diffusers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("engine", ["nearest", "bicubic", "lanczos"])
def test_classical_upscale_doubles_and_records_a_stage(engine):
    result = cnaps_demo.upscale(small_picture(), engine=engine)
    assert result.image.size == (96, 80)
    assert result.stages and result.stages[0].output_shape == (3, 80, 96)
    assert result.stages[0].seconds >= 0


def test_nearest_is_pixel_exact():
    picture = small_picture()
    result = cnaps_demo.upscale(picture, engine="nearest")
    expected = np.asarray(picture).repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(np.asarray(result.image), expected)


def test_alpha_survives_upscaling_and_png_has_metadata(tmp_path):
    rgba = small_picture(mode="RGBA")
    result = cnaps_demo.upscale(rgba, engine="bicubic", scale=2)
    assert result.image.mode == "RGBA" and result.image.size == (96, 80)
    path = result.save(tmp_path / "out.png")
    meta = read_png_metadata(path)
    assert meta["cnaps:engine"] == "bicubic"
    assert json.loads(meta["cnaps:params"]) == {}
    assert any(stage.name.startswith("alpha") for stage in result.stages)


def test_unknown_engine_lists_the_known_ones():
    with pytest.raises(UnknownEngineError) as caught:
        cnaps_demo.upscale(small_picture(), engine="waifu9000")
    assert "realcugan" in str(caught.value) and "waifu9000" in str(caught.value)


def test_bad_scale_and_unknown_parameter_are_named():
    with pytest.raises(InvalidParameterError, match="scale=5"):
        cnaps_demo.upscale(small_picture(), engine="bicubic", scale=5)
    with pytest.raises(InvalidParameterError, match="strength"):
        cnaps_demo.upscale(small_picture(), engine="bicubic", strength=0.3)


def test_bad_input_is_refused_before_any_work():
    with pytest.raises(InvalidImageError):
        cnaps_demo.upscale(b"<html>not a picture</html>", engine="bicubic")
    with pytest.raises(ImageTooLargeError):
        cnaps_demo.upscale(small_picture(), engine="bicubic", max_pixels=100)


def test_unavailable_engine_raises_with_the_fix(monkeypatch):
    engine = get_engine("realesrgan-anime")
    monkeypatch.setattr(type(engine), "available", lambda self, *a, **k: (False, "run: pip install x"))
    with pytest.raises(EngineUnavailableError, match="pip install x"):
        cnaps_demo.upscale(small_picture(), engine="realesrgan-anime")


def test_device_choice_auto_follows_the_setting_and_names_the_fix(monkeypatch):
    from cnaps_demo import devices
    from cnaps_demo.errors import DeviceUnavailableError, InvalidParameterError
    from cnaps_demo.settings import get_settings

    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setenv("CNAPS_DEVICE", "cpu")
    assert devices.resolve_device("auto", configured=get_settings().device).type == "cpu"  # CNAPS_DEVICE says what auto means
    monkeypatch.delenv("CNAPS_DEVICE")
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.resolve_device("auto", configured=get_settings().device).type == "cpu"
    with pytest.raises(DeviceUnavailableError, match="--device auto or cpu"):
        devices.resolve_device("cuda", configured=get_settings().device)
    with pytest.raises(InvalidParameterError, match="auto"):
        devices.resolve_device("tpu", configured=get_settings().device)
    monkeypatch.setenv("CNAPS_DEVICE", "gpu")
    with pytest.raises(InvalidParameterError, match="CNAPS_DEVICE='gpu' is not one of"):
        devices.resolve_device("auto", configured=get_settings().device)


def test_a_too_large_picture_names_the_limit_the_caller_applied():
    from PIL import Image

    with pytest.raises(cnaps_demo.errors.ImageTooLargeError) as caught:
        cnaps_demo.prepare(Image.new("RGB", (20, 20)), "bicubic", max_pixels=100, limit_setting="CNAPS_UI_MAX_PIXELS")
    assert "CNAPS_UI_MAX_PIXELS" in str(caught.value) and "10 x 10" in str(caught.value)


def test_the_cpu_convolution_setting_reaches_the_engines_and_a_bad_value_names_the_choices(monkeypatch):
    from cnaps_demo.api import run_options
    from cnaps_demo.settings import get_settings

    monkeypatch.setenv("CNAPS_CPU_CONV", "Winograd")
    assert run_options(get_settings()).cpu_conv == "winograd"
    monkeypatch.setenv("CNAPS_CPU_CONV", "fastest")
    with pytest.raises(InvalidParameterError, match="CNAPS_CPU_CONV") as caught:
        get_settings()
    assert "auto, winograd, direct" in caught.value.hint


def test_the_large_picture_setting_is_read_and_a_bad_value_says_what_to_set(monkeypatch):
    from cnaps_demo.settings import get_settings

    monkeypatch.setenv("CNAPS_LARGE_PICTURE_PIXELS", "0")
    assert get_settings().large_picture_pixels == 0  # 0: never switch
    for bad in ("many", "-5"):
        monkeypatch.setenv("CNAPS_LARGE_PICTURE_PIXELS", bad)
        with pytest.raises(InvalidParameterError, match="CNAPS_LARGE_PICTURE_PIXELS") as caught:
            get_settings()
        assert "whole number" in caught.value.hint and "300000" in caught.value.hint
