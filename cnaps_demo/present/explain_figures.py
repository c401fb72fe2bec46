"""Small figures for the explanation: pixel grids (inline SVG) and input -> model -> output chains.

A chain is inline-styled HTML (a wrapping row of blocks with a tiny SVG icon each), so it
reflows from a projector to a phone; the grids are fixed-size SVG. Outlines and text use
``currentColor``; fills are semi-transparent accents or the picture's own colours, so both
read on light and dark pages. All labels are our own constant text.
"""

from __future__ import annotations

from html import escape

# An outline crossing a cheek: 3x3 input pixels (skin, ink, hair), what an upscaler must double.
_SKIN, _INK, _HAIR = (255, 224, 205), (38, 26, 44), (122, 84, 186)
_SOURCE = [[_SKIN, _SKIN, _INK], [_SKIN, _INK, _HAIR], [_INK, _HAIR, _HAIR]]
CELL = 24

ACCENTS = {
    "picture": "#64748b",
    "classical": "#0d9488",
    "cnn": "#ea580c",
    "encoder": "#2563eb",
    "latent": "#2563eb",
    "noise": "#d97706",
    "unet": "#9333ea",
    "text": "#0891b2",
    "decoder": "#16a34a",
}

# Icons in a 32x32 box, drawn with the current colour.
_ICONS = {
    "picture": '<rect x="3" y="6" width="26" height="20" rx="2"/><path d="M6 23l7-8 5 5 3-3 5 6"/>'
    '<circle cx="22" cy="12" r="2.5"/>',
    "classical": '<path d="M4 24 C10 24 12 8 16 8 S22 24 28 24"/><path d="M4 28h24"/>',
    "cnn": '<circle cx="6" cy="9" r="2.5"/><circle cx="6" cy="23" r="2.5"/><circle cx="16" cy="6" r="2.5"/>'
    '<circle cx="16" cy="16" r="2.5"/><circle cx="16" cy="26" r="2.5"/><circle cx="26" cy="16" r="2.5"/>'
    '<path d="M8 9l6-3M8 9l6 7M8 23l6-7M8 23l6 3M18 6l6 10M18 16h6M18 26l6-10"/>',
    "encoder": '<path d="M4 5l24 7v8L4 27z"/>',
    "latent": '<rect x="6" y="12" width="12" height="12"/><rect x="9" y="9" width="12" height="12"/>'
    '<rect x="12" y="6" width="12" height="12"/><rect x="15" y="3" width="12" height="12"/>',
    "noise": '<path d="M5 7h.01M12 5h.01M20 8h.01M27 5h.01M8 14h.01M16 13h.01M24 15h.01M5 21h.01M13 20h.01'
    'M21 22h.01M27 20h.01M9 27h.01M17 27h.01M25 27h.01" stroke-width="3.5" stroke-linecap="round"/>',
    "unet": '<path d="M5 5v10q0 12 11 12t11-12V5"/><path d="M9 9h5M18 9h5M12 16h8" stroke-dasharray="2 2"/>',
    "text": '<path d="M4 6h24v15H14l-6 6v-6H4z"/><path d="M9 11h14M9 16h9"/>',
    "decoder": '<path d="M4 12l24-7v22L4 20z"/>',
}

Step = tuple[str, str]  # (kind, label)
CLASSICAL_CHAIN: tuple[Step, ...] = (
    ("picture", "your picture"),
    ("classical", "fixed formula: average of the neighbours (bicubic, Lanczos)"),
    ("picture", "2x picture: same lines, softer"),
)
CNN_CHAIN: tuple[Step, ...] = (
    ("picture", "your picture"),
    ("cnn", "CNN with learned weights (Real-CUGAN: a UNet)"),
    ("picture", "2x picture: lines redrawn crisp"),
)
SD_CHAIN: tuple[Step, ...] = (
    ("picture", "your picture, first enlarged 2x"),
    ("encoder", "VAE encoder"),
    ("latent", "latent: 1/8 the size, 4 channels"),
    ("noise", "add noise (strength)"),
    ("text", "+ the prompt, as a CLIP text embedding"),
    ("unet", "UNet removes the noise step by step"),
    ("decoder", "VAE decoder"),
    ("picture", "2x picture, re-drawn"),
)


def _icon(kind: str) -> str:
    return (
        '<svg viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" fill="none" stroke="currentColor" '
        f'stroke-width="2" stroke-linejoin="round" style="flex:none">{_ICONS[kind]}</svg>'
    )


