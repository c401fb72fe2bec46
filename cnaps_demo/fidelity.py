"""How faithful is an enlargement? Figures with and without the original picture (numpy only).

Without a ground truth (any real upload), the result is checked against the picture the user
gave, the only evidence there is:

- ``lr_psnr``: *LR consistency*. The result is shrunk back to the input's size with the
  ``DOWNSCALE`` kernel (box: each input pixel becomes the mean of the ``scale x scale`` block
  it covers, the same area averaging that ``present.compare.simulate_blurry_source`` and the
  evaluation set use to make their small inputs) and compared with the input, in dB. A result
  that only adds detail below the input's pixel size scores high; one that moved edges,
  changed colours or drew new shapes scores low. A nearest-neighbour 2x scores infinity
  (exactly consistent, and useless): this figure measures faithfulness, not quality.
  ``lr_disagreement`` is the per-pixel map of the same comparison.
- ``sharpness``: gradient energy (mean squared luminance step between neighbouring pixels) of
  the result divided by that of a bicubic enlargement of the input: 1.0 is "as soft as
  bicubic", 2.0 twice the edge energy. Noise and invented texture count as sharpness too.
- ``colour_shift``: after shrinking, both pictures are blurred (a Gaussian of ``COLOUR_SIGMA``
  input pixels) so only mean colour and slow gradients remain; the mean absolute difference
  per channel, in /255 (``colour_shift_rgb``), and its largest channel (``colour_shift``).

With the original picture (``truth``, exactly the result's size): ``psnr`` (dB, RGB) and
``ssim`` (Wang et al. 2004: 11-tap Gaussian window, sigma 1.5, averaged over R, G and B).

``METRIC_HELP`` holds one plain-words line per figure for the page; ``METRIC_LABELS`` the
short names; ``format_figure`` a figure as text. ``verdict(metric, value)`` says a figure in a
word and a sentence on the scale ``scale_text(metric)`` states (``VERDICT_SCALES``), with
``SOFT_TRUTH_NOTE`` added to PSNR and SSIM when the original is itself soft (``is_soft``).

The frequency view lives in ``cnaps_demo.frequency`` and is re-exported here under the names the
page uses: ``spectrum``, ``edge_profile``, ``strongest_edge_line``, ``fine_detail_share``,
``is_soft``. Nothing here imports torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from .errors import InvalidParameterError
from .frequency import LUMA_WEIGHTS, rgb_array
# Re-exported: ``cnaps_demo.fidelity.spectrum`` and ``.edge_profile`` are the names the page and the README use.
from .frequency import edge_profile, fine_detail_share, is_soft, spectrum, strongest_edge_line  # noqa: F401

DOWNSCALE = "box"  # area average over each scale x scale block; see the module docstring
COLOUR_SIGMA = 4.0  # input pixels: what is left after this blur is "the colour", not the detail
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 taps

# Which figures are better when higher; colour shift is better when lower.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lr_psnr": True, "sharpness": True, "colour_shift": False}

METRIC_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "lr_psnr": "LR-PSNR (dB)",
    "sharpness": "sharpness (x bicubic)",
    "colour_shift": "colour shift (/255)",
}

METRIC_HELP = {
    "lr_psnr": (
        "Shrink the result back to your picture's size and compare: higher means the model kept to what your "
        "picture shows; low means it changed or invented things your picture does not support."
    ),
    "sharpness": (
        "How much edge contrast the result has compared with a plain bicubic enlargement (1.0 = just as soft). "
        "Crisp lines raise it, but so do noise and made-up texture."
    ),
    "colour_shift": (
        "How far the overall colours moved from your picture, in steps of 1/255: below 1 is invisible, "
        "above about 2 a tint or darkening can show."
    ),
    "psnr": (
        "Closeness to the original picture, pixel by pixel (higher is closer; +3 dB is about half the error). "
        "A sharper result can score lower against a soft original, because it differs from the softness too."
    ),
    "ssim": (
        "Similarity of local structure (edges, contrast) to the original picture, from 0 to 1 (1 = identical), "
        "closer to what the eye notices than PSNR."
    ),
}


def downscale(result: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Box (area-average) ``result`` (HxWx3 float) down to ``size`` (width, height).

    Needs an exact integer factor per side, as every engine's output has; the mean of each
    block is taken in float, so a nearest-neighbour enlargement comes back exactly.
    """
    height, width = result.shape[:2]
    fx, fy = width // size[0] if size[0] else 0, height // size[1] if size[1] else 0
    if fx < 1 or fy < 1 or fx * size[0] != width or fy * size[1] != height:
        raise InvalidParameterError(
            f"The result ({width}x{height}) is not a whole multiple of the input ({size[0]}x{size[1]}).",
            hint="Compare a result with the input it was made from (scale x its width and height).",
        )
    return result.reshape(size[1], fy, size[0], fx, -1).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def gaussian_kernel(sigma: float, radius: int | None = None) -> np.ndarray:
    radius = int(math.ceil(3 * sigma)) if radius is None else radius
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1, dtype=np.float64) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def blur(array: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable filter along both image axes, mirrored edges (a constant stays that constant)."""
    radius = len(kernel) // 2
    out = array.astype(np.float32, copy=False)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect" if out.shape[axis] > 1 else "edge")
        length = out.shape[axis]
        acc = np.zeros_like(out)
        for i, weight in enumerate(kernel):
            if weight:  # dilated kernels are mostly zeros
                acc += weight * (padded[i : i + length] if axis == 0 else padded[:, i : i + length])
        out = acc
    return out


def _same_size(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise InvalidParameterError(
            f"The {what} is {b.shape[1]}x{b.shape[0]}, but the result is {a.shape[1]}x{a.shape[0]}.",
            hint=f"Give the {what} at exactly the result's size (the original the input was shrunk from).",
        )


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two 0..255 arrays; inf when equal."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two HxWx3 0..255 arrays (Gaussian window, mean over channels)."""
    kernel = gaussian_kernel(SSIM_SIGMA, SSIM_RADIUS)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float32), b.astype(np.float32)
    mu_a, mu_b = blur(a, kernel), blur(b, kernel)
    var_a = blur(a * a, kernel) - mu_a * mu_a
    var_b = blur(b * b, kernel) - mu_b * mu_b
    cov = blur(a * b, kernel) - mu_a * mu_b
    score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(np.mean(score, dtype=np.float64))


