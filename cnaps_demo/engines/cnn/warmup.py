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

from ..base import RunOptions

DEFAULT_ENGINES = ("realcugan", "realesrgan-anime")
_WARM_SIDE = 96  # a small picture: every layer runs once, in a fraction of a second


def warm_up(engines: Iterable[str] = DEFAULT_ENGINES, options: RunOptions | None = None) -> dict[str, float]:
    """Load each engine's default model and run it once on a small picture.

    Returns engine id -> seconds spent. Engines that are not installed are skipped (no error):
    the first real job will explain what is missing.
    """
    from PIL import Image

    from .realcugan import RealCuganEngine
    from .realesrgan import RealEsrganAnimeEngine

    known = {engine.id: engine for engine in (RealCuganEngine(), RealEsrganAnimeEngine())}
    options = options or RunOptions()
    spent: dict[str, float] = {}
    image = Image.new("RGB", (_WARM_SIDE, _WARM_SIDE), (200, 120, 60))
    for engine_id in engines:
        engine = known[engine_id]
        params = {spec.name: spec.default for spec in engine.params}
        if not engine.available(params, options).ok:
            continue
        start = time.perf_counter()
        engine.run(image, scale=engine.default_scale, params=params, options=options)
        spent[engine_id] = time.perf_counter() - start
    return spent
