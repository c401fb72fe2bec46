"""``python -m cnaps_demo evaluate``: score engines on pictures with a known original.

Each original (``truth``) is degraded the way uploads usually are (``degrade``: 2x smaller by
area averaging, a mild blur, JPEG at quality 75), every engine enlarges the degraded copy 2x,
and the result is scored against the original (PSNR, SSIM) and against its own input (LR-PSNR,
sharpness, colour shift: ``cnaps_demo.fidelity``). The bundled set (``TESTSET_DIR``, drawn by
``assets/make_testset.py``) ships its degraded inputs, so the figures never depend on the JPEG
encoder at hand. Results: a Markdown and a CSV table (one row per engine, PSNR first) and a
bar chart (``evaluate_plot``), written by ``Evaluation.write``; and per picture, the spectrum and
the edge profile of every result beside bicubic's and the original's (``present.result_plots``:
``plots/<picture>-spectrum.svg`` and ``plots/<picture>-edge.svg``).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from .api import availability, plan
from .engines import all_engines, get_engine
from .errors import EngineUnavailableError, InvalidParameterError
from .fidelity import METRIC_LABELS
from .files import atomic_write, path_kind
from .image import load_image
from .present.compare import simulate_blurry_source
from .present.result_plots import PictureCurves, picture_curves, write_curves
from .settings import Settings, get_settings
from .stages import ProgressFn, no_progress

TESTSET_DIR = Path(__file__).resolve().parent / "testset"
DEGRADATION = {"factor": 2, "blur_radius": 0.5, "jpeg_quality": 75}
METRICS = ("psnr", "ssim", "lr_psnr", "sharpness", "colour_shift")  # table and plot order: PSNR first
COLOUR_FIX_MODES = ("default", "on", "off", "both")
_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def degrade(truth: Image.Image) -> Image.Image:
    """The input an upload usually is: ``truth`` 2x smaller (box), blurred (radius 0.5), JPEG q75."""
    small, _ = simulate_blurry_source(truth, **DEGRADATION)
    return small


@dataclass(frozen=True)
class Pair:
    name: str
    input: Image.Image
    truth: Image.Image


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES)


def load_pairs(images: str | Path | None = None, *, max_pixels: int | None = None) -> list[Pair]:
    """The bundled set, or ``images``: a folder with ``truth/`` and ``input/`` (same file stems), or a
    folder of originals, each degraded here with ``degrade`` (cropped to even sides)."""
    folder = Path(images) if images is not None else TESTSET_DIR
    if path_kind(folder) != "folder":
        raise InvalidParameterError(f"{folder} is not a folder.", hint="Give --images a folder of PNG/JPEG/WebP originals.")
    limit = max_pixels if max_pixels is not None else get_settings().max_input_pixels
    if (folder / "truth").is_dir() and (folder / "input").is_dir():
        inputs = {p.stem: p for p in _images(folder / "input")}
        pairs = [
            Pair(p.stem, load_image(inputs[p.stem], max_pixels=limit).image.convert("RGB"), load_image(p, max_pixels=limit).image.convert("RGB"))
            for p in _images(folder / "truth")
            if p.stem in inputs
        ]
    else:
        pairs = []
        for path in _images(folder):
            original = load_image(path, max_pixels=limit).image.convert("RGB")
            small, truth = simulate_blurry_source(original, **DEGRADATION)
            pairs.append(Pair(path.stem, small, truth))
    if not pairs:
        raise InvalidParameterError(
            f"{folder} holds no pictures to evaluate.",
            hint="Put PNG/JPEG/WebP originals in it (or truth/ and input/ folders with matching names).",
        )
    return pairs


@dataclass
class Row:
    label: str  # engine id, plus " + colour fix" when the fix ran
    engine_id: str
    colour_fix: str  # "off", or the method
    figures: dict[str, float]  # the mean over the pictures
    seconds: float  # median seconds per picture (the first one includes loading the model)
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)


def _number(name: str, value: float, digits: int) -> str:
    if math.isinf(value):
        return "\u221e" if value > 0 else "-\u221e"
    return f"{value:.{digits}f}"


_DIGITS = {"psnr": 2, "ssim": 4, "lr_psnr": 2, "sharpness": 2, "colour_shift": 2}


@dataclass
class Evaluation:
    rows: list[Row]
    pictures: list[str]
    skipped: list[tuple[str, str]]  # (engine id, why it could not run here)
    degradation: dict[str, Any] = field(default_factory=lambda: dict(DEGRADATION))
    curves: dict[str, PictureCurves] = field(default_factory=dict)  # per picture: spectra and edge profiles

    def markdown(self) -> str:
        header = ["engine", *(METRIC_LABELS[m] for m in METRICS), "seconds / picture"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [f"`{row.engine_id}`" + (" + colour fix" if row.colour_fix != "off" else "")]
            cells += [_number(m, row.figures[m], _DIGITS[m]) for m in METRICS]
            cells.append(f"{row.seconds:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["engine", "psnr_db", "ssim", "lr_psnr_db", "sharpness", "colour_shift_255", "colour_fix", "seconds"])
        for row in self.rows:
            writer.writerow([row.label, *(f"{row.figures[m]:.6g}" for m in METRICS), row.colour_fix, f"{row.seconds:.3f}"])
        return buffer.getvalue()

    def plot(self) -> Image.Image:
        from .evaluate_plot import bar_chart

        return bar_chart(self)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """``evaluation.md``, ``evaluation.csv`` and ``evaluation.png`` in ``out_dir`` (created), and the
        spectrum and edge-profile SVGs of each picture in ``out_dir/plots``."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        self.plot().save(buffer, format="PNG", optimize=True)
        written = {
            "markdown": atomic_write(folder / "evaluation.md", self.markdown().encode()),
            "csv": atomic_write(folder / "evaluation.csv", self.csv().encode()),
            "plot": atomic_write(folder / "evaluation.png", buffer.getvalue()),
        }
        for name, curves in self.curves.items():
            write_curves(curves, folder / "plots", name)
        if self.curves:
            written["plots"] = folder / "plots"
        return written


