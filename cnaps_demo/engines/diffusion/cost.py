"""Planning a diffusion job before anything loads: UNet steps, tiles, and the CPU time model.

No torch here: the UI and the "needs a GPU" message use these on any machine.
"""

from __future__ import annotations

from typing import Any

from ...devices import available_cores
from ...errors import InvalidParameterError
from ...image import count_tiles, tile_spans

# The engines' parameter defaults (their ParamSpecs use these; the time model prices them).
DEFAULT_PROMPT = "anime illustration, clean line art, sharp details, high quality"
DEFAULT_NEGATIVE_PROMPT = "blurry, lowres, jpeg artifacts, noise, watermark, text"
DEFAULT_STRENGTH = 0.3
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 6.0
LATENT_DEFAULT_STEPS = 20
LATENT_DEFAULT_GUIDANCE = 0.0
MAX_SEED = 2**32 - 1

DEFAULT_TILE = 1024  # output pixels; a 512 px input runs in one pass
TILE_OVERLAP = 128  # output pixels
TILE_CONTEXT = 32  # output pixels of real neighbours seen around each tile, then cropped
MIN_TILE = 128

# --- CPU time model (used for the "needs a GPU" message) ----------------------------------
# Measured: full-size SD 1.5 UNet, one step with CFG (batch 2) at 512 x 512, 2 CPU cores: ~11 s.
CPU_REFERENCE_CORES = 2
CPU_UNET_STEP_SECONDS_512 = 11.0
CPU_VAE_ENCODE_SECONDS_512 = 4.0  # estimated from FLOPs relative to the UNet
CPU_VAE_DECODE_SECONDS_512 = 9.0
CPU_TEXT_ENCODER_SECONDS = 0.5
CPU_REALCUGAN_SECONDS_PER_MP = 15.0  # per input megapixel, pre-enlarge
LATENT_UNET_COST = 1.3  # the x2 latent upscaler's UNet relative to SD 1.5's, per latent pixel

_PIXELS_512 = 512 * 512


def unet_steps(steps: int, strength: float) -> tuple[int, int]:
    """(scheduler steps, UNet steps) for img2img: UNet steps = int(steps x strength).

    When that is 0 (e.g. 2 steps at strength 0.3) the scheduler gets just enough steps for one
    UNet step at the same noise level (ceil(1/strength)), instead of failing.
    """
    total = max(1, int(steps))
    while int(total * strength) < 1:
        total += 1
    return total, min(int(total * strength), total)


def tiling_plan(tile: int) -> tuple[int, int]:
    """(tile, overlap) in output pixels: 0 means the default; tiles are multiples of 64."""
    if tile <= 0:
        tile = DEFAULT_TILE
    if tile < MIN_TILE:
        raise InvalidParameterError(
            f"tile={tile} is too small for the diffusion engines.",
            hint=f"Use tile >= {MIN_TILE}, or 0 for {DEFAULT_TILE}.",
        )
    tile = tile // 64 * 64
    return tile, min(TILE_OVERLAP, tile // 4)


def _processed_pixels(width: int, height: int, tile: int, overlap: int) -> int:
    """Pixels the model actually processes, overlaps included."""
    if max(width, height) <= tile:
        return width * height
    ys, xs = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    return sum(y1 - y0 for y0, y1 in ys) * sum(x1 - x0 for x0, x1 in xs)


def _unet_cost(pixels: float) -> float:
    """UNet step cost relative to 512 x 512: linear in pixels plus self-attention's quadratic share."""
    ratio = pixels / _PIXELS_512
    return ratio * (0.85 + 0.15 * ratio)


def _cfg_batch(guidance: float) -> float:
    """UNet work per step relative to a CFG step: guidance above 1 runs two passes (batch 2)."""
    return 1.0 if guidance > 1 else 0.5


def estimate_cpu_seconds(
    width: int,
    height: int,
    params: dict[str, Any] | None = None,
    *,
    engine: str = "sd-img2img",
    cores: int | None = None,
    tile: int = 0,
) -> float:
    """Rough CPU seconds to upscale a ``width`` x ``height`` input 2x with a diffusion engine.

    Based on ~11 s per full-size SD 1.5 UNet step with CFG at 512 x 512 on 2 cores, scaled by
    the pixels each tile holds (attention grows faster than linearly) and by core count.
    """
    params = dict(params or {})
    cores = max(1, cores or available_cores())
    core_factor = (CPU_REFERENCE_CORES / cores) ** 0.85
    tile, overlap = tiling_plan(tile)
    out_w, out_h = 2 * width, 2 * height
    n_tiles = count_tiles(out_h, out_w, tile, overlap)
    per_tile = _processed_pixels(out_w, out_h, tile, overlap) / n_tiles
    if engine == "sd-latent-x2":
        steps = int(params.get("steps", LATENT_DEFAULT_STEPS))
        batch = _cfg_batch(float(params.get("guidance", LATENT_DEFAULT_GUIDANCE)))
        unet = n_tiles * steps * CPU_UNET_STEP_SECONDS_512 * batch * LATENT_UNET_COST * per_tile / _PIXELS_512
        encode = CPU_VAE_ENCODE_SECONDS_512 * (width * height) / _PIXELS_512
        pre = 0.0
    else:
        _, k = unet_steps(int(params.get("steps", DEFAULT_STEPS)), float(params.get("strength", DEFAULT_STRENGTH)))
        batch = _cfg_batch(float(params.get("guidance", DEFAULT_GUIDANCE)))
        unet = n_tiles * k * CPU_UNET_STEP_SECONDS_512 * batch * _unet_cost(per_tile)
        encode = CPU_VAE_ENCODE_SECONDS_512 * n_tiles * per_tile / _PIXELS_512
        pre = 0.0
        if params.get("pre_upscaler", "realcugan") == "realcugan":
            pre = CPU_REALCUGAN_SECONDS_PER_MP * width * height / 1e6
    decode = CPU_VAE_DECODE_SECONDS_512 * n_tiles * per_tile / _PIXELS_512
    return (unet + encode + decode + CPU_TEXT_ENCODER_SECONDS) * core_factor + pre


def minutes_text(seconds: float) -> str:
    """``"40 s"`` under 90 seconds, else ``"12 min"``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"
