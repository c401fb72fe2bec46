"""The page's events: one function per group attaches its handlers (queues, lanes, API names).

Call them inside the ``gr.Blocks`` in the order of ``layout.build_demo`` (the order of the events
is the order of the API's function indices). The work itself is in ``actions.RunSetup``; jobs run
through ``jobs.JobControl``, so Stop, cancel and a lost client end them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import gradio as gr

from ..engines import Engine
from ..present.explain import explanation_text
from . import page_runs
from .actions import RunSetup, first_view, full_view
from .components import CompareTab, UpscaleTab
from .gpu import can_stream_frames, on_gpu
from .jobs import JobControl, session_of
from .latest import LatestRequests
from .diffusion_events import wire_explorations, wire_filmstrip
from .live import LiveFrames
from .picker import runs_here
from .result_store import COMPARE_SLOT, ResultStore, kept_state, released, resolver
from .views import CompareView, SingleRunView, crops_html, pair_view, state_value, where_image, where_scale

STATE_INDEX = SingleRunView._fields.index("state")  # where a run's values hold what the page keeps of it
COMPARE_STATE_INDEX = CompareView._fields.index("state")


def wire_upscale(
    tab: UpscaleTab, setup: RunSetup, control: JobControl, live: LiveFrames, latest: LatestRequests
) -> None:
    """The public API: /upscale (CPU lane) and /upscale_gpu (one GPU slot); the page's two buttons run
    the same work as their own events (``page_runs``: each click numbered, nothing stale shown)."""
    settings = setup.settings

    def gpu_seconds(
        kind, image_value, engine_id, simulate_flag, progress, stop, params, frames=None, announce_stop=None
    ) -> int:
        return setup.gpu_seconds(image_value, engine_id, simulate_flag, params)

    gpu_single_run = on_gpu(setup.single_run, gpu_seconds)  # ZeroGPU wants the function decorated once, up front

    async def upscale(
        image,
        engine="realcugan",
        simulate_blurry_source=False,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        """Upscale an illustration 2x with a classical or anime-CNN engine (the CPU queue).

        Args:
            image: the illustration (PNG, JPEG or WebP).
            engine: the engine id, e.g. realcugan, realesrgan-anime, lanczos, bicubic.
            simulate_blurry_source: shrink the picture 2x first, so that the original is the ground truth.

        Returns:
            The bicubic/result pair, labels, a summary with the fidelity figures, the ground truth, the result PNG, the pipeline diagram (HTML and SVG), the detail window, the detail crops and the map of what the model added.
        """

        def work(stop):
            return setup.single_comparison("cpu", image, engine, simulate_blurry_source, progress, stop, params)

        async for values in api_steps(control, setup, work, request):
            yield values

    async def upscale_gpu(
        image,
        engine="sd-img2img",
        simulate_blurry_source=False,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        """Same as /upscale, for engines that need the GPU (they share one GPU slot)."""
        # The page polls these while the job runs (where the job runs in this process).
        frames = live.collector(session_of(request)) if can_stream_frames() else True
        def work(stop):
            return gpu_single_run("gpu", image, engine, simulate_blurry_source, progress, stop, params, frames)

        return released(await control.run(work, request, "gpu"), setup.results, STATE_INDEX)  # keep nothing

    # API only (no trigger on the page): a client gets the last values, after the figures.
    common = {"inputs": tab.run_inputs(), "inputs_kwargs": tab.run_kwargs(), "outputs": tab.run_outputs()}
    for handler, lane, limit in ((upscale, "cpu", settings.cpu_concurrency), (upscale_gpu, "gpu", 1)):
        gr.on(
            [], handler, **common, preprocess=False, api_name=handler.__name__,  # /upscale, /upscale_gpu
            concurrency_id=lane, concurrency_limit=limit, validator=control.lanes.validator(lane),
        )
    cpu_run, gpu_run = page_runs.wire_page_runs(tab, setup, control, latest, gpu_single_run, live)
    for run in (cpu_run, gpu_run):
        show_truth_when_present(run, tab)
    wire_filmstrip(tab, gpu_run, live, setup.results)
    wire_explorations(tab, setup, control)


async def api_steps(control: JobControl, setup: RunSetup, work, request):
    """``preview_first`` for a client of the API, which cannot follow up: nothing of its run stays on
    the server (the State output is empty, the kept comparison dropped, whatever happens)."""
    kept = []

    def keeping(stop):
        comparison = work(stop)
        kept.append(comparison)
        return comparison

    try:
        async for values in preview_first(control, keeping, request):
            yield released(values, setup.results, STATE_INDEX)
    finally:
        for comparison in kept:
            if comparison is not None and setup.results is not None:
                setup.results.drop(comparison.key)


async def preview_first(control: JobControl, work, request):
    """Run ``work`` (``RunSetup.single_comparison``) as a job; yield its preview the moment the engine
    is done, then every output (figures, diagram, crops, files: most of a second more on a 2-core CPU).
    A client of the API gets only the last values."""
    comparison = await control.run(work, request)
    if comparison is not None:
        yield await asyncio.to_thread(first_view, comparison)
    yield await asyncio.to_thread(full_view, comparison)


def show_truth_when_present(event, tab: UpscaleTab) -> None:
    """The API returns the ground truth as a plain file (or None); the page shows it only when there is one."""
    event.then(
        lambda truth: gr.update(visible=truth is not None),
        inputs=tab.result.truth,
        outputs=tab.result.truth,
        queue=False,
        api_visibility="private",
    )


def wire_fresh_start(tab: UpscaleTab, latest: LatestRequests) -> None:
    """A new upload, a cleared input or an engine the visitor picks empties the outputs and stops a run
    of the old one: nothing on screen belongs to another picture or engine."""
    for trigger in (tab.inputs.image.upload, tab.inputs.image.clear, tab.inputs.engine.input):
        page_runs.superseding_clear(trigger, tab, latest)


def wire_crop_picker(tab: UpscaleTab, results: ResultStore | None = None) -> None:
    """A click on "where the crops are" moves the detail window there (unqueued: a small redraw, and the
    run's one picker picture is replaced, so clicks never pile up files)."""
    detail = tab.detail
    comparison_of = resolver(results)

    def move(state, event: gr.SelectData):
        comparison = comparison_of(state)
        index = event.index if isinstance(event.index, (list, tuple)) and len(event.index) == 2 else None
        if comparison is None or index is None or not all(isinstance(v, (int, float)) for v in index):
            return gr.skip(), gr.skip(), gr.skip()
        scale = where_scale(comparison)
        moved = comparison.moved_to((float(index[0]) * scale, float(index[1]) * scale))
        if results is not None and isinstance(state, str):
            results.replace(state, moved)
        return where_image(moved), crops_html(moved), state_value(moved)

    detail.where.select(
        move,
        inputs=detail.state,
        outputs=[detail.where, detail.crops, detail.state],
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )


def wire_example_autorun(
    tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine], latest: LatestRequests
) -> None:
    """A click on an example shows the chosen engine's result at once (``page_runs.wire_example_runs``)."""
    event = page_runs.wire_example_runs(tab, setup, control, latest, engines)
    if event is not None:
        show_truth_when_present(event, tab)


