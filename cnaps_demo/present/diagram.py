"""Draw a run's stage records as an SVG flow diagram: input -> one box per stage -> output.

Pure string building (no gradio, no torch). The input and output boxes show the pictures
(small data: URIs), and a stage that recorded a preview (``StageRecord.preview``, e.g. the SD
latent) shows it too. Every piece of text is XML-escaped, because stage details can hold user
input (a diffusion prompt), and fitted inside its box with a conservative width estimate
(``diagram_text``). Shapes use one notation, height x width x channels, stated in the caption.

Two layouts: ``"horizontal"`` (rows of three boxes, for a laptop or projector) and
``"vertical"`` (one column, for a phone). ``render_responsive`` gives both with
``RESPONSIVE_CSS`` choosing one by the width available, and a fold of how each stage ran.
Conversions fold into the arrows, and a network's structure is drawn inside its box
(``diagram_fold``).

Colours work on light and dark pages: text and outlines use ``currentColor`` (inherited from
the page), boxes are tinted with semi-transparent accents, and the standalone file (for
download) carries its own light/dark colours through ``prefers-color-scheme``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from ..stages import StageRecord
from .diagram_fold import Block, connectors, conversion_note, fold_html, split_conversions, structure_blocks
from .diagram_fold import BLOCK_PAD, structure_hover
from .diagram_text import detail_texts, fit, format_seconds, format_shape, thumbnail, timing_line

# Sizes in SVG user units; the SVG scales to its container, these keep the type big
# relative to the boxes so it stays legible on a projector (horizontal) and a phone (vertical).
LAYOUTS = ("horizontal", "vertical")
BOX_W = {"horizontal": 360, "vertical": 392}
PER_ROW = {"horizontal": 3, "vertical": 1}
GAP_X = 64
GAP_Y = 70
MARGIN = 24
PAD = 16
BAR = 6  # room for the accent bar left of a stage box's text
TITLE_SIZE = 30
SUBTITLE_SIZE = 22
NAME_SIZE = 24
SHAPE_SIZE = 22
DETAIL_SIZE = 21
LINE_GAP = 1.3
MAX_TITLE_LINES = 3
MAX_DETAIL_LINES = 10
THUMB_H = 170  # drawn height of the input/output pictures
PREVIEW_H = 120  # drawn height of a stage's preview
PICTURE_GAP = 10
NOTATION = "Sizes are height \u00d7 width \u00d7 channels. Times were measured on this run."
NOTATION_CACHED = "Sizes are height \u00d7 width \u00d7 channels. Times were measured when the result was computed ahead."
LATENT_NOTE = "A latent is the picture compressed by the VAE: 1/8 of its height and width, 4 channels."

# Accent colours chosen to read on both white and near-black backgrounds.
ACCENTS = {
    "io": "#64748b",  # slate
    "classical": "#0d9488",  # teal
    "cnn": "#ea580c",  # orange
    "encoder": "#2563eb",  # blue
    "noise": "#d97706",  # amber
    "unet": "#9333ea",  # purple
    "decoder": "#16a34a",  # green
    "other": "#0891b2",  # cyan
}

STANDALONE_STYLE = (
    ".cnaps-diagram{color:#1b1f24}"
    ".cnaps-diagram .cnaps-bg{fill:#ffffff}"
    "@media (prefers-color-scheme: dark){"
    ".cnaps-diagram{color:#e8eaed}"
    ".cnaps-diagram .cnaps-bg{fill:#111418}}"
)
# Below this width the horizontal diagram's smallest text would be under ~14 px: stack instead.
STACK_BELOW_PX = 840
RESPONSIVE_CSS = (
    ".cnaps-diagram-pair{container-type:inline-size}"
    ".cnaps-diagram-pair>.cnaps-diagram-tall{display:none}"
    f"@container (max-width: {STACK_BELOW_PX}px){{"
    ".cnaps-diagram-pair>.cnaps-diagram-wide{display:none}"
    ".cnaps-diagram-pair>.cnaps-diagram-tall{display:block}}"
)


def esc(text: Any) -> str:
    """XML-escape any value for use in text or a double-quoted attribute."""
    return _xml_escape(str(text), {'"': "&quot;", "'": "&#39;"})


def stage_kind(name: str) -> str:
    """Pick an accent from the stage name (purely cosmetic)."""
    n = name.lower()
    if any(k in n for k in ("cugan", "esrgan", "cnn", "network", "tile")):
        return "cnn"
    if "decod" in n:
        return "decoder"
    if "vae" in n or "encod" in n:
        return "encoder"
    if "unet" in n or "denois" in n or "diffus" in n:
        return "unet"
    if "noise" in n:
        return "noise"
    if any(k in n for k in ("bicubic", "lanczos", "nearest", "resample", "resize")):
        return "classical"
    return "other"


@dataclass
class _Text:
    text: str
    size: float
    bold: bool = False
    mono: bool = False
    opacity: float = 1.0

    @property
    def height(self) -> float:
        return self.size * LINE_GAP


@dataclass
class _Picture:
    uri: str
    pixels: tuple[int, int]
    width: float
    height: float

    @property
    def crisp(self) -> bool:
        """Enlarged on screen (a latent preview): draw its pixels as squares, not a blur."""
        return self.width > 1.5 * self.pixels[0]


@dataclass
class _Box:
    inner: float  # width available to text
    tooltip: str
    accent: str
    dashed: bool = False
    items: list[_Text | _Picture | Block] = field(default_factory=list)

    @property
    def height(self) -> int:
        content = sum(item.height + (2 * PICTURE_GAP if isinstance(item, _Picture) else 0) for item in self.items)
        return int(math.ceil(2 * PAD + content + 6))

    def text(self, text: str, size: float, *, max_lines: int = 1, bold: bool = False, mono: bool = False,
             opacity: float = 1.0) -> int:
        lines, fitted = fit(text, size, self.inner, max_lines=max_lines, bold=bold, mono=mono)
        self.items += [_Text(line, fitted, bold, mono, opacity) for line in lines]
        return len(lines)

    def picture(self, image: Any, max_height: float) -> None:
        uri, width, height = thumbnail(image)
        scale = min(max_height / height, self.inner / width)
        self.items.append(_Picture(uri, (width, height), round(width * scale, 1), round(height * scale, 1)))


def _shape_lines(box: _Box, stage: StageRecord) -> None:
    """'in -> out' on one line when it fits (shrunk a little at most), else on two."""
    text_in, text_out = format_shape(stage.input_shape), format_shape(stage.output_shape)
    if "text encoder" in stage.name.lower() and len(stage.input_shape) == 1:
        text_in = f"{stage.input_shape[0]} tokens"
    both = f"{text_in} \u2192 {text_out}"
    lines, _size = fit(both, SHAPE_SIZE, box.inner, mono=True)
    if lines == [both]:
        box.text(both, SHAPE_SIZE, bold=True, mono=True)
    else:
        box.text(text_in, SHAPE_SIZE, bold=True, mono=True)
        box.text("\u2192 " + text_out, SHAPE_SIZE, bold=True, mono=True)


def _stage_box(stage: StageRecord, layout: str) -> _Box:
    detail = dict(stage.detail or {})
    tooltip_parts = [
        stage.name,
        f"in {format_shape(stage.input_shape)}",
        f"out {format_shape(stage.output_shape)}",
        format_seconds(stage.seconds),
    ]
    tooltip_parts += [f"{k}: {' '.join(str(v).split())}" for k, v in detail.items() if k != "structure"]
    tooltip_parts += [structure_hover(detail)] if "structure" in detail else []
    box = _Box(BOX_W[layout] - 2 * PAD - BAR, "\n".join(tooltip_parts), ACCENTS[stage_kind(stage.name)])
    box.text(stage.name, NAME_SIZE, max_lines=MAX_TITLE_LINES, bold=True)
    if stage.preview is not None:
        box.picture(stage.preview, PREVIEW_H)
    _shape_lines(box, stage)
    box.text("time: " + format_seconds(stage.seconds), DETAIL_SIZE, bold=True)
    for number, (label, levels) in enumerate(structure_blocks(detail)):
        box.items.append(Block.build(label, levels, box.inner, first=number == 0))
    lines: list[_Text] = []
    for text in detail_texts(detail):
        wrapped, size = fit(text, DETAIL_SIZE, box.inner, max_lines=2)
        lines += [_Text(line, size, opacity=0.9) for line in wrapped]
    if len(lines) > MAX_DETAIL_LINES:
        hidden = len(lines) - (MAX_DETAIL_LINES - 1)
        lines = lines[: MAX_DETAIL_LINES - 1] + [_Text(f"+{hidden} more lines (hover)", DETAIL_SIZE, opacity=0.9)]
    box.items += lines
    return box


def _io_box(label: str, shape: Sequence[int], image: Any, layout: str) -> _Box:
    box = _Box(BOX_W[layout] - 2 * PAD - BAR, f"{label}: {format_shape(shape)}", ACCENTS["io"], dashed=True)
    box.text(label, NAME_SIZE, bold=True)
    if image is not None:
        box.picture(image, THUMB_H)
    box.text(format_shape(shape), SHAPE_SIZE, bold=True, mono=True)
    channels = int(shape[0]) if len(shape) == 3 else 0
    note = {1: "grey", 2: "grey + transparency", 3: "RGB", 4: "RGB + transparency"}.get(channels, "")
    if note:
        box.text(note, DETAIL_SIZE, opacity=0.9)
    return box


def _header(engine_name: str, timing: str, width: float) -> list[_Text]:
    inner = width - 2 * MARGIN
    lines, size = fit(engine_name or "Pipeline", TITLE_SIZE, inner, max_lines=3, bold=True)
    out = [_Text(line, size, bold=True) for line in lines]
    lines, size = fit(timing, SUBTITLE_SIZE, inner, max_lines=2)
    return out + [_Text(line, size, opacity=0.85) for line in lines]


def _caption(stages: list[StageRecord], width: float, cached: bool = False, note: str = "") -> list[_Text]:
    text = NOTATION_CACHED if cached else NOTATION
    if any("vae" in stage.name.lower() for stage in stages):
        text += " " + LATENT_NOTE
    text += f" {note}" if note else ""
    lines, size = fit(text, DETAIL_SIZE, width - 2 * MARGIN, max_lines=8)
    return [_Text(line, size, opacity=0.8) for line in lines]


def render_svg(
    stages: Iterable[StageRecord],
    *,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    engine_name: str = "",
    total_seconds: float | None = None,
    cached: bool = False,
    standalone: bool = False,
    layout: str = "horizontal",
    input_image: Any = None,
    output_image: Any = None,
) -> str:
    """SVG markup for one run. Shapes are (channels, height, width) or as the records hold them;
    ``input_image``/``output_image`` (PIL) are drawn in their boxes. ``standalone=True`` adds the
    XML prolog and its own colours. ``layout``: ``"horizontal"`` or ``"vertical"``. The header's total is
    the stages' sum (``diagram_text.timing_line``); ``total_seconds`` is the whole run's time, named apart
    when longer; ``cached``: the result was computed ahead."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    stages = list(stages)
    boxed, folded = split_conversions(stages)
    boxes = [_io_box("Input image", input_shape, input_image, layout)]
    boxes += [_stage_box(stage, layout) for stage in boxed]
    boxes.append(_io_box("Output image", output_shape, output_image, layout))
    per_row = min(PER_ROW[layout], len(boxes))
    width = 2 * MARGIN + per_row * BOX_W[layout] + (per_row - 1) * GAP_X
    timing = timing_line(stages, total_seconds, cached)
    header = _header(engine_name, timing, width)
    caption = _caption(stages, width, cached, conversion_note(folded))

    rows = [boxes[i : i + per_row] for i in range(0, len(boxes), per_row)]
    row_heights = [max(box.height for box in row) for row in rows]
    top = MARGIN + sum(t.height for t in header) + 18
    gap_y = GAP_Y if per_row > 1 else GAP_Y * 0.7
    caption_h = sum(t.height for t in caption) + 16
    height = math.ceil(top + sum(row_heights) + gap_y * (len(rows) - 1) + caption_h + MARGIN)
    title = f"{engine_name}: " if engine_name else ""
    title += timing
    key = repr((layout, title, [(s.name, s.input_shape, s.output_shape, s.seconds) for s in stages]))
    uid = "d" + hashlib.sha1(key.encode()).hexdigest()[:8]

    out = [_svg_open(width, height, uid, title, layout, standalone)]
    out += _texts(header, MARGIN, MARGIN)
    positions: list[tuple[float, float, float, float]] = []  # x, y, w, h per box
    y = top
    for row, row_h in zip(rows, row_heights):
        for col, box in enumerate(row):
            x = MARGIN + col * (BOX_W[layout] + GAP_X)
            positions.append((x, y, BOX_W[layout], row_h))
            out.append(_draw_box(box, x, y, BOX_W[layout], row_h))
        y += row_h + gap_y
    out += connectors(positions, uid, folded)
    out += _texts(caption, MARGIN, height - MARGIN - caption_h + 16)
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: float, height: float, uid: str, title: str, layout: str, standalone: bool) -> str:
    max_width = width * 1.4 if layout == "horizontal" else 600
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'] if standalone else []
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cnaps-diagram cnaps-diagram-{layout}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMin meet" role="img" '
        f'aria-labelledby="{uid}-t" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif" '
        f'style="max-width:{max_width:.0f}px;height:auto">'
    )
    parts.append(f'<title id="{uid}-t">{esc("Pipeline diagram. " + title)}</title>')
    if standalone:
        parts.append(f"<style>{STANDALONE_STYLE}</style>")
        parts.append(f'<rect class="cnaps-bg" x="0" y="0" width="{width}" height="{height}"/>')
    parts.append(
        f'<defs><marker id="{uid}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>'
    )
    return "".join(parts)


