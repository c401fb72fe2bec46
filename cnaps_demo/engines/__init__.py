"""The engine registry: id -> engine. Listing engines never loads weights or imports torch."""

from __future__ import annotations

from functools import cache

from ..errors import UnknownEngineError
from .base import (
    Anatomy,
    Availability,
    Credit,
    Decomposition,
    Engine,
    EngineOutput,
    LayerActivation,
    LocalForward,
    Look,
    ParamSpec,
    RunOptions,
)

__all__ = [
    "Anatomy",
    "Availability",
    "Credit",
    "Decomposition",
    "Engine",
    "EngineOutput",
    "LayerActivation",
    "LocalForward",
    "Look",
    "ParamSpec",
    "RunOptions",
    "DEFAULT_ENGINE_ID",
    "FAST_CPU_ENGINE_ID",
    "INSIDE_ENGINE_ID",
    "EXAMPLE_BASELINE_ID",
    "all_engines",
    "engine_ids",
    "get_engine",
    "warm_engine_ids",
]

# The roles engines play on the surfaces, named here (the registry knows them all) so that no surface
# spells an engine id: the default everywhere, the faster CNN for a large picture on a CPU (measured
# 1.3x faster than Real-CUGAN on 2-core CPUs: docs/measurements.md), the default network to look
# inside (a plain stack of convolutions, the easiest to read), and what the examples' results are computed for ahead.
DEFAULT_ENGINE_ID = "realcugan"
FAST_CPU_ENGINE_ID = "realesrgan-anime"
INSIDE_ENGINE_ID = "realesrgan-anime"
# The plain enlargement the examples' results are also computed for ahead (a presenter's machine
# computes every engine with downloadable weights too: ``warm_engine_ids``).
EXAMPLE_BASELINE_ID = "bicubic"


@cache
def _registry() -> dict[str, Engine]:
    """Every engine, built once: the one place that knows them all and wires them together."""
    from .classical import classical_engines
    from .cnn import RealCuganEngine, RealEsrganAnimeEngine
    from .diffusion import SDImg2ImgEngine, SDLatentX2Engine

    realcugan = RealCuganEngine()
    classical = classical_engines()
    lanczos = next(engine for engine in classical if engine.id == "lanczos")
    engines: dict[str, Engine] = {}
    # Order is the order users see: AI paths first, the baseline last.
    sd_img2img = SDImg2ImgEngine(pre_upscalers={"realcugan": realcugan, "lanczos": lanczos})
    for engine in (realcugan, RealEsrganAnimeEngine(), sd_img2img, SDLatentX2Engine(), *classical):
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


def warm_engine_ids() -> tuple[str, ...]:
    """What a presenter's machine computes the examples' results for ahead: the CNNs, the plain
    enlargement, and every engine whose weights come from the Hub (the slow ones on stage)."""
    fetched = [engine.id for engine in all_engines() if engine.fetches_weights]
    return tuple(dict.fromkeys([DEFAULT_ENGINE_ID, FAST_CPU_ENGINE_ID, EXAMPLE_BASELINE_ID, *fetched]))
