"""Integrated gradients along a progressive-blur path, as in LAM (Local Attribution Maps, Gu & Dong,
CVPR 2021, arXiv 2011.11036), for any differentiable forward.

The path runs from a blurred copy of the input to the input: step ``i`` of ``steps`` is the input
blurred by a Gaussian whose sigma falls linearly from ``sigma`` to 0 (LAM: 1.2, a 9x9 kernel,
50 steps). At each step the gradient of the objective with respect to the input is multiplied by
how fast the path moves there (the input blurred by the difference of two consecutive kernels,
times ``steps``), and the products are averaged: a Riemann sum of the path integral, so the signed
attributions add up to objective(input) - objective(blurred copy). The map is the absolute value
of their sum over the colour channels, as LAM shows it.

The objective, as in LAM, is the detail of the output window: the sum of the gradient magnitude of
the output's pixels (differences between neighbours inside the window, so the window's footprint
is exactly what the network reads). ``value_objective`` (the sum of the window's values) is the
plain alternative.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..stages import ProgressFn, no_progress

LAM_SIGMA = 1.2
LAM_KERNEL = 9
LAM_STEPS = 50
_SMOOTH = 1e-6  # keeps the gradient magnitude's square root differentiable at 0


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """LAM's isotropic Gaussian (``size`` x ``size``, sum 1); sigma 0 is the identity."""
    axis = np.arange(size, dtype=np.float64) - (size - 1) / 2
    squared = axis[:, None] ** 2 + axis[None, :] ** 2
    kernel = np.exp(-squared / (2.0 * (sigma + 1e-5) ** 2))
    return kernel / kernel.sum()


def _blur(images, kernel: np.ndarray):
    """Each channel of ``images`` (N, 3, h, w) convolved with ``kernel``, borders reflected (as cv2's default)."""
    import torch
    import torch.nn.functional as F

    size = kernel.shape[0]
    weight = torch.from_numpy(kernel.astype(np.float32))[None, None].repeat(3, 1, 1, 1)
    half = size // 2
    mode = "reflect" if min(images.shape[2], images.shape[3]) > half else "replicate"
    return F.conv2d(F.pad(images, (half, half, half, half), mode=mode), weight, groups=3)


def blur_path(crop: np.ndarray, steps: int, sigma: float = LAM_SIGMA, size: int = LAM_KERNEL):
    """(path images, path speeds), each a float32 tensor (steps, 3, h, w), for ``crop`` (h, w, 3)."""
    import torch

    sigmas = np.linspace(sigma, 0.0, steps + 1)
    kernels = [gaussian_kernel(size, s) for s in sigmas]
    image = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)).permute(2, 0, 1)[None]
    positions = torch.cat([_blur(image, kernels[i + 1]) for i in range(steps)])
    speeds = torch.cat([_blur(image, (kernels[i + 1] - kernels[i]) * steps) for i in range(steps)])
    return positions, speeds


def detail_objective(output):
    """LAM's objective per sample: the summed gradient magnitude of the output window (N, 3, H, W)."""
    across = output[:, :, :-1, 1:] - output[:, :, :-1, :-1]
    down = output[:, :, 1:, :-1] - output[:, :, :-1, :-1]
    return (across**2 + down**2 + _SMOOTH).sqrt().flatten(1).sum(1)


def value_objective(output):
    """The plain objective per sample: the sum of the output window's values."""
    return output.flatten(1).sum(1)


def integrated_gradients(
    forward: Callable[[Any], Any],
    crop: np.ndarray,
    *,
    steps: int = LAM_STEPS,
    sigma: float = LAM_SIGMA,
    kernel: int = LAM_KERNEL,
    objective: Callable[[Any], Any] = detail_objective,
    batch: int = 8,
    progress: ProgressFn = no_progress,
) -> tuple[np.ndarray, np.ndarray]:
    """(map, signed) for ``crop`` (h, w, 3 float32): ``map`` (h, w) is the non-negative attribution
    LAM shows, ``signed`` (3, h, w) the per-channel attributions (their sum is the objective's change
    along the path). ``forward`` maps (N, 3, h, w) to the output window; the path runs ``batch`` steps
    per call, and ``progress(done, steps, text)`` is called after each call (it may raise to stop)."""
    import torch

    positions, speeds = blur_path(crop, steps, sigma, kernel)
    total = torch.zeros(positions.shape[1:], dtype=torch.float64)
    with torch.inference_mode(False), torch.enable_grad():
        for start in range(0, steps, max(1, batch)):
            chunk = positions[start : start + batch].clone().requires_grad_(True)
            score = objective(forward(chunk)).sum()
            (gradient,) = torch.autograd.grad(score, chunk)
            total += (gradient.double() * speeds[start : start + batch].double()).sum(0)
            done = min(steps, start + batch)
            progress(done, steps, f"Tracing the pixel back: path step {done}/{steps}")
    signed = (total / steps).numpy()
    return np.abs(signed.sum(0)).astype(np.float32), signed.astype(np.float32)


def gini(values: np.ndarray) -> float:
    """The Gini coefficient of non-negative ``values`` (0: spread evenly, 1: all on one pixel)."""
    flat = np.sort(np.asarray(values, dtype=np.float64).ravel())
    count, mass = flat.size, flat.sum()
    if count == 0 or mass <= 0:
        return 0.0
    ranks = np.arange(1, count + 1)
    return float(((2 * ranks - count - 1) * flat).sum() / (count * mass))


def radius_holding(weights: np.ndarray, box: tuple[int, int, int, int], share: float = 0.9) -> int:
    """The smallest r such that the pixels within r of ``box`` (left, top, right, bottom, Chebyshev
    distance: the box grown by r on every side) hold ``share`` of ``weights``' mass."""
    mass = float(weights.sum())
    if mass <= 0:
        return 0
    rows, cols = np.indices(weights.shape)
    left, top, right, bottom = box
    distance = np.maximum(
        np.maximum(np.maximum(left - cols, cols - (right - 1)), 0),
        np.maximum(np.maximum(top - rows, rows - (bottom - 1)), 0),
    )
    totals = np.bincount(distance.ravel(), weights=weights.ravel().astype(np.float64))
    return int(np.searchsorted(np.cumsum(totals), share * mass - 1e-12 * mass))
