"""Where a model guesses: the same job at several seeds, and where their results disagree.

A diffusion engine starts from random noise; where its pictures for different seeds differ, the
visitor's picture did not decide those pixels, the noise did. The spread (per-pixel standard
deviation across the seeds) is that measure, and the heat map draws it. The diffusion engines make
a ``SeedSpread`` (``engines.diffusion.explore.seed_disagreement``); the example cache keeps its
pictures and rebuilds it with ``seed_spread`` (no engine needed to read one back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from .errors import InvalidParameterError

SEED_COUNT = 3
# Spread (standard deviation across seeds, 0..1) drawn at full brightness in the map: seeds that
# disagree by a quarter of the range are "guessing" entirely.
FULL_SPREAD = 0.25
# Seeds that differ by more than this (0..1) differ visibly: 8/255, about a JPEG's error at quality 90.
VISIBLE_SPREAD = 8 / 255
# A dark-to-bright heat ramp (black, purple, orange, pale yellow): brighter = more guessing.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


@dataclass
class SeedSpread:
    """The same job at several seeds, and where their results disagree."""

    seeds: tuple[int, ...]
    images: list[Image.Image]
    spread: np.ndarray  # HxW float32: standard deviation across seeds, averaged over R, G, B (0..1)
    image: Image.Image  # ``spread`` as a heat map (RGB), brighter = more guessing
    outputs: list[Any] = field(default_factory=list)  # the engine's outputs, where it ran here

    @property
    def mean(self) -> float:
        """The average spread in /255 (0: every seed drew the same picture)."""
        return float(self.spread.mean() * 255)

    @property
    def guessing_share(self) -> float:
        """Share of pixels whose seeds differ visibly (more than ``VISIBLE_SPREAD``)."""
        return float((self.spread > VISIBLE_SPREAD).mean())


def spread_map(images: Sequence[Image.Image]) -> np.ndarray:
    """Per-pixel standard deviation across ``images`` (same size), averaged over channels, in 0..1."""
    if len(images) < 2:
        raise InvalidParameterError("A disagreement map needs at least two pictures.", hint="Use 3 seeds.")
    if len({im.size for im in images}) > 1:
        raise InvalidParameterError(
            "A disagreement map needs pictures of one size.", hint="Run the same job, changing only the seed."
        )
    stack = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255 for im in images])
    return stack.std(axis=0).mean(axis=-1).astype(np.float32)


def heat_image(spread: np.ndarray, full: float = FULL_SPREAD) -> Image.Image:
    """``spread`` (0..1) as an RGB heat map: black where the seeds agree, bright where they do not."""
    position = np.clip(spread / full, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    rgb = _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac
    return Image.fromarray((rgb + 0.5).astype(np.uint8), "RGB")


def seed_spread(seeds: Sequence[int], images: Sequence[Image.Image], outputs: Sequence[Any] = ()) -> SeedSpread:
    """The spread of ``images`` (one per seed of ``seeds``, same size) and its heat map."""
    chosen = tuple(int(s) for s in seeds)
    if len(chosen) != len(images):
        raise InvalidParameterError(
            f"{len(chosen)} seeds for {len(images)} pictures.", hint="Give one seed per picture."
        )
    spread = spread_map(images)
    return SeedSpread(chosen, list(images), spread, heat_image(spread), list(outputs))
