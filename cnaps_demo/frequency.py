"""What a picture holds at each fineness of detail: spectrum, edge profiles, softness (numpy only).

- ``spectrum(image)``: the radially averaged power spectrum of the luma (BT.601), after removing
  the mean and multiplying by a 2D Hann window (so the picture's borders do not add a false
  cross of fine detail). Frequencies are in cycles per pixel: 0.5 is the finest pattern a pixel
  grid can hold (one light, one dark pixel). An enlargement 2x cannot, by interpolation alone,
  put anything above 0.25 cycles per pixel of its own grid (the small picture's 0.5); a learned
  model adds energy there.
- ``edge_profile(image, start, end)``: the brightness (luma, 0..255) along the straight line from
  ``start`` to ``end`` ((x, y) pixel coordinates, pixel centres at integers), sampled bilinearly:
  a crisp outline is a step, a soft one a ramp.
- ``strongest_edge_line(image, box)``: a default line for ``edge_profile``: across the strongest
  outline inside ``box`` (the whole picture by default), along the brightness gradient.
- ``fine_detail_share(image)``: the share of the picture's detail energy (everything finer than
  ``DETAIL_FROM`` cycles per pixel) that lies in its own finest octave (``FINE_FROM`` to the
  corners of the spectrum). ``is_soft`` says a picture is soft when that share is under
  ``SOFT_BELOW``: calibrated on the bundled drawings (see ``SOFT_BELOW``).

This module sits below ``fidelity`` (which re-exports ``spectrum`` and ``edge_profile``, the
names the page and the README use) and holds ``rgb_array``, the one reading of a picture into
numbers that both share.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from .errors import InvalidParameterError

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601
DETAIL_FROM = 1 / 32  # cycles/px: coarser than this is layout (a face, a sky), not detail
FINE_FROM = 0.25  # cycles/px: the finest octave of a pixel grid starts here (up to 0.5 and the corners)
# A picture is "soft" when under 3% of its detail energy lies in its finest octave. Calibrated on
# the bundled drawings (tests/core/test_frequency.py keeps it honest): the crisp originals of
# cnaps_demo/testset/truth score 6.1-8.5%, the crisp examples 6.7-11.3%, even the testset's
# shrunk, blurred, JPEG inputs 4.0-8.9%; the originals blurred with a Gaussian of 1 px score
# 0.2-0.7%, enlarged 2x with bicubic 0.3-1.4%, the example chibi_face_blurry 1.1%. (A Gaussian of
# 0.6 px lands on 1.4-4.5%: the boundary of "soft" is there, as it is for the eye.)
SOFT_BELOW = 0.03
EDGE_LINE_LENGTH = 16  # pixels: long enough to show a ramp of a few pixels and the flat on either side


def rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """HxWx3 float32 in 0..255; transparency is flattened onto white (how a viewer shows it)."""
    if isinstance(image, np.ndarray):
        array = image.astype(np.float32, copy=False)
        return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        image = canvas
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def luma(image: Any) -> np.ndarray:
    """HxW float32 brightness (BT.601) in 0..255 of a picture or an HxW / HxWx3 array."""
    if isinstance(image, np.ndarray) and image.ndim == 2:
        return image.astype(np.float32, copy=False)
    return rgb_array(image) @ LUMA_WEIGHTS


def _power_2d(image: Any) -> tuple[np.ndarray, np.ndarray]:
    """(radial frequency in cycles/px, power) per FFT coefficient of the windowed, mean-free luma."""
    y = luma(image).astype(np.float64)
    height, width = y.shape
    if min(height, width) < 8:
        raise InvalidParameterError(
            f"A spectrum needs a picture of at least 8x8 pixels; this one is {width}x{height}.",
            hint="Give a larger picture or a larger crop.",
        )
    window = np.outer(np.hanning(height), np.hanning(width))
    y = (y - y.mean()) * window
    power = np.abs(np.fft.rfft2(y)) ** 2 / float(np.sum(window**2))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    # rfft2 keeps one half of the symmetric spectrum: count the columns it folded away twice
    weight = np.full(power.shape, 2.0)
    weight[:, 0] = 1.0
    if width % 2 == 0:
        weight[:, -1] = 1.0
    return radius, power * weight


def spectrum(image: Any, *, bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the luma: (frequencies in cycles/px, mean power per ring).

    ``bins`` rings of equal width from 0 to 0.5 cycles/px (default: half the shorter side, one
    ring per frequency step of the picture's grid). The DC ring is left out (the mean is removed).
    """
    radius, power = _power_2d(image)
    count = bins or max(4, min(radius.shape[0], 2 * (radius.shape[1] - 1)) // 2)
    edges = np.linspace(0.0, 0.5, count + 1)
    index = np.digitize(radius.ravel(), edges) - 1
    inside = (index >= 0) & (index < count)
    sums = np.bincount(index[inside], weights=power.ravel()[inside], minlength=count)
    counts = np.bincount(index[inside], minlength=count)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = counts > 0
    keep[0] = False  # the innermost ring holds the (removed) mean and the window's leak of it
    return centres[keep], sums[keep] / counts[keep]


def fine_detail_share(image: Any) -> float:
    """Share (0..1) of the detail energy (finer than ``DETAIL_FROM``) that lies at ``FINE_FROM`` and above."""
    radius, power = _power_2d(image)
    detail = float(power[radius >= DETAIL_FROM].sum())
    return float(power[radius >= FINE_FROM].sum()) / detail if detail > 0 else 0.0


def is_soft(image: Any) -> bool:
    """True when the picture holds little energy near its own finest frequency (``SOFT_BELOW``)."""
    return fine_detail_share(image) < SOFT_BELOW


def _point(value: Any, name: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name}={value!r} is not an (x, y) point.", hint="Give two numbers, in pixels.") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidParameterError(f"{name}={value!r} is not a finite point.", hint="Give two finite numbers, in pixels.")
    return x, y


def edge_profile(image: Any, start: Any, end: Any, *, samples: int | None = None) -> np.ndarray:
    """Brightness (luma 0..255) at ``samples`` evenly spaced points from ``start`` to ``end`` (both
    included; (x, y) pixels, pixel centres at whole numbers), sampled bilinearly; points outside the
    picture take the nearest border pixel. Default ``samples``: one per pixel of length, plus one."""
    y = luma(image)
    (x0, y0), (x1, y1) = _point(start, "start"), _point(end, "end")
    count = samples if samples is not None else int(math.ceil(math.hypot(x1 - x0, y1 - y0))) + 1
    if count < 2:
        raise InvalidParameterError(f"samples={count} is too few for a profile.", hint="Use 2 or more.")
    t = np.linspace(0.0, 1.0, count)
    xs = np.clip(x0 + (x1 - x0) * t, 0, y.shape[1] - 1)
    ys = np.clip(y0 + (y1 - y0) * t, 0, y.shape[0] - 1)
    left, top = np.minimum(np.floor(xs).astype(int), y.shape[1] - 2 if y.shape[1] > 1 else 0), np.minimum(
        np.floor(ys).astype(int), y.shape[0] - 2 if y.shape[0] > 1 else 0
    )
    right, bottom = np.minimum(left + 1, y.shape[1] - 1), np.minimum(top + 1, y.shape[0] - 1)
    fx, fy = xs - left, ys - top
    upper = y[top, left] * (1 - fx) + y[top, right] * fx
    lower = y[bottom, left] * (1 - fx) + y[bottom, right] * fx
    return (upper * (1 - fy) + lower * fy).astype(np.float32)


def _smoothed_gradient(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradients of ``y`` after a 3x3 binomial blur, so one noisy pixel does not win."""
    padded = np.pad(y, 2, mode="edge")
    taps = np.array([1.0, 2.0, 1.0]) / 4
    blurred = sum(w * padded[:, i : i + padded.shape[1] - 2] for i, w in enumerate(taps))
    blurred = sum(w * blurred[i : i + blurred.shape[0] - 2] for i, w in enumerate(taps))
    gx = (blurred[1:-1, 2:] - blurred[1:-1, :-2]) / 2
    gy = (blurred[2:, 1:-1] - blurred[:-2, 1:-1]) / 2
    return gx, gy


def strongest_edge_line(
    image: Any, box: tuple[int, int, int, int] | None = None, *, length: float = EDGE_LINE_LENGTH
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(start, end), (x, y) pixels: a line of ``length`` pixels centred on the strongest outline
    inside ``box`` (left, top, right, bottom; default the whole picture), across it (along the
    brightness gradient, from dark to light), moved inward if it would leave the picture. Ties go to
    the first pixel in reading order."""
    y = luma(image)
    height, width = y.shape
    left, top, right, bottom = box if box is not None else (0, 0, width, height)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(width, int(right)), min(height, int(bottom))
    if right - left < 3 or bottom - top < 3:
        raise InvalidParameterError(
            f"box={box!r} is too small or outside the {width}x{height} picture.", hint="Give a box of at least 3x3 pixels inside it."
        )
    gx, gy = _smoothed_gradient(y)
    magnitude = np.hypot(gx, gy)[top:bottom, left:right]
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    cy, cx = top + int(row), left + int(col)
    dx, dy = float(gx[cy, cx]), float(gy[cy, cx])
    norm = math.hypot(dx, dy)
    ux, uy = (dx / norm, dy / norm) if norm > 0 else (1.0, 0.0)  # a flat box: a horizontal line
    half = length / 2
    # near the border, slide the line inward along itself (it still crosses the outline), then clip
    mx = float(np.clip(cx, min(abs(ux) * half, (width - 1) / 2), max(width - 1 - abs(ux) * half, (width - 1) / 2)))
    my = float(np.clip(cy, min(abs(uy) * half, (height - 1) / 2), max(height - 1 - abs(uy) * half, (height - 1) / 2)))
    ends = [(mx - ux * half, my - uy * half), (mx + ux * half, my + uy * half)]
    (x0, y0), (x1, y1) = ((min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)) for x, y in ends)
    return (x0, y0), (x1, y1)
