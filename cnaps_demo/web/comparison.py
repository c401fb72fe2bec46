"""One source and its results side by side: the bicubic baseline, the detail window, the files.

A ``Comparison`` is what every view of a run is drawn from (``views``); it writes each picture it
hands out once, under a fresh name, in its own run folder (``workdir.Workdir``).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .. import fidelity
from ..api import UpscaleResult, output_name
from ..image import save_png
from ..present import compare, diagram
from .sources import Source
from .workdir import Workdir

BASELINE_KEY = "__bicubic__"
TRUTH_KEY = "__truth__"
BASELINE_LABEL = "Bicubic 2x (classical baseline)"
BASELINE_SHORT = "Bicubic 2x (classical)"
TRUTH_LABEL = "Ground truth (your original)"


# The detail window, in input pixels: 48 input px are 96 output px, shown 3x = 288 CSS px per crop,
# three side by side on a laptop, one per row on a phone, each pixel an exact 3x3 block.
CROP_WINDOW = 48
CROP_ZOOM = 3
# The crop picker's picture: shown at most 300 px high, so a small copy is what it redraws on a click.
WHERE_SIDE = 512


def crop_window(size: tuple[int, int]) -> int:
    """Side of the detail window on the input grid (smaller only for a smaller picture)."""
    return max(1, min(CROP_WINDOW, *size))


@dataclass
class Comparison:
    """Everything the comparison views need, derived from one source and some results."""

    source: Source
    baseline: Image.Image  # bicubic of the source, at the output size
    results: dict[str, UpscaleResult]
    box_in: compare.Box  # detail window on the input grid
    scale: int
    run_dir: Path | None = None  # where this comparison's files are written, once each
    files: dict[str, str] = field(default_factory=dict)  # engine id -> the downloadable PNG's path
    svgs: dict[str, str] = field(default_factory=dict)  # engine id -> SVG path
    views: dict[str, str] = field(default_factory=dict)  # image key -> PNG path shown on the page
    figures: dict[str, dict] = field(default_factory=dict)  # image key -> its fidelity figures, computed once
    # What the page computed for this run at a click ("seeds": the seed map), so a redraw of its views
    # shows it again; shared with the moved copies (``moved_to``), like ``views`` and ``figures``.
    on_request: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # its key in the app's result_store.ResultStore, once kept there for the page
    thumbnail: Image.Image | None = None  # the input, small, for the crop picker (``where_thumbnail``)

    def softness(self) -> tuple[bool, bool]:
        """(the engine's input is soft, the ground truth is soft): a sharper result must then score
        lower against it (``fidelity.is_soft``), computed once."""
        if "__soft__" not in self.figures:
            truth = self.source.truth
            self.figures["__soft__"] = {"input": _judged_soft(self.source.image), "truth": _judged_soft(truth)}
        soft = self.figures["__soft__"]
        return soft["input"], soft["truth"]

    def fidelity_of(self, key: str) -> dict:
        """``fidelity.fidelity`` of one image against the source (and the ground truth, when there is one)."""
        if key not in self.figures:
            self.figures[key] = fidelity.fidelity(self.image(key), self.source.image, self.source.truth)
        return self.figures[key]

    @property
    def first_id(self) -> str:
        """The engine id of the first (for an Upscale run, the only) result."""
        return next(iter(self.results))

    @property
    def box_out(self) -> compare.Box:
        return compare.scale_box(self.box_in, self.scale)

    def image(self, key: str) -> Image.Image:
        if key == BASELINE_KEY:
            return self.baseline
        if key == TRUTH_KEY and self.source.truth is not None:
            return self.source.truth
        return self.results[key].image

    def image_file(self, key: str) -> str:
        """A PNG file of ``image(key)`` for the page, written once (fast: the slider shows it first)."""
        if key not in self.views:
            self.views[key] = self._write_view(key)
        return self.views[key]

    def image_files(self, *keys: str) -> list[str]:
        """``image_file`` of each key; the missing ones are written side by side on threads (the
        encoder frees the GIL: the slider's two pictures at 1240x1240 on 2 cores, 0.13 s -> 0.08 s)."""
        missing = [key for key in dict.fromkeys(keys) if key not in self.views]
        if len(missing) > 1:
            with ThreadPoolExecutor(max_workers=len(missing)) as pool:
                self.views.update(zip(missing, pool.map(self._write_view, missing)))
        return [self.image_file(key) for key in keys]

    def _write_view(self, key: str) -> str:
        return self.save_view(self.image(key), key.strip("_"))

    def download_file(self, engine_id: str) -> str:
        """The result's PNG to download, written once: ``<stem>-<engine>-x<scale>.png`` with its metadata."""
        if engine_id not in self.files:
            result = self.results[engine_id]
            assert self.run_dir is not None, "build_comparison gives every comparison a folder"
            png = self.run_dir / output_name(self.source.stem, engine_id, result.scale)
            result.save(png)
            self.files[engine_id] = str(png)
        return self.files[engine_id]

    def svg_file(self, engine_id: str) -> str:
        """The run's pipeline diagram as a standalone SVG file, written once."""
        if engine_id not in self.svgs:
            assert self.run_dir is not None, "build_comparison gives every comparison a folder"
            svg = self.run_dir / f"{self.source.stem}-{engine_id}-pipeline.svg"
            svg.write_text(diagram.render_result(self.results[engine_id], standalone=True), encoding="utf-8")
            self.svgs[engine_id] = str(svg)
        return self.svgs[engine_id]

    def where_thumbnail(self) -> Image.Image:
        """The engine's input at most ``WHERE_SIDE`` px on a side, made once: what the crop picker draws on."""
        if self.thumbnail is None:
            self.thumbnail = self.source.image.convert("RGB")
            self.thumbnail.thumbnail((WHERE_SIDE, WHERE_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return self.thumbnail

    def replace_view(self, image: Image.Image, name: str) -> str:
        """Write ``image`` as this run's one ``name`` picture, removing the one before it: a picture the
        page redraws on every click (the crop picker) stays one file however often it is clicked."""
        path = self.save_view(image, name)
        previous, self.views[f"__{name}__"] = self.views.get(f"__{name}__"), path
        if previous:
            Path(previous).unlink(missing_ok=True)
        return path

    def save_view(self, image: Image.Image, name: str) -> str:
        """Write a derived picture (crop, map) once under a fresh name in this run's folder."""
        assert self.run_dir is not None, "build_comparison gives every comparison a folder"
        self.run_dir.mkdir(parents=True, exist_ok=True)  # the folder may have gone for disk space meanwhile
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name)
        target = self.run_dir / f"{safe}-{uuid.uuid4().hex[:8]}.png"
        return str(save_png(image, target, {}, compress_level=1))  # shown, not kept: speed over size

    def label(self, key: str) -> str:
        if key == BASELINE_KEY:
            return BASELINE_LABEL
        if key == TRUTH_KEY:
            return TRUTH_LABEL
        return self.results[key].engine_name

    def keys(self) -> list[str]:
        keys = [BASELINE_KEY, *self.results]
        if self.source.truth is not None:
            keys.append(TRUTH_KEY)
        return keys

    def choices(self) -> list[tuple[str, str]]:
        return [(self.label(k), k) for k in self.keys()]

    def moved_to(self, center: tuple[float, float]) -> Comparison:
        """The same comparison with the detail window centred on ``center`` (input pixels)."""
        size = self.source.image.size
        return dataclasses.replace(self, box_in=compare.centered_box(center, crop_window(size), size))


# Below this side a spectrum says nothing about softness (``fidelity.spectrum`` needs 8 px at least).
SOFTNESS_MIN_SIDE = 16


def _judged_soft(picture: Image.Image | None) -> bool:
    """``fidelity.is_soft``, False for no picture or one too small to judge."""
    return picture is not None and min(picture.size) >= SOFTNESS_MIN_SIDE and fidelity.is_soft(picture)


def build_comparison(source: Source, results: dict[str, UpscaleResult], workdir: Workdir) -> Comparison:
    """The comparison of ``results`` (at least one), in a fresh run folder; files are written when asked for."""
    first = next(iter(results.values()))
    baseline = compare.bicubic_baseline(source.image, first.image.size)
    box_in = compare.edge_richest_box(source.image, crop_window(source.image.size))
    return Comparison(source, baseline, results, box_in, first.scale, workdir.new_run_dir())
