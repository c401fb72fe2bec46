"""What the page shows of a ``Comparison``: labels, summary, diagram, crops, maps, the PSNR table.

Plain values (HTML, Markdown, file paths); each tab of ``ui`` puts them into its outputs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from .. import fidelity
from ..api import UpscaleResult
from ..image import encode_png
from ..present import compare, diagram, verdicts
from .comparison import BASELINE_KEY, BASELINE_SHORT, CROP_ZOOM, TRUTH_KEY, Comparison
from .words import web_text


def state_value(comparison: Comparison) -> Any:
    """What the page's State keeps of a run: its key in the result store (the comparison stays on the
    server, within the store's budget), or the comparison itself where there is no store."""
    return comparison.key or comparison


def before_after_html(left: str, right: str) -> str:
    return (
        '<div class="cnaps-ba">'
        f'<span class="cnaps-before">\u25c0 Before: {html.escape(left)}</span>'
        f'<span class="cnaps-after">After: {html.escape(right)} \u25b6</span></div>'
    )


def note_html(text: str) -> str:
    """A one-line card where the slider's labels go: why there is no result to show."""
    return f'<div class="cnaps-card cnaps-card-off cnaps-no-result">{html.escape(text)}</div>'


def diagram_html(results: Sequence[UpscaleResult]) -> str:
    if not results:
        return '<div class="cnaps-diagram-wrap"><p class="cnaps-empty">Run an engine to see its pipeline.</p></div>'
    svgs = "".join(diagram.render_responsive(result) for result in results)
    return f'<div class="cnaps-diagram-wrap">{svgs}</div>'


def _params_text(params: dict[str, Any]) -> str:
    if not params:
        return ""
    parts = []
    for key, value in params.items():
        text = web_text(" ".join(str(value).split())).replace("`", "'")  # no server paths for visitors
        if len(text) > 40:
            text = text[:39] + "\u2026"
        # A code span shows its text as it is (the Markdown renderer escapes it): escaping here too
        # would show a prompt's quotes as "&quot;".
        parts.append(f"`{key}={text}`")
    return " ".join(parts)


def run_lines(comparison: Comparison) -> list[str]:
    """One line per result: engine, sizes, seconds, parameters."""
    source = comparison.source
    lines = []
    for result in comparison.results.values():
        cached = " (cached result)" if result.extra.get("cached") else ""
        lines.append(
            f"**{html.escape(result.engine_name)}**: {source.image.width}\u00d7{source.image.height} \u2192 "
            f"{result.image.width}\u00d7{result.image.height} in {diagram.format_seconds(result.seconds)}{cached}. "
            + _params_text(result.params)
        )
    return lines


def summary_markdown(comparison: Comparison) -> str:
    source = comparison.source
    lines = run_lines(comparison)
    for engine_id, result in comparison.results.items():
        lines.append(fidelity_markdown(comparison, engine_id))
    for notice in source.notices:
        lines.append(f"*Note:* {html.escape(notice)}")
    return "\n\n".join(lines)


def fidelity_markdown(comparison: Comparison, engine_id: str) -> str:
    """How faithful one result is: a verdict per figure on a stated scale, the details folded
    (``present.verdicts``), and first a warning where the picture is too soft to judge by."""
    against = "the ground truth (your original)" if comparison.source.truth is not None else "your picture"
    input_soft, truth_soft = comparison.softness()
    return verdicts.fidelity_summary(
        comparison.fidelity_of(engine_id), comparison.fidelity_of(BASELINE_KEY), against=against,
        input_soft=input_soft and comparison.source.truth is None, truth_soft=truth_soft,
    )


def short_label(label: str) -> str:
    """"Real-CUGAN (anime CNN)" -> "Real-CUGAN": a slider label must fit beside the other one, whole,
    on a projector in large type (the summary under the slider gives the full name)."""
    return label.split(" (")[0]


def result_label(comparison: Comparison, key: str) -> str:
    """A slider label; with a ground truth it carries the PSNR against it, so the audience sees the score."""
    short = short_label(BASELINE_SHORT if key == BASELINE_KEY else comparison.label(key))
    if comparison.source.truth is None or key == TRUTH_KEY:
        return short
    soft = " vs a soft original" if comparison.softness()[1] else ""
    return f"{short} \u00b7 {fidelity.format_figure('psnr', comparison.fidelity_of(key)['psnr'])}{soft}"