def lr_disagreement(result: Any, source: Any) -> np.ndarray:
    """Where the shrunk result and the input disagree: mean |difference| over RGB, HxW (input size), 0..255.

    Show it as a map (bright = "the model changed this, your picture does not support it"),
    e.g. ``present.compare.colourise(np.clip(map * 4 / 255, 0, 1))``.
    """
    small = rgb_array(source)
    back = downscale(rgb_array(result), (small.shape[1], small.shape[0]))
    return np.abs(back - small).mean(axis=2)


def lr_psnr(result: Any, source: Any) -> float:
    small = rgb_array(source)
    return psnr_db(downscale(rgb_array(result), (small.shape[1], small.shape[0])), small)


def _gradient_energy(rgb: np.ndarray) -> float:
    luma = rgb @ LUMA_WEIGHTS
    return float(np.mean(np.diff(luma, axis=0) ** 2, dtype=np.float64) + np.mean(np.diff(luma, axis=1) ** 2, dtype=np.float64))


def _bicubic(source: Any, size: tuple[int, int]) -> np.ndarray:
    """``source`` enlarged to ``size`` (width, height) with Pillow's bicubic: the classical answer."""
    if isinstance(source, Image.Image) and source.mode == "RGB":
        image = source
    else:
        image = Image.fromarray(np.clip(rgb_array(source), 0, 255).round().astype(np.uint8))
    return rgb_array(image.resize(size, Image.Resampling.BICUBIC))


def sharpness(result: Any, source: Any) -> float:
    """Gradient energy of ``result`` over that of ``source`` enlarged to its size with bicubic."""
    big = rgb_array(result)
    base, energy = _gradient_energy(_bicubic(source, (big.shape[1], big.shape[0]))), _gradient_energy(big)
    if base == 0:  # a flat input: any edge at all is infinitely sharper
        return 1.0 if energy == 0 else math.inf
    return energy / base


