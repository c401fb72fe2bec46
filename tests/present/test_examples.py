"""The bundled examples: regenerated bit for bit by their script, and two of them genuinely soft,
JPEG-damaged low-resolution pictures on which Real-CUGAN visibly beats bicubic."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
from cnaps_demo.present.examples import (
    DEGRADED_EXAMPLES,
    EXAMPLE_LABELS,
    bundled_examples,
    example_label,
    examples_dir,
    is_degraded,
)

SCRIPT = Path(__file__).resolve().parents[2] / "assets" / "make_examples.py"


def load_script():
    spec = importlib.util.spec_from_file_location("make_examples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


def gradient(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L"), dtype=float)
    return np.abs(np.diff(grey, axis=1))[:-1] + np.abs(np.diff(grey, axis=0))[:, :-1]


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2)
    return 10 * np.log10(255**2 / mse)


def test_regenerating_gives_the_same_bytes(script, tmp_path):
    written = script.main(tmp_path)
    shipped = {path.name for path in bundled_examples()}
    assert {path.name for path in written} == shipped
    for path in written:
        assert path.read_bytes() == (examples_dir() / path.name).read_bytes(), path.name


def test_the_degraded_examples_come_first_and_every_example_has_a_label():
    examples = bundled_examples()
    names = [path.name for path in examples]
    assert len(DEGRADED_EXAMPLES) >= 2 and set(names[: len(DEGRADED_EXAMPLES)]) == DEGRADED_EXAMPLES
    assert {"chibi_face.png", "starry_night.png", "cat_sticker.png"} <= set(names)  # the clean ones stay
    for path in examples:
        assert path.name in EXAMPLE_LABELS and example_label(path) == EXAMPLE_LABELS[path.name]


@pytest.mark.parametrize("name", sorted(DEGRADED_EXAMPLES))
def test_degraded_examples_are_small_soft_and_jpeg_damaged(script, name):
    picture = Image.open(examples_dir() / name)
    assert picture.format == "PNG" and picture.mode == "RGB" and 256 <= max(picture.size) <= 320
    assert is_degraded(examples_dir() / name)
    # the clean drawing it comes from, reduced to the same size without damage
    clean = script.EXAMPLES[name.replace("_blurry", "").replace("_jpeg", "")]()
    clean = clean.convert("RGB").resize(picture.size, Image.Resampling.LANCZOS)
    # soft: the strongest edges lost much of their contrast
    assert np.percentile(gradient(picture), 99) < 0.8 * np.percentile(gradient(clean), 99)
    # JPEG-damaged: 8x8 block borders show steps that the clean drawing does not have
    assert _blockiness(picture) > 1.1 * _blockiness(clean)
    assert psnr(picture, clean) < 32  # visibly not the clean drawing


def _blockiness(image: Image.Image) -> float:
    """Mean step across 8-pixel column borders over the mean step elsewhere (1.0: no blocks)."""
    grey = np.asarray(image.convert("L"), dtype=float)
    steps = np.abs(np.diff(grey, axis=1)).mean(axis=0)
    at_borders = steps[7::8].mean()
    return float(at_borders / np.delete(steps, np.s_[7::8]).mean())


@pytest.mark.parametrize("name", sorted(DEGRADED_EXAMPLES))
def test_real_cugan_and_bicubic_differ_plainly_on_degraded_examples(name):
    picture = Image.open(examples_dir() / name).convert("RGB")
    crop = picture.crop((0, 0, 160, min(picture.height, 160)))  # a part is enough and keeps it quick
    learned = cnaps_demo.upscale(crop, engine="realcugan").image.convert("RGB")
    plain = cnaps_demo.upscale(crop, engine="bicubic").image.convert("RGB")
    assert learned.size == plain.size
    assert psnr(learned, plain) < 30  # far apart (a clean drawing: about 32 dB): the eye sees it at full view
    # the learned one has the crisp lines: clearly stronger edges than the bicubic enlargement
    assert np.percentile(gradient(learned), 99) > 1.5 * np.percentile(gradient(plain), 99)  # clean drawing: 1.05


def test_the_background_work_warms_the_cnn_engines_after_the_examples(tmp_path, monkeypatch):
    """After the example cache, both CNN models are loaded and have run once: the first visitor's
    job pays neither torch's import nor a model load."""
    from cnaps_demo.engines.cnn import models
    from cnaps_demo.present.result_cache import ExampleCache, warm_in_background
    from cnaps_demo.settings import get_settings
    from cnaps_demo.api import warm_up

    monkeypatch.setenv("CNAPS_DEVICE", "cpu")
    monkeypatch.setenv("CNAPS_CACHE_DIR", str(tmp_path / "cache"))
    settings = get_settings()
    done: list[dict] = []
    cache = ExampleCache(tmp_path / "examples", settings)
    thread = warm_in_background(cache, [], ("bicubic",), after=lambda: done.append(warm_up(settings)))
    thread.join(timeout=300)
    assert done and set(done[0]) == {"realcugan", "realesrgan-anime"}
    loaded = {key[1] for key in models._models if key[2] == "cpu"}
    assert {"models-se/up2x-conservative", "realesr-animevideov3-x2"} <= loaded