def crops_html(comparison: Comparison, keys: Sequence[str] | None = None, zoom: int = CROP_ZOOM) -> str:
    """The same region of each image, each pixel an exact ``zoom`` x ``zoom`` block (the browser
    scales the 1:1 crop by an integer with ``image-rendering: pixelated``), captioned."""
    box = comparison.box_out
    figures = []
    for key in keys or comparison.keys():
        crop = compare.crop_1to1(comparison.image(key), box)
        data = base64.b64encode(encode_png(crop, {}, compress_level=1)).decode("ascii")
        label = html.escape(comparison.label(key))
        figures.append(
            f'<figure class="cnaps-crop" style="width:{crop.width * zoom}px">'
            f'<img src="data:image/png;base64,{data}" width="{crop.width * zoom}" height="{crop.height * zoom}" '
            f'alt="{label}, detail"><figcaption>{label}</figcaption></figure>'
        )
    left, top, right, bottom = box
    note = (
        f"{right - left}\u00d7{bottom - top} output pixels at ({left}, {top}), each shown {zoom}\u00d7{zoom}. "
        "Click the small picture to look elsewhere."
    )
    return f'<div class="cnaps-crops">{"".join(figures)}</div><p class="cnaps-muted cnaps-crop-note">{note}</p>'


def empty_crops_html() -> str:
    return '<p class="cnaps-empty">Run an engine to see the same pixels from each image, enlarged.</p>'


def where_scale(comparison: Comparison) -> float:
    """Input pixels per pixel of the crop picker's picture (a click on it is in its own pixels)."""
    return comparison.source.image.width / comparison.where_thumbnail().width


def where_image(comparison: Comparison) -> str:
    """The engine's input, small, with the detail window outlined: one file per run, replaced when the
    window moves (a click costs a small redraw, and leaves no new file behind)."""
    small, scale = comparison.where_thumbnail(), where_scale(comparison)
    box = tuple(int(round(edge / scale)) for edge in comparison.box_in)
    outlined = compare.draw_box(small, box, width=max(2, small.width // 150))
    return comparison.replace_view(outlined, "where")


def added_map(comparison: Comparison, engine_id: str) -> str:
    """|output - bicubic| x 4 of one result, as a file."""
    result = comparison.results[engine_id]
    return comparison.save_view(compare.added_detail_map(result.image, comparison.baseline), f"added-{engine_id}")


def added_maps(comparison: Comparison) -> list[tuple[str, str]]:
    return [
        (added_map(comparison, engine_id), f"{result.engine_name}: |output \u2212 bicubic| \u00d7 4")
        for engine_id, result in comparison.results.items()
    ]


def fidelity_table(comparison: Comparison) -> str:
    """Every result's fidelity figures side by side (the Compare tab), with what each one means."""
    names = [n for n in ("psnr", "ssim", "lr_psnr", "sharpness", "colour_shift") if n in comparison.fidelity_of(BASELINE_KEY)]
    header = "| Result | Time | " + " | ".join(fidelity.METRIC_LABELS[n] for n in names) + " |\n"
    header += "|---" * (len(names) + 2) + "|\n"

    def row(key: str, seconds: str) -> str:
        figures = comparison.fidelity_of(key)
        cells = " | ".join(fidelity.format_figure(n, figures[n]) for n in names)
        return f"| {html.escape(comparison.label(key))} | {seconds} | {cells} |"

    rows = [row(BASELINE_KEY, "\u2014")]
    for engine_id, result in comparison.results.items():
        cached = " (cached)" if result.extra.get("cached") else ""
        rows.append(row(engine_id, diagram.format_seconds(result.seconds) + cached))
    meaning = "\n".join(
        f"- **{fidelity.METRIC_LABELS[n]}**: {html.escape(fidelity.METRIC_HELP[n], quote=False)}" for n in names
    )
    text = header + "\n".join(rows) + "\n\n" + meaning
    if comparison.source.truth is None:
        text += "\n\nTurn on **Simulate a blurry source** to measure each result against a ground truth too."
    return text


def pair_view(comparison: Comparison, left: str, right: str) -> tuple[tuple[str, str], str]:
    """The slider pair and its labels for two image keys of ``comparison``."""
    return tuple(comparison.image_files(left, right)), before_after_html(
        result_label(comparison, left), result_label(comparison, right)
    )
