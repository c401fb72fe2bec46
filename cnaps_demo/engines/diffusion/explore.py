"""Asking a diffusion engine what it invents: a strength sweep and a seed disagreement map.

* :func:`strength_sweep` — the same picture and seed at strengths 0.1 to 0.6 (engines that
  declare ``"sweep"`` in their ``explorations``):
  low strengths keep the drawing, high ones re-draw it; side by side, faithful versus invented.
* :func:`seed_disagreement` — the same job with 3 seeds; the per-pixel spread between them is
  where the result depends on the random noise rather than on the picture: "where the model is
  guessing".

Both run their jobs through ``DiffusionEngine.run_many``: one pipeline load and one
pre-enlarge for all of them. Pass a checked plan's parts: ``strength_sweep(plan.engine, image,
plan.params, plan.options)``, or ``plan.engine.explore("sweep", ...)``. torch is imported by the
engine, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ...errors import InvalidParameterError
from ...seed_spread import SEED_COUNT, SeedSpread, heat_image, seed_spread, spread_map
from ..base import EngineOutput, RunOptions
from .cost import MAX_SEED, unet_steps

SWEEP_STRENGTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
# The measure and its map live in ``cnaps_demo.seed_spread`` (the example cache rebuilds them too).
__all__ = ["SEED_COUNT", "SeedSpread", "SweepFrame", "heat_image", "seed_disagreement", "spread_map", "strength_sweep"]


@dataclass
class SweepFrame:
    """One strength of a sweep: its picture and what ran."""

    strength: float
    image: Image.Image
    unet_steps: int
    output: EngineOutput

    @property
    def caption(self) -> str:
        return f"strength {self.strength:.1f} · {self.unet_steps} UNet step{'s' if self.unet_steps != 1 else ''}"


def _check_engine(engine: Any, what: str, varies: str) -> None:
    """Refuse an engine that does not declare ``what`` among its ``explorations``."""
    if what not in getattr(engine, "explorations", ()):
        raise InvalidParameterError(
            f"{getattr(engine, 'id', engine)!r} has no {varies} to vary.",
            hint=f"Use an engine whose explorations include {what!r}.",
        )


def strength_sweep(
    engine: Any,
    image: Image.Image,
    params: dict[str, Any],
    options: RunOptions,
    strengths: Sequence[float] = SWEEP_STRENGTHS,
    *,
    scale: int = 2,
) -> list[SweepFrame]:
    """``image`` at each of ``strengths`` with everything else (seed included) from ``params``."""
    _check_engine(engine, "sweep", "strength")
    spec = next(spec for spec in engine.params if spec.name == "strength")
    if not strengths:
        raise InvalidParameterError("A strength sweep needs at least one strength.", hint="For example 0.1, 0.3, 0.5.")
    sets = [{**params, "strength": spec.check(value)} for value in strengths]
    rgb = image.convert("RGB")
    engine.check_size(*rgb.size)
    outputs = engine.run_many(rgb, sets, scale=scale, options=options)
    return [
        SweepFrame(float(each["strength"]), out.image, unet_steps(each["steps"], each["strength"])[1], out)
        for each, out in zip(sets, outputs)
    ]


def seed_disagreement(
    engine: Any,
    image: Image.Image,
    params: dict[str, Any],
    options: RunOptions,
    seeds: Sequence[int] | None = None,
    *,
    scale: int = 2,
) -> SeedSpread:
    """The job of ``params`` at ``seeds`` (default: its seed and the next two) and their spread."""
    _check_engine(engine, "seeds", "seed")
    base = int(params.get("seed", 0))
    if seeds is None:
        seeds = [(base + i) % (MAX_SEED + 1) for i in range(SEED_COUNT)]
    chosen = tuple(int(s) for s in seeds)
    if len(set(chosen)) < 2:
        raise InvalidParameterError(
            "A disagreement map needs at least two different seeds.", hint="For example 0, 1, 2."
        )
    rgb = image.convert("RGB")
    engine.check_size(*rgb.size)
    outputs = engine.run_many(rgb, [{**params, "seed": seed} for seed in chosen], scale=scale, options=options)
    return seed_spread(chosen, [out.image for out in outputs], outputs)
