"""What the Upscale and Compare runs compute, from plain input values to the values of their outputs.

``RunSetup`` is what every run of one app shares (settings, the input guard, the parameter
controls, the result folder, the example cache). Its methods are blocking and run in a job's
worker thread (``jobs.JobControl``); ``wiring`` attaches them to the buttons.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from ..api import UpscaleResult
from ..fidelity import fidelity, summary_line
from ..image import save_png
from ..engines import Engine, all_engines
from ..errors import CnapsError, JobCancelledError
from ..present.result_cache import ExampleCache
from ..settings import Settings
from .comparison import Comparison, build_comparison
from .gpu import GPU_DURATION_S
from .messages import ui_error
from .params import ParamBinding, colour_fix_choice, params_for
from .picker import find_engine, require_available
from .jobs import UNEXPECTED_MESSAGE, current_session
from .result_store import UPSCALE_SLOT, ResultStore
from .running import Workdir, progress_forwarder, run_engine, with_weights
from .sources import InputPolicy, Source, load_source
from .untrusted import check_web_params
from .views import CompareView, cleared_single, compare_view, preview_view, single_view, unchanged

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSetup:
    """What the runs of one app share. Built once by ``build_demo``."""

    settings: Settings
    gpu_ids: frozenset[str]  # engines that run on the GPU queue (/upscale_gpu)
    bindings: list[ParamBinding]  # the engine settings controls
    guard: InputPolicy  # what an image value from the web may be
    workdir: Workdir
    cache: ExampleCache | None = None  # the examples' results, computed ahead
    results: ResultStore | None = None  # each run kept for the page's follow-ups, within a budget

    def web_params(self, engine: Engine, values: dict[str, Any]) -> dict[str, Any]:
        """``engine``'s parameters from the keyword values of every control, checked for the web."""
        try:
            # The operator's own choices are offered too, each in its own field: CNAPS_SD_MODEL and
            # CNAPS_WEB_MODELS as a model, CNAPS_SD_CONTROLNET as a ControlNet.
            offered: dict[str, list[str]] = {"model": list(self.settings.web_models)}
            for spec in engine.params:
                value = spec.default_for(self.settings) if spec.setting else None
                if value:
                    offered.setdefault(spec.name, []).append(str(value))
            return check_web_params(engine, params_for(engine.id, values, self.bindings), offered)
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

    def single_comparison(
        self,
        kind: str,
        image_value: Any,
        engine_id: str | None,
        simulate_flag: Any,
        progress: Any,
        stop: threading.Event,
        params: dict[str, Any],
        frames: Any = None,
        announce_stop: Callable[[], bool] | None = None,
    ) -> Comparison | None:
        """One engine on one picture, for the Upscale tab: its comparison (``views.preview_view`` and
        ``views.single_view`` draw from it); None when Stop ended the run (the user has been told).

        ``frames``: a callback given each denoising step's picture as it is made (diffusion only).
        ``announce_stop``: whether to say where the run stopped (False when a newer click ended it:
        the visitor asked for something else, not for a stop)."""
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
                frames=frames if chosen.family == "diffusion" else None,
                colour_fix=colour_fix_choice(params),
            )
        except JobCancelledError as stopped:
            if announce_stop is None or announce_stop():
                gr.Info(str(stopped), title="Stopped")
            return None
        comparison = build_comparison(source, {chosen.id: result}, self.workdir)
        # On ZeroGPU a GPU job runs in another process: its handler keeps the comparison (``kept_state``).
        return self._kept(comparison) if kind == "cpu" else comparison

    def _kept(self, comparison: Comparison) -> Comparison:
        """``comparison`` kept in the result store under the calling session, for the page's follow-ups
        (the crop picker, the pair picker); an API handler, which cannot follow up, drops it again."""
        if self.results is not None:
            self.results.add(comparison, current_session(), UPSCALE_SLOT)
        return comparison

    def cached_comparison(
        self, image_value: Any, engine_id: str | None, simulate_flag: Any, params: dict[str, Any]
    ) -> Comparison | None:
        """The example cache's result of ``engine_id`` for this picture, or None. Never runs the engine nor
        fetches weights: what a click on an example shows for an engine that cannot (or should not) run now."""
        from ..api import plan

        if self.cache is None:
            return None
        chosen = find_engine(engine_id)
        checked = self.web_params(chosen, params)
        source = load_source(image_value, self.settings, bool(simulate_flag), guard=self.guard)
        try:
            ready = plan(chosen.id, settings=self.settings, colour_fix=colour_fix_choice(params), **checked)
        except CnapsError as error:
            raise ui_error(error) from None
        hit = self.cache.get(source.image, chosen.id, ready.params, colour_fix=ready.colour_fix)
        return None if hit is None else self._kept(build_comparison(source, {chosen.id: hit}, self.workdir))

    def single_run(self, *args: Any, **kwargs: Any) -> tuple:
        """``single_comparison`` (same arguments) and every view of it at once: the values of ``SingleRunView``."""
        return full_view(self.single_comparison(*args, **kwargs))

    def picture_size(self, image_value: Any) -> tuple[int, int] | None:
        """(width, height) of an uploaded picture from its header alone; None when it cannot be read
        (the run itself will then say what is wrong)."""
        try:
            data = self.guard.admit(image_value).data
            if isinstance(data, Image.Image):  # in-process callers may hand a picture itself
                return data.size
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
                return image.size
        except (CnapsError, gr.Error, OSError, ValueError, AttributeError):
            return None

    def gpu_seconds(self, image_value: Any, engine_id: str | None, simulate_flag: Any, params: dict[str, Any]) -> int:
        """How long to ask ZeroGPU for (``spaces.GPU(duration=...)``): estimated from the picture's size
        (its header only) and the engine's steps; the fixed default when anything is unclear."""
        from ..engines.diffusion.cost import spaces_duration

        size = self.picture_size(image_value)
        if size is None:
            return GPU_DURATION_S
        try:
            engine = find_engine(engine_id)
            checked = engine.check_params(self.web_params(engine, params), self.settings)
        except (CnapsError, gr.Error):
            return GPU_DURATION_S
        width, height = size
        if simulate_flag:
            width, height = width // 2, height // 2
        return spaces_duration(width, height, checked, engine=engine.id, tile=self.settings.tile)

    def compare_engines(self, engine_ids: Sequence[str] | None) -> list[Engine]:
        """The ticked engines, or one error naming every ticked engine that cannot run here."""
        if not engine_ids:
            raise ui_error("No engine is ticked. Tick at least one engine to compare.", title="Nothing to run")
        if isinstance(engine_ids, str) or not all(isinstance(engine_id, str) for engine_id in engine_ids):
            raise ui_error("The engines to compare are a list of engine ids, e.g. ['realcugan', 'lanczos'].",
                           title="Invalid setting")
        listed = list(dict.fromkeys(engine_ids))  # each engine once, however often it is listed
        if len(listed) > len(all_engines()):
            raise ui_error(f"At most {len(all_engines())} engines can be compared: the ones in the list.",
                           title="Invalid setting")
        chosen = []
        problems = []
        for engine_id in listed:
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
            results = self._run_each(source, chosen, checked, progress, stop, colour_fix_choice(params))
        except JobCancelledError as stopped:
            gr.Info(str(stopped), title="Stopped")
            return unchanged(CompareView)
        return tuple(compare_view(build_comparison(source, results, self.workdir)))  # its handler keeps it

    def _run_each(
        self,
        source: Source,
        chosen: Sequence[Engine],
        checked: dict[str, dict[str, Any]],
        progress: Any,
        stop: threading.Event,
        colour_fix: bool | None = None,
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
                colour_fix=colour_fix,
            )
        return results


