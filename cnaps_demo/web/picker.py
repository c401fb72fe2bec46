"""The engine picker: labels, the status line, the default choice, and engine look-ups by id.

Whether an engine runs here is always ``api.availability(engine, settings=...)`` with the app's
own ``Settings``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

from ..api import availability, plan
from ..engines import DEFAULT_ENGINE_ID, FAST_CPU_ENGINE_ID, Engine, get_engine
from ..errors import CnapsError, EngineUnavailableError, InvalidParameterError, UnknownEngineError
from ..settings import Settings
from .words import OPERATOR_HOW, short_reason, web_text

log = logging.getLogger(__name__)


def engine_label(engine: Engine, settings: Settings) -> str:
    """Short enough for a phone-wide picker (its text cannot wrap: every label fits a 390 px phone, the
    card under it gives the full name): the short name, what kind, or "not on this server" when so."""
    name = engine.short_name
    if not runs_here(engine, settings):
        return f"{name} \u2014 not on this server"
    gpu = ", GPU" if engine.device_need == "gpu" else ""
    return f"{name} ({engine.kind_words}{gpu})"


def engine_choices(engines: Sequence[Engine], settings: Settings) -> list[tuple[str, str]]:
    return [(engine_label(engine, settings), engine.id) for engine in engines]


def fetched_on_first_use(engine: Engine, settings: Settings) -> bool:
    """True when ``engine`` lacks only weights that this server fetches on first use (``Plan.fetchable``)."""
    if not engine.fetches_weights:
        return False  # nothing to plan: its weights come with the package
    try:
        return plan(engine, settings=settings).fetchable()
    except CnapsError:  # its settings are off: nothing to fetch
        return False


def runs_here(engine: Engine, settings: Settings) -> bool:
    """It can run now, or after fetching its weights on first use."""
    return availability(engine, settings=settings).ok or fetched_on_first_use(engine, settings)


def runnable_ids(engines: Sequence[Engine], settings: Settings) -> list[str]:
    """Ids of the engines that can run here (perhaps after a first-use download), in registry order."""
    return [engine.id for engine in engines if runs_here(engine, settings)]


def default_engine_id(engines: Sequence[Engine], settings: Settings, preferred: str = DEFAULT_ENGINE_ID) -> str:
    """The page's first choice: ``preferred`` where it runs, else the first model that runs, else any."""
    runnable = [engine for engine in engines if availability(engine, settings=settings).ok]
    for engine in runnable:
        if engine.id == preferred:
            return preferred
    for engine in runnable:
        if not engine.is_baseline:
            return engine.id
    for engine in runnable:
        return engine.id
    return engines[0].id


def cnn_runs_on_cpu(settings: Settings) -> bool:
    """The CNN engines would run on the CPU here (``devices.choose_device``, the one device decision)."""
    from ..devices import choose_device

    try:
        name, problem = choose_device("auto", configured=settings.device)
    except CnapsError:  # a bad CNAPS_DEVICE: the run itself says how to fix it
        return False
    return name == "cpu" and not problem


def engine_for_picture(
    size: tuple[int, int] | None, current_id: str, picked: bool, default_id: str, settings: Settings
) -> str:
    """The engine the page should show for a newly uploaded picture of ``size``.

    The visitor's own pick (``picked``) always stays. Otherwise a large picture
    (``settings.large_picture_pixels``) on a CPU-only server gets the faster Real-ESRGAN in place of
    the default Real-CUGAN, so that it shows its result in a few seconds; a smaller one the default.
    """
    if picked or default_id != DEFAULT_ENGINE_ID or size is None:
        return current_id
    threshold = settings.large_picture_pixels
    large = threshold > 0 and size[0] * size[1] >= threshold
    if large and cnn_runs_on_cpu(settings) and availability(get_engine(FAST_CPU_ENGINE_ID), settings=settings).ok:
        return FAST_CPU_ENGINE_ID
    return default_id


def compare_preset(engines: Sequence[Engine], settings: Settings) -> list[str]:
    """What the Compare tab ticks at first: the first two runnable models, then the last runnable plain
    enlargement (the registry lists the plain ones from the crudest to the finest)."""
    runnable = [engine for engine in engines if engine.id in runnable_ids(engines, settings)]
    models = [engine.id for engine in runnable if not engine.is_baseline][:2]
    baselines = [engine.id for engine in runnable if engine.is_baseline]
    return models + baselines[-1:]


