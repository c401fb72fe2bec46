"""The engine registry: id -> engine. Listing engines never loads weights; a GPU check may import torch."""

from __future__ import annotations

from functools import cache

from ..errors import UnknownEngineError
from .base import Availability, Credit, Engine, EngineOutput, ParamSpec, RunOptions

__all__ = [
    "Availability",
    "Credit",
    "Engine",
    "EngineOutput",
    "ParamSpec",
    "RunOptions",
    "all_engines",
    "engine_ids",
    "get_engine",
]


@cache
def _registry() -> dict[str, Engine]:
    from . import classical, cnn, diffusion

    engines: dict[str, Engine] = {}
    # Order is the order users see: AI paths first, the baseline last.
    for engine in (*cnn.ENGINES, *diffusion.ENGINES, *classical.ENGINES):
        if engine.id in engines:
            raise RuntimeError(f"duplicate engine id {engine.id!r}")
        engines[engine.id] = engine
    return engines


def all_engines() -> list[Engine]:
    return list(_registry().values())


def engine_ids() -> list[str]:
    return list(_registry())


def get_engine(engine_id: str) -> Engine:
    registry = _registry()
    try:
        return registry[engine_id]
    except KeyError:
        raise UnknownEngineError(
            f"There is no engine {engine_id!r}.", hint=f"Known engines: {', '.join(registry)}."
        ) from None