@dataclass(frozen=True)
class Exploration:
    """What the diffusion explorations compute for the page: pictures with captions, and a note."""

    items: list[tuple[str, str]]
    note: str


def explore(
    setup: RunSetup, what: str, image_value: Any, engine_id: str | None, simulate_flag: Any,
    progress: Any, stop: threading.Event, params: dict[str, Any],
) -> Exploration:
    """``what`` = "sweep" (sd-img2img at strengths 0.1-0.6, same seed) or "seeds" (3 seeds: where the
    model is guessing), with each picture's fidelity figures under it."""
    from ..api import plan
    from ..engines.diffusion import seed_disagreement, strength_sweep

    chosen = find_engine(engine_id)
    if chosen.family != "diffusion" or (what == "sweep" and chosen.id != "sd-img2img"):
        needed = "Stable Diffusion img2img" if what == "sweep" else "a Stable Diffusion engine"
        raise ui_error(f"Pick {needed} in the Engine list first.", title="Invalid setting")
    checked = setup.web_params(chosen, params)
    source = load_source(image_value, setup.settings, bool(simulate_flag), guard=setup.guard)
    forward = progress_forwarder(progress, label=chosen.display_name, stop=stop)
    try:
        ready = with_weights(plan(chosen.id, settings=setup.settings, progress=forward, **checked), forward)
        ready.require_runnable()
        folder = setup.workdir.new_run_dir()
        if what == "sweep":
            frames = strength_sweep(ready.engine, source.image, ready.params, ready.options)
            items = [(_shown(folder, f.image, f"strength-{f.strength:.1f}"), f"{f.caption} \u00b7 "
                      + summary_line(fidelity(f.image, source.image, source.truth))) for f in frames]
            note = ("Same picture, same seed: only the strength changes. Low strength keeps to your picture "
                    "(high LR-PSNR); high strength re-draws more, and invents more.")
            return Exploration(items, note)
        spread = seed_disagreement(ready.engine, source.image, ready.params, ready.options)
    except JobCancelledError as stopped:
        gr.Info(str(stopped), title="Stopped")
        return Exploration([], "")
    except CnapsError as error:
        raise ui_error(error) from None
    items = [(_shown(folder, image, f"seed-{seed}"), f"seed {seed}") for seed, image in zip(spread.seeds, spread.images)]
    items.append((_shown(folder, spread.image, "spread"), f"where the seeds disagree (mean {spread.mean:.1f}/255)"))
    note = ("The same job with three seeds. Where the pictures differ (bright in the map), the model is guessing: "
            "your picture does not decide those pixels, the random noise does.")
    return Exploration(items, note)


