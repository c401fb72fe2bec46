"""The operations of Real-ESRGAN's training-pair recipe, in numpy and Pillow: kernels, filtering,
resizing, noise and JPEG. ``training_pairs`` draws their settings and chains them.

Arrays are HxWx3 float64 in 0..255 (not clipped between steps, as in the recipe, except where
noted). Written from the descriptions in Real-ESRGAN (arXiv 2107.10833) and the kernel shapes
of basicsr's ``degradations.py``; no code of theirs is used:

- Gaussian-family blur kernels on a ``size`` x ``size`` grid of pixel offsets ``d`` (centre 0),
  with the covariance ``S`` = R diag(sigma_x^2, sigma_y^2) R^T (R: rotation by ``rotation``) and
  ``q = d^T S^-1 d``: Gaussian ``exp(-q/2)``, generalized Gaussian ``exp(-q^beta/2)`` (beta < 1 a
  sharper peak with long tails, > 1 flatter), plateau ``1 / (1 + q^beta)``; each normalized to sum 1.
- The sinc (ideal circular low-pass) kernel with cut-off ``w`` radians/pixel:
  ``w J1(w r) / (2 pi r)``, ``w^2 / (4 pi)`` at r = 0, normalized; it rings like a sharpened or
  over-compressed picture. ``J1`` is computed from Bessel's integral (no scipy).
- Resizing as ``torch.nn.functional.interpolate`` does it (``align_corners=False``, no
  anti-aliasing, so shrinking with bilinear or bicubic aliases, as it did in training): "area"
  (the mean over each output pixel's span of input pixels), "bilinear", "bicubic" (Keys' cubic,
  a = -0.75).
- Noise: Gaussian (``sigma`` in 0..255 steps), or Poisson (shot noise of a picture with 2^k grey
  levels, k the fewest that hold its distinct values, times ``scale``); "gray" noise is the
  same in the three channels, "colour" noise differs per channel.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from .frequency import LUMA_WEIGHTS

CUBIC_A = -0.75  # the cubic convolution constant torch's bicubic uses


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(offsets, offsets)  # (x, y) offsets, each size x size


def gaussian_family_kernel(
    size: int, sigma_x: float, sigma_y: float, rotation: float, *, shape: str = "gaussian", beta: float = 1.0
) -> np.ndarray:
    """A ``size`` x ``size`` blur kernel, sum 1: ``shape`` "gaussian", "generalized" or "plateau";
    ``rotation`` in radians turns the ``sigma_x`` axis."""
    xx, yy = _grid(size)
    cos, sin = math.cos(rotation), math.sin(rotation)
    u, v = cos * xx + sin * yy, -sin * xx + cos * yy  # offsets along the kernel's own axes
    q = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    if shape == "gaussian":
        kernel = np.exp(-0.5 * q)
    elif shape == "generalized":
        kernel = np.exp(-0.5 * q**beta)
    elif shape == "plateau":
        kernel = 1.0 / (1.0 + q**beta)
    else:
        raise ValueError(f"unknown kernel shape {shape!r}")
    return kernel / kernel.sum()


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """J1 from Bessel's integral (1/pi) int_0^pi cos(t - x sin t) dt; the trapezoid rule on this
    periodic integrand is exact to ~1e-12 once its points outnumber |x| (here |x| < 50)."""
    points = 160
    t = np.linspace(0.0, math.pi, points + 1)
    weights = np.full(points + 1, math.pi / points)
    weights[[0, -1]] /= 2
    values = np.cos(t[None, :] - np.asarray(x, dtype=np.float64).reshape(-1, 1) * np.sin(t)[None, :])
    return (values @ weights / math.pi).reshape(np.shape(x))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """The circular low-pass kernel of ``cutoff`` radians per pixel (pi: no filtering), sum 1."""
    xx, yy = _grid(size)
    r = np.hypot(xx, yy)
    safe = np.where(r == 0, 1.0, r)
    kernel = np.where(r == 0, cutoff**2 / (4 * math.pi), cutoff * bessel_j1(cutoff * safe) / (2 * math.pi * safe))
    return kernel / kernel.sum()


def filter2d(array: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``array`` (HxWxC) filtered with the odd square ``kernel``, mirrored borders, through the FFT
    (any kernel, separable or not, costs the same: a few FFTs of the picture)."""
    radius = kernel.shape[0] // 2
    height, width = array.shape[:2]
    mode = "reflect" if min(height, width) > radius else "symmetric"
    padded = np.pad(array, ((radius, radius), (radius, radius), (0, 0)), mode=mode)
    shape = padded.shape[:2]
    placed = np.zeros(shape)
    placed[: kernel.shape[0], : kernel.shape[1]] = kernel[::-1, ::-1]  # correlation, as conv2d does
    placed = np.roll(placed, (-radius, -radius), axis=(0, 1))
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(placed)[..., None]
    out = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    return out[radius : radius + height, radius : radius + width]


