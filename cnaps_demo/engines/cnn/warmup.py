"""Pay the CNN engines' one-time costs before the first job: ``warm_up()``.

What the first run would otherwise pay: converting the ncnn weights (cached on disk when
``options.weights_cache`` is set), building the torch module, initialising NNPACK, and the
first call of every convolution (oneDNN creates its kernels per shape, NNPACK its workspace).
Meant for a background thread at start-up (the UI may call it); safe to call again (cheap once
warm) and from any thread.
"""

from __future__ import annotations

import time
from typing import Iterable

from ..base import Engine, RunOptions

_WARM_SIDE = 96  # a small picture: every layer runs once, in a fraction of a second


def warm_engine(engine: Engine, options: RunOptions | None = None) -> float | None:
    """Load ``engine``'s default model and run it once on a small picture; the seconds spent, or
    None when it is not installed (no error: the first real job will explain what is missing)."""
    from PIL import Image

    options = options or RunOptions()
    params = {spec.name: spec.default for spec in engine.params}
    if not engine.available(params, options).ok:
        return None
    image = Image.new("RGB", (_WARM_SIDE, _WARM_SIDE), (200, 120, 60))
    start = time.perf_counter()
    engine.run(image, scale=engine.default_scale, params=params, options=options)
    return time.perf_counter() - start


def warm_up(engines: Iterable[str] | None = None, options: RunOptions | None = None) -> dict[str, float]:
    """Warm each of the CNN engines named in ``engines`` (ids; None: all of them) with :func:`warm_engine`.

    Returns engine id -> seconds spent; engines that are not installed are left out.
    """
    from .realcugan import RealCuganEngine
    from .realesrgan import RealEsrganAnimeEngine

    family = [RealCuganEngine(), RealEsrganAnimeEngine()]
    wanted = None if engines is None else set(engines)
    spent = {engine.id: warm_engine(engine, options) for engine in family if wanted is None or engine.id in wanted}
    return {engine_id: seconds for engine_id, seconds in spent.items() if seconds is not None}
