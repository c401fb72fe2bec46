"""Text and pictures for the diagram: a conservative text-width estimate, fitting text into a
width (wrap, shrink a little, then ellipsize), one shape notation, the stage details worth
drawing, and thumbnails as data URIs.

No browser measures the SVG before it is shown, so widths are estimated from per-character
advances that are at least those of DejaVu Sans and Liberation Sans (Arial's metrics), the
widest of the fonts the diagram's font stack falls back to; Helvetica, Segoe UI, Roboto and
San Francisco are narrower. Any other character counts as a full em.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Sequence
from typing import Any

from ..stages import StageRecord

# Advance widths in em, rounded up to 0.05 from the widest of DejaVu Sans / Liberation Sans.
_REGULAR_GROUPS = {
    0.3: "ijlI'",
    0.35: ",./:;\\| \u00b7\u2018\u2019",
    0.4: "ft()-[]",
    0.45: "r!",
    0.5: 'J"*`\u00b0',
    0.55: "csz\u201c\u201d",
    0.6: "kvxyL?_\u2013",
    0.65: "abdeghnopquFT0123456789${}",
    0.7: "ABEKPSVXYZ",
    0.75: "CNRU",
    0.8: "DGHOQ&",
    0.85: "w#+<=>^~\u00d7",
    0.9: "M",
    1.0: "mW%\u2192\u2026\u2014",
    1.05: "@",
}
_BOLD_GROUPS = {
    0.35: "ijl' ",
    0.4: "I,./:;\\|\u00b7\u2018\u2019",
    0.45: "f-",
    0.5: "rt!()[]`\u00b0",
    0.55: '"*',
    0.6: "cszJ_\u2013",
    0.65: "xL?",
    0.7: "aekovyEFT0123456789$\u201c\u201d",
    0.75: "bdghnpquCPSYZ{}",
    0.8: "ABKRVX",
    0.85: "DGHNU#+<=>^~\u00d7",
    0.9: "OQ&",
    0.95: "w",
    1.0: "M@\u2192\u2026\u2014",
    1.05: "m%",
    1.15: "W",
}
_REGULAR = {ch: width for width, chars in _REGULAR_GROUPS.items() for ch in chars}
_BOLD = {ch: width for width, chars in _BOLD_GROUPS.items() for ch in chars}
_OTHER_EM = 1.0  # anything else, e.g. CJK (one em)
_EMOJI, _EMOJI_EM = "\U0001f000", 1.3  # colour emoji are drawn wider than an em
MONO_EM = 0.62  # DejaVu Sans Mono, Menlo: 0.602; Consolas, SF Mono: narrower
SAFETY = 1.03  # kerning and hinting differences
ELLIPSIS = "\u2026"
MIN_SCALE = 0.85  # text may shrink to this share of its size before it wraps or is cut


def text_width(text: str, size: float, *, bold: bool = False, mono: bool = False) -> float:
    """Estimated rendered width of ``text`` at ``size`` (an upper bound for the usual fonts)."""
    if mono:
        # Beyond Latin-1 (the arrow...) a proportional fallback font may draw it: a full em.
        ems = sum(MONO_EM if ch < "\u0100" else 1.0 for ch in text)
    else:
        table = _BOLD if bold else _REGULAR
        ems = sum(table.get(ch, _OTHER_EM if ch < _EMOJI else _EMOJI_EM) for ch in text)
    return ems * size * SAFETY


def ellipsize(text: str, size: float, width: float, *, bold: bool = False, mono: bool = False) -> str:
    """``text`` cut (with an ellipsis) so that it fits ``width``."""
    if text_width(text, size, bold=bold, mono=mono) <= width:
        return text
    return _cut(text, size, width, bold, mono)


def _cut(text: str, size: float, width: float, bold: bool, mono: bool) -> str:
    """``text`` shortened until it fits ``width`` with an ellipsis after it (always added)."""
    text = text.rstrip()
    while text and text_width(text + ELLIPSIS, size, bold=bold, mono=mono) > width:
        text = text[:-1].rstrip()
    return text + ELLIPSIS


def _break_word(word: str, size: float, width: float, bold: bool, mono: bool) -> list[str]:
    """A word too long for one line, hard-broken into pieces that fit."""
    pieces, current = [], ""
    for ch in word:
        if current and text_width(current + ch, size, bold=bold, mono=mono) > width:
            pieces.append(current)
            current = ""
        current += ch
    return pieces + [current] if current else pieces


def wrap(text: str, size: float, width: float, *, max_lines: int, bold: bool = False, mono: bool = False) -> list[str]:
    """Words into at most ``max_lines`` lines of at most ``width``; the last line is ellipsized
    when text is left over."""
    lines: list[str] = []
    current = ""
    for word in " ".join(str(text).split()).split(" "):
        candidate = f"{current} {word}".strip()
        if text_width(candidate, size, bold=bold, mono=mono) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = _break_word(word, size, width, bold, mono) or [""]
        lines += pieces[:-1]
        current = pieces[-1]
    lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _cut(lines[-1], size, width, bold, mono)
    return lines


def fit(
    text: str, size: float, width: float, *, max_lines: int = 1, bold: bool = False, mono: bool = False
) -> tuple[list[str], float]:
    """(lines, font size) for ``text`` inside ``width``: shrunk by up to ``MIN_SCALE`` when that
    keeps it on one line, else wrapped into ``max_lines`` at full size, the rest ellipsized."""
    text = " ".join(str(text).split())
    natural = text_width(text, size, bold=bold, mono=mono)
    if natural <= width:
        return [text], size
    shrunk = size * width / natural
    if shrunk >= size * MIN_SCALE:
        shrunk = int(shrunk * 2) / 2  # half units, rounded down: still fits
        if text_width(text, shrunk, bold=bold, mono=mono) <= width:
            return [text], shrunk
    return wrap(text, size, width, max_lines=max_lines, bold=bold, mono=mono), size


# --- one shape notation: height x width x channels -------------------------------------------

TIMES = "\u00d7"


def _is_channels(value: int) -> bool:
    return 1 <= value <= 8  # pictures have 1-4 channels; SD latents 4, the latent upscaler's input 8


def hwc(shape: Sequence[int]) -> tuple[int, ...] | None:
    """A picture-like shape as (height, width, channels), or None when it is not picture-like.

    Records in this project hold (C, H, W), (N, C, H, W) or (H, W, C): channels are the small
    axis; when both ends are small (tiny test pictures) channels-first is assumed.
    """
    dims = tuple(int(v) for v in shape)
    if len(dims) == 4 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != 3:
        return None
    if dims[2] <= 4 and dims[0] > 4:
        return dims
    if _is_channels(dims[0]):
        return (dims[1], dims[2], dims[0])
    return None


def format_dims(dims: Sequence[int]) -> str:
    return TIMES.join(str(int(v)) for v in dims) if len(dims) else "?"


def format_shape(shape: Sequence[int]) -> str:
    """A shape in the diagram's one notation: pictures and latents as height x width x channels
    (a batch of one dropped), a vector as its length."""
    dims = tuple(int(v) for v in shape)
    if not dims:
        return "?"
    picture = hwc(dims)
    if picture is not None:
        return format_dims(picture)
    if len(dims) == 2 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) == 1:
        return f"{dims[0]} values"
    if len(dims) == 4:  # a batch of several pictures: N x (H x W x C)
        inner = hwc(dims[1:])
        if inner is not None:
            return f"{dims[0]} {TIMES} ({format_dims(inner)})"
    return format_dims(dims)


_TUPLE = re.compile(r"\((\d+(?:, ?\d+){2,3})\)")


def restate_shapes(text: str) -> str:
    """Shapes written inside detail text, e.g. "(4, 12, 12)", restated in the diagram's notation."""

    def repl(match: re.Match[str]) -> str:
        dims = tuple(int(v) for v in match.group(1).split(","))
        return format_shape(dims) if hwc(dims) is not None else match.group(0)

    return _TUPLE.sub(repl, text)


