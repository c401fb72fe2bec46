"""What the Upscale, Compare and exploration runs compute, from a ``RunRequest`` to a ``Comparison``.

``RunSetup`` is what every run of one app shares (settings, the request reader, the input guard,
the result folder, the example cache, the result store). Its methods are blocking and run in a
job's worker thread (``ui.jobs.JobControl``); they raise our typed errors, and
``JobCancelledError`` where Stop ended the run.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..api import UpscaleResult, plan
from ..engines import get_engine
from ..errors import CnapsError
from ..fidelity import fidelity, summary_line
from ..image import save_png
from ..present.result_cache import ExampleCache
from ..seed_spread import SeedSpread
from ..settings import Settings
from .comparison import Comparison, build_comparison
from .requests import RequestReader, RunRequest
from .result_store import UPSCALE_SLOT, ResultStore
from .running import download_progress, progress_forwarder, run_engine
from .sources import InputPolicy, Source, load_source
from .workdir import Workdir


@dataclass(frozen=True)
class Exploration:
    """What an exploration computes for the page: pictures with captions, and a note."""

    items: list[tuple[str, str]]
    note: str


@dataclass(frozen=True)
class RunSetup:
    """What the runs of one app share. Built once by ``ui.build_demo``."""

    settings: Settings
    requests: RequestReader  # the page's values -> RunRequest
    guard: InputPolicy  # what an image value from the web may be
    workdir: Workdir
    cache: ExampleCache | None = None  # the examples' results, computed ahead
    results: ResultStore | None = None  # each run kept for the page's follow-ups, within a budget

    def source(self, request: RunRequest) -> Source:
        return load_source(request.image, self.settings, request.simulate, guard=self.guard)

    def single_comparison(self, request: RunRequest, progress: Any, stop: threading.Event) -> Comparison:
        """One engine on one picture, for the Upscale tab: its comparison (the page's views draw from it).
        A run of the CPU lane is kept in the result store for the page's follow-ups."""
        source = self.source(request)
        engine = request.engine
        result = run_engine(
            source,
            engine,
            dict(request.params),
            settings=self.settings,
            progress=progress_forwarder(progress, label=engine.display_name, stop=stop),
            cache=self.cache,
            frames=request.frames(),
            colour_fix=request.colour_fix,
        )
        comparison = build_comparison(source, {engine.id: result}, self.workdir)
        # On ZeroGPU a GPU job runs in another process: its handler keeps the comparison (``kept_state``).
        return self._kept(comparison, request.session) if request.lane == "cpu" else comparison

    def _kept(self, comparison: Comparison, session: str) -> Comparison:
        """``comparison`` kept in the result store under ``session``, for the page's follow-ups (the crop
        picker, the pair picker); an API handler, which cannot follow up, drops it again."""
        if self.results is not None:
            self.results.add(comparison, session, UPSCALE_SLOT)
        return comparison

    def cached_comparison(self, request: RunRequest) -> Comparison | None:
        """The example cache's result of the request's engine for this picture, or None. Never runs the
        engine nor fetches weights: what a click on an example shows for an engine that cannot (or
        should not) run now."""
        if self.cache is None:
            return None
        source = self.source(request)
        ready = plan(request.engine, settings=self.settings, colour_fix=request.colour_fix, **request.params)
        hit = self.cache.get(source.image, request.engine.id, ready.params, colour_fix=ready.colour_fix)
        if hit is None:
            return None
        return self._kept(build_comparison(source, {request.engine.id: hit}, self.workdir), request.session)

    def picture_size(self, image_value: Any) -> tuple[int, int] | None:
        """(width, height) of an uploaded picture from its header alone; None when it cannot be read
        (the run itself will then say what is wrong)."""
        try:
            data = self.guard.admit(image_value).data
            if isinstance(data, Image.Image):  # in-process callers may hand a picture itself
                return data.size
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
                return image.size
        except (CnapsError, OSError, ValueError, AttributeError):
            return None

    def gpu_seconds(self, request: RunRequest) -> int | None:
        """How long to ask ZeroGPU for (``spaces.GPU(duration=...)``): the engine's estimate from the
        picture's size (its header only) and its parameters; None when anything is unclear."""
        size = self.picture_size(request.image)
        if size is None:
            return None
        try:
            checked = request.engine.check_params(dict(request.params), self.settings)
        except CnapsError:
            return None
        width, height = size
        if request.simulate:
            width, height = width // 2, height // 2
        return request.engine.gpu_seconds(width, height, checked, tile=self.settings.tile)

    def compare_comparison(self, requests: Sequence[RunRequest], progress: Any, stop: threading.Event) -> Comparison:
        """Every requested engine on one picture (``RequestReader.compare``), for the Compare tab."""
        source = self.source(requests[0])
        results: dict[str, UpscaleResult] = {}
        for index, request in enumerate(requests):
            engine = request.engine
            forward = progress_forwarder(
                progress, label=engine.display_name, index=index, count=len(requests), stop=stop
            )
            results[engine.id] = run_engine(
                source,
                engine,
                dict(request.params),
                settings=self.settings,
                progress=forward,
                cache=self.cache,
                colour_fix=request.colour_fix,
            )
        return build_comparison(source, results, self.workdir)  # its handler keeps it

    def sweep(self, request: RunRequest, progress: Any, stop: threading.Event) -> Exploration:
        """img2img at strengths 0.1-0.6, same seed (``Engine.explore("sweep")``), with each picture's
        fidelity figures under it."""
        source = self.source(request)
        forward = progress_forwarder(progress, label=request.engine.display_name, stop=stop)
        ready = plan(request.engine, settings=self.settings, progress=forward, **request.params)
        found = ready.provisioned(download_progress(forward)).explore("sweep", source.image)
        folder = self.workdir.new_run_dir()
        items = [
            (
                _shown(folder, f.image, f"strength-{f.strength:.1f}"),
                f"{f.caption} \u00b7 " + summary_line(fidelity(f.image, source.image, source.truth)),
            )
            for f in found
        ]
        note = (
            "Same picture, same seed: only the strength changes. Low strength keeps to your picture "
            "(high LR-PSNR); high strength re-draws more, and invents more."
        )
        return Exploration(items, note)

    def reruns_here(self, result: UpscaleResult) -> bool:
        """The job of ``result`` (its engine, parameters and scale) can run on this server now, or after
        fetching its weights on first use (no network asked)."""
        try:
            ready = plan(get_engine(result.engine_id), settings=self.settings, scale=result.scale, **result.params)
        except CnapsError:  # a result computed ahead with settings this server no longer takes
            return False
        return not ready.problem or ready.fetchable()

    def seed_map(
        self, result: UpscaleResult, progress: Any = None, stop: threading.Event | None = None, *, compute: bool = True
    ) -> SeedSpread | None:
        """Where the run of ``result`` guesses: its job at 3 seeds and where they disagree
        (``Engine.explore("seeds")``). The example cache's copy when it holds one; else, with ``compute``,
        a run here (weights fetched on first use), kept beside the result when that was computed ahead.
        None: the engine draws no seed map, or none is stored and ``compute`` is off."""
        engine = get_engine(result.engine_id)
        if "seeds" not in engine.explorations:
            return None
        picture, params = result.input_image, result.params
        stored = self.cache.get_seeds(picture, engine.id, params, result.scale) if self.cache is not None else None
        if stored is not None or not compute:
            return stored
        forward = progress_forwarder(progress, label=engine.display_name, stop=stop)
        ready = plan(engine, settings=self.settings, scale=result.scale, progress=forward, **params)
        found = ready.provisioned(download_progress(forward)).explore("seeds", picture)
        if self.cache is not None and result.extra.get("cached"):  # an example's: the next visitor sees it at once
            self.cache.put_seeds(picture, engine.id, params, found, result.scale)
        return dataclasses.replace(found, outputs=[])  # the pictures are what the page shows


def _shown(folder: Path, image: Any, name: str) -> str:
    return str(save_png(image, folder / f"{name}.png", {}, compress_level=1))
