"""The evaluation's bar chart, drawn with Pillow (no plotting library): one panel per metric.

Each panel is one bar group: a bar per engine, its value written above it, the axis range
printed at the bottom and top (a panel whose bars would all look equal starts above zero, and
says so), and whether higher or lower is better.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .fidelity import HIGHER_IS_BETTER, METRIC_LABELS

PANEL_W, PANEL_H, LEGEND_ROW = 340, 430, 34
MARGIN, TOP, BOTTOM = 36, 92, 56
# Colour-blind-safe palette (Okabe-Ito), then greys.
PALETTE = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0), (240, 228, 66), (90, 90, 90)]
INK, GRID, BACK = (30, 30, 40), (215, 215, 222), (255, 255, 255)
METRICS = ("psnr", "ssim", "lr_psnr", "sharpness", "colour_shift")
_DIGITS = {"psnr": 2, "ssim": 3, "lr_psnr": 2, "sharpness": 2, "colour_shift": 2}


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _axis(values: list[float]) -> tuple[float, float]:
    """(bottom, top) of a panel: from zero, unless the bars would differ by under a fifth of their height."""
    finite = [v for v in values if math.isfinite(v)] or [1.0]
    low, high = min(finite + [0.0]), max(finite)
    spread = max(finite) - min(finite)
    if high > 0 and min(finite) > 0 and spread < 0.2 * high:
        low = max(0.0, min(finite) - max(spread, 0.05 * high) * 1.5)
    top = high + (high - low) * 0.12 or 1.0
    return low, top


def _panel(draw: ImageDraw.ImageDraw, x0: int, metric: str, values: list[float]) -> None:
    title, small = _font(20), _font(15)
    draw.text((x0 + PANEL_W / 2, 22), METRIC_LABELS[metric], fill=INK, font=title, anchor="mt")
    better = "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"
    draw.text((x0 + PANEL_W / 2, 50), better, fill=(100, 100, 110), font=small, anchor="mt")
    low, top = _axis(values)
    plot_top, plot_bottom = TOP, PANEL_H - BOTTOM
    left, right = x0 + MARGIN, x0 + PANEL_W - 14
    for frac in (0.0, 0.5, 1.0):
        y = plot_bottom - frac * (plot_bottom - plot_top)
        draw.line((left, y, right, y), fill=GRID, width=1)
        draw.text((left - 4, y), f"{low + frac * (top - low):.3g}", fill=(110, 110, 120), font=_font(12), anchor="rm")
    slot = (right - left) / max(1, len(values))
    for i, value in enumerate(values):
        shown = min(value, top) if math.isfinite(value) else top
        height = (shown - low) / (top - low) * (plot_bottom - plot_top) if top > low else 0
        bx0, bx1 = left + i * slot + slot * 0.15, left + (i + 1) * slot - slot * 0.15
        draw.rectangle((bx0, plot_bottom - max(height, 1), bx1, plot_bottom), fill=PALETTE[i % len(PALETTE)])
        label = "inf (exact)" if math.isinf(value) else f"{value:.{_DIGITS[metric]}f}"  # the font has no infinity sign
        draw.text(((bx0 + bx1) / 2, plot_bottom - height - 4), label, fill=INK, font=_font(13), anchor="mb")
    if low > 0:
        draw.text((x0 + PANEL_W / 2, plot_bottom + 8), f"axis starts at {low:.3g}", fill=(150, 60, 60), font=small, anchor="mt")


def bar_chart(evaluation: Any) -> Image.Image:
    """One PNG: a panel per metric (a bar per row of ``evaluation``), and a legend of the rows."""
    rows = evaluation.rows
    legend_h = LEGEND_ROW * ((len(rows) + 2) // 3) + 50
    image = Image.new("RGB", (PANEL_W * len(METRICS), PANEL_H + legend_h), BACK)
    draw = ImageDraw.Draw(image)
    for k, metric in enumerate(METRICS):
        _panel(draw, k * PANEL_W, metric, [row.figures[metric] for row in rows])
    pictures = len(evaluation.pictures)
    note = f"mean over {pictures} picture{'s' if pictures != 1 else ''}; inputs 2x smaller, blurred, JPEG q75"
    draw.text((image.width / 2, PANEL_H + 8), note, fill=(90, 90, 100), font=_font(15), anchor="mt")
    column_w = image.width // 3
    for i, row in enumerate(rows):
        x, y = 60 + (i % 3) * column_w, PANEL_H + 40 + (i // 3) * LEGEND_ROW
        draw.rectangle((x, y, x + 22, y + 22), fill=PALETTE[i % len(PALETTE)])
        draw.text((x + 32, y + 11), row.label, fill=INK, font=_font(18), anchor="lm")
    return image