def _choose_engines(engines: Sequence[str] | None, settings: Settings) -> tuple[list[str], list[tuple[str, str]]]:
    chosen = [e.id for e in all_engines()] if not engines else [get_engine(e).id for e in engines]
    runnable, skipped = [], []
    for engine_id in dict.fromkeys(chosen):
        ok, reason = availability(engine_id, settings=settings)
        (runnable.append(engine_id) if ok else skipped.append((engine_id, reason)))
    if not runnable:
        raise EngineUnavailableError("None of the chosen engines can run here.", hint="; ".join(f"{e}: {r}" for e, r in skipped))
    return runnable, skipped


def _fix_values(engine_id: str, mode: str) -> list[bool | None]:
    """The colour_fix values to score ``engine_id`` with (plain enlargements: never the fix)."""
    if get_engine(engine_id).is_baseline:
        return [False]
    return {"default": [None], "on": [True], "off": [False], "both": [False, True]}[mode]


def evaluate(
    engines: Sequence[str] | None = None,
    images: str | Path | None = None,
    *,
    colour_fix: str = "default",
    device: str = "auto",
    progress: ProgressFn = no_progress,
    settings: Settings | None = None,
) -> Evaluation:
    """Score ``engines`` (default: every engine that runs here) on ``images`` (default: the bundled set)."""
    if colour_fix not in COLOUR_FIX_MODES:
        raise InvalidParameterError(f"colour_fix={colour_fix!r} is not allowed.", hint=f"Use one of: {', '.join(COLOUR_FIX_MODES)}.")
    settings = settings or get_settings()
    runnable, skipped = _choose_engines(engines, settings)
    pairs = load_pairs(images, max_pixels=settings.max_input_pixels)
    jobs = [(engine_id, fix) for engine_id in runnable for fix in _fix_values(engine_id, colour_fix)]
    total, done, rows = len(jobs) * len(pairs), 0, []
    curves = {pair.name: picture_curves(pair.input, scale=2, truth=pair.truth) for pair in pairs}
    for engine_id, fix in jobs:
        checked = plan(engine_id, device=device, settings=settings, colour_fix=fix).require_runnable()
        label = engine_id + (" + colour fix" if checked.colour_fix != "off" else "")
        per_image, seconds = {}, []
        for pair in pairs:
            progress(done, total, f"{engine_id} {pair.name}")
            result = checked.load(pair.input, truth=pair.truth).run()
            per_image[pair.name] = {m: float(result.fidelity[m]) for m in METRICS}
            curves[pair.name].add(label, result.image)
            seconds.append(result.seconds)
            done += 1
        means = {m: statistics.fmean(v[m] for v in per_image.values()) for m in METRICS}
        rows.append(Row(label, engine_id, checked.colour_fix, means, statistics.median(seconds), per_image))
    progress(total, total, "done")
    return Evaluation(rows, [p.name for p in pairs], skipped, curves=curves)