def chain(steps: tuple[Step, ...]) -> str:
    """An input -> model -> output chain as a wrapping row of blocks (an ordered list)."""
    items = []
    for index, (kind, label) in enumerate(steps):
        accent = ACCENTS[kind]
        items.append(
            '<li style="display:flex;align-items:center;margin:0">'
            f'<span style="display:inline-flex;align-items:center;gap:0.4rem;border:2px solid {accent};'
            f"border-radius:10px;padding:0.25rem 0.6rem;background:{accent}26;max-width:15rem;"
            f'line-height:1.25">{_icon(kind)}<span>{escape(label)}</span></span>'
            + (
                '<span aria-hidden="true" style="font-weight:700;margin:0 0.35rem">\u2192</span>'
                if index < len(steps) - 1
                else ""
            )
            + "</li>"
        )
    return (
        '<ol class="cnaps-chain" style="display:flex;flex-wrap:wrap;align-items:center;gap:0.45rem 0;'
        f'list-style:none;padding:0;margin:0.4rem 0">{"".join(items)}</ol>'
    )


def _rgb(colour: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % colour


def _grid(cells: list[list[tuple[int, int, int] | None]], x: float, y: float, cell: float) -> str:
    """A pixel grid; ``None`` cells are unknown pixels, drawn as a question mark."""
    parts = []
    for row, line in enumerate(cells):
        for col, colour in enumerate(line):
            cx, cy = x + col * cell, y + row * cell
            if colour is None:
                parts.append(
                    f'<rect x="{cx}" y="{cy}" width="{cell}" height="{cell}" fill="currentColor" fill-opacity="0.08"/>'
                    f'<text x="{cx + cell / 2}" y="{cy + cell * 0.72}" font-size="{cell * 0.6:g}" text-anchor="middle" '
                    f'fill="currentColor" opacity="0.7">?</text>'
                )
            else:
                parts.append(f'<rect x="{cx}" y="{cy}" width="{cell}" height="{cell}" fill="{_rgb(colour)}"/>')
    size = cell * len(cells)
    parts.append(
        f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
    )
    return "".join(parts)


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label, quote=True)}" style="max-width:100%;height:auto;flex:none" '
        f'font-family="system-ui, sans-serif">{body}</svg>'
    )


def _arrow(x0: float, x1: float, y: float) -> str:
    return (
        f'<path d="M{x0},{y} L{x1},{y} M{x1 - 7},{y - 6} L{x1},{y} L{x1 - 7},{y + 6}" fill="none" '
        'stroke="currentColor" stroke-width="2.5"/>'
    )


def _caption(x: float, y: float, text: str) -> str:
    return f'<text x="{x}" y="{y}" font-size="13" text-anchor="middle" fill="currentColor">{escape(text)}</text>'


def task_figure() -> str:
    """3x3 known pixels -> 6x6, where 27 of the 36 are question marks."""
    doubled = [[_SOURCE[r // 2][c // 2] if r % 2 == 0 and c % 2 == 0 else None for c in range(6)] for r in range(6)]
    small, big = 3 * CELL, 6 * CELL
    top = 8 + (big - small) / 2
    body = _grid(_SOURCE, 8, top, CELL) + _arrow(8 + small + 12, 8 + small + 48, 8 + big / 2)
    body += _grid(doubled, 8 + small + 60, 8, CELL)
    body += _caption(8 + small / 2, big + 30, "3\u00d73 pixels")
    body += _caption(8 + small + 60 + big / 2, big + 30, "6\u00d76: 27 new")
    label = "Three by three pixels become six by six; 27 are unknown."
    return _svg(int(8 + small + 60 + big + 8), int(big + 38), label, body)


def _interpolated() -> list[list[tuple[int, int, int]]]:
    """The 3x3 source enlarged to 6x6 by bilinear interpolation (what averaging gives: soft)."""
    out = []
    for r in range(6):
        line = []
        for c in range(6):
            y, x = min(max((r + 0.5) / 2 - 0.5, 0), 2), min(max((c + 0.5) / 2 - 0.5, 0), 2)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, 2), min(x0 + 1, 2)
            fy, fx = y - y0, x - x0
            mix = [
                (1 - fy) * ((1 - fx) * _SOURCE[y0][x0][k] + fx * _SOURCE[y0][x1][k])
                + fy * ((1 - fx) * _SOURCE[y1][x0][k] + fx * _SOURCE[y1][x1][k])
                for k in range(3)
            ]
            line.append(tuple(int(round(v)) for v in mix))
        out.append(line)
    return out


def _crisp() -> list[list[tuple[int, int, int]]]:
    """What a learned prior draws: flat skin, a thin dark outline along the diagonal, flat hair."""
    return [[_INK if abs(r + c - 5) <= 0 else (_SKIN if r + c < 5 else _HAIR) for c in range(6)] for r in range(6)]


def why_figure() -> str:
    """The same 6x6 filled two ways: by averaging (soft ramp) and by a learned prior (crisp line)."""
    big = 6 * CELL
    body = _grid(_interpolated(), 8, 8, CELL) + _grid(_crisp(), 8 + big + 40, 8, CELL)
    body += _caption(8 + big / 2, big + 30, "averaged: soft")
    body += _caption(8 + big + 40 + big / 2, big + 30, "learned guess: crisp")
    label = "The missing pixels filled by averaging give a soft ramp; a learned guess gives a crisp line."
    return _svg(int(8 + 2 * big + 40 + 8), int(big + 38), label, body)