def _colour_shift(back: np.ndarray, small: np.ndarray) -> tuple[float, float, float]:
    kernel = gaussian_kernel(COLOUR_SIGMA)
    diff = np.abs(blur(back, kernel) - blur(small, kernel)).mean(axis=(0, 1), dtype=np.float64)
    return tuple(float(v) for v in diff)  # type: ignore[return-value]


def colour_shift_rgb(result: Any, source: Any) -> tuple[float, float, float]:
    """Per channel, the mean |difference| of the low frequencies (mean colour, slow gradients), /255."""
    small = rgb_array(source)
    return _colour_shift(downscale(rgb_array(result), (small.shape[1], small.shape[0])), small)


def fidelity(result: Any, source: Any, truth: Any = None) -> dict[str, Any]:
    """Every figure for one result: ``lr_psnr``, ``sharpness``, ``colour_shift`` (+ ``colour_shift_rgb``),
    and ``psnr`` and ``ssim`` when ``truth`` (the original, at the result's size) is given."""
    big, small = rgb_array(result), rgb_array(source)
    back = downscale(big, (small.shape[1], small.shape[0]))
    shift = _colour_shift(back, small)
    figures: dict[str, Any] = {
        "lr_psnr": psnr_db(back, small),
        "sharpness": sharpness(big, source),
        "colour_shift": max(shift),
        "colour_shift_rgb": shift,
    }
    if truth is not None:
        original = rgb_array(truth)
        _same_size(big, original, "original picture (truth)")
        figures["psnr"] = psnr_db(big, original)
        figures["ssim"] = ssim(big, original)
    return figures


def format_figure(name: str, value: float) -> str:
    """One figure as the page and the CLI print it."""
    if name in ("psnr", "lr_psnr"):
        return "identical" if math.isinf(value) else f"{value:.2f} dB"
    if name == "ssim":
        return f"{value:.4f}"
    if name == "sharpness":
        return f"{value:.2f}x bicubic"
    if name == "colour_shift":
        return f"{value:.2f}/255"
    return f"{value:.4g}"


def summary_line(figures: dict[str, Any]) -> str:
    """``LR-PSNR 38.20 dB · sharpness 1.42x bicubic · colour shift 0.61/255[ · PSNR ... · SSIM ...]``."""
    names = [n for n in ("lr_psnr", "sharpness", "colour_shift", "psnr", "ssim") if n in figures]
    return " \u00b7 ".join(f"{METRIC_LABELS[n].split(' (')[0]} {format_figure(n, figures[n])}" for n in names)