def _shown(folder: Any, image: Any, name: str) -> str:
    return str(save_png(image, folder / f"{name}.png", {}, compress_level=1))


def first_view(comparison: Comparison) -> tuple:
    """The outputs an Upscale run shows first: the slider and its labels (``views.preview_view``)."""
    return in_words(lambda: tuple(preview_view(comparison, comparison.first_id)))


def full_view(comparison: Comparison | None) -> tuple:
    """Every output of an Upscale run from ``RunSetup.single_comparison`` (blocking: it measures the
    figures and writes the files); a stopped run (None) leaves nothing of an earlier one."""
    if comparison is None:
        return tuple(cleared_single())
    return in_words(lambda: tuple(single_view(comparison, comparison.first_id)))


def in_words(draw: Callable[[], tuple]) -> tuple:
    """``draw()``; a failure while drawing a run's views (after its job) reaches the client as words,
    not as Gradio's empty error: a library error with its fix, anything else as one plain line."""
    try:
        return draw()
    except (gr.Error, JobCancelledError):
        raise
    except CnapsError as error:
        raise ui_error(error) from None
    except Exception as error:  # noqa: BLE001 - the traceback goes to the log, a plain line to the client
        log.exception("drawing a run's views failed")
        raise gr.Error(UNEXPECTED_MESSAGE, title="Upscaling failed", print_exception=False) from error
