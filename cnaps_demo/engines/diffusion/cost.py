"""Planning a diffusion job before anything loads: UNet steps, tiles, and the CPU time model.

No torch here: the UI and the "needs a GPU" message use these on any machine. The shared
shape of the model lives here (SD 1.5's measured rates); each engine prices its own work
(``DiffusionTraits.cpu_work``, with its own factors and defaults in its own module), so nothing
here knows an engine by its id.
"""

from __future__ import annotations

from typing import Any

from ...devices import available_cores
from ...errors import InvalidParameterError
from ...image import count_tiles, tile_spans
from .descriptor import Traits

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

PIXELS_512 = 512 * 512


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


def processed_pixels(width: int, height: int, tile: int, overlap: int) -> int:
    """Pixels the model actually processes, overlaps included."""
    if max(width, height) <= tile:
        return width * height
    ys, xs = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    return sum(y1 - y0 for y0, y1 in ys) * sum(x1 - x0 for x0, x1 in xs)


def unet_cost(pixels: float) -> float:
    """UNet step cost relative to 512 x 512: linear in pixels plus self-attention's quadratic share."""
    ratio = pixels / PIXELS_512
    return ratio * (0.85 + 0.15 * ratio)


def cfg_batch(guidance: float) -> float:
    """UNet work per step relative to a CFG step: guidance above 1 runs two passes (batch 2)."""
    return 1.0 if guidance > 1 else 0.5


def _model_seconds(
    width: int, height: int, params: dict[str, Any] | None, engine: Traits, cores: int | None, tile: int
) -> tuple[float, float]:
    """(seconds of the diffusion model on ``cores``, seconds of the work before it) for a 2x job."""
    params = dict(params or {})
    cores = max(1, cores or available_cores())
    core_factor = (CPU_REFERENCE_CORES / cores) ** 0.85
    tile, overlap = tiling_plan(tile)
    out_w, out_h = 2 * width, 2 * height
    n_tiles = count_tiles(out_h, out_w, tile, overlap)
    per_tile = processed_pixels(out_w, out_h, tile, overlap) / n_tiles
    unet, encode, pre = engine.cpu_work(width, height, params, n_tiles, per_tile)
    decode = CPU_VAE_DECODE_SECONDS_512 * n_tiles * per_tile / PIXELS_512
    return (unet + encode + decode + CPU_TEXT_ENCODER_SECONDS) * core_factor, pre


def estimate_cpu_seconds(
    width: int,
    height: int,
    params: dict[str, Any] | None = None,
    *,
    engine: Traits,
    cores: int | None = None,
    tile: int = 0,
) -> float:
    """Rough CPU seconds to upscale a ``width`` x ``height`` input 2x with the diffusion ``engine``
    (it prices its own work: ``DiffusionTraits.cpu_work``).

    Based on ~11 s per full-size SD 1.5 UNet step with CFG at 512 x 512 on 2 cores, scaled by
    the pixels each tile holds (attention grows faster than linearly) and by core count.
    """
    model, pre = _model_seconds(width, height, params, engine, cores, tile)
    return model + pre


def minutes_text(seconds: float) -> str:
    """``"40 s"`` under 90 seconds, else ``"12 min"``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


# --- GPU time model (the @spaces.GPU duration on a ZeroGPU Space) ------------------------------
# Unmeasured here (no GPU lent yet): rough fp16 figures for an H100-class GPU, kept on the slow
# side, so a job is never cut off; bench_sd_gpu.py measures the real ones.
GPU_UNET_STEP_SECONDS_512 = 0.04  # SD 1.5 UNet, one CFG step (batch 2) at 512 x 512
GPU_VAE_SECONDS_512 = 0.05  # encode + decode at 512 x 512
GPU_LOAD_SECONDS = 25.0  # first job of a process: weights from disk onto the GPU
GPU_MIN_SECONDS, GPU_MAX_SECONDS = 20, 300
GPU_MARGIN = 1.5


def estimate_gpu_seconds(
    width: int,
    height: int,
    params: dict[str, Any] | None = None,
    *,
    engine: Traits,
    tile: int = 0,
    loaded: bool = False,
) -> float:
    """Rough GPU seconds of one 2x diffusion job on a ``width`` x ``height`` input (``loaded``:
    the pipeline is already on the GPU). The pre-enlarge is priced at its CPU rate."""
    model, pre = _model_seconds(width, height, params, engine, CPU_REFERENCE_CORES, tile)
    # The CPU model's shape (steps, tiles, attention, CFG, ControlNet) at the GPU's rate.
    gpu_share = model * GPU_UNET_STEP_SECONDS_512 / CPU_UNET_STEP_SECONDS_512
    vae = GPU_VAE_SECONDS_512 * 4 * width * height / PIXELS_512
    return gpu_share + vae + pre + (0.0 if loaded else GPU_LOAD_SECONDS)


def spaces_duration(
    width: int, height: int, params: dict[str, Any] | None = None, *, engine: Traits, tile: int = 0
) -> int:
    """Seconds to ask ``@spaces.GPU(duration=...)`` for: the estimate with a margin, within 20-300."""
    seconds = estimate_gpu_seconds(width, height, params, engine=engine, tile=tile) * GPU_MARGIN
    return int(min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, round(seconds))))
