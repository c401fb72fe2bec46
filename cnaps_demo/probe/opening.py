"""What ``inside`` and ``attribution`` share: the plan (engine, scale, parameters and device checked
once by ``api.plan``), the decoded picture, and the engine's anatomy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..api import plan
from ..engines import Anatomy, Engine, all_engines
from ..errors import InvalidParameterError
from ..image import split_alpha
from ..settings import Settings
from ..stages import ProgressFn, no_progress


@dataclass(frozen=True)
class Opened:
    engine: Engine
    scale: int
    params: dict[str, Any]
    picture: Image.Image  # the RGB picture the engine would see
    rgb: np.ndarray  # the same, float32 HxWx3 in 0-1
    anatomy: Anatomy
    progress: ProgressFn


def open_engine(
    image: Any,
    engine: str,
    *,
    scale: int | None,
    device: str,
    settings: Settings | None,
    progress: ProgressFn | None,
    params: dict[str, Any],
) -> Opened:
    """Check everything, decode ``image`` and open the engine's network (loads the fp32 model once)."""
    checked = plan(engine, scale=scale, device=device, settings=settings, colour_fix=False, **params)
    if not checked.engine.looks_inside:
        able = ", ".join(each.id for each in all_engines() if each.looks_inside)
        raise InvalidParameterError(
            f"{checked.engine.display_name} ({checked.engine.id}) has no network to look into.",
            hint=f"Use one of: {able}.",
        )
    checked.require_runnable()
    report = progress or no_progress
    request = checked.load(image, progress=report)
    picture = split_alpha(request.image)[0]
    rgb = np.asarray(picture, dtype=np.float32) * np.float32(1.0 / 255.0)
    report(0, 100, "Opening the network")
    anatomy = checked.engine.anatomy(checked.scale, checked.params, checked.options)
    return Opened(checked.engine, checked.scale, checked.params, picture, rgb, anatomy, report)


def whole_numbers(value: Any, count: int, name: str, example: str) -> tuple[int, ...]:
    """``value`` as ``count`` whole numbers (a tuple/list of ints, or text like "1,2"), else a typed error."""
    parts = value.replace(" ", "").split(",") if isinstance(value, str) else value
    try:
        numbers = tuple(int(part) for part in parts)
        if any(float(part) != int(float(part)) for part in parts):
            raise ValueError
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != count:
        raise InvalidParameterError(f"{name}={value!r} is not {count} whole numbers.", hint=f"Give it as {example}.")
    return numbers
