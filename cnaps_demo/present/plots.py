"""Two small plots people read at a glance, as SVG (the page) or PNG (the CLI, ``evaluate``).

- ``spectrum_svg``: how much detail each picture holds at each fineness (the radially averaged
  power spectrum, ``cnaps_demo.fidelity.spectrum``, log scale), with the small picture's limit
  marked: to its right, only a model can have added detail.
- ``edge_profile_svg``: the brightness along a short line across an outline
  (``cnaps_demo.fidelity.edge_profile``): a soft enlargement draws a ramp, a crisp one a step.

One layout (``_Plot``: a 360-unit-wide canvas, axes named in plain words, a legend that wraps
under the plot) is drawn by two back-ends, so the SVG and the PNG say the same thing. The SVG
scales to its container (100% wide, at most 640 px): about 13 px type on a 390 px phone. Text
and axes use ``currentColor`` (readable on light and dark pages); the lines use the Okabe-Ito
colour-blind-safe palette and each has its own dash pattern, so none is told apart by colour
alone. Every label is XML-escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, PLOT_HEIGHT = 360.0, 230.0
LEFT, RIGHT, TOP, BOTTOM = 46.0, 12.0, 30.0, 42.0  # margins around the plot area
FONT, SMALL = 12.5, 11.5
LEGEND_ROW = 18.0
MAX_CSS_WIDTH = 640
FONT_FAMILY = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 4", "1 2", "12 4", "3 6")
LIMIT_COLOUR = "#D55E00"
MARKER_LABEL = "small picture's limit"
MARKER_NOTE = "beyond: added detail"
LOG_DECADES = 7  # the spectrum's y axis spans at most this many factors of 10 below its peak


@dataclass
class _Series:
    label: str
    points: list[tuple[float, float]]  # canvas coordinates
    colour: str
    dash: str


@dataclass
class _Plot:
    title: str
    x_label: str
    y_label: str
    height: float
    series: list[_Series] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)  # (canvas x, text)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)  # (canvas y, text; "" for a bare grid line)
    marker: tuple[float, str] | None = None  # (canvas x, text): a dashed vertical line
    marker_left: bool = False  # its words go left of the line (no room on the right)
    legend: list[tuple[float, float, int]] = field(default_factory=list)  # (x, y, series index)


def _text_width(text: str, size: float) -> float:
    return 0.56 * size * len(text)


def _legend(plot: _Plot) -> None:
    """Place the legend entries in rows under the x-axis label, wrapping at the canvas width."""
    x, y = LEFT, PLOT_HEIGHT + 8
    for index, series in enumerate(plot.series):
        entry = 26 + _text_width(series.label, FONT) + 14
        if x > LEFT and x + entry > WIDTH - 4:
            x, y = LEFT, y + LEGEND_ROW
        plot.legend.append((x, y, index))
        x += entry
    plot.height = y + LEGEND_ROW + 4


def _area() -> tuple[float, float, float, float]:
    return LEFT, TOP, WIDTH - RIGHT, PLOT_HEIGHT - BOTTOM


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= raw)


def _style(label: str, k: int, styles: dict[str, int] | None) -> tuple[str, str]:
    """(colour, dash) of a series: by its place in ``styles`` (one look per label across plots), else by ``k``."""
    index = styles.get(label, k) if styles else k
    return PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]


def _spectrum_plot(
    series: dict[str, tuple[Sequence[float], Sequence[float]]], limit: float | None, title: str, styles: dict[str, int] | None
) -> _Plot:
    x0, y0, x1, y1 = _area()
    logs = {label: (np.asarray(f, float), np.log10(np.maximum(np.asarray(p, float), 1e-30))) for label, (f, p) in series.items()}
    finite = [v for _, values in logs.values() for v in values if math.isfinite(v) and v > -29]
    top = math.ceil(max(finite)) if finite else 1.0
    bottom = max(math.floor(min(finite)) if finite else 0.0, top - LOG_DECADES)
    bottom = min(bottom, top - 1)
    plot = _Plot(title, "finer detail \u2192 (cycles per pixel)", "amount of detail (log)", PLOT_HEIGHT)
    for k, (label, (freqs, values)) in enumerate(logs.items()):
        xs = x0 + np.clip(freqs / 0.5, 0, 1) * (x1 - x0)
        ys = y1 - (np.clip(values, bottom, top) - bottom) / (top - bottom) * (y1 - y0)
        plot.series.append(_Series(label, list(zip(xs.tolist(), ys.tolist())), *_style(label, k, styles)))
    plot.x_ticks = [(x0 + f / 0.5 * (x1 - x0), f"{f:g}") for f in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)]
    # one grid line per factor of 10, unlabeled: the axis title says "log", the units mean nothing to a reader
    plot.y_ticks = [(y1 - (d - bottom) / (top - bottom) * (y1 - y0), "") for d in range(int(bottom), int(top) + 1)]
    plot.y_ticks[0] = (plot.y_ticks[0][0], "less")
    plot.y_ticks[-1] = (plot.y_ticks[-1][0], "more")
    if limit is not None and 0 < limit < 0.5:
        plot.marker = (x0 + limit / 0.5 * (x1 - x0), MARKER_LABEL)
        plot.marker_left = plot.marker[0] + 4 + _text_width(max(MARKER_LABEL, MARKER_NOTE, key=len), SMALL) > x1
    _legend(plot)
    return plot


def _profile_plot(series: dict[str, Sequence[float]], length: float | None, title: str, styles: dict[str, int] | None) -> _Plot:
    x0, y0, x1, y1 = _area()
    arrays = {label: np.asarray(values, float) for label, values in series.items()}
    span = float(length) if length else float(max((len(a) - 1 for a in arrays.values()), default=1) or 1)
    plot = _Plot(title, "position along the line (pixels)", "brightness (0 = black)", PLOT_HEIGHT)
    for k, (label, values) in enumerate(arrays.items()):
        xs = x0 + np.linspace(0.0, 1.0, len(values)) * (x1 - x0)
        ys = y1 - np.clip(values, 0, 255) / 255.0 * (y1 - y0)
        plot.series.append(_Series(label, list(zip(xs.tolist(), ys.tolist())), *_style(label, k, styles)))
    step = _nice_step(span, 5)
    ticks = np.arange(0.0, span + 1e-9, step)
    plot.x_ticks = [(x0 + t / span * (x1 - x0), f"{t:g}") for t in ticks]
    plot.y_ticks = [(y1 - v / 255.0 * (y1 - y0), label) for v, label in ((0, "0"), (128, "128"), (255, "255"))]
    _legend(plot)
    return plot


# --- SVG ---------------------------------------------------------------------------------------


def _t(x: float, y: float, words: str, size: float, anchor: str = "start", fill: str = "currentColor", extra: str = "") -> str:
    """An SVG text element; ``words`` are escaped."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size:g}" fill="{fill}"{extra}>'
        f"{escape(words)}</text>"
    )