def wire_compare(
    tab: CompareTab, upscale_tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine]
) -> None:
    """Run all ticked: on the GPU lane (one slot) when any GPU engine can run here, else the CPU lane."""
    settings = setup.settings
    uses_gpu = any(runs_here(engine, settings) for engine in engines if engine.id in setup.gpu_ids)
    lane = "gpu" if uses_gpu else "cpu"

    def compare_run(image_value, engine_ids, simulate_flag, progress, stop, params) -> tuple:
        return setup.compare_run(image_value, engine_ids, simulate_flag, progress, stop, params)

    compare_work = on_gpu(compare_run) if uses_gpu else compare_run

    async def compare_job(
        image_value,
        engine_ids,
        simulate_flag,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        values = await control.run(
            lambda stop: compare_work(image_value, engine_ids, simulate_flag, progress, stop, params), request, lane
        )
        return kept_state(values, setup.results, COMPARE_STATE_INDEX, COMPARE_SLOT)  # the pair picker's run

    inputs = upscale_tab.inputs
    tab.run.click(
        compare_job,
        inputs=[inputs.image, tab.engines, inputs.simulate],
        inputs_kwargs=upscale_tab.run_kwargs(),
        outputs=tab.outputs(),
        preprocess=False,
        api_visibility="private",
        concurrency_id=lane,
        concurrency_limit=1 if uses_gpu else settings.cpu_concurrency,
        validator=control.lanes.validator(lane),
        show_progress_on=tab.slider,
    )


def wire_stop(buttons: Sequence[gr.Button], control: JobControl, latest: LatestRequests) -> None:
    """Stop: flags the jobs of the caller's own browser session (they end within one step); a run that
    was asked for and waits for its turn never starts."""
    stopped = gr.State("")

    def stop_jobs(request: gr.Request = None) -> str:
        waiting = latest.stop(session_of(request))
        running = control.stop(request)
        return "waiting" if waiting else ("running" if running else "")

    def say_if_nothing_ran(what: str) -> None:
        if what == "waiting":  # a running job says where it stopped itself
            gr.Info("Stopped before it started. Press the Upscale button to run again.", title="Stopped")
        elif not what:
            gr.Info("Nothing is running.", title="Stop")

    gr.on(
        [button.click for button in buttons],
        stop_jobs,
        inputs=None,
        outputs=stopped,
        queue=False,  # at once: it must not wait behind anything
        api_visibility="private",
    ).then(  # queued, because only queued events show toasts in the browser; no limit, so it never waits
        say_if_nothing_ran,
        inputs=stopped,
        outputs=None,
        api_visibility="private",
        concurrency_id="stop",
        concurrency_limit=None,
        show_progress="hidden",
    )


def wire_pick_pair(tab: CompareTab, results: ResultStore | None = None) -> None:
    """Compare tab: choosing the left or right result redraws the slider (no job, no queue)."""
    comparison_of = resolver(results)

    def pick_pair(state, left, right):
        comparison = comparison_of(state)
        keys = comparison.keys() if comparison is not None else []
        if left not in keys or right not in keys:
            return gr.skip(), gr.skip()
        return pair_view(comparison, left, right)

    gr.on(
        [tab.left.input, tab.right.input],
        pick_pair,
        inputs=[tab.state, tab.left, tab.right],
        outputs=[tab.slider, tab.labels],
        queue=False,
        api_visibility="private",
    )


def wire_explain_api() -> None:
    """/explain: the explanation as plain text with its sources, for scripts and MCP agents."""

    def explain() -> str:
        """How AI upscaling makes a 2x enlargement of an illustration look crisp: the task, the three
        paths this demo runs (classical interpolation, an anime CNN, Stable Diffusion img2img), and
        the papers and code behind them, with links.

        Returns:
            The explanation as plain text, followed by the sources with their URLs.
        """
        return explanation_text()

    gr.api(explain, api_name="explain")
