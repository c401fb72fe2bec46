"""The fast fp32 CPU path: Winograd (NNPACK) 3x3 convolutions in bands, fused activations, and
progress that moves (and Stop that lands) inside a single tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnaps_demo
from cnaps_demo.bench.worker import make_image
from cnaps_demo.engines import cnn
from cnaps_demo.engines.base import RunOptions
from cnaps_demo.engines.cnn import models
from cnaps_demo.errors import JobCancelledError
from cnaps_demo.ncnn.layers import fast_conv


def cartoon(width: int, height: int, seed: int = 0):
    return make_image(width, height, seed)


def test_nnpack_is_there():
    # The official PyTorch CPU wheels ship NNPACK; without it the fast path silently falls back.
    assert fast_conv.nnpack_ready()


CASES = [
    # (in, out, height, width, (left, right, top, bottom), band rows; 0 = automatic)
    (16, 16, 7, 9, (1, 1, 1, 1), 0),
    (16, 24, 13, 5, (0, 0, 0, 0), 1),  # one-row bands
    (32, 16, 3, 3, (1, 1, 1, 1), 1),  # a 3x3 map: every band touches the padding
    (17, 19, 11, 23, (1, 1, 1, 1), 4),  # odd channel counts, bands not a multiple of 6
    (16, 16, 1, 31, (1, 1, 1, 1), 1),  # a one-pixel-high map
    (16, 16, 29, 1, (1, 1, 1, 1), 5),  # a one-pixel-wide map
    (24, 16, 40, 37, (2, 0, 1, 0), 7),  # asymmetric padding
    (64, 64, 150, 70, (0, 0, 0, 0), 0),
]


def _helper(weight):
    return weight.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(("cin", "cout", "height", "width", "pads", "rows"), CASES)
@pytest.mark.parametrize("helper", [False, True], ids=["nnpack-only", "with-direct-helper"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_winograd_equals_conv2d(cin, cout, height, width, pads, rows, helper, layout):
    gen = torch.Generator().manual_seed(cin * 1000 + height)
    x = torch.randn(1, cin, height, width, generator=gen)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (3 * cin**0.5)
    bias = torch.randn(cout, generator=gen)
    expected = F.conv2d(F.pad(x, pads), weight, bias)
    with torch.inference_mode():
        got = fast_conv.winograd_conv3x3(
            x, weight, bias, pads, rows=rows, helper_weight=_helper(weight) if helper else None
        )
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-4)


def test_activation_is_applied_per_band():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 16, 20, 18, generator=gen)
    weight, bias = torch.randn(16, 16, 3, 3, generator=gen) / 12, torch.randn(16, generator=gen)
    slope = torch.rand(16, generator=gen)
    expected = F.prelu(F.conv2d(x, weight, bias, padding=1), slope)
    with torch.inference_mode():
        got = fast_conv.winograd_conv3x3(x, weight, bias, (1, 1, 1, 1), lambda y: F.prelu(y, slope), rows=6)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-4)


def test_to_nchw_is_contiguous_and_equal():
    x = torch.randn(2, 5, 7, 3).contiguous(memory_format=torch.channels_last)
    y = fast_conv.to_nchw(x)
    assert y.is_contiguous()
    torch.testing.assert_close(y, x, rtol=0, atol=0)


def test_only_fp32_cpu_3x3_layers_take_the_fast_path():
    assert fast_conv.eligible((64, 64, 3, 3), (1, 1), (1, 1), 1)
    assert not fast_conv.eligible((64, 3, 3, 3), (1, 1), (1, 1), 1)  # RGB input: direct is faster
    assert not fast_conv.eligible((64, 64, 2, 2), (2, 2), (1, 1), 1)
    assert not fast_conv.eligible((64, 64, 3, 3), (1, 1), (2, 2), 1)
    token = fast_conv.current_algorithm.set("winograd")
    try:
        assert fast_conv.use_winograd(torch.zeros(1, 16, 4, 4))
        assert not fast_conv.use_winograd(torch.zeros(1, 16, 4, 4, dtype=torch.bfloat16))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fast_conv.use_winograd(torch.zeros(1, 16, 4, 4))
    finally:
        fast_conv.current_algorithm.reset(token)
    assert not fast_conv.use_winograd(torch.zeros(1, 16, 4, 4))  # "direct" outside a winograd net


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("engine", ["realcugan", "realesrgan-anime"])
def test_fast_path_matches_the_direct_fp32_reference(engine):
    image = cartoon(150, 122, seed=7)
    runs = {}
    for conv in ("winograd", "direct"):
        options = RunOptions(cpu_bf16=False, cpu_conv=conv)
        net_stage = cnaps_demo.engines.get_engine(engine).run(image, scale=2, params=_defaults(engine), options=options)
        runs[conv] = net_stage
    detail = next(s for s in runs["winograd"].stages if "convolution" in s.detail).detail
    assert detail["convolution"].startswith("winograd"), detail
    assert next(s for s in runs["direct"].stages if "convolution" in s.detail).detail["convolution"].startswith("direct")
    assert _psnr(np.asarray(runs["winograd"].image), np.asarray(runs["direct"].image)) >= 45.0


def _defaults(engine_id: str) -> dict:
    return {spec.name: spec.default for spec in cnaps_demo.engines.get_engine(engine_id).params}


@pytest.mark.parametrize("engine", ["realcugan", "realesrgan-anime"])
def test_one_tile_run_reports_progress_inside_the_tile(engine):
    seen: list[tuple[int, int, str]] = []
    result = cnaps_demo.upscale(
        cartoon(96, 80, seed=3), engine, device="cpu", progress=lambda d, t, text: seen.append((d, t, text))
    )
    assert result.stages[1].detail["tiles"] == 1 if engine == "realesrgan-anime" else True
    fractions = [done / total for done, total, _ in seen]
    inside = [f for f in fractions if 0 < f < 1]
    assert len(inside) >= 5, fractions  # the bar moves during the one tile
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize("engine", ["realcugan", "realesrgan-anime"])
def test_raising_from_progress_stops_the_run_mid_tile(engine):
    calls: list[float] = []

    def stop_at_a_third(done, total, text):
        calls.append(done / total)
        if done / total > 0.3:
            raise JobCancelledError("Stopped.", hint="Press Upscale to run again.")

    with pytest.raises(JobCancelledError):
        cnaps_demo.upscale(cartoon(96, 80, seed=4), engine, device="cpu", progress=stop_at_a_third)
    assert 0.3 < calls[-1] < 1.0, calls  # it stopped inside the single tile, not after it


def test_warm_up_loads_and_runs_each_engine():
    spent = cnn.warm_up(("realesrgan-anime",), RunOptions(cpu_bf16=False))
    assert set(spent) == {"realesrgan-anime"} and spent["realesrgan-anime"] > 0
    assert any(key[0] == cnn.REALESRGAN for key in models._models)
