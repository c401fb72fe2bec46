"""What the buttons do. Plain functions over plain values, so tests can call them directly.

Only this layer turns ``CnapsError`` into ``gr.Error``; the message keeps the library's
"what went wrong + how to fix it" text (HTML-escaped: Gradio renders error text as HTML).
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gradio as gr
from PIL import Image

from ..image import MIN_SIDE, load_image, save_png
from ..present import compare, diagram
from ..api import UpscaleResult, availability, prepare
from ..engines import Engine, get_engine
from ..errors import (
    CnapsError,
    EngineUnavailableError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    JobCancelledError,
    NoImageError,
    UnknownEngineError,
)
from ..settings import Settings
from ..stages import ProgressFn
from .jobs import StopRequests  # noqa: F401 - re-exported for callers that predate ui.jobs
from .untrusted import NO_IMAGE_MESSAGE, Admitted

log = logging.getLogger(__name__)

BASELINE_KEY = "__bicubic__"
TRUTH_KEY = "__truth__"
BASELINE_LABEL = "Bicubic 2x (classical baseline)"
BASELINE_SHORT = "Bicubic 2x (classical)"
TRUTH_LABEL = "Ground truth (your original)"
SIMULATE_NOTE = (
    "Blurry source simulated: your {w}\u00d7{h} picture was shrunk to {sw}\u00d7{sh}, blurred slightly and "
    "saved as a JPEG of quality 60. The original is the ground truth."
)


# --- errors -------------------------------------------------------------------


def _title_for(error: CnapsError) -> str:
    if isinstance(error, NoImageError):
        return "No image"
    if isinstance(error, ImageTooLargeError):
        return "Image too large"
    if isinstance(error, InvalidImageError):
        return "Cannot use this image"
    if isinstance(error, EngineUnavailableError):
        return "Engine unavailable here"
    if isinstance(error, (InvalidParameterError, UnknownEngineError)):
        return "Invalid setting"
    if isinstance(error, JobCancelledError):
        return "Stopped"
    return "Upscaling failed"


# An absolute path of two or more parts (not "1/255", not a URL's path): the server's own business.
_SERVER_PATH = re.compile(r"(?<![\w.~:/])/(?:[^\s'\"()<>,;/]+/)+([^\s'\"()<>,;/]*)")


def web_text(text: str) -> str:
    """``text`` fit for a web visitor: server paths cut to their last part, no markup characters.

    Gradio shows toast text through an HTML sanitiser; angle brackets are swapped for look-alike
    quotes (escaping them would show entities such as ``&#x27;`` instead).
    """
    text = _SERVER_PATH.sub(lambda match: match.group(1) or "a server folder", text)
    return text.replace("<", "\u2039").replace(">", "\u203a")


OPERATOR_NOTE = "Whoever runs this server can set it up; the server log says how."


def public_message(error: CnapsError) -> str:
    """What a web visitor reads: the problem and what *they* can do. Setup advice goes to the log."""
    if isinstance(error, EngineUnavailableError) and not isinstance(error, JobCancelledError):
        log.warning("engine unavailable: %s", error)  # the operator's fix, without a traceback
        why = short_reason(error.hint or "")
        return web_text(f"{error.message.rstrip('.')} ({why}). {OPERATOR_NOTE}")
    return web_text(str(error))


def ui_error(error: CnapsError | str, title: str | None = None) -> gr.Error:
    """A ``gr.Error`` carrying the message and its fix. Expected errors print no traceback."""
    if isinstance(error, CnapsError):
        return gr.Error(public_message(error), title=title or _title_for(error), print_exception=False)
    return gr.Error(web_text(str(error)), title=title or "Error", print_exception=False)


# --- engines ------------------------------------------------------------------


def short_reason(reason: str, limit: int = 48) -> str:
    """A few words for a picker label; the status line shows the whole reason and its fix."""
    text = reason.lower()
    parts = []
    if "pip install" in text or "package" in text:
        parts.append("missing Python package")
    if "weights" in text or "download" in text:
        parts.append("weights not downloaded")
    if "gpu" in text or "cuda" in text:
        parts.append("needs a GPU")
    if parts:
        return " + ".join(parts)
    first = re.split(r"(?<=[.;:])\s", reason.strip(), maxsplit=1)[0].rstrip(".;:")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "\u2026"


FAMILY_WORDS = {"classical": "classical", "cnn": "CNN", "diffusion": "diffusion"}


def engine_label(engine: Engine, settings: Settings) -> str:
    ok, reason = availability(engine, settings=settings)
    family = FAMILY_WORDS.get(engine.family, engine.family)
    gpu = ", GPU" if engine.device_need == "gpu" else ""
    kind = f"{family}{gpu}"
    # "Real-CUGAN (anime CNN)" already says CNN: only add what the name does not say.
    says_it = family.lower() in engine.display_name.lower() and not gpu
    label = engine.display_name if says_it else f"{engine.display_name} ({kind})"
    return label if ok else f"{label} (unavailable: {short_reason(reason)})"


def engine_choices(engines: Sequence[Engine], settings: Settings) -> list[tuple[str, str]]:
    return [(engine_label(engine, settings), engine.id) for engine in engines]


def default_engine_id(engines: Sequence[Engine], settings: Settings, preferred: str = "realcugan") -> str:
    runnable = [engine for engine in engines if availability(engine, settings=settings).ok]
    for engine in runnable:
        if engine.id == preferred:
            return preferred
    for engine in runnable:
        if engine.family != "classical":
            return engine.id
    for engine in runnable:
        return engine.id
    return engines[0].id


def engine_status_markdown(engine_id: str, settings: Settings) -> str:
    """One status line under the picker: what it does, or why it cannot run and the fix."""
    try:
        engine = get_engine(engine_id)
    except UnknownEngineError as error:
        return f"**Unknown engine.** {html.escape(str(error))}"
    ok, reason = availability(engine, settings=settings)
    where = "needs a GPU" if engine.device_need == "gpu" else "runs on the CPU (faster on a GPU)"
    if engine.family == "classical":
        where = "runs anywhere, instantly"
    if ok:
        return f"**Ready: {engine.display_name}** ({where}). {html.escape(engine.summary)}"
    return (
        f"**Unavailable: {engine.display_name} cannot run on this server** ({html.escape(short_reason(reason))}). "
        + OPERATOR_NOTE
    )


def find_engine(engine_id: str | None) -> Engine:
    """The engine for an id, whether or not it can run here (a cached result may still be shown)."""
    if not engine_id:
        raise ui_error("No engine is selected. Pick one in the Engine list.", title="Invalid setting")
    try:
        return get_engine(engine_id)
    except UnknownEngineError as error:
        raise ui_error(error) from None


def require_available(engine_id: str | None, settings: Settings) -> Engine:
    engine = find_engine(engine_id)
    ok, reason = availability(engine, settings=settings)
    if not ok:
        raise ui_error(EngineUnavailableError(f"{engine.display_name} cannot run here.", hint=reason))
    return engine


# --- input --------------------------------------------------------------------


@dataclass
class Source:
    """What goes into the engine, and what to compare it with."""

    image: Image.Image  # the engine's input (the original, or its simulated blurry copy)
    original: Image.Image  # the decoded upload
    truth: Image.Image | None  # ground truth when the blurry source is simulated
    stem: str  # for download file names
    notices: tuple[str, ...] = ()


def _stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-")
    return (stem or "image")[:40]


class InputPolicy(Protocol):
    """Decides what an image value may be: ``untrusted.UploadGuard`` for the web."""

    def admit(self, value: Any) -> Admitted: ...


def load_source(value: Any, settings: Settings, simulate: bool = False, *, guard: InputPolicy) -> Source:
    """Admit ``value`` through ``guard``, then decode it through ``image.load_image`` (UI limit)."""
    try:
        admitted = guard.admit(value)
        loaded = load_image(
            admitted.data,
            max_pixels=settings.ui_max_input_pixels,
            limit_setting="CNAPS_UI_MAX_PIXELS",
            name=admitted.name,
        )
    except CnapsError as error:
        raise ui_error(error) from None
    name = admitted.name
    notices = list(loaded.notices)
    if not simulate:
        return Source(loaded.image, loaded.image, None, _stem(name), tuple(notices))
    width, height = loaded.image.size
    need = 2 * MIN_SIDE
    if min(width, height) < need:
        raise ui_error(
            InvalidImageError(
                f"Your picture is {width} x {height} pixels; 'Simulate a blurry source' halves it, and "
                f"that needs at least {need} x {need}.",
                hint="Turn off 'Simulate a blurry source', or use a larger image.",
            )
        )
    try:
        small, truth = compare.simulate_blurry_source(loaded.image)
    except ValueError as error:
        raise ui_error(
            f"{error}. Turn off 'Simulate a blurry source' or use a larger image.", title="Cannot use this image"
        ) from None
    if loaded.image.mode == "RGBA":
        notices.append("Transparency was flattened onto white for the blurry-source simulation.")
    notices.insert(0, SIMULATE_NOTE.format(w=truth.width, h=truth.height, sw=small.width, sh=small.height))
    return Source(small, loaded.image, truth, _stem(name), tuple(notices))


# --- progress -----------------------------------------------------------------


def progress_forwarder(
    progress: Any, *, label: str = "", index: int = 0, count: int = 1, stop: threading.Event | None = None
) -> ProgressFn:
    """A ``ProgressFn`` for ``upscale()`` that reports into a ``gr.Progress`` (or any callable).

    When ``stop`` is set (the Stop button), the next progress step raises ``JobCancelledError``:
    engines call it once per tile or denoising step, so a job stops within one step.
    """

    def forward(done: int, total: int, description: str) -> None:
        if stop is not None and stop.is_set():
            raise JobCancelledError(
                f"Stopped at {description or 'the current step'}.", hint="Press the Upscale button to run again."
            )
        if progress is None:
            return
        fraction = (done / total) if total else 0.0
        overall = (index + max(0.0, min(1.0, fraction))) / max(1, count)
        text = f"{label}: {description}" if label else description
        try:
            progress(overall, desc=text)
        except Exception as error:  # noqa: BLE001 - a progress bar must never break a run
            log.debug("progress update failed: %s", error)

    return forward


# --- running ------------------------------------------------------------------


class Workdir:
    """Per-app folder for every file the page shows or offers; folders older than ``max_age`` go.

    It lives inside Gradio's cache folder, so Gradio serves these files as they are instead of
    copying them (Gradio names its copies by content and rewrites them in place, which corrupts a
    download of one identical result while another job writes it). Each run gets a fresh folder
    and each file is written once, before its path is handed out.
    """

    def __init__(self, root: Path, max_age: float = 3600.0) -> None:
        self.root = Path(root)
        self.max_age = max_age
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run_dir(self) -> Path:
        self.prune()
        path = self.root / uuid.uuid4().hex[:12]
        path.mkdir(parents=True)
        return path

    def prune(self) -> None:
        cutoff = time.time() - self.max_age
        for child in self.root.iterdir():
            try:
                if child.is_dir() and child.stat().st_mtime < cutoff:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                pass


def run_engine(
    source: Source,
    engine: Engine,
    params: dict[str, Any],
    *,
    settings: Settings,
    progress: ProgressFn,
    cache: Any = None,
) -> UpscaleResult:
    """Run one engine (or take the presenter cache's copy); library errors become gr.Error.

    A cached result is served even when the engine cannot run here any more (a talk on a laptop
    without the GPU the results were computed on); otherwise ``upscale`` refuses with the fix.
    ``JobCancelledError`` (the Stop button) passes through unchanged.
    """
    try:
        request = prepare(
            source.image,
            engine.id,
            progress=progress,
            max_pixels=settings.ui_max_input_pixels,
            limit_setting="CNAPS_UI_MAX_PIXELS",
            settings=settings,
            **params,
        )
        progress(0, 1, "starting")  # also where a Stop pressed before the start takes effect
        if cache is not None:
            hit = cache.get(source.image, engine.id, request.params)
            if hit is not None:
                progress(1, 1, "cached result")
                return hit
        result = request.run()
    except JobCancelledError:
        raise  # not a failure: the caller tells the user and keeps what is on screen
    except CnapsError as error:
        raise ui_error(error) from None
    if cache is not None:
        cache.put(source.image, result)
    return result


def crop_window(size: tuple[int, int]) -> int:
    """Side of the detail window on the input grid: a quarter of the short side, 32-96 px."""
    return max(8, min(96, max(32, min(size) // 4), min(size)))


@dataclass
class Comparison:
    """Everything the comparison views need, derived from one source and some results."""

    source: Source
    baseline: Image.Image  # bicubic of the source, at the output size
    results: dict[str, UpscaleResult]
    box_in: compare.Box  # detail window on the input grid
    scale: int
    run_dir: Path | None = None  # where this comparison's files are written, once each
    files: dict[str, str] = field(default_factory=dict)  # engine id -> PNG path
    svgs: dict[str, str] = field(default_factory=dict)  # engine id -> SVG path
    views: dict[str, str] = field(default_factory=dict)  # image key -> PNG path shown on the page

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
        """A PNG file of ``image(key)`` for the page (a result's own PNG where there is one)."""
        if key in self.files:
            return self.files[key]
        if key not in self.views:
            self.views[key] = self.save_view(self.image(key), key.strip("_"))
        return self.views[key]

    def save_view(self, image: Image.Image, name: str) -> str:
        """Write a derived picture (crop, map) once under a fresh name in this run's folder."""
        assert self.run_dir is not None, "build_comparison gives every comparison a folder"
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name)
        target = self.run_dir / f"{safe}-{uuid.uuid4().hex[:8]}.png"
        return str(save_png(image, target, {}))

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


def build_comparison(source: Source, results: dict[str, UpscaleResult], workdir: Workdir) -> Comparison:
    first = next(iter(results.values()))
    scale = first.scale
    baseline = compare.bicubic_baseline(source.image, first.image.size)
    box_in = compare.edge_richest_box(source.image, crop_window(source.image.size))
    run_dir = workdir.new_run_dir()
    comparison = Comparison(source, baseline, results, box_in, scale, run_dir)
    for engine_id, result in results.items():
        png = run_dir / f"{source.stem}-{engine_id}-x{result.scale}.png"
        result.save(png)
        comparison.files[engine_id] = str(png)
        svg = run_dir / f"{source.stem}-{engine_id}-pipeline.svg"
        svg.write_text(diagram.render_result(result, standalone=True), encoding="utf-8")
        comparison.svgs[engine_id] = str(svg)
    return comparison


def before_after_html(left: str, right: str) -> str:
    return (
        '<div class="cnaps-ba">'
        f'<span class="cnaps-before">\u25c0 Before: {html.escape(left)}</span>'
        f'<span class="cnaps-after">After: {html.escape(right)} \u25b6</span></div>'
    )


def diagram_html(results: Sequence[UpscaleResult]) -> str:
    if not results:
        return '<div class="cnaps-diagram-wrap"><p class="cnaps-empty">Run an engine to see its pipeline.</p></div>'
    svgs = "".join(diagram.render_result(result) for result in results)
    return f'<div class="cnaps-diagram-wrap">{svgs}</div>'


def _params_text(params: dict[str, Any]) -> str:
    if not params:
        return ""
    parts = []
    for key, value in params.items():
        text = " ".join(str(value).split()).replace("`", "'")
        if len(text) > 40:
            text = text[:39] + "\u2026"
        parts.append(f"`{html.escape(key)}={html.escape(text)}`")
    return " ".join(parts)


def summary_markdown(comparison: Comparison) -> str:
    source = comparison.source
    lines = []
    for result in comparison.results.values():
        cached = " (cached result)" if result.extra.get("cached") else ""
        lines.append(
            f"**{html.escape(result.engine_name)}**: {source.image.width}\u00d7{source.image.height} \u2192 "
            f"{result.image.width}\u00d7{result.image.height} in {diagram.format_seconds(result.seconds)}{cached}. "
            + _params_text(result.params)
        )
    if source.truth is not None:
        scores = [
            f"{BASELINE_LABEL.split(' (')[0]}: **{compare.format_psnr(compare.psnr(comparison.baseline, source.truth))}**"
        ]
        for result in comparison.results.values():
            scores.append(
                f"{html.escape(result.engine_name)}: **{compare.format_psnr(compare.psnr(result.image, source.truth))}**"
            )
        lines.append("PSNR against the ground truth (higher = closer to the real pixels): " + " \u00b7 ".join(scores))
    for notice in source.notices:
        lines.append(f"*Note:* {html.escape(notice)}")
    return "\n\n".join(lines)


def crops_gallery(comparison: Comparison, keys: Sequence[str] | None = None, zoom: int = 3) -> list[tuple[str, str]]:
    """1:1 crops of the same region from each image (shown ``zoom``x, nearest neighbour), as files."""
    box = comparison.box_out
    items = []
    for key in keys or comparison.keys():
        crop = compare.crop_1to1(comparison.image(key), box, zoom=zoom)
        items.append((comparison.save_view(crop, f"crop-{key.strip('_')}"), comparison.label(key)))
    return items


def where_image(comparison: Comparison) -> str:
    """The engine's input with the detail window outlined, as a file."""
    outlined = compare.draw_box(
        comparison.source.image, comparison.box_in, width=max(2, comparison.source.image.width // 150)
    )
    return comparison.save_view(outlined, "where")


def added_map(comparison: Comparison, engine_id: str) -> str:
    """|output - bicubic| x 4 of one result, as a file."""
    result = comparison.results[engine_id]
    return comparison.save_view(compare.added_detail_map(result.image, comparison.baseline), f"added-{engine_id}")


def added_maps(comparison: Comparison) -> list[tuple[str, str]]:
    return [
        (added_map(comparison, engine_id), f"{result.engine_name}: |output \u2212 bicubic| \u00d7 4")
        for engine_id, result in comparison.results.items()
    ]


def psnr_table(comparison: Comparison) -> str:
    truth = comparison.source.truth
    header = (
        "| Result | Time | PSNR vs ground truth |\n|---|---|---|\n"
        if truth is not None
        else "| Result | Time |\n|---|---|\n"
    )
    rows = []

    def row(label: str, seconds: str, image: Image.Image) -> str:
        if truth is None:
            return f"| {label} | {seconds} |"
        return f"| {label} | {seconds} | {compare.format_psnr(compare.psnr(image, truth))} |"

    rows.append(row(BASELINE_LABEL, "\u2014", comparison.baseline))
    for result in comparison.results.values():
        cached = " (cached)" if result.extra.get("cached") else ""
        rows.append(row(html.escape(result.engine_name), diagram.format_seconds(result.seconds) + cached, result.image))
    text = header + "\n".join(rows)
    if truth is None:
        text += "\n\nTurn on **Simulate a blurry source** to measure each result against a ground truth."
    return text