# --- stage details ---------------------------------------------------------------------------

# Keys shown first in a stage box, in this order; others follow alphabetically.
_DETAIL_ORDER = ("prompt", "negative_prompt", "strength", "steps", "scheduler", "guidance", "seed", "model")
# Bookkeeping that the box title already says, or that only matters to a developer: kept in the
# hover text, left out of the box so a projector audience reads what explains the picture.
# ("resolution" is written width x height by the CNN: the box keeps to one notation.) How a stage
# ran (device, precision, convolution algorithm, tiles) is hover and fold too (``diagram_fold``),
# and a network's "structure" is drawn as blocks of its own.
_TOOLTIP_ONLY = frozenset(
    {"engine", "engine_name", "stages", "passes", "cfg", "scheduler_steps", "start_step", "resolution", "tail", "bands"}
    | {"device", "dtype", "convolution", "tiles", "tile", "structure"}
)
_FRIENDLY_VALUES = {
    "DPMSolverMultistepScheduler": "DPM-Solver++ (multistep)",
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler ancestral",
    "PNDMScheduler": "PNDM",
    "DDIMScheduler": "DDIM",
}

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


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, (list, tuple)):
        text = format_shape(value) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    else:
        text = restate_shapes(str(value))
    return " ".join(text.split())  # no newlines/tabs inside one SVG text line