def _taps(length_in: int, length_out: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (length_out, taps): which input pixels make each output pixel."""
    ratio = length_in / length_out
    out = np.arange(length_out, dtype=np.float64)
    if mode == "area":
        start = np.floor(out * ratio).astype(int)
        end = np.ceil((out + 1) * ratio).astype(int)
        width = int((end - start).max())
        index = start[:, None] + np.arange(width)[None, :]
        weights = (index < end[:, None]).astype(np.float64)
        weights /= weights.sum(axis=1, keepdims=True)
        return np.minimum(index, length_in - 1), weights
    source = (out + 0.5) * ratio - 0.5
    if mode == "bilinear":
        source = np.maximum(source, 0.0)
        left = np.floor(source).astype(int)
        frac = source - left
        index = np.stack([left, left + 1], axis=1)
        weights = np.stack([1 - frac, frac], axis=1)
    elif mode == "bicubic":
        left = np.floor(source).astype(int)
        frac = source - left
        index = left[:, None] + np.arange(-1, 3)[None, :]
        distance = np.abs(frac[:, None] - np.arange(-1, 3)[None, :])
        a = CUBIC_A
        near = ((a + 2) * distance - (a + 3)) * distance**2 + 1
        far = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
        weights = np.where(distance <= 1, near, np.where(distance < 2, far, 0.0))
    else:
        raise ValueError(f"unknown resize mode {mode!r}")
    return np.clip(index, 0, length_in - 1), weights


def resize(array: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """``array`` (HxWxC) resized to ``size`` (width, height) the way ``F.interpolate`` does (see the module)."""
    width, height = size
    index, weights = _taps(array.shape[0], height, mode)
    rows = np.einsum("ot,otwc->owc", weights, array[index])
    index, weights = _taps(array.shape[1], width, mode)
    return np.einsum("ot,hotc->hoc", weights, rows[:, index])


def gaussian_noise(shape: tuple[int, ...], sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean Gaussian noise of ``sigma`` (0..255 steps), the same in all channels when ``gray``."""
    height, width, channels = shape
    if gray:
        return np.repeat(rng.standard_normal((height, width, 1)) * sigma, channels, axis=2)
    return rng.standard_normal(shape) * sigma


def poisson_noise(array: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Shot noise of ``array`` (0..255), times ``scale``: computed on the luma when ``gray``."""
    picture = np.clip(np.round(array), 0, 255) / 255.0
    if gray:
        picture = np.clip(np.round(picture @ LUMA_WEIGHTS.astype(np.float64) * 255), 0, 255)[..., None] / 255.0
    levels = 2.0 ** math.ceil(math.log2(max(2, len(np.unique(picture)))))
    noise = (rng.poisson(picture * levels) / levels - picture) * scale * 255.0
    return np.repeat(noise, array.shape[2], axis=2) if gray else noise


def jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    """``array`` clipped to 0..255, saved as a JPEG of ``quality`` with Pillow and decoded again."""
    picture = Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float64)


def to_image(array: np.ndarray) -> Image.Image:
    """An RGB picture of ``array`` (clipped to 0..255 and rounded)."""
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), "RGB")