def _l(x0: float, y0: float, x1: float, y1: float, stroke: str, extra: str = "") -> str:
    """An SVG line element."""
    return f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{stroke}"{extra}/>'


def _dash(series: _Series) -> str:
    return f' stroke-dasharray="{series.dash}"' if series.dash else ""


def _svg_axes(plot: _Plot) -> list[str]:
    x0, y0, x1, y1 = _area()
    out = [_t(WIDTH / 2, 18, plot.title, FONT + 1, "middle", extra=' font-weight="600"')]
    for y, label in plot.y_ticks:
        out.append(_l(x0, y, x1, y, "currentColor", ' stroke-opacity="0.15"'))
        out += [_t(x0 - 4, y + 3.5, label, SMALL, "end")] if label else []
    for x, label in plot.x_ticks:
        out += [_l(x, y1, x, y1 + 4, "currentColor", ' stroke-opacity="0.6"'), _t(x, y1 + 15, label, SMALL, "middle")]
    out.append(f'<path d="M{x0:.1f},{y0:.1f} V{y1:.1f} H{x1:.1f}" fill="none" stroke="currentColor" stroke-opacity="0.6"/>')
    out.append(_t((x0 + x1) / 2, y1 + 31, plot.x_label, SMALL, "middle"))
    out.append(_t(0, 0, plot.y_label, SMALL, "middle", extra=f' transform="translate(11 {(y0 + y1) / 2:.1f}) rotate(-90)"'))
    return out


def _svg(plot: _Plot) -> str:
    x0, y0, x1, y1 = _area()
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:g} {plot.height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(plot.title)}" font-family="{FONT_FAMILY}" class="cnaps-plot" '
        f'style="max-width:{MAX_CSS_WIDTH}px;height:auto;color:inherit">',
        f"<title>{escape(plot.title)}</title>",
        *_svg_axes(plot),
    ]
    if plot.marker:
        x, label = plot.marker
        out.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{x1 - x:.1f}" height="{y1 - y0:.1f}" fill="{LIMIT_COLOUR}" fill-opacity="0.07"/>')
        out.append(_l(x, y0, x, y1, LIMIT_COLOUR, ' stroke-width="1.5" stroke-dasharray="5 3"'))
    for series in plot.series:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in series.points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{series.colour}" stroke-width="2" stroke-linejoin="round"{_dash(series)}/>')
    if plot.marker:  # its words after the lines, so no line hides them (the curves fall low on that side)
        x, label = plot.marker
        tx, anchor = (x - 4, "end") if plot.marker_left else (x + 4, "start")
        out += [_t(tx, y0 + dy, words, SMALL, anchor, LIMIT_COLOUR) for dy, words in ((11, label), (24, MARKER_NOTE))]
    for x, y, index in plot.legend:
        series = plot.series[index]
        out.append(_l(x, y + 6, x + 22, y + 6, series.colour, f' stroke-width="2.5"{_dash(series)}'))
        out.append(_t(x + 26, y + 10, series.label, FONT))
    out.append("</svg>")
    return "".join(out)