def compare_choices(engines: Sequence[Engine], settings: Settings) -> tuple[list[tuple[str, str]], str | None]:
    """The Compare tab's tick boxes: only the engines that run here, and a line naming the others
    (None when every engine runs), so that nobody ticks one that cannot run or wonders where it went."""
    runnable = frozenset(runnable_ids(engines, settings))
    elsewhere = [engine.display_name for engine in engines if engine.id not in runnable]
    choices = [choice for choice in engine_choices(engines, settings) if choice[1] in runnable]
    return choices, (f"Not on this server: {', '.join(elsewhere)}." if elsewhere else None)


def download_size(engine: Engine, settings: Settings) -> str:
    """What fetching the weights of ``engine``'s default settings downloads ("about 2.7 GB"; "" unknown)."""
    try:
        return engine.download_size(engine.check_params({}, settings))
    except CnapsError:  # its settings are off: the card says what it needs instead
        return ""


def _needs(engine: Engine, reason: str, settings: Settings) -> list[str]:
    """What an engine lacks here, in a visitor's words (no commands: those are the operator's)."""
    text = reason.lower()
    needs = []
    if "gpu" in text or "cuda" in text:
        needs.append("a GPU (this server has none it may use)")
    if "weights" in text or "download" in text or "model folder" in text:
        size = download_size(engine, settings)
        needs.append(f"its model weights ({size + ' ' if size else ''}from the Hugging Face Hub)")
    if "pip install" in text or "package" in text:
        needs.append("a Python package that is not installed")
    return needs or [short_reason(reason)]


def engine_card_html(engine_id: str, settings: Settings) -> str:
    """The card under the picker: what the engine does, or, when it cannot run here, what it needs
    plus one line for whoever runs the server (never a shell command: visitors cannot run one)."""
    try:
        engine = get_engine(engine_id)
    except UnknownEngineError as error:
        return f'<div class="cnaps-card cnaps-card-off"><b>Unknown engine.</b> {html.escape(str(error))}</div>'
    ok, reason = availability(engine, settings=settings)
    name = html.escape(engine.display_name)
    if ok or fetched_on_first_use(engine, settings):
        where = "needs a GPU" if engine.device_need == "gpu" else "runs on the CPU"
        if engine.is_baseline:
            where = "runs anywhere, instantly"
        if not ok:
            size = download_size(engine, settings)
            where += f"; its weights{f' ({size})' if size else ''} download once, on its first run, with a progress bar"
        return f'<div class="cnaps-card"><b>{name}</b> \u00b7 {where}. {html.escape(engine.summary)}</div>'
    needs = "; ".join(html.escape(item) for item in _needs(engine, reason, settings))
    return (
        f'<div class="cnaps-card cnaps-card-off"><b>{name} cannot run on this server.</b> It needs {needs}. '
        "Bundled examples still show results computed ahead where there are some."
        f'<br><span class="cnaps-muted">For the operator: {html.escape(OPERATOR_HOW)}</span></div>'
    )


def visitor_availability(engine: Engine, settings: Settings) -> tuple[bool, str]:
    """``api.availability`` in a visitor's words (what the engine needs, never a path or a command):
    the operator's reason, with its fix, goes to the server log."""
    ok, reason = availability(engine, settings=settings)
    if ok:
        return True, ""
    log.info("%s cannot run here: %s", engine.id, reason)
    return False, web_text("needs " + "; ".join(_needs(engine, reason, settings)))


def find_engine(engine_id: str | None) -> Engine:
    """The engine for an id, whether or not it can run here (a cached result may still be shown)."""
    if not engine_id:
        raise InvalidParameterError("No engine is selected. Pick one in the Engine list.")
    if not isinstance(engine_id, str):  # a list or a number from an API call: one id, as text
        raise InvalidParameterError(
            f"engine must be one engine id as text, e.g. {DEFAULT_ENGINE_ID!r} (the Compare tab takes a list)."
        )
    return get_engine(engine_id)  # UnknownEngineError names the known ones


def require_available(engine_id: str | None, settings: Settings) -> Engine:
    engine = find_engine(engine_id)
    ok, reason = availability(engine, settings=settings)
    if not ok and not fetched_on_first_use(engine, settings):
        raise EngineUnavailableError(f"{engine.display_name} cannot run here.", hint=reason)
    return engine
