"""``inside()``: one run of a CNN engine's real graph on a region of the picture, with the stages
worth showing kept, and the sum its output really is (base + residual = output)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image

from ..engines import INSIDE_ENGINE_ID
from ..errors import InvalidParameterError
from ..present.compare import centered_box, edge_richest_box
from ..settings import Settings
from ..stages import ProgressFn
from . import pictures
from .captions import caption
from .opening import open_engine, whole_numbers

# The region's largest side, in input pixels: time and memory are bounded by it.
MAX_REGION = 128
MIN_REGION = 8
# The detail crops' default window (``present.compare``): the region is centred on it.
CROPS_WINDOW = 48
MAPS_PER_LAYER = 10


@dataclass
class InsideLayer:
    """One stage of the run: ``maps`` are its most varying channels over the region (bright = strong)."""

    name: str
    shape: tuple[int, int, int]  # (channels, height, width) of the real activation (with its margin)
    maps: list[Image.Image]
    caption: str
    channels: list[int]  # which channel each map shows
    step: float  # input pixels per map pixel (0.5: the maps are twice the region's size)


@dataclass
class Inside:
    """What ``inside()`` saw. Arrays are float32 (height, width, 3) at the output's scale, 0-1;
    ``output == base + residual`` as the engine computes it (before the colour fix)."""

    engine_id: str
    scale: int
    region: tuple[int, int, int, int]  # (left, top, width, height) in input pixels
    layers: list[InsideLayer]
    base: np.ndarray
    residual: np.ndarray  # signed
    output: np.ndarray
    base_label: str  # e.g. "plain enlargement (nearest x4, bicubic resize)"
    residual_label: str  # e.g. "what the network draws"
    receptive_field: int  # input pixels along a side, from the graph
    whole_picture_note: str  # "" unless some layer averages the whole picture (Real-CUGAN's SE blocks)
    seconds: float
    residual_scale: float = field(default=0.0)  # 0-1 value drawn at full colour in residual_image

    def __post_init__(self) -> None:
        if not self.residual_scale:
            self.residual_scale = pictures.residual_scale(self.residual)

    @property
    def decomposition(self) -> str:
        """The sum in words, e.g. "plain enlargement + what the network draws = result"."""
        return f"{self.base_label[:1].upper()}{self.base_label[1:]} + {self.residual_label} = result"

    @cached_property
    def base_image(self) -> Image.Image:
        return pictures.to_image(self.base)

    @cached_property
    def residual_image(self) -> Image.Image:
        """The residual's brightness change: red lightens, blue darkens, white none (full colour at
        ``residual_scale``)."""
        return pictures.residual_image(self.residual, self.residual_scale)

    @cached_property
    def output_image(self) -> Image.Image:
        return pictures.to_image(self.output)

    @property
    def residual_legend(self) -> str:
        return (
            f"red: the network lightens, blue: it darkens, white: no change; full colour = "
            f"{round(self.residual_scale * 255)}/255 or more"
        )


def default_region(picture: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, width, height): ``MAX_REGION`` square (or the picture) centred on the detail crops'
    default window, the edge-richest ``CROPS_WINDOW`` square."""
    box = edge_richest_box(picture, CROPS_WINDOW)
    left, top, _, _ = centered_box(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), MAX_REGION, picture.size)
    width, height = min(MAX_REGION, picture.width), min(MAX_REGION, picture.height)
    return left, top, width, height


def check_region(region: Any, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, width, height) clipped to a picture of ``size``; a typed error when it is not
    four whole numbers, misses the picture, or is too small or too large."""
    left, top, width, height = whole_numbers(region, 4, "region", "(left, top, width, height) in input pixels")
    if width < 1 or height < 1:
        raise InvalidParameterError(f"region={region!r} has no area.", hint="Width and height must be positive.")
    right, bottom = min(size[0], left + width), min(size[1], top + height)
    left, top = max(0, left), max(0, top)
    if right - left < min(MIN_REGION, size[0]) or bottom - top < min(MIN_REGION, size[1]):
        raise InvalidParameterError(
            f"region={region!r} holds less than {MIN_REGION}x{MIN_REGION} pixels of the {size[0]}x{size[1]} picture.",
            hint=f"Give (left, top, width, height) inside the picture, at least {MIN_REGION} pixels a side.",
        )
    if right - left > MAX_REGION or bottom - top > MAX_REGION:
        raise InvalidParameterError(
            f"region={region!r} is larger than {MAX_REGION}x{MAX_REGION} input pixels.",
            hint=f"Give a region of at most {MAX_REGION} pixels a side: time and memory grow with it.",
        )
    return left, top, right - left, bottom - top


def inside(
    image: Any,
    engine: str = INSIDE_ENGINE_ID,
    *,
    region: Any = None,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
    scale: int | None = None,
    device: str = "auto",
    **params: Any,
) -> Inside:
    """Run ``engine`` (a CNN: ``realesrgan-anime`` or ``realcugan`` with its parameters) once on a region
    of ``image`` (path, bytes, PIL image or array), as it runs a picture, in fp32, keeping its stages.

    ``region``: (left, top, width, height) in input pixels, at most 128 a side (clipped to the
    picture); default: 128x128 around the detail crops' default window. ``progress(done, total,
    text)`` is called between steps (raise ``JobCancelledError`` from it to stop).
    """
    started = time.perf_counter()
    opened = open_engine(image, engine, scale=scale, device=device, settings=settings, progress=progress, params=params)
    report = opened.progress
    picture = opened.picture
    left, top, width, height = default_region(picture) if region is None else check_region(region, picture.size)
    rgb = np.ascontiguousarray(opened.rgb[top : top + height, left : left + width])
    report(5, 100, "Running the network on the region")
    look = opened.anatomy.look(rgb, lambda share: report(5 + int(80 * share), 100, "Running the network on the region"))
    report(85, 100, "Drawing the layers")
    layers = []
    for layer in look.layers:
        channels, maps = pictures.channel_maps(layer.activation, MAPS_PER_LAYER)
        layers.append(
            InsideLayer(
                layer.name, layer.shape, [pictures.map_image(m) for m in maps], caption(maps), channels, layer.step
            )
        )
    parts = look.decomposition
    seen = Inside(
        engine_id=opened.engine.id,
        scale=opened.scale,
        region=(left, top, width, height),
        layers=layers,
        base=parts.base,
        residual=parts.residual,
        output=parts.output,
        base_label=parts.base_label,
        residual_label=parts.residual_label,
        receptive_field=opened.anatomy.receptive_field,
        whole_picture_note=opened.anatomy.whole_picture_note,
        seconds=0.0,
    )
    seen.seconds = time.perf_counter() - started
    report(100, 100, "Done")
    return seen