def spectrum_svg(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    limit: float | None = 0.25,
    *,
    title: str = "Detail at each fineness",
    styles: dict[str, int] | None = None,
) -> str:
    """The spectra ``{label: (frequencies in cycles/px, power)}`` on a log scale, ``limit`` (cycles/px
    of these pictures: 0.25 for a 2x enlargement) marked as the small picture's finest detail.
    ``styles``: {label: look number}, to give a label the same colour and dash in every plot."""
    return _svg(_spectrum_plot(series, limit, title, styles))


def edge_profile_svg(
    series: dict[str, Sequence[float]],
    *,
    length: float | None = None,
    title: str = "Brightness across an outline",
    styles: dict[str, int] | None = None,
) -> str:
    """The profiles ``{label: brightness samples along the same line}``, each stretched over the line's
    ``length`` (pixels of the enlargement; default: the longest profile's sample count - 1)."""
    return _svg(_profile_plot(series, length, title, styles))


# --- PNG ---------------------------------------------------------------------------------------

PNG_ZOOM = 2  # canvas units -> PNG pixels (720 px wide)
_INK, _GRID = (30, 30, 40), (222, 222, 228)


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _dashed(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], colour: tuple[int, int, int], dash: str, width: int) -> None:
    """A polyline with a dash pattern (Pillow has none): walk the path, drawing the "on" lengths."""
    pattern = [float(v) * PNG_ZOOM for v in dash.split()] or [math.inf]
    index, left, on = 0, pattern[0], True
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        length, done = math.hypot(bx - ax, by - ay), 0.0
        while done < length:
            step = min(left, length - done)
            if on:
                t0, t1 = done / length, (done + step) / length
                draw.line((ax + (bx - ax) * t0, ay + (by - ay) * t0, ax + (bx - ax) * t1, ay + (by - ay) * t1), fill=colour, width=width)
            done += step
            left -= step
            if left <= 1e-9:
                index = (index + 1) % len(pattern)
                left, on = pattern[index], index % 2 == 0


def _png(plot: _Plot) -> Image.Image:
    z = PNG_ZOOM
    image = Image.new("RGB", (int(WIDTH * z), int(plot.height * z)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=FONT * z), ImageFont.load_default(size=SMALL * z)
    x0, y0, x1, y1 = (v * z for v in _area())
    draw.text((WIDTH * z / 2, 18 * z), plot.title, fill=_INK, font=ImageFont.load_default(size=(FONT + 1) * z), anchor="ms")
    for y, label in plot.y_ticks:
        draw.line((x0, y * z, x1, y * z), fill=_GRID, width=1)
        if label:
            draw.text((x0 - 4 * z, y * z), label, fill=_INK, font=small, anchor="rm")
    for x, label in plot.x_ticks:
        draw.line((x * z, y1, x * z, y1 + 4 * z), fill=_INK, width=1)
        draw.text((x * z, y1 + 15 * z), label, fill=_INK, font=small, anchor="ms")
    draw.line((x0, y0, x0, y1, x1, y1), fill=_INK, width=1)
    draw.text(((x0 + x1) / 2, y1 + 31 * z), plot.x_label, fill=_INK, font=small, anchor="ms")
    label_image = Image.new("RGBA", (int((y1 - y0)), int(SMALL * z * 1.6)), (255, 255, 255, 0))
    ImageDraw.Draw(label_image).text((label_image.width / 2, label_image.height / 2), plot.y_label, fill=_INK, font=small, anchor="mm")
    rotated = label_image.rotate(90, expand=True)
    image.paste(rotated, (int(11 * z - rotated.width / 2), int(y0)), rotated)
    if plot.marker:
        x, label = plot.marker
        _dashed(draw, [(x * z, y0), (x * z, y1)], _rgb(LIMIT_COLOUR), "5 3", 3)
    for series in plot.series:
        _dashed(draw, [(px * z, py * z) for px, py in series.points], _rgb(series.colour), series.dash, 2 * z)
    if plot.marker:
        x, label = plot.marker
        tx, anchor = ((x - 4) * z, "rs") if plot.marker_left else ((x + 4) * z, "ls")
        for dy, words in ((11, label), (24, MARKER_NOTE)):
            draw.text((tx, y0 + dy * z), words, fill=_rgb(LIMIT_COLOUR), font=small, anchor=anchor, stroke_width=2, stroke_fill=(255, 255, 255))
    for x, y, index in plot.legend:
        series = plot.series[index]
        _dashed(draw, [(x * z, (y + 6) * z), ((x + 22) * z, (y + 6) * z)], _rgb(series.colour), series.dash, 3 * z)
        draw.text(((x + 26) * z, (y + 10) * z), series.label, fill=_INK, font=font, anchor="ls")
    return image


def spectrum_png(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    limit: float | None = 0.25,
    *,
    title: str = "Detail at each fineness",
    styles: dict[str, int] | None = None,
) -> Image.Image:
    """``spectrum_svg`` as a 720 px wide PNG (white background)."""
    return _png(_spectrum_plot(series, limit, title, styles))


def edge_profile_png(
    series: dict[str, Sequence[float]],
    *,
    length: float | None = None,
    title: str = "Brightness across an outline",
    styles: dict[str, int] | None = None,
) -> Image.Image:
    """``edge_profile_svg`` as a 720 px wide PNG (white background)."""
    return _png(_profile_plot(series, length, title, styles))