# --- verdicts: each figure in words, on a stated scale ----------------------------------------
# A band is (lowest value, word, sentence): a figure gets the band with the highest lowest value it
# reaches (for colour shift, where lower is better, the same rule on its own ascending bands).
# Where the boundaries come from: LR-PSNR, bicubic and Lanczos keep 42-44 dB and the anime CNNs
# 30-34 dB on the bundled set and examples (README, evaluation), diffusion redraws fall below;
# sharpness, bicubic is 1.0 by definition and the CNNs 2.9-3.1; colour shift, a mean change of
# 1/255 is invisible and about 2/255 shows on flat fills; PSNR, +3 dB halves the error.
Band = tuple[float, str, str]
VERDICT_SCALES: dict[str, tuple[Band, ...]] = {
    "lr_psnr": (
        (
            35.0,
            "faithful",
            "Shrunk back to your picture's size, it matches your picture: the model added detail only finer than its pixels.",
        ),
        (
            27.0,
            "changed",
            "Shrunk back, it differs visibly from your picture: the model cleaned or redrew what was there "
            "(blur, noise, JPEG blocks, outlines moved by a fraction of a pixel).",
        ),
        (
            -math.inf,
            "invented",
            "Shrunk back, it no longer matches your picture: the model drew shapes or texture your picture does not show.",
        ),
    ),
    "sharpness": (
        (4.0, "very crisp", "Far more edge contrast than bicubic: crisp lines, but look for noise or made-up texture."),
        (2.0, "crisp", "Clearly more edge contrast than bicubic: lines redrawn as steps."),
        (1.2, "a little crisper", "Somewhat more edge contrast than bicubic."),
        (-math.inf, "as soft as bicubic", "About the edge contrast of a plain bicubic enlargement."),
    ),
    "colour_shift": (
        (0.0, "invisible", "The overall colours stayed where they were (under 1/255 on average)."),
        (1.0, "slight", "A slight change of overall colour, hard to see side by side."),
        (2.0, "visible", "The overall colours moved enough to see: a tint, a darkening or a changed fill."),
    ),
    "psnr": (
        (35.0, "very close", "Pixel by pixel, very close to the original picture."),
        (30.0, "close", "Close to the original picture; differences show only when zoomed in."),
        (25.0, "differs in detail", "The outlines and fills match the original, the fine detail differs."),
        (-math.inf, "far", "Pixel by pixel, far from the original picture."),
    ),
    "ssim": (
        (0.95, "nearly the same", "The local structure (edges, contrast) is nearly that of the original."),
        (0.90, "similar", "The local structure is similar to the original's."),
        (0.80, "differs in places", "Edges or textures differ from the original's in places."),
        (-math.inf, "different", "The local structure differs clearly from the original's."),
    ),
}
_ASCENDING = {"colour_shift"}  # lower is better: bands listed from the best (lowest) up
SOFT_TRUTH_NOTE = (
    "The original picture is itself soft (little detail near its finest scale), so a sharper result "
    "must score lower against it: here PSNR and SSIM reward blur, not quality."
)


def _check_metric(metric: str) -> tuple[Band, ...]:
    if metric not in VERDICT_SCALES:
        raise InvalidParameterError(f"metric={metric!r} has no verdict scale.", hint=f"Use one of: {', '.join(VERDICT_SCALES)}.")
    return VERDICT_SCALES[metric]


def verdict(metric: str, value: float, *, truth_soft: bool = False) -> tuple[str, str]:
    """(word, sentence) for one figure on its stated scale (``scale_text``). ``truth_soft``: the
    original picture is soft (``is_soft``), so PSNR and SSIM against it get ``SOFT_TRUTH_NOTE``."""
    bands = _check_metric(metric)
    if math.isnan(value):
        raise InvalidParameterError(f"{metric}={value} is not a number.", hint="Give the figure as computed by fidelity().")
    ordered = sorted(bands, key=lambda band: band[0], reverse=True)
    word, sentence = next(((w, s) for low, w, s in ordered if value >= low), ordered[-1][1:])
    if truth_soft and metric in ("psnr", "ssim"):
        sentence = f"{sentence} {SOFT_TRUTH_NOTE}"
    return word, sentence


def scale_text(metric: str) -> str:
    """The scale in one line, e.g. ``LR-PSNR: 35 dB and above faithful · 27 to 35 dB changed · below 27 dB invented``."""
    bands = _check_metric(metric)
    unit = {"lr_psnr": " dB", "psnr": " dB", "sharpness": "x", "colour_shift": "/255", "ssim": ""}[metric]
    name = METRIC_LABELS[metric].split(" (")[0]
    if metric in _ASCENDING:
        lows = [b[0] for b in bands[1:]]
        parts = [f"under {lows[0]:g}{unit} {bands[0][1]}"]
        parts += [f"{lo:g} to {hi:g}{unit} {w}" for lo, hi, (_, w, _) in zip(lows, lows[1:], bands[1:])]
        parts.append(f"{lows[-1]:g}{unit} and above {bands[-1][1]}")
    else:
        lows = [b[0] for b in bands[:-1]]
        parts = [f"{lows[0]:g}{unit} and above {bands[0][1]}"]
        parts += [f"{lo:g} to {hi:g}{unit} {w}" for hi, lo, (_, w, _) in zip(lows, lows[1:], bands[1:])]
        parts.append(f"below {lows[-1]:g}{unit} {bands[-1][1]}")
    return f"{name}: " + " \u00b7 ".join(parts)
