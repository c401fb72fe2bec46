"""One typed request per run, read once from what the page (or an API client) sent.

The page's run events get plain values: the image value, the engine id, the "Simulate a blurry
source" and "Colour fix" switches, and every engine setting control by its keyword
(``realcugan_denoise``). ``RequestReader`` reads them into a ``RunRequest`` at the event's edge:
the engine looked up, the switches parsed, the engine's own parameters picked out and checked for
the web. Every run (``runs.RunSetup``) and the ZeroGPU duration estimate take that request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engines import DEFAULT_ENGINE_ID, EXAMPLE_BASELINE_ID, Engine, ParamSpec, all_engines, get_engine
from ..errors import CnapsError, InvalidParameterError
from ..settings import Settings
from .picker import find_engine, require_available
from .untrusted import check_web_params
from .words import EnginesUnavailableError, NothingToRunError, WrongEndpointError, toast_text

COLOUR_FIX_KEYWORD = "colour_fix"  # the page's colour fix switch, an /upscale keyword beside the engine settings
YES_WORDS = frozenset({"true", "yes", "on", "1"})
NO_WORDS = frozenset({"false", "no", "off", "0", ""})


def switch(value: Any, name: str, default: bool) -> bool:
    """A page switch (a checkbox, or an API client's true/false, "yes"/"no", "on"/"off", 1/0) as a bool:
    the one reader of yes/no words for the page. ``None`` is ``default``; anything else is refused."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in YES_WORDS or text in NO_WORDS:
        return text in YES_WORDS
    raise InvalidParameterError(f"{name}={str(value)[:40]!r} is not a switch value.", hint="Use true or false.")


def api_name_for(engine_id: str, param: str) -> str:
    """Keyword name of one engine parameter in the ``/upscale`` API, e.g. ``realcugan_denoise``."""
    return re.sub(r"\W", "_", f"{engine_id}_{param}")


@dataclass(frozen=True)
class ParamBinding:
    """One engine setting control: whose parameter it is, and the keyword its value arrives under."""

    engine_id: str
    spec: ParamSpec
    keyword: str  # api_name_for(engine_id, spec.name)
    component: Any  # the page's control (a Gradio component); not read here


def params_for(engine_id: str, values: Mapping[str, Any], bindings: Sequence[ParamBinding]) -> dict[str, Any]:
    """The chosen engine's parameters from the keyword values of every control.

    Empty text for a numeric parameter means "use the default" (None), so API users can
    leave it out.
    """
    params: dict[str, Any] = {}
    for binding in bindings:
        if binding.engine_id != engine_id or binding.keyword not in values:
            continue
        value = values[binding.keyword]
        if binding.spec.kind in ("int", "float") and (value is None or value == ""):
            value = None
        if binding.spec.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        params[binding.spec.name] = value
    return params


@dataclass(frozen=True)
class RunRequest:
    """One engine on one picture, as asked for: everything a run needs, read and checked once."""

    lane: str  # "cpu" (/upscale) or "gpu" (/upscale_gpu): the queue it came through
    image: Any  # the image value as it arrived; admitted and decoded when the run loads it
    engine: Engine
    simulate: bool  # shrink the picture first, so that the original is the ground truth
    colour_fix: bool | None  # None: the engine's own default (on for the AI engines); False: off
    params: Mapping[str, Any] = field(default_factory=dict)  # the engine's parameters, checked for the web
    session: str = ""  # the browser session ("" for none): where the result store keeps the run
    on_frame: Callable[[Any], None] | None = None  # each denoising frame as it is made (the live filmstrip)
    keep_frames: bool = False  # the denoising frames in the result (the filmstrip after the run)

    def frames(self) -> Any:
        """What ``api.prepare(frames=...)`` gets: the live callback or True, where the engine makes frames."""
        if not self.engine.makes_frames or not (self.on_frame or self.keep_frames):
            return None
        return self.on_frame or True

    def __reduce__(self) -> tuple[Any, ...]:
        # To another process (a ZeroGPU job) the engine travels as its id: that side runs the registry's
        # own engine, with whatever it keeps loaded, not a copy.
        fields = {each.name: getattr(self, each.name) for each in dataclasses.fields(self) if each.name != "engine"}
        return (_request_with_engine_id, (self.engine.id, fields))


def _request_with_engine_id(engine_id: str, fields: dict[str, Any]) -> RunRequest:
    return RunRequest(**{**fields, "engine": get_engine(engine_id)})


@dataclass(frozen=True)
class RequestReader:
    """Reads the page's values into ``RunRequest``s. Built once per app."""

    settings: Settings
    gpu_ids: frozenset[str]  # engines that run on the GPU queue (/upscale_gpu)
    bindings: Sequence[ParamBinding]  # the engine settings controls

    def web_params(self, engine: Engine, values: Mapping[str, Any]) -> dict[str, Any]:
        """``engine``'s parameters from the keyword values of every control, checked for the web."""
        # The operator's own choices are offered too, each in its own field: CNAPS_SD_MODEL and
        # CNAPS_WEB_MODELS as a model, CNAPS_SD_CONTROLNET as a ControlNet.
        offered: dict[str, list[str]] = {"model": list(self.settings.web_models)}
        for spec in engine.params:
            value = spec.default_for(self.settings) if spec.setting else None
            if value:
                offered.setdefault(spec.name, []).append(str(value))
        return check_web_params(engine, params_for(engine.id, values, self.bindings), offered)

    def check_endpoint(self, lane: str, engine: Engine) -> None:
        """GPU engines run on /upscale_gpu, the others on /upscale: say which to call instead."""
        if lane == "cpu" and engine.id in self.gpu_ids:
            raise WrongEndpointError(
                f"{engine.display_name} runs on the GPU queue: call api_name='/upscale_gpu' with the same "
                "arguments (in the web page, the button does this for you)."
            )
        if lane == "gpu" and engine.id not in self.gpu_ids:
            raise WrongEndpointError(f"{engine.display_name} runs on the CPU queue: call api_name='/upscale'.")

    def run(
        self,
        lane: str,
        image: Any,
        engine_id: Any,
        simulate: Any,
        values: Mapping[str, Any],
        session: str = "",
        *,
        on_frame: Callable[[Any], None] | None = None,
        keep_frames: bool = False,
    ) -> RunRequest:
        """The request of one engine's run through ``lane`` (its endpoint checked; ``on_frame``,
        ``keep_frames``: as in ``RunRequest``). Not ``require_available``: the example cache may hold
        this engine's result even where it cannot run (the run serves it or refuses)."""
        engine = find_engine(engine_id)
        self.check_endpoint(lane, engine)
        asked = self._request(lane, image, engine, simulate, values, session)
        return dataclasses.replace(asked, on_frame=on_frame, keep_frames=keep_frames)

    def exploration(
        self, what: str, image: Any, engine_id: Any, simulate: Any, values: Mapping[str, Any], session: str = ""
    ) -> RunRequest:
        """The request of an exploration (``Engine.explorations``: "sweep", "seeds") of the chosen engine."""
        engine = find_engine(engine_id)
        if what not in engine.explorations:
            able = " or ".join(other.display_name for other in all_engines() if what in other.explorations)
            raise InvalidParameterError(f"Pick {able or 'another engine'} in the Engine list first.")
        return self._request("gpu", image, engine, simulate, values, session)

    def compare(
        self, lane: str, image: Any, engine_ids: Any, simulate: Any, values: Mapping[str, Any], session: str = ""
    ) -> tuple[RunRequest, ...]:
        """One request per ticked engine (each once), or one error naming every one that cannot run here."""
        engines = self.compare_engines(engine_ids)
        return tuple(self._request(lane, image, engine, simulate, values, session) for engine in engines)

    def compare_engines(self, engine_ids: Any) -> list[Engine]:
        """The ticked engines, or one error naming every ticked engine that cannot run here."""
        if not engine_ids:
            raise NothingToRunError("No engine is ticked. Tick at least one engine to compare.")
        if isinstance(engine_ids, str) or not all(isinstance(engine_id, str) for engine_id in engine_ids):
            example = [DEFAULT_ENGINE_ID, EXAMPLE_BASELINE_ID]
            raise InvalidParameterError(f"The engines to compare are a list of engine ids, e.g. {example}.")
        listed = list(dict.fromkeys(engine_ids))  # each engine once, however often it is listed
        if len(listed) > len(all_engines()):
            raise InvalidParameterError(f"At most {len(all_engines())} engines can be compared: the ones in the list.")
        chosen, problems = [], []
        for engine_id in listed:
            try:
                chosen.append(require_available(engine_id, self.settings))
            except CnapsError as error:  # unknown, or cannot run here: every one named at once
                problems.append(toast_text(error))
        if problems:
            raise EnginesUnavailableError("\n".join(problems))
        return chosen

    def _request(
        self,
        lane: str,
        image: Any,
        engine: Engine,
        simulate: Any,
        values: Mapping[str, Any],
        session: str,
    ) -> RunRequest:
        colour_fix = None if switch(values.get(COLOUR_FIX_KEYWORD), COLOUR_FIX_KEYWORD, True) else False
        return RunRequest(
            lane=lane,
            image=image,
            engine=engine,
            simulate=switch(simulate, "simulate_blurry_source", False),
            colour_fix=colour_fix,
            params=self.web_params(engine, values),
            session=session,
        )
