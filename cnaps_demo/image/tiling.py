"""Pure tiling: run an image-to-image function tile by tile and blend the tiles seamlessly.

Nothing here keeps state; the same inputs give the same output. Each tile is cut with
``context`` extra pixels on every side (real neighbours inside the image, reflection at
its border) so a convolutional model sees what it would see in a whole-image run. The
tile function returns the upscaled tile *with or without* that margin; we crop whatever
is left symmetrically. Neighbouring tiles overlap by ``overlap`` pixels and are blended
with linear feathering, normalised by the summed weights, so no seam shows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InvalidParameterError
from ..stages import ProgressFn, no_progress

__all__ = ["TileFn", "check_tiling", "count_tiles", "tile_spans", "tiled_apply"]

TileFn = Callable[[np.ndarray], np.ndarray]


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Start/end pairs covering ``[0, length)`` with tiles of at most ``tile`` that overlap by >= ``overlap``."""
    if length <= tile:
        return [(0, length)]
    stride = tile - overlap
    count = int(np.ceil((length - overlap) / stride))
    # Spread the tiles evenly so every overlap is at least `overlap` and the last tile ends at `length`.
    starts = np.linspace(0, length - tile, count).round().astype(int)
    return [(int(s), int(s) + tile) for s in starts]


def count_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles ``tiled_apply`` cuts a ``height`` x ``width`` image into.

    1 when ``tile`` <= 0 (no tiling) or one tile covers the whole image.
    """
    if tile <= 0 or max(height, width) <= tile:
        return 1
    return len(tile_spans(height, tile, overlap)) * len(tile_spans(width, tile, overlap))


def _ramp(size: int, fade_start: int, fade_end: int) -> np.ndarray:
    """1-D weight: rises over ``fade_start`` pixels, falls over the last ``fade_end``; never zero."""
    weight = np.ones(size, dtype=np.float32)
    if fade_start:
        weight[:fade_start] = (np.arange(fade_start, dtype=np.float32) + 0.5) / fade_start
    if fade_end:
        weight[size - fade_end :] = np.minimum(
            weight[size - fade_end :], ((np.arange(fade_end, dtype=np.float32) + 0.5) / fade_end)[::-1]
        )
    return weight


def check_tiling(tile: int, overlap: int, context: int) -> None:
    if tile < 16:
        raise InvalidParameterError(f"tile={tile} is too small.", hint="Use tile >= 16 pixels, or 0 for no tiling.")
    if not 0 <= overlap < tile // 2:
        raise InvalidParameterError(
            f"overlap={overlap} must be between 0 and half the tile ({tile // 2 - 1}).",
            hint="Lower the overlap or raise the tile size.",
        )
    if context < 0:
        raise InvalidParameterError(f"context={context} must be >= 0.", hint="Use 0 or a positive pixel count.")


def _feather(spans: list[tuple[int, int]], index: int, scale: int) -> np.ndarray:
    """The blend weights along one axis of tile ``index`` (output pixels): it fades only towards its
    neighbours' overlaps; the picture's own borders keep full weight."""
    start, end = spans[index]
    fade_in = (spans[index - 1][1] - start) * scale if index > 0 else 0
    fade_out = (end - spans[index + 1][0]) * scale if index + 1 < len(spans) else 0
    return _ramp((end - start) * scale, fade_in, fade_out)


def tiled_apply(
    image: np.ndarray,
    fn: TileFn,
    *,
    scale: int,
    tile: int,
    overlap: int = 16,
    context: int = 0,
    progress: ProgressFn = no_progress,
    description: str = "tile",
) -> np.ndarray:
    """Apply ``fn`` (an x``scale`` upscaler of HxWxC float32 arrays) tile by tile.

    ``tile`` <= 0 means one tile covering the whole image. Returns a float32 array of
    shape (H*scale, W*scale, C_out).
    """
    if image.ndim != 3:
        raise InvalidParameterError(f"image must be HxWxC, got shape {image.shape}.", hint="Pass an RGB array.")
    height, width = image.shape[:2]
    if tile <= 0:  # one tile, whatever the image's size: the minimum applies to chosen tiles only
        tile = max(height, width)
        overlap = 0
        check_tiling(16, 0, context)
    else:
        check_tiling(tile, overlap, context)
    ys, xs = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    total = len(ys) * len(xs)

    source = image
    if context:
        mode = "reflect" if min(height, width) > context else "edge"
        source = np.pad(image, ((context, context), (context, context), (0, 0)), mode=mode)

    output: np.ndarray | None = None
    weight_sum = np.zeros((height * scale, width * scale, 1), dtype=np.float32)
    done = 0
    for yi, (y0, y1) in enumerate(ys):
        for xi, (x0, x1) in enumerate(xs):
            piece = source[y0 : y1 + 2 * context, x0 : x1 + 2 * context]
            result = np.asarray(fn(piece), dtype=np.float32)
            inner_h, inner_w = (y1 - y0) * scale, (x1 - x0) * scale
            crop_y, crop_x = (result.shape[0] - inner_h) // 2, (result.shape[1] - inner_w) // 2
            if crop_y < 0 or crop_x < 0:
                raise ValueError(f"tile function returned {result.shape[:2]}, smaller than {inner_h}x{inner_w}")
            result = result[crop_y : crop_y + inner_h, crop_x : crop_x + inner_w]
            if output is None:
                output = np.zeros((height * scale, width * scale, result.shape[2]), dtype=np.float32)
            weight = _feather(ys, yi, scale)[:, None, None] * _feather(xs, xi, scale)[None, :, None]
            region = (slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale))
            output[region] += result * weight
            weight_sum[region] += weight
            done += 1
            progress(done, total, f"{description} {done}/{total}")
    assert output is not None
    output /= weight_sum
    return output
