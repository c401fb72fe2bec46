"""What the pipeline diagram folds away, and the network structure it opens up.

* Conversions (the picture turned into the network's numbers and back: "to tensor", "to image")
  are plumbing: each folds into the connector between the boxes around it (a thin arrow with a
  dot; the stage, its shapes and time on hover), and the caption says how long they took, so the
  boxes and the header's total still add up.
* How a stage ran (device, precision, convolution algorithm, tiles, row bands) is for the curious:
  it stays in the box's hover text and in a fold under the diagram (``fold_html``), not in the box.
* A stage whose detail holds ``structure`` (the CNN engines read it from the loaded graph:
  ``engines.cnn.structure``) shows it inside its box as blocks (``Block``): a label and, for a
  U-Net, one line per level.

Pure string building, like the rest of the diagram.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..stages import StageRecord
from .diagram_text import fit, format_seconds, format_shape

_CONVERSION = re.compile(r"^to (tensor|image|array|pil|uint8|float\d*|rgb)s?$", re.IGNORECASE)
# How a stage ran, not what it does to the picture: hover and fold only.
TECHNICAL = ("device", "dtype", "convolution", "tiles", "tile", "bands", "tail", "resolution")
BLOCK_PAD = 8  # inside a block, above and below its text, and left of it
BLOCK_GAP = 18  # between blocks (room for the small arrow)
LABEL_SIZE = 21
LEVEL_SIZE = 20
LINE_GAP = 1.3


def is_conversion(stage: StageRecord) -> bool:
    """A pure change of representation ("to tensor", "to image"): drawn as a connector, not a box."""
    return bool(_CONVERSION.match(" ".join(stage.name.split())))


def split_conversions(stages: Sequence[StageRecord]) -> tuple[list[StageRecord], list[list[StageRecord]]]:
    """(the stages drawn as boxes, the conversions folded into each connector): connector ``i`` runs
    from box ``i`` to box ``i + 1`` of input, boxed stages..., output."""
    boxed: list[StageRecord] = []
    folded: list[list[StageRecord]] = [[]]
    for stage in stages:
        if is_conversion(stage):
            folded[-1].append(stage)
        else:
            boxed.append(stage)
            folded.append([])
    return boxed, folded


def connector_title(folded: Sequence[StageRecord]) -> str:
    """Hover text of a connector that holds conversions."""
    return "\n".join(
        f"{stage.name}: {format_shape(stage.input_shape)} \u2192 {format_shape(stage.output_shape)}, "
        f"{format_seconds(stage.seconds)}"
        for stage in folded
    )


def conversion_note(folded: Sequence[Sequence[StageRecord]]) -> str:
    """The caption's sentence on the folded conversions ("" when there are none)."""
    stages = [stage for group in folded for stage in group]
    if not stages:
        return ""
    seconds = format_seconds(sum(stage.seconds for stage in stages))
    return (
        f"Arrows with a dot also convert between picture and the network's numbers ({seconds}, "
        "in the total; hover for details)."
    )


def technical_texts(detail: dict[str, Any]) -> list[str]:
    """"device: cpu"...: how a stage ran, in a fixed order."""
    return [f"{key}: {' '.join(str(detail[key]).split())}" for key in TECHNICAL if detail.get(key) not in (None, "")]


