"""The spectrum and edge-profile plots of one picture's enlargements, collected and written.

``picture_curves(small, scale=2, truth=None)`` starts the two plots for one small picture: the
line across its strongest outline (inside the detail window, found on bicubic's enlargement so
no engine chooses it), the profile of the small picture itself along it, bicubic's curves and
the original's (``truth``) when there is one. ``curves.add(label, enlargement)`` adds an
engine's result; ``curves.spectrum_svg()`` / ``edge_svg()`` (and ``_png``) draw them.
``write_result_plots(result, folder)`` does all of it for one ``UpscaleResult`` (the CLI's
call); ``evaluate`` keeps one ``PictureCurves`` per picture. Curves are small arrays, so a
whole evaluation holds them without keeping any picture.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import fidelity
from ..files import atomic_write
from . import plots
from .compare import edge_richest_box, scale_box

WINDOW = 48  # px of the small picture: the page's detail window, where the default line is looked for
SPECTRUM_BINS = 96  # rings: fewer than one per frequency step, so a plot shows the trend, not the speckle
Point = tuple[float, float]


@dataclass
class PictureCurves:
    line: tuple[Point, Point]  # in pixels of the enlargement
    scale: int
    spectra: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    profiles: dict[str, np.ndarray] = field(default_factory=dict)
    styles: dict[str, int] = field(default_factory=dict)  # label -> look: the same colour and dash in both plots

    def look(self, label: str) -> None:
        """Give ``label`` its look (colour and dash), the next free one, for both plots."""
        self.styles.setdefault(label, len(self.styles))

    @property
    def limit(self) -> float:
        """The small picture's finest detail, in cycles per pixel of the enlargement."""
        return 0.5 / self.scale

    @property
    def length(self) -> float:
        (x0, y0), (x1, y1) = self.line
        return float(np.hypot(x1 - x0, y1 - y0))

    def add(self, label: str, enlargement: Any, *, spectrum: bool = True) -> None:
        """Add the curves of ``enlargement`` (a picture ``scale`` x the small one) as ``label``."""
        start, end = self.line
        self.look(label)
        self.profiles[label] = fidelity.edge_profile(enlargement, start, end)
        if spectrum:
            self.spectra[label] = fidelity.spectrum(enlargement, bins=SPECTRUM_BINS)

    def spectrum_svg(self) -> str:
        return plots.spectrum_svg(self.spectra, self.limit, styles=self.styles)

    def edge_svg(self) -> str:
        return plots.edge_profile_svg(self.profiles, length=self.length, styles=self.styles)

    def spectrum_png(self) -> Image.Image:
        return plots.spectrum_png(self.spectra, self.limit, styles=self.styles)

    def edge_png(self) -> Image.Image:
        return plots.edge_profile_png(self.profiles, length=self.length, styles=self.styles)


def _small_point(point: Point, scale: int) -> Point:
    """A point of the enlargement on the small picture's grid (pixel centres aligned)."""
    return ((point[0] + 0.5) / scale - 0.5, (point[1] + 0.5) / scale - 0.5)


def picture_curves(small: Image.Image, *, scale: int = 2, truth: Any = None, line: tuple[Point, Point] | None = None) -> PictureCurves:
    """Curves for one small picture: "your picture" (profile only: its pixels along the line),
    "bicubic", and "original" when ``truth`` (exactly ``scale`` x ``small``) is given. ``line``:
    in pixels of the enlargement (default: across the strongest outline of the detail window)."""
    rgb = small.convert("RGB") if small.mode != "RGB" else small
    bicubic = rgb.resize((rgb.width * scale, rgb.height * scale), Image.Resampling.BICUBIC)
    if line is None:
        box = edge_richest_box(rgb, (min(WINDOW, rgb.width), min(WINDOW, rgb.height)))
        line = fidelity.strongest_edge_line(bicubic, scale_box(box, scale))
    curves = PictureCurves(line, scale)
    samples = max(2, int(np.ceil(curves.length / scale)) + 1)  # one per pixel of the small picture
    start, end = (_small_point(p, scale) for p in line)
    curves.look("your picture")
    curves.profiles["your picture"] = fidelity.edge_profile(rgb, start, end, samples=samples)
    if truth is not None:
        curves.add("original", truth)
    curves.add("bicubic", bicubic)
    return curves


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_curves(curves: PictureCurves, folder: str | Path, stem: str, *, png: bool = False) -> dict[str, Path]:
    """``<stem>-spectrum.svg`` and ``<stem>-edge.svg`` (and ``.png`` twins when ``png``) in ``folder`` (created)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = {
        "spectrum": atomic_write(target / f"{stem}-spectrum.svg", curves.spectrum_svg().encode()),
        "edge": atomic_write(target / f"{stem}-edge.svg", curves.edge_svg().encode()),
    }
    if png:
        written["spectrum_png"] = atomic_write(target / f"{stem}-spectrum.png", _png_bytes(curves.spectrum_png()))
        written["edge_png"] = atomic_write(target / f"{stem}-edge.png", _png_bytes(curves.edge_png()))
    return written


def result_curves(result: Any) -> PictureCurves:
    """The curves of one ``UpscaleResult``: your picture, the original (when the result has one),
    bicubic, and the result under its engine's name."""
    curves = picture_curves(result.input_image, scale=result.scale, truth=result.truth)
    curves.add(result.engine_name, result.image)
    return curves


def write_result_plots(result: Any, folder: str | Path, stem: str | None = None, *, png: bool = False) -> dict[str, Path]:
    """Write the spectrum and edge-profile plots of ``result`` (an ``UpscaleResult``) into ``folder``:
    ``<stem>-spectrum.svg``, ``<stem>-edge.svg`` (+ PNGs when ``png``); ``stem`` defaults to
    ``<engine>-x<scale>``. Returns {"spectrum", "edge"[, "spectrum_png", "edge_png"]: path}."""
    return write_curves(result_curves(result), folder, stem or f"{result.engine_id}-x{result.scale}", png=png)
