"""Draw a run's stage records as an SVG flow diagram: input -> one box per stage -> output.

Pure string building (no gradio, no torch). Every piece of text is XML-escaped, because
stage details can hold user input (a diffusion prompt). Colours work on light and dark
pages: text and outlines use ``currentColor`` (inherited from the page), boxes are tinted
with semi-transparent accents, and the standalone file (for download) carries its own
light/dark colours through ``prefers-color-scheme``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from ..stages import StageRecord

# Sizes in SVG user units; the SVG scales to its container, these keep the type big
# relative to the boxes so it stays legible on a projector.
BOX_W = 360
GAP_X = 64
GAP_Y = 70
MARGIN = 24
PAD = 16
TITLE_SIZE = 32
NAME_SIZE = 26
SHAPE_SIZE = 22
DETAIL_SIZE = 21
LINE_GAP = 1.3
MAX_PER_ROW = 3
MAX_DETAIL_LINES = 10
CHARS_NAME = 21  # rough characters per line at NAME_SIZE within BOX_W
CHARS_DETAIL = 27

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

# Keys shown first in a stage box, in this order; others follow alphabetically.
_DETAIL_ORDER = ("prompt", "negative_prompt", "strength", "steps", "scheduler", "guidance", "seed", "model")
# Bookkeeping that the box title already says, or that only matters to a developer: kept in the
# hover text, left out of the box so a projector audience reads what explains the picture.
_TOOLTIP_ONLY = frozenset({"engine", "engine_name", "stages", "passes", "cfg", "scheduler_steps", "start_step"})
_FRIENDLY_VALUES = {
    "DPMSolverMultistepScheduler": "DPM-Solver++ (multistep)",
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler ancestral",
    "PNDMScheduler": "PNDM",
    "DDIMScheduler": "DDIM",
}

STANDALONE_STYLE = (
    ".cnaps-diagram{color:#1b1f24}"
    ".cnaps-diagram .cnaps-bg{fill:#ffffff}"
    "@media (prefers-color-scheme: dark){"
    ".cnaps-diagram{color:#e8eaed}"
    ".cnaps-diagram .cnaps-bg{fill:#111418}}"
)


def esc(text: Any) -> str:
    """XML-escape any value for use in text or a double-quoted attribute."""
    return _xml_escape(str(text), {'"': "&quot;", "'": "&#39;"})


def format_shape(shape: Sequence[int]) -> str:
    return "\u00d7".join(str(int(v)) for v in shape) if shape else "?"


def format_seconds(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 100:
        return f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def _format_value(value: Any, limit: int) -> str:
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, (list, tuple)):
        text = format_shape(value) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    else:
        text = str(value)
    text = " ".join(text.split())  # no newlines/tabs inside one SVG text line
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "\u2026"


def _detail_lines(detail: dict[str, Any]) -> list[str]:
    keys = [k for k in _DETAIL_ORDER if k in detail] + sorted(k for k in detail if k not in _DETAIL_ORDER)
    lines = []
    for key in keys:
        value = detail[key]
        # A switch that is off (cached, compiled, VAE tiling...) is not news: only "on" is drawn.
        if value is None or value == "" or value is False or key in _TOOLTIP_ONLY:
            continue
        value = _FRIENDLY_VALUES.get(value, value) if isinstance(value, str) else value
        label = key.replace("_", " ")
        if key in ("prompt", "negative_prompt"):
            # Prompts get two lines of their own: they are the most telling detail.
            text = f"{label}: \u201c{' '.join(str(value).split())}\u201d"
            lines.extend(_wrap(text, CHARS_DETAIL, max_lines=2))
            continue
        lines.extend(_wrap(f"{label}: {_format_value(value, 2 * CHARS_DETAIL)}", CHARS_DETAIL, max_lines=2))
    if len(lines) > MAX_DETAIL_LINES:
        hidden = len(lines) - (MAX_DETAIL_LINES - 1)
        lines = lines[: MAX_DETAIL_LINES - 1] + [f"+{hidden} more (hover)"]
    return lines


def _wrap(text: str, width: int, max_lines: int = 2) -> list[str]:
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        while len(word) > width:  # a very long word: hard-break it
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = f"{current} {word}".strip()
        if len(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if not lines:
        lines = [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "\u2026"
    return lines


def stage_kind(name: str) -> str:
    """Pick an accent from the stage name (purely cosmetic)."""
    n = name.lower()
    if "decod" in n:
        return "decoder"
    if "vae" in n or "encod" in n:
        return "encoder"
    if "unet" in n or "denois" in n or "diffus" in n:
        return "unet"
    if "noise" in n:
        return "noise"
    if any(k in n for k in ("cugan", "esrgan", "cnn", "network", "tile", "model")):
        return "cnn"
    if any(k in n for k in ("bicubic", "lanczos", "nearest", "resample", "resize")):
        return "classical"
    return "other"


@dataclass
class _Box:
    title_lines: list[str]
    shape: str
    seconds: str
    details: list[str]
    tooltip: str
    accent: str
    dashed: bool = False

    @property
    def height(self) -> int:
        lines = len(self.title_lines) * NAME_SIZE + SHAPE_SIZE + (DETAIL_SIZE if self.seconds else 0)
        lines += len(self.details) * DETAIL_SIZE
        count = len(self.title_lines) + 1 + (1 if self.seconds else 0) + len(self.details)
        return int(2 * PAD + lines * LINE_GAP + (count - 1) * 2 + 6)


def _stage_box(stage: StageRecord) -> _Box:
    detail = dict(stage.detail or {})
    tooltip_parts = [
        stage.name,
        f"in {format_shape(stage.input_shape)}",
        f"out {format_shape(stage.output_shape)}",
        format_seconds(stage.seconds),
    ]
    tooltip_parts += [f"{k}: {' '.join(str(v).split())}" for k, v in detail.items()]
    return _Box(
        title_lines=_wrap(stage.name, CHARS_NAME),
        shape=f"{format_shape(stage.input_shape)} \u2192 {format_shape(stage.output_shape)}",
        seconds=format_seconds(stage.seconds),
        details=_detail_lines(detail),
        tooltip="\n".join(tooltip_parts),
        accent=ACCENTS[stage_kind(stage.name)],
    )


def _io_box(label: str, shape: Sequence[int], note: str) -> _Box:
    return _Box(
        title_lines=[label],
        shape=format_shape(shape),
        seconds="",
        details=[note] if note else [],
        tooltip=f"{label}: {format_shape(shape)}",
        accent=ACCENTS["io"],
        dashed=True,
    )


def _pixels_note(shape: Sequence[int]) -> str:
    if len(shape) >= 3:
        channels, height, width = shape[-3], shape[-2], shape[-1]
        kind = {1: "grey", 3: "RGB", 4: "RGBA"}.get(int(channels), f"{channels} channels")
        return f"{kind}, {width}\u00d7{height} px"
    return ""


def render_svg(
    stages: Iterable[StageRecord],
    *,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    engine_name: str = "",
    total_seconds: float | None = None,
    standalone: bool = False,
) -> str:
    """SVG markup for one run. ``standalone=True`` adds the XML prolog and its own colours."""
    stages = list(stages)
    boxes = [_io_box("Input image", input_shape, _pixels_note(input_shape))]
    boxes += [_stage_box(stage) for stage in stages]
    boxes.append(_io_box("Output image", output_shape, _pixels_note(output_shape)))

    per_row = min(MAX_PER_ROW, len(boxes))
    rows = [boxes[i : i + per_row] for i in range(0, len(boxes), per_row)]
    row_heights = [max(box.height for box in row) for row in rows]
    width = 2 * MARGIN + per_row * BOX_W + (per_row - 1) * GAP_X
    title_h = TITLE_SIZE + 22
    legend_h = DETAIL_SIZE * 2 + 16
    height = MARGIN + title_h + sum(row_heights) + GAP_Y * (len(rows) - 1) + legend_h + MARGIN

    total = total_seconds if total_seconds is not None else sum(s.seconds for s in stages)
    title = f"{engine_name}: " if engine_name else ""
    title += f"{len(stages)} stage{'s' if len(stages) != 1 else ''}, {format_seconds(total)} in total"
    uid = (
        "d"
        + hashlib.sha1(
            repr((title, [(s.name, s.input_shape, s.output_shape, s.seconds) for s in stages])).encode()
        ).hexdigest()[:8]
    )

    out: list[str] = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cnaps-diagram" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMin meet" role="img" aria-labelledby="{uid}-t" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif" '
        f'style="max-width:{width * 1.4:.0f}px;height:auto">'
    )
    out.append(f'<title id="{uid}-t">{esc("Pipeline diagram. " + title)}</title>')
    if standalone:
        out.append(f"<style>{STANDALONE_STYLE}</style>")
        out.append(f'<rect class="cnaps-bg" x="0" y="0" width="{width}" height="{height}"/>')
    out.append(
        f'<defs><marker id="{uid}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>'
    )
    out.append(
        f'<text x="{MARGIN}" y="{MARGIN + TITLE_SIZE}" font-size="{TITLE_SIZE}" font-weight="700" '
        f'fill="currentColor">{esc(title)}</text>'
    )

    positions: list[tuple[float, float, float, float]] = []  # x, y, w, h per box
    y = MARGIN + title_h
    for row, row_h in zip(rows, row_heights):
        for col, box in enumerate(row):
            x = MARGIN + col * (BOX_W + GAP_X)
            positions.append((x, y, BOX_W, row_h))
            out.append(_draw_box(box, x, y, row_h))
        y += row_h + GAP_Y

    out += _arrows(positions, uid)

    legend_y = height - MARGIN - DETAIL_SIZE - 8
    out.append(
        f'<text x="{MARGIN}" y="{legend_y}" font-size="{DETAIL_SIZE}" fill="currentColor" opacity="0.8">'
        "Shapes: channels \u00d7 height \u00d7 width (with a leading batch size for latents). "
        "Times were measured on this run.</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _arrows(positions: list[tuple[float, float, float, float]], uid: str) -> list[str]:
    """Arrows between consecutive boxes (wrapping to the next row with an elbow)."""
    paths = []
    for (x0, y0, w0, h0), (x1, y1, w1, h1) in zip(positions, positions[1:]):
        if abs(y0 - y1) < 1:
            path = f"M{x0 + w0 + 4},{y0 + h0 / 2} L{x1 - 6},{y1 + h1 / 2}"
        else:
            mid = y0 + h0 + GAP_Y / 2
            path = f"M{x0 + w0 / 2},{y0 + h0 + 4} L{x0 + w0 / 2},{mid} L{x1 + w1 / 2},{mid} L{x1 + w1 / 2},{y1 - 6}"
        paths.append(
            f'<path d="{path}" fill="none" stroke="currentColor" stroke-width="3" marker-end="url(#{uid}-arrow)"/>'
        )
    return paths


def _draw_box(box: _Box, x: float, y: float, h: float) -> str:
    parts = [f"<g><title>{esc(box.tooltip)}</title>"]
    dash = ' stroke-dasharray="8 6"' if box.dashed else ""
    parts.append(
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{h}" rx="14" fill="{box.accent}" fill-opacity="0.16" '
        f'stroke="{box.accent}" stroke-width="3"{dash}/>'
    )
    parts.append(
        f'<rect x="{x}" y="{y}" width="10" height="{h}" rx="5" fill="{box.accent}"/>' if not box.dashed else ""
    )
    cy = y + PAD
    tx = x + PAD + 6

    def line(text: str, size: int, weight: str = "400", mono: bool = False, opacity: float = 1.0) -> str:
        nonlocal cy
        cy += size * LINE_GAP
        family = ' font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"' if mono else ""
        op = f' opacity="{opacity}"' if opacity < 1 else ""
        return (
            f'<text x="{tx}" y="{cy - size * 0.28:.1f}" font-size="{size}" font-weight="{weight}"{family}{op} '
            f'fill="currentColor">{esc(text)}</text>'
        )

    for title_line in box.title_lines:
        parts.append(line(title_line, NAME_SIZE, "700"))
    parts.append(line(box.shape, SHAPE_SIZE, "600", mono=True))
    if box.seconds:
        parts.append(line("time: " + box.seconds, DETAIL_SIZE, "600"))
    for detail in box.details:
        parts.append(line(detail, DETAIL_SIZE, opacity=0.9))
    parts.append("</g>")
    return "".join(parts)


def shape_of(image: Any) -> tuple[int, int, int]:
    """(channels, height, width) of a PIL image."""
    channels = len(image.getbands())
    return (channels, image.height, image.width)


def render_result(result: Any, *, standalone: bool = False) -> str:
    """Diagram for an ``UpscaleResult`` (or anything with the same attributes)."""
    return render_svg(
        result.stages,
        input_shape=shape_of(result.input_image),
        output_shape=shape_of(result.image),
        engine_name=result.engine_name,
        total_seconds=getattr(result, "seconds", None),
        standalone=standalone,
    )
