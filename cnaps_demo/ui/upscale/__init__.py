"""The Upscale tab: the picture, the engine and its settings, the run, and what the run shows.

``build_upscale_tab`` lays it out (``layout``); ``wire_upscale_tab`` attaches its events, section by
section, in the page's order (the order of the events is the order of the API's function indices):

* ``engine_picker``: the engine's card, settings and buttons follow the choice;
* ``api``: /upscale and /upscale_gpu; ``runs``: the page's own run events (each click numbered,
  nothing stale shown), the examples, a fresh start on a new picture, the crop picker;
* ``shown``: what a run shows (``SingleRunView``'s values); ``filmstrip``: the denoising frames
  and the strength sweep;
* ``inside`` (with ``guessing``, a diffusion run's seed map), ``learned``: the explainer sections;
  ``inside_api``: /inside and /attribution.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...engines import Engine
from ...web.latest import LatestRequests
from ...web.live import LiveFrames
from ...web.result_store import resolver
from ...web.runs import RunSetup
from ..gpu import GPU_DURATION_S, on_gpu
from ..jobs import JobControl
from . import engine_picker, runs
from .api import wire_upscale_api
from .filmstrip import wire_filmstrip, wire_sweep
from .inside import wire_inside_panel
from .inside_api import wire_inside_api
from .layout import SingleRunView, UpscaleTab, build_upscale_tab, example_copies
from .learned import wire_learned_panel
from .shown import single_run

__all__ = ["SingleRunView", "UpscaleTab", "build_upscale_tab", "example_copies", "wire_upscale_tab"]


def wire_upscale_tab(
    tab: UpscaleTab,
    setup: RunSetup,
    control: JobControl,
    latest: LatestRequests,
    engines: Sequence[Engine],
    default_id: str,
) -> None:
    """Every event of the Upscale tab. Inside the ``gr.Blocks``."""
    settings, results = setup.settings, setup.results
    engine_picker.wire_engine_picker(tab, settings, setup.requests.gpu_ids)
    engine_picker.wire_choice_limits(tab, engines)
    live = LiveFrames(setup.workdir)

    def gpu_seconds(request, *_: object) -> int:
        return setup.gpu_seconds(request) or GPU_DURATION_S

    def run_on_gpu(request, progress, stop, announce_stop=None) -> tuple:
        return single_run(setup, request, progress, stop, announce_stop)

    gpu_single_run = on_gpu(run_on_gpu, gpu_seconds)  # ZeroGPU wants the function decorated once, up front
    wire_upscale_api(tab, setup, control, live, gpu_single_run)
    cpu_run, gpu_run = runs.wire_page_runs(tab, setup, control, latest, gpu_single_run, live)
    for run in (cpu_run, gpu_run):
        runs.show_truth_when_present(run, tab)
    wire_filmstrip(tab, gpu_run, live, results)
    wire_sweep(tab, setup, control)
    runs.wire_fresh_start(tab, latest)
    engine_picker.wire_large_picture_engine(tab, setup, default_id)
    example_run = runs.wire_example_runs(tab, setup, control, latest, engines)
    if example_run is not None:
        runs.show_truth_when_present(example_run, tab)
    runs.wire_crop_picker(tab, results)
    wire_inside_panel(tab.inside, tab.detail.state, resolver(results), setup, control, latest)
    wire_learned_panel(tab.learned, tab.detail.state, resolver(results), settings, control, latest)
    wire_inside_api(tab.inputs.engine, tab.inputs.image, setup, control)
