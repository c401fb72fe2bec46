"""Colour fix: keep the model's fine detail, take the colours from the picture the user gave.

A model can drift in colour: anime turns warmer or darker, a flat fill changes tone. The fix
splits both pictures into a fine part (edges, texture) and a coarse part (mean colour and slow
gradients), and recombines the *output's* fine part with the coarse part of the *input*
enlarged to the output's size (bicubic):

    fixed = output - low(output) + low(bicubic(input))

``low`` is either the wavelet low band of StableSR's ``wavelet_color_fix`` (five levels of an
a-trous [1 2 1]/4 blur, dilations 1 to 16 output pixels) or one Gaussian blur
(``GAUSSIAN_SIGMA`` output pixels). Which one is the default, and for which engine families the
fix is on by default, was measured on the bundled evaluation set (README, "Colour fix").
Numpy and Pillow only; nothing here imports torch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .errors import InvalidParameterError
from .fidelity import blur, gaussian_kernel

METHODS = ("wavelet", "gaussian")
DEFAULT_METHOD = "wavelet"
WAVELET_LEVELS = 5
GAUSSIAN_SIGMA = 8.0  # output pixels
_A_TROUS = np.array([0.25, 0.5, 0.25], dtype=np.float32)


def resolve(value: bool | str | None, on_by_default: bool) -> str:
    """The method to run ("wavelet", "gaussian") or "off", from a caller's ``colour_fix`` value.

    ``None`` is the engine's default (``Engine.colour_fix_by_default``, passed as ``on_by_default``);
    ``True`` the default method; ``False`` or "off" none.
    """
    if value is None:
        return DEFAULT_METHOD if on_by_default else "off"
    if isinstance(value, bool):
        return DEFAULT_METHOD if value else "off"
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return DEFAULT_METHOD
    if text in ("off", "false", "no", "0", "none"):
        return "off"
    if text in METHODS:
        return text
    raise InvalidParameterError(
        f"colour_fix={value!r} is not allowed.", hint=f"Use True, False, or one of: {', '.join(METHODS)}."
    )


def _dilated(kernel: np.ndarray, dilation: int) -> np.ndarray:
    out = np.zeros((len(kernel) - 1) * dilation + 1, dtype=np.float32)
    out[::dilation] = kernel
    return out


def reach(method: str = DEFAULT_METHOD) -> int:
    """How many pixels away a pixel of ``low_frequencies`` looks, along each axis."""
    if method == "gaussian":
        return len(gaussian_kernel(GAUSSIAN_SIGMA)) // 2
    if method != "wavelet":
        raise InvalidParameterError(f"Unknown colour fix method {method!r}.", hint=f"Use one of: {', '.join(METHODS)}.")
    return sum(2**level for level in range(WAVELET_LEVELS))


def low_frequencies(rgb: np.ndarray, method: str = DEFAULT_METHOD, workers: int = 1) -> np.ndarray:
    """The coarse part of an HxWx3 float image (mean colour, slow gradients).

    With ``workers`` > 1, threads take horizontal bands, each cut with ``reach`` rows of its
    neighbours' pixels, so the result is the same bit for bit (numpy frees the GIL in its loops).
    Twice as many bands as workers: smaller bands stay in cache (1240x1240 on the 2-core AVX2 CPU:
    0.24 s in one piece, 0.11 s in four bands on two threads)."""
    margin = reach(method)
    height = rgb.shape[0]
    bands = min(2 * workers, height // (4 * margin)) if workers > 1 else 1
    if bands <= 1:
        return _low_frequencies(rgb, method)
    edges = np.linspace(0, height, bands + 1).round().astype(int)

    def band(k: int) -> np.ndarray:
        top, bottom = int(edges[k]), int(edges[k + 1])
        start = max(0, top - margin)
        low = _low_frequencies(rgb[start : min(height, bottom + margin)], method)
        return low[top - start : bottom - start]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(band, range(bands))), axis=0)


def _low_frequencies(rgb: np.ndarray, method: str) -> np.ndarray:
    if method == "gaussian":
        return blur(rgb, gaussian_kernel(GAUSSIAN_SIGMA))
    low = rgb.astype(np.float32)
    for level in range(WAVELET_LEVELS):
        low = blur(low, _dilated(_A_TROUS, 2**level))
    return low


def colour_fix(output: Image.Image, source: Image.Image, method: str = DEFAULT_METHOD, workers: int = 1) -> Image.Image:
    """``output`` (RGB, an enlargement of ``source``) with its low frequencies taken from ``source``
    (``workers``: threads for the blur, see ``low_frequencies``)."""
    if output.mode != "RGB" or source.mode != "RGB":
        output, source = output.convert("RGB"), source.convert("RGB")
    reference = source.resize(output.size, Image.Resampling.BICUBIC)
    detail = np.asarray(output, dtype=np.float32)
    guide = np.asarray(reference, dtype=np.float32)
    # low() is linear: one pass over the difference instead of one over each picture (2x faster).
    fixed = detail - low_frequencies(detail - guide, method, workers)
    return Image.fromarray(np.clip(fixed, 0, 255).round().astype(np.uint8), "RGB")
