"""``attribution()``: which input pixels decided a window of the output (LAM-style integrated
gradients along a progressive-blur path, ``lam``), on a crop just big enough for the receptive field."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from ..settings import Settings
from ..stages import ProgressFn
from . import lam, pictures
from .opening import open_engine, whole_numbers

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)
MIN_WINDOW, MAX_WINDOW = 2, 64
MAX_STEPS = 200


@dataclass(frozen=True)
class Spread:
    """How far the contributions reach: LAM's diffusion index, (1 - Gini) x 100 over the receptive
    field's box (0: one pixel decided everything; 100: every pixel there had an equal say), and the
    smallest margin around the window that holds 90% of the map."""

    diffusion_index: float
    gini: float
    radius90: int  # input pixels around the window


@dataclass
class Attribution:
    """Where an output window came from. Boxes are (left, top, right, bottom), right/bottom exclusive."""

    engine_id: str
    scale: int
    point: tuple[int, int]  # output pixels (x, y), as asked
    window: int  # side of the output window, output pixels
    output_box: Box  # the window, output pixels
    window_box: Box  # the input pixels under the window
    field_box: Box  # the window box grown by half the receptive field, clipped: what the network can see
    map: np.ndarray  # float32 (height, width) over the whole input picture, non-negative
    receptive_field: int  # input pixels along a side, theoretical, from the graph
    spread: Spread
    reading: str  # one plain line
    global_note: str  # "" for a local network; else how the whole picture also plays a part
    steps: int
    seconds: float
    picture: Image.Image  # the RGB input the map is drawn on

    @cached_property
    def overlay(self) -> Image.Image:
        """The input, greyed, with the map as heat, the receptive field (white) and the window (cyan)."""
        drawn = pictures.heat(self.picture, self.map)
        pictures.draw_boxes(drawn, self.window_box, self.field_box)
        return drawn

    @cached_property
    def zoom(self) -> Image.Image:
        """The overlay around the receptive field, enlarged so each input pixel shows."""
        cut, box, factor = pictures.zoomed(pictures.heat(self.picture, self.map), self.field_box, 4)
        pictures.draw_boxes(cut, self.window_box, self.field_box, factor, (box[0], box[1]))
        return cut


def _output_box(point: Any, window: Any, size: tuple[int, int], scale: int) -> tuple[Box, int, tuple[int, int]]:
    """(the window around ``point`` in output pixels, kept inside the output; its side; the point)."""
    x, y = whole_numbers(point, 2, "point", "(x, y) in pixels of the result")
    width, height = size[0] * scale, size[1] * scale
    if not (0 <= x < width and 0 <= y < height):
        raise InvalidParameterError(
            f"point=({x}, {y}) is outside the {width}x{height} result.",
            hint=f"Give x from 0 to {width - 1} and y from 0 to {height - 1} (pixels of the result).",
        )
    (side,) = whole_numbers([window], 1, "window", "a whole number of result pixels")
    if not MIN_WINDOW <= side <= MAX_WINDOW:
        raise InvalidParameterError(
            f"window={window!r} is out of range.", hint=f"Expected {MIN_WINDOW} to {MAX_WINDOW} result pixels."
        )
    side = min(side, width, height)
    left = min(max(0, x - side // 2), width - side)
    top = min(max(0, y - side // 2), height - side)
    return (left, top, left + side, top + side), side, (x, y)


def _steps(steps: Any) -> int:
    if steps is None:
        return lam.LAM_STEPS
    (count,) = whole_numbers([steps], 1, "steps", "a whole number of path steps")
    if not 2 <= count <= MAX_STEPS:
        raise InvalidParameterError(
            f"steps={steps!r} is out of range.", hint=f"Expected 2 to {MAX_STEPS} (LAM uses 50)."
        )
    return count


def _field_box(window_box: tuple[int, int, int, int], field: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The input pixels the network can see at all for ``window_box``: the window grown by half the
    receptive field each way, kept inside a picture of ``size``."""
    half = field // 2
    return (
        max(0, window_box[0] - half),
        max(0, window_box[1] - half),
        min(size[0], window_box[2] + half),
        min(size[1], window_box[3] + half),
    )


def attribution(
    image: Any,
    engine: str,
    point: Any,
    *,
    window: int = 16,
    steps: int | None = None,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
    scale: int | None = None,
    device: str = "auto",
    **params: Any,
) -> Attribution:
    """Which pixels of ``image`` decided the ``window`` x ``window`` output pixels around ``point``
    ((x, y) in pixels of the result) when ``engine`` (``realesrgan-anime`` or ``realcugan`` with its
    parameters) upscales it: LAM-style integrated gradients from a blurred copy to the input in
    ``steps`` steps (default 50), batched, on a crop holding the receptive field. ``progress`` is
    called after each batch of path steps (raise ``JobCancelledError`` from it to stop)."""
    started = time.perf_counter()
    count = _steps(steps)
    opened = open_engine(image, engine, scale=scale, device=device, settings=settings, progress=progress, params=params)
    s, anatomy = opened.scale, opened.anatomy
    output_box, side, asked = _output_box(point, window, opened.picture.size, s)
    local = anatomy.local(opened.rgb, output_box)
    left, top, right, bottom = local.input_box
    weights, _ = lam.integrated_gradients(
        local.forward,
        opened.rgb[top:bottom, left:right],
        steps=count,
        batch=local.batch,
        progress=opened.progress,
    )
    full = np.zeros(opened.rgb.shape[:2], dtype=np.float32)
    full[top:bottom, left:right] = weights
    window_box = (output_box[0] // s, output_box[1] // s, -(-output_box[2] // s), -(-output_box[3] // s))
    field_box = _field_box(window_box, anatomy.receptive_field, opened.picture.size)
    spread = _spread(full, window_box, field_box)
    return Attribution(
        engine_id=opened.engine.id,
        scale=s,
        point=asked,
        window=side,
        output_box=output_box,
        window_box=window_box,
        field_box=field_box,
        map=full,
        receptive_field=anatomy.receptive_field,
        spread=spread,
        reading=_reading(spread, side, anatomy.receptive_field),
        global_note=anatomy.whole_picture_note,
        steps=count,
        seconds=time.perf_counter() - started,
        picture=opened.picture,
    )


def _spread(full: np.ndarray, window_box: Box, field_box: Box) -> Spread:
    left, top, right, bottom = field_box
    inside_field = full[top:bottom, left:right]
    coefficient = lam.gini(inside_field)
    shifted = (window_box[0] - left, window_box[1] - top, window_box[2] - left, window_box[3] - top)
    return Spread(round((1 - coefficient) * 100, 1), coefficient, lam.radius_holding(inside_field, shifted))


def _reading(spread: Spread, side: int, field: int) -> str:
    where = "inside the patch itself" if spread.radius90 == 0 else f"within {spread.radius90} px of it"
    return (
        f"90% of what decided this {side}x{side} patch came from {where}; the network could have looked up to "
        f"{field // 2} px away (diffusion index {spread.diffusion_index:.0f} of 100)."
    )