def detail_texts(detail: dict[str, Any]) -> list[str]:
    """The lines worth drawing in a stage box, in a fixed order (the box fits them)."""
    keys = [k for k in _DETAIL_ORDER if k in detail] + sorted(k for k in detail if k not in _DETAIL_ORDER)
    texts = []
    for key in keys:
        value = detail[key]
        # A switch that is off (cached, compiled, VAE tiling...) is not news: only "on" is drawn.
        if value is None or value == "" or value is False or key in _TOOLTIP_ONLY:
            continue
        value = _FRIENDLY_VALUES.get(value, value) if isinstance(value, str) else value
        label = key.replace("_", " ")
        if key in ("prompt", "negative_prompt"):
            texts.append(f"{label}: \u201c{' '.join(str(value).split())}\u201d")
        else:
            texts.append(f"{label}: {_format_value(value)}")
    return texts


# --- thumbnails ---------------------------------------------------------------------------------

THUMB_PX = 160  # longest side of an embedded picture, in pixels
TINY_PX = 64  # pictures up to this size are embedded losslessly


def thumbnail(image: Any, max_side: int = THUMB_PX) -> tuple[str, int, int]:
    """(data URI, width, height) of a small copy of a PIL image: JPEG, or PNG when it has alpha
    or is tiny.

    A picture already smaller than ``max_side`` (a latent preview) is kept pixel for pixel;
    the SVG enlarges it with crisp pixels.
    """
    from PIL import Image

    small = image.copy()
    if small.mode not in ("RGB", "RGBA", "L"):
        small = small.convert("RGBA" if "A" in small.getbands() or "transparency" in small.info else "RGB")
    if max(small.size) > max_side:
        small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if max(small.size) <= TINY_PX:  # a latent preview: every pixel matters, and PNG is small
        small.save(buffer, format="PNG", optimize=True)
        kind = "png"
    elif small.mode == "RGBA":
        # 256 colours keep a small picture with transparency at a few kB.
        small.quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
        kind = "png"
    else:
        small.save(buffer, format="JPEG", quality=85, optimize=True)
        kind = "jpeg"
    uri = f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return uri, small.width, small.height


def timing_line(stages: Sequence[StageRecord], whole_seconds: float | None = None, cached: bool = False) -> str:
    """"4 stages, 0.74 s in total": the total is the sum of the stages drawn, so the diagram adds up.
    The whole run's time is named apart where it is noticeably longer (a model load, say), and a result
    computed ahead says so."""
    total = sum(stage.seconds for stage in stages)
    notes = []
    if whole_seconds is not None and whole_seconds - total >= max(0.05, 0.1 * total):
        notes.append(f"whole run {format_seconds(whole_seconds)}")
    if cached:
        notes.append("cached result, computed ahead")
    text = f"{len(stages)} stage{'s' if len(stages) != 1 else ''}, {format_seconds(total)} in total"
    return text + (f" ({'; '.join(notes)})" if notes else "")