def structure_blocks(detail: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(label, level lines) of each block of ``detail["structure"]``; [] when there is none."""
    blocks = detail.get("structure")
    if not isinstance(blocks, (list, tuple)):
        return []
    out = []
    for block in blocks:
        if isinstance(block, dict) and block.get("label"):
            out.append((str(block["label"]), [str(line) for line in block.get("levels") or ()]))
    return out


def structure_hover(detail: dict[str, Any]) -> str:
    """The structure as hover lines: each block, its levels indented."""
    lines = []
    for label, levels in structure_blocks(detail):
        lines.append(f"\u25aa {label}")
        lines += [f"    {level}" for level in levels]
    return "\n".join(lines)


class Line(NamedTuple):
    text: str
    size: float
    bold: bool


@dataclass
class Block:
    """One structure block inside a stage's box: a tinted panel with its label and level lines."""

    lines: list[Line] = field(default_factory=list)
    first: bool = False  # no arrow above the first block

    @classmethod
    def build(cls, label: str, levels: list[str], width: float, first: bool) -> "Block":
        """Lines fitted into ``width`` (the box's text width)."""
        block = cls(first=first)
        inner = width - 2 * BLOCK_PAD
        for text, size, bold in [(label, LABEL_SIZE, True)] + [(level, LEVEL_SIZE, False) for level in levels]:
            wrapped, fitted = fit(text, size, inner, max_lines=2, bold=bold)
            block.lines += [Line(line, fitted, bold) for line in wrapped]
        return block

    @property
    def panel(self) -> float:
        return 2 * BLOCK_PAD + sum(line.size * LINE_GAP for line in self.lines)

    @property
    def height(self) -> float:
        return math.ceil(BLOCK_GAP + self.panel)

    def text_top(self, y: float) -> float:
        """Where the first line's slot starts, for a block whose slot starts at ``y``."""
        return y + self.height - self.panel + BLOCK_PAD

    def frame(self, x: float, y: float, width: float, accent: str) -> str:
        """The panel (and the small arrow above it) for a block whose slot starts at ``y``."""
        top = y + BLOCK_GAP
        parts = []
        if not self.first:
            mid = x + width / 2
            parts.append(f'<path d="M{mid - 7:.1f},{y + 4:.1f} L{mid + 7:.1f},{y + 4:.1f} L{mid:.1f},{top - 3:.1f} z" '
                         'fill="currentColor" opacity="0.7"/>')
        parts.append(
            f'<rect class="cnaps-block" x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{self.panel:.1f}" '
            f'rx="8" fill="{accent}" fill-opacity="0.14" stroke="{accent}" stroke-width="1.5"/>'
        )
        return "".join(parts)


def connectors(positions: list[tuple[float, float, float, float]], uid: str, folded: list) -> list[str]:
    """Arrows between consecutive boxes (down a column, along a row, or an elbow to the next row);
    one that holds folded conversions (``folded[i]``) is thinner, with a dot and a hover text."""
    paths = []
    for index, ((x0, y0, w0, h0), (x1, y1, w1, h1)) in enumerate(zip(positions, positions[1:])):
        if abs(y0 - y1) < 1:
            start, end = (x0 + w0 + 4, y0 + h0 / 2), (x1 - 6, y1 + h1 / 2)
            path = f"M{start[0]},{start[1]} L{end[0]},{end[1]}"
        elif abs(x0 - x1) < 1:
            start, end = (x0 + w0 / 2, y0 + h0 + 4), (x1 + w1 / 2, y1 - 6)
            path = f"M{start[0]},{start[1]} L{end[0]},{end[1]}"
        else:
            mid = (y0 + h0 + y1) / 2
            start, end = (x0 + w0 / 2, mid), (x1 + w1 / 2, mid)
            path = f"M{x0 + w0 / 2},{y0 + h0 + 4} L{x0 + w0 / 2},{mid} L{x1 + w1 / 2},{mid} L{x1 + w1 / 2},{y1 - 6}"
        conversions = folded[index] if index < len(folded) else []
        arrow = (f'<path d="{path}" fill="none" stroke="currentColor" stroke-width="{2 if conversions else 3}" '
                 f'marker-end="url(#{uid}-arrow)"/>')
        if conversions:
            cx, cy = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            arrow = (f'<g class="cnaps-fold"><title>{html.escape(connector_title(conversions))}</title>{arrow}'
                     f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="currentColor"/></g>')
        paths.append(arrow)
    return paths


def fold_html(stages: Sequence[StageRecord]) -> str:
    """A fold under the diagram with how each stage ran (touch screens have no hover); "" if none."""
    items = []
    for stage in stages:
        texts = technical_texts(dict(stage.detail or {}))
        if texts:
            items.append(f"<li><b>{html.escape(stage.name)}</b>: {html.escape('; '.join(texts))}</li>")
    if not items:
        return ""
    return (
        '<details class="cnaps-diagram-how"><summary>How it ran: device, precision, tiles</summary>'
        f"<ul>{''.join(items)}</ul></details>"
    )
