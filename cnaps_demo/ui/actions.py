"""What the Upscale and Compare runs compute, from plain input values to the values of their outputs.

``RunSetup`` is what every run of one app shares (settings, the input guard, the parameter
controls, the result folder, the example cache). Its methods are blocking and run in a job's
worker thread (``jobs.JobControl``); ``wiring`` attaches them to the buttons.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..api import UpscaleResult
from ..engines import Engine
from ..errors import CnapsError, JobCancelledError
from ..present.result_cache import ExampleCache
from ..settings import Settings
from .comparison import build_comparison
from .messages import ui_error
from .params import ParamBinding, params_for
from .picker import find_engine, require_available
from .running import Workdir, progress_forwarder, run_engine
from .sources import InputPolicy, Source, load_source
from .untrusted import check_web_params
from .views import CompareView, cleared_single, compare_view, single_view, unchanged


@dataclass(frozen=True)
class RunSetup:
    """What the runs of one app share. Built once by ``build_demo``."""

    settings: Settings
    gpu_ids: frozenset[str]  # engines that run on the GPU queue (/upscale_gpu)
    bindings: list[ParamBinding]  # the engine settings controls
    guard: InputPolicy  # what an image value from the web may be
    workdir: Workdir
    cache: ExampleCache | None = None  # the examples' results, computed ahead

    def web_params(self, engine: Engine, values: dict[str, Any]) -> dict[str, Any]:
        """``engine``'s parameters from the keyword values of every control, checked for the web."""
        try:
            return check_web_params(engine, params_for(engine.id, values, self.bindings), self.settings.web_models)
        except CnapsError as error:
            raise ui_error(error) from None

    def check_endpoint(self, kind: str, engine: Engine) -> None:
        """GPU engines run on /upscale_gpu, the others on /upscale: say which to call instead."""
        if kind == "cpu" and engine.id in self.gpu_ids:
            raise ui_error(
                f"{engine.display_name} runs on the GPU queue: call api_name='/upscale_gpu' with the same "
                "arguments (in the web page, the button does this for you).",
                title="Wrong endpoint",
            )
        if kind == "gpu" and engine.id not in self.gpu_ids:
            raise ui_error(
                f"{engine.display_name} runs on the CPU queue: call api_name='/upscale'.", title="Wrong endpoint"
            )

    def single_run(
        self,
        kind: str,
        image_value: Any,
        engine_id: str | None,
        simulate_flag: Any,
        progress: Any,
        stop: threading.Event,
        params: dict[str, Any],
    ) -> tuple:
        """One engine on one picture, for the Upscale tab: the values of ``SingleRunView``."""
        # Not require_available: the example cache may hold this engine's result even where it
        # cannot run; run_engine serves that or refuses with the fix.
        chosen = find_engine(engine_id)
        self.check_endpoint(kind, chosen)
        checked = self.web_params(chosen, params)
        source = load_source(image_value, self.settings, bool(simulate_flag), guard=self.guard)
        try:
            result = run_engine(
                source,
                chosen,
                checked,
                settings=self.settings,
                progress=progress_forwarder(progress, label=chosen.display_name, stop=stop),
                cache=self.cache,
            )
        except JobCancelledError as stopped:
            gr.Info(str(stopped), title="Stopped")
            return tuple(cleared_single())  # a stopped run leaves nothing of an earlier one beside the input
        comparison = build_comparison(source, {chosen.id: result}, self.workdir)
        return tuple(single_view(comparison, chosen.id))

    def compare_engines(self, engine_ids: Sequence[str] | None) -> list[Engine]:
        """The ticked engines, or one error naming every ticked engine that cannot run here."""
        if not engine_ids:
            raise ui_error("No engine is ticked. Tick at least one engine to compare.", title="Nothing to run")
        chosen = []
        problems = []
        for engine_id in engine_ids:
            try:
                chosen.append(require_available(engine_id, self.settings))
            except gr.Error as error:
                problems.append(str(error.message))
        if problems:
            raise gr.Error("\n".join(problems), title="Engine unavailable here", print_exception=False)
        return chosen

    def compare_run(
        self,
        image_value: Any,
        engine_ids: Sequence[str] | None,
        simulate_flag: Any,
        progress: Any,
        stop: threading.Event,
        params: dict[str, Any],
    ) -> tuple:
        """Every ticked engine on one picture, for the Compare tab: the values of ``CompareView``."""
        chosen = self.compare_engines(engine_ids)
        checked = {engine.id: self.web_params(engine, params) for engine in chosen}
        source = load_source(image_value, self.settings, bool(simulate_flag), guard=self.guard)
        try:
            results = self._run_each(source, chosen, checked, progress, stop)
        except JobCancelledError as stopped:
            gr.Info(str(stopped), title="Stopped")
            return unchanged(CompareView)
        return tuple(compare_view(build_comparison(source, results, self.workdir)))

    def _run_each(
        self,
        source: Source,
        chosen: Sequence[Engine],
        checked: dict[str, dict[str, Any]],
        progress: Any,
        stop: threading.Event,
    ) -> dict[str, UpscaleResult]:
        results = {}
        for index, engine in enumerate(chosen):
            results[engine.id] = run_engine(
                source,
                engine,
                checked[engine.id],
                settings=self.settings,
                progress=progress_forwarder(
                    progress, label=engine.display_name, index=index, count=len(chosen), stop=stop
                ),
                cache=self.cache,
            )
        return results
