"""The probe's pictures, each drawn from a real run's arrays: channel maps, the signed residual,
and the attribution overlay."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]  # left, top, right, bottom

# Residual colours: zero is near white, +full is red (the network lightens), -full blue (it darkens).
_ZERO, _UP, _DOWN = np.array((246, 246, 246.0)), np.array((200, 24, 30.0)), np.array((28, 70, 210.0))
# Full colour at the smallest of these (out of 255) that holds 99% of the residual: a round legend.
RESIDUAL_STEPS = (4, 8, 16, 32, 64, 128, 255)
# The attribution's heat ramp: black -> purple -> orange -> pale yellow.
_HEAT = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)], dtype=np.float64)
WINDOW_COLOUR, FIELD_COLOUR = (0, 230, 255), (255, 255, 255)


def to_image(array: np.ndarray) -> Image.Image:
    """Float 0-1 HxWx3 -> RGB, rounded as the engines round (v * 255 + 0.5, clamped)."""
    return Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")


def channel_maps(activation: np.ndarray, count: int) -> tuple[list[int], list[np.ndarray]]:
    """(channel indices, 0-1 maps) of the ``count`` channels that vary most over the region (spatial
    standard deviation: a channel that is one flat value shows nothing). Each map is stretched from
    its 1st to its 99th percentile, over a range of at least 0.3x the layer's median standard
    deviation, so a nearly flat channel stays dim instead of showing its rounding noise."""
    flat = activation.reshape(activation.shape[0], -1)
    spread = flat.std(axis=1, dtype=np.float64)
    order = [int(c) for c in np.argsort(-spread, kind="stable")[:count] if spread[c] > 0]
    floor = float(np.median(spread)) * 0.3
    maps = []
    for channel in order:
        low, high = np.percentile(flat[channel], (1, 99))
        width = max(float(high - low), floor, 1e-12)
        maps.append(np.clip((activation[channel].astype(np.float64) - low) / width, 0.0, 1.0))
    return order, maps


def map_image(picture: np.ndarray) -> Image.Image:
    """A 0-1 map as a greyscale picture: bright = responds strongly."""
    return Image.fromarray(np.round(picture * 255).astype(np.uint8), "L")


def residual_scale(residual: np.ndarray) -> float:
    """The legend's full-colour value (0-1 scale): the smallest round step over 99% of |luma|."""
    level = float(np.percentile(np.abs(_luma(residual)), 99)) * 255 if residual.size else 0.0
    return next((step for step in RESIDUAL_STEPS if step >= level), 255) / 255.0


def residual_image(residual: np.ndarray, scale: float) -> Image.Image:
    """The signed residual's brightness change as colour: red lightens, blue darkens, white none."""
    value = np.clip(_luma(residual) / max(scale, 1e-6), -1.0, 1.0)[..., None]
    colour = np.where(value >= 0, _ZERO + (_UP - _ZERO) * value, _ZERO + (_DOWN - _ZERO) * -value)
    return Image.fromarray(np.round(colour).astype(np.uint8), "RGB")


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def heat(picture: Image.Image, weights: np.ndarray) -> Image.Image:
    """``picture`` dimmed to grey with ``weights`` (non-negative, its size) drawn over it as heat."""
    grey = np.asarray(picture.convert("L"), dtype=np.float64)[..., None] * 0.55
    top = float(weights.max()) if weights.size else 0.0
    level = np.sqrt(np.clip(weights / top, 0.0, 1.0)) if top > 0 else np.zeros_like(weights)
    position = level * (len(_HEAT) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(_HEAT) - 2)
    fraction = (position - low)[..., None]
    colour = _HEAT[low] * (1 - fraction) + _HEAT[low + 1] * fraction
    alpha = np.clip(level * 1.6, 0.0, 0.9)[..., None]
    mixed = grey * (1 - alpha) + colour * alpha
    return Image.fromarray(np.round(mixed).astype(np.uint8), "RGB")


def draw_boxes(picture: Image.Image, window: Box, field: Box, zoom: int = 1, offset: tuple[int, int] = (0, 0)) -> None:
    """Outline the receptive field (white) and the clicked window (cyan) on ``picture``, in place."""
    draw = ImageDraw.Draw(picture)
    for box, colour in ((field, FIELD_COLOUR), (window, WINDOW_COLOUR)):
        left, top = (box[0] - offset[0]) * zoom, (box[1] - offset[1]) * zoom
        right, bottom = (box[2] - offset[0]) * zoom - 1, (box[3] - offset[1]) * zoom - 1
        draw.rectangle((left, top, max(left, right), max(top, bottom)), outline=colour, width=max(1, zoom // 3))


def zoomed(picture: Image.Image, around: Box, margin: int, largest: int = 384) -> tuple[Image.Image, Box, int]:
    """(``around`` grown by ``margin`` and cut from ``picture``, enlarged by a whole factor to at most
    ``largest`` px a side; the box cut; the factor)."""
    box = (
        max(0, around[0] - margin),
        max(0, around[1] - margin),
        min(picture.width, around[2] + margin),
        min(picture.height, around[3] + margin),
    )
    cut = picture.crop(box)
    zoom = max(1, min(12, largest // max(cut.size)))
    return cut.resize((cut.width * zoom, cut.height * zoom), Image.Resampling.NEAREST), box, zoom


def strip(pictures: list[Image.Image], gap: int = 2, least_height: int = 96) -> Image.Image:
    """Pictures side by side on a dark ground, enlarged by a whole factor to ``least_height`` px."""
    if not pictures:
        return Image.new("RGB", (8, 8), (40, 40, 48))
    width, height = pictures[0].size
    zoom = max(1, -(-least_height // height))
    sheet = Image.new("RGB", (len(pictures) * (width * zoom + gap) - gap, height * zoom), (40, 40, 48))
    for index, picture in enumerate(pictures):
        big = picture.convert("RGB").resize((width * zoom, height * zoom), Image.Resampling.NEAREST)
        sheet.paste(big, (index * (width * zoom + gap), 0))
    return sheet