def _text_element(line: _Text, x: float, baseline: float) -> str:
    family = ' font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"' if line.mono else ""
    opacity = f' opacity="{line.opacity}"' if line.opacity < 1 else ""
    weight = "700" if line.bold else "400"
    return (
        f'<text x="{x:.1f}" y="{baseline:.1f}" font-size="{line.size:g}" font-weight="{weight}"{family}{opacity} '
        f'fill="currentColor">{esc(line.text)}</text>'
    )


def _texts(lines: list[_Text], x: float, y: float) -> list[str]:
    out = []
    for line in lines:
        y += line.height
        out.append(_text_element(line, x, y - line.size * 0.28))
    return out


def _draw_box(box: _Box, x: float, y: float, w: float, h: float) -> str:
    parts = [f'<g class="cnaps-box"><title>{esc(box.tooltip)}</title>']
    dash = ' stroke-dasharray="8 6"' if box.dashed else ""
    parts.append(
        f'<rect class="cnaps-frame" x="{x}" y="{y}" width="{w}" height="{h}" rx="14" fill="{box.accent}" '
        f'fill-opacity="0.16" stroke="{box.accent}" stroke-width="3"{dash}/>'
    )
    if not box.dashed:
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="{h}" rx="5" fill="{box.accent}"/>')
    left = x + PAD + BAR
    cy = y + PAD
    for item in box.items:
        if isinstance(item, _Text):
            cy += item.height
            parts.append(_text_element(item, left, cy - item.size * 0.28))
            continue
        if isinstance(item, Block):
            parts.append(item.frame(left, cy, box.inner, box.accent))
            parts += _texts([_Text(*line) for line in item.lines], left + BLOCK_PAD, item.text_top(cy))
            cy += item.height
            continue
        cy += PICTURE_GAP
        px = left + (box.inner - item.width) / 2
        crisp = ' style="image-rendering:pixelated"' if item.crisp else ""
        parts.append(
            f'<image x="{px:.1f}" y="{cy:.1f}" width="{item.width}" height="{item.height}" '
            f'href="{item.uri}" preserveAspectRatio="xMidYMid meet"{crisp}/>'
        )
        cy += item.height + PICTURE_GAP
    parts.append("</g>")
    return "".join(parts)


