"""Alpha: split an RGBA image into RGB + alpha for the upscalers, and merge them back.

Upscalers see only the RGB part, so the colour stored under transparent pixels (often black
or garbage) would be dragged into edges; ``split_alpha`` replaces it by colour bled from the
nearest opaque pixels (push-pull fill) before the engine ever sees it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .modes import normalise

__all__ = ["BLEED_ALPHA", "merge_alpha", "split_alpha"]

# Below this alpha a pixel's own colour is progressively replaced by bled colour; above it
# the colour is kept exactly (anti-aliased edges carry real line colour).
BLEED_ALPHA = 32


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Return (RGB, alpha "L" or None); transparent pixels get colours bled from opaque ones.

    Upscalers see only the RGB part, so the colour under transparent pixels (often black
    or garbage) would be dragged into edges; filling it from nearby opaque colours fixes that.
    """
    if image.mode not in ("RGB", "RGBA"):
        image = normalise(image, [])
    if image.mode == "RGB":
        return image, None
    pixels = np.asarray(image)
    alpha = np.ascontiguousarray(pixels[..., 3])
    if alpha.min() == 255:
        return image.convert("RGB"), None
    rgb = np.ascontiguousarray(pixels[..., :3])
    if alpha.min() < BLEED_ALPHA:
        rgb = _bleed(rgb, alpha)
    return Image.fromarray(rgb), Image.fromarray(alpha)


def merge_alpha(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """Attach ``alpha`` (resized bicubically to ``rgb``'s size if needed) -> RGBA."""
    if alpha is None:
        return rgb if rgb.mode in ("RGB", "RGBA") else rgb.convert("RGB")
    if alpha.mode != "L":
        alpha = alpha.convert("L")
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.BICUBIC)
    out = rgb.convert("RGB")  # always a new image: the caller's rgb is not modified
    out.putalpha(alpha)
    return out


def _bleed(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Replace colours of (nearly) transparent pixels by a push-pull fill from opaque ones.

    Full-resolution work is done in bands of rows, so a 4096 x 4096 image needs a few
    hundred MB rather than several GB of float temporaries.
    """
    if not alpha.any():
        return rgb  # nothing opaque to bleed from
    height, width = alpha.shape

    # Push the full-resolution level straight from uint8, one 2x2 phase at a time.
    p_sum = np.zeros(((height + 1) // 2, (width + 1) // 2, 3), np.float32)
    w_sum = np.zeros(p_sum.shape[:2], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            a = alpha[dy::2, dx::2].astype(np.float32) / 255.0
            w_sum[: a.shape[0], : a.shape[1]] += a
            p_sum[: a.shape[0], : a.shape[1]] += rgb[dy::2, dx::2] * a[..., None]
    coarse = _push_pull(*_clamp(p_sum, w_sum))

    out = rgb.copy()
    band = max(1, (1 << 20) // width)  # ~1 Mpixel of float work per band
    for top in range(0, height, band):
        rows = slice(top, min(height, top + band))
        a_band = alpha[rows]
        if a_band.min() >= BLEED_ALPHA:
            continue  # every pixel here keeps its own colour
        weight = a_band.astype(np.float32)[..., None] / 255.0
        colour = rgb[rows].astype(np.float32)
        up = _upsample(coarse, rows, width)
        fill = colour * weight + (1.0 - weight) * up
        keep = np.clip(a_band.astype(np.float32) / BLEED_ALPHA, 0.0, 1.0)[..., None]
        out[rows] = np.rint(np.clip(colour * keep + fill * (1.0 - keep), 0, 255))
    return out


def _clamp(p_sum: np.ndarray, w_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clamp summed weights to 1 (rescaling the premultiplied colour to match).

    The clamp is what makes the fill prefer the nearest colour: a single opaque pixel
    fully defines its coarse cell instead of being averaged away by larger regions.
    """
    weight = np.minimum(w_sum, 1.0)
    scale = np.divide(weight, w_sum, out=np.zeros_like(weight), where=w_sum > 0)
    return p_sum * scale[..., None], weight


def _push_pull(premultiplied: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Pyramid fill (Gortler et al. push-pull): every pixel gets the nearest-weighted colour.

    Push: 2x2 sums of premultiplied colour and weight, clamped (``_clamp``). Pull:
    composite each level over the bilinearly upsampled coarser fill. O(pixels), and no
    holes whatever the size of the transparent area.
    """
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    p, w = premultiplied, weight
    while p.shape[0] > 1 or p.shape[1] > 1:
        levels.append((p, w))
        p, w = _clamp(_sum2x2(p), _sum2x2(w))
    fill = np.divide(p, w[..., None], out=np.zeros_like(p), where=w[..., None] > 0)
    for p, w in reversed(levels):
        up = _upsample(fill, slice(0, p.shape[0]), p.shape[1])
        fill = p + (1.0 - w)[..., None] * up
    return fill


def _sum2x2(x: np.ndarray) -> np.ndarray:
    """Sum over 2x2 blocks; a missing odd edge counts as zero (zero weight = no information)."""
    h, w = x.shape[:2]
    out = np.zeros(((h + 1) // 2, (w + 1) // 2) + x.shape[2:], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            part = x[dy::2, dx::2]
            out[: part.shape[0], : part.shape[1]] += part
    return out


def _upsample(x: np.ndarray, rows: slice, width: int) -> np.ndarray:
    """Bilinear 2x upsample of a pyramid level, for output ``rows`` and ``width`` columns.

    Only the coarse rows the band needs (plus one each side) are upsampled.
    """
    lo = max(0, rows.start // 2 - 1)
    hi = min(x.shape[0], (rows.stop - 1) // 2 + 2)
    doubled = _double(_double(x[lo:hi], 0), 1)
    start = rows.start - 2 * lo
    return doubled[start : start + rows.stop - rows.start, :width]


def _double(x: np.ndarray, axis: int) -> np.ndarray:
    """2x linear upsample along ``axis`` with pixel centres aligned (edges repeated).

    Output 2k sits at k - 1/4 and 2k+1 at k + 1/4 in input coordinates, so each is
    3/4 of its own input sample plus 1/4 of the neighbour on that side.
    """
    x = np.moveaxis(x, axis, 0)
    out = np.empty((2 * x.shape[0],) + x.shape[1:], np.float32)
    np.multiply(x, 0.75, out=out[0::2])
    np.multiply(x, 0.75, out=out[1::2])
    out[2::2] += 0.25 * x[:-1]
    out[0] += 0.25 * x[0]
    out[1:-1:2] += 0.25 * x[1:]
    out[-1] += 0.25 * x[-1]
    return np.moveaxis(out, 0, axis)
