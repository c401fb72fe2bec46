"""The engine picker: labels, the status line, the default choice, and engine look-ups by id.

Whether an engine runs here is always ``api.availability(engine, settings=...)`` with the app's
own ``Settings``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ..api import availability
from ..engines import Engine, get_engine
from ..errors import EngineUnavailableError, UnknownEngineError
from ..settings import Settings
from .messages import OPERATOR_NOTE, short_reason, ui_error

FAMILY_WORDS = {"classical": "classical", "cnn": "CNN", "diffusion": "diffusion"}


def engine_label(engine: Engine, settings: Settings) -> str:
    ok, reason = availability(engine, settings=settings)
    family = FAMILY_WORDS.get(engine.family, engine.family)
    gpu = ", GPU" if engine.device_need == "gpu" else ""
    kind = f"{family}{gpu}"
    # "Real-CUGAN (anime CNN)" already says CNN: only add what the name does not say.
    says_it = family.lower() in engine.display_name.lower() and not gpu
    label = engine.display_name if says_it else f"{engine.display_name} ({kind})"
    return label if ok else f"{label} (unavailable: {short_reason(reason)})"


def engine_choices(engines: Sequence[Engine], settings: Settings) -> list[tuple[str, str]]:
    return [(engine_label(engine, settings), engine.id) for engine in engines]


def runnable_ids(engines: Sequence[Engine], settings: Settings) -> list[str]:
    """Ids of the engines that can run here, in registry order."""
    return [engine.id for engine in engines if availability(engine, settings=settings).ok]


def default_engine_id(engines: Sequence[Engine], settings: Settings, preferred: str = "realcugan") -> str:
    runnable = [engine for engine in engines if availability(engine, settings=settings).ok]
    for engine in runnable:
        if engine.id == preferred:
            return preferred
    for engine in runnable:
        if engine.family != "classical":
            return engine.id
    for engine in runnable:
        return engine.id
    return engines[0].id


def compare_preset(engines: Sequence[Engine], settings: Settings) -> list[str]:
    """What the Compare tab ticks at first: the first two runnable models, then Lanczos."""
    by_id = {engine.id: engine for engine in engines}
    runnable = runnable_ids(engines, settings)
    models = [engine_id for engine_id in runnable if by_id[engine_id].family != "classical"][:2]
    return models + (["lanczos"] if "lanczos" in runnable else [])


def engine_status_markdown(engine_id: str, settings: Settings) -> str:
    """One status line under the picker: what it does, or why it cannot run and the fix."""
    try:
        engine = get_engine(engine_id)
    except UnknownEngineError as error:
        return f"**Unknown engine.** {html.escape(str(error))}"
    ok, reason = availability(engine, settings=settings)
    where = "needs a GPU" if engine.device_need == "gpu" else "runs on the CPU (faster on a GPU)"
    if engine.family == "classical":
        where = "runs anywhere, instantly"
    if ok:
        return f"**Ready: {engine.display_name}** ({where}). {html.escape(engine.summary)}"
    return (
        f"**Unavailable: {engine.display_name} cannot run on this server** ({html.escape(short_reason(reason))}). "
        + OPERATOR_NOTE
    )


def find_engine(engine_id: str | None) -> Engine:
    """The engine for an id, whether or not it can run here (a cached result may still be shown)."""
    if not engine_id:
        raise ui_error("No engine is selected. Pick one in the Engine list.", title="Invalid setting")
    try:
        return get_engine(engine_id)
    except UnknownEngineError as error:
        raise ui_error(error) from None


def require_available(engine_id: str | None, settings: Settings) -> Engine:
    engine = find_engine(engine_id)
    ok, reason = availability(engine, settings=settings)
    if not ok:
        raise ui_error(EngineUnavailableError(f"{engine.display_name} cannot run here.", hint=reason))
    return engine
