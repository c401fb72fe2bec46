"""One plain sentence per layer, written from what its channel maps show.

Each map (normalised to 0-1) is put in one kind by simple statistics of the picture itself:
the share of its area that is lit (far from the map's median, brighter or darker), how strong and
how one-directional its gradients are (the structure tensor), and whether its lit parts are thin
(a 3x3 erosion removes most of them). The sentence counts the kinds over the maps shown.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

# Kind -> the words after "light up on".
KINDS = {
    "outlines": "outlines (thin lines)",
    "fills": "flat fills",
    "left-right": "edges running left-right",
    "up-down": "edges running up-down",
    "diagonal": "diagonal edges",
    "texture": "fine texture",
    "spots": "small spots and corners",
    "shapes": "whole shapes (fill and edge together)",
}


def map_kind(picture: np.ndarray) -> str:
    """The kind of one channel map (float, normalised to 0-1). Its "lit" pixels are the ones far from
    its typical value (the median), bright or dark: a map may answer by going dark."""
    lit = np.abs(picture - float(np.median(picture))) > 0.3
    share = float(lit.mean())
    if share < 0.01:
        return "spots"
    grad_y, grad_x = np.gradient(picture.astype(np.float64))
    strength = float(np.hypot(grad_x, grad_y).mean())
    xx, yy, xy = float((grad_x**2).mean()), float((grad_y**2).mean()), float((grad_x * grad_y).mean())
    total = xx + yy
    coherence = math.sqrt((xx - yy) ** 2 + 4 * xy**2) / total if total > 1e-12 else 0.0
    if share >= 0.25 and strength < 0.04:
        return "fills"
    if share < 0.3 and _thin(lit):
        return "outlines"
    if coherence > 0.45:
        # The gradient's main direction: 0 = across (left-right changes), i.e. edges that run up-down.
        angle = abs(math.degrees(0.5 * math.atan2(2 * xy, xx - yy)))
        if angle < 22.5:
            return "up-down"
        return "left-right" if angle > 67.5 else "diagonal"
    if strength > 0.12:
        return "texture"
    return "shapes" if share >= 0.3 else "spots"


def _thin(lit: np.ndarray) -> bool:
    """Most lit pixels have an unlit 4-neighbour: lines one or two pixels wide."""
    if lit.shape[0] < 3 or lit.shape[1] < 3 or not lit.any():
        return False
    inner = lit[1:-1, 1:-1] & lit[:-2, 1:-1] & lit[2:, 1:-1] & lit[1:-1, :-2] & lit[1:-1, 2:]
    return float(inner.sum()) / float(lit.sum()) < 0.35


def caption(pictures: list[np.ndarray]) -> str:
    """One sentence: how many of the maps light up on which kind of thing."""
    if not pictures:
        return "No channel of this layer varies over the region."
    counts = Counter(map_kind(picture) for picture in pictures)
    parts = [(count, KINDS[kind]) for kind, count in counts.most_common()]
    first = f"{parts[0][0]} light up on {parts[0][1]}"
    rest = [f"{count} on {words}" for count, words in parts[1:]]
    listed = first if not rest else ", ".join([first, *rest[:-1]]) + f" and {rest[-1]}"
    return f"Of the {len(pictures)} channels that vary most here, {listed}."