def shape_of(image: Any) -> tuple[int, int, int]:
    """(channels, height, width) of a PIL image."""
    channels = len(image.getbands())
    return (channels, image.height, image.width)


def render_result(result: Any, *, standalone: bool = False, layout: str = "horizontal") -> str:
    """Diagram for an ``UpscaleResult`` (or anything with the same attributes), with pictures."""
    return render_svg(
        result.stages,
        input_shape=shape_of(result.input_image),
        output_shape=shape_of(result.image),
        engine_name=result.engine_name,
        total_seconds=getattr(result, "seconds", None),
        cached=bool((getattr(result, "extra", None) or {}).get("cached")),
        standalone=standalone,
        layout=layout,
        input_image=result.input_image,
        output_image=result.image,
    )


def render_responsive(result: Any) -> str:
    """Both layouts in one HTML fragment; ``RESPONSIVE_CSS`` (page CSS) shows the one that fits:
    the vertical one when the fragment is under ``STACK_BELOW_PX`` wide."""
    return (
        '<div class="cnaps-diagram-pair">'
        f'<div class="cnaps-diagram-wide">{render_result(result, layout="horizontal")}</div>'
        f'<div class="cnaps-diagram-tall">{render_result(result, layout="vertical")}</div>'
        f"{fold_html(result.stages)}</div>"
    )
