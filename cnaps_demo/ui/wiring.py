"""The page's events: one function per group attaches its handlers (queues, lanes, API names).

Call them inside the ``gr.Blocks`` in the order of ``layout.build_demo`` (the order of the events
is the order of the API's function indices). The work itself is in ``actions.RunSetup``; jobs run
through ``jobs.JobControl``, so Stop, cancel and a lost client end them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import gradio as gr

from ..api import availability
from ..engines import Engine
from ..present.explain import explanation_text
from .actions import RunSetup, first_view, full_view
from .components import CompareTab, UpscaleTab
from .gpu import can_stream_frames, on_gpu
from .jobs import JobControl, session_of
from .diffusion_events import wire_explorations, wire_filmstrip
from .live import LiveFrames
from .picker import runs_here
from .views import cleared_single, crops_html, pair_view, where_image


def wire_upscale(tab: UpscaleTab, setup: RunSetup, control: JobControl, live: LiveFrames) -> None:
    """The public API: /upscale (CPU lane) and /upscale_gpu (one GPU slot), the page's two buttons."""
    settings = setup.settings

    def gpu_seconds(kind, image_value, engine_id, simulate_flag, progress, stop, params, frames=None) -> int:
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

        async for values in preview_first(control, work, request):
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
        return await control.run(
            lambda stop: gpu_single_run("gpu", image, engine, simulate_blurry_source, progress, stop, params, frames),
            request,
            "gpu",
        )

    common = {"inputs": tab.run_inputs(), "inputs_kwargs": tab.run_kwargs(), "outputs": tab.run_outputs()}
    cpu_run = cleared_first(tab.inputs.run_cpu.click, tab).then(
        upscale,
        **common,
        preprocess=False,
        api_name="upscale",
        concurrency_id="cpu",
        concurrency_limit=settings.cpu_concurrency,
        validator=control.lanes.validator("cpu"),
        # The progress bar on the slider only: a pulsing overlay on every output kept a browser on the
        # same 2-core machine busy enough to slow the job itself by a third (measured in Chromium).
        show_progress_on=tab.result.slider,
    )
    gpu_run = cleared_first(tab.inputs.run_gpu.click, tab).then(
        upscale_gpu,
        **common,
        preprocess=False,
        api_name="upscale_gpu",
        concurrency_id="gpu",
        concurrency_limit=1,
        validator=control.lanes.validator("gpu"),
        show_progress_on=tab.result.slider,
    )
    for run in (cpu_run, gpu_run):
        show_truth_when_present(run, tab)
    for button in (tab.inputs.run_cpu, tab.inputs.run_gpu):
        button.click(None, js=SHOW_RESULT_JS, queue=False, api_visibility="private")
    wire_filmstrip(tab, gpu_run, live)
    wire_explorations(tab, setup, control)


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


def _clear_outputs() -> list:
    """The cleared outputs, the ground truth hidden too (in the same answer: one round trip less
    before a run starts)."""
    return [*cleared_single()._replace(truth=gr.update(value=None, visible=False))]


def cleared_first(trigger, tab: UpscaleTab):
    """``trigger`` first empties the run's outputs (in the same chain, so it cannot land after the result)."""
    return trigger(
        _clear_outputs,
        inputs=None,
        outputs=tab.run_outputs(),
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )


# On a phone the slider sits below the settings: bring it into view when a run starts, so the
# progress and then the result are on screen (nothing moves where it is already in view).
SHOW_RESULT_JS = """() => {
  const slider = document.querySelector('#cnaps-slider');
  if (slider && slider.getBoundingClientRect().top > window.innerHeight * 0.6) {
    slider.scrollIntoView({behavior: 'smooth', block: 'start'});
  }
}"""


def wire_fresh_start(tab: UpscaleTab) -> None:
    """A new upload or a cleared input empties the outputs: nothing of the old picture stays."""
    for trigger in (tab.inputs.image.upload, tab.inputs.image.clear):
        cleared_first(trigger, tab)


def wire_crop_picker(tab: UpscaleTab) -> None:
    """A click on "where the crops are" moves the detail window there."""
    detail = tab.detail

    def move(comparison, event: gr.SelectData):
        if comparison is None or not isinstance(event.index, (list, tuple)):
            return gr.skip(), gr.skip(), gr.skip()
        moved = comparison.moved_to((float(event.index[0]), float(event.index[1])))
        return where_image(moved), crops_html(moved), moved

    detail.where.select(
        move,
        inputs=detail.state,
        outputs=[detail.where, detail.crops, detail.state],
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )


def wire_example_autorun(tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine]) -> None:
    """A click on an example runs the chosen CPU engine at once (from the example cache, computed ahead)."""
    if tab.inputs.examples is None:
        return
    settings = setup.settings
    by_id = {engine.id: engine for engine in engines}

    async def auto_run(
        image_value,
        engine_id,
        simulate_flag,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        if engine_id in setup.gpu_ids or not availability(by_id[engine_id], settings=settings).ok:
            yield tuple(cleared_single())  # the old result must not stay beside the new example
            return

        def work(stop):
            return setup.single_comparison("cpu", image_value, engine_id, simulate_flag, progress, stop, params)

        async for values in preview_first(control, work, request):
            yield values

    event = tab.inputs.examples.load_input_event.then(
        auto_run,
        inputs=tab.run_inputs(),
        inputs_kwargs=tab.run_kwargs(),
        outputs=tab.run_outputs(),
        preprocess=False,
        api_visibility="private",
        concurrency_id="cpu",
        concurrency_limit=settings.cpu_concurrency,
        validator=control.lanes.validator("cpu"),
        show_progress_on=tab.result.slider,
    )
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
        return await control.run(
            lambda stop: compare_work(image_value, engine_ids, simulate_flag, progress, stop, params), request, lane
        )

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


def wire_stop(buttons: Sequence[gr.Button], control: JobControl) -> None:
    """Stop: flags the jobs of the caller's own browser session (they end within one step)."""
    stopped = gr.State(0)

    def stop_jobs(request: gr.Request = None) -> int:
        return control.stop(request)

    def say_if_nothing_ran(count: int) -> None:
        if not count:
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


def wire_pick_pair(tab: CompareTab) -> None:
    """Compare tab: choosing the left or right result redraws the slider (no job, no queue)."""

    def pick_pair(comparison, left, right):
        if comparison is None or not left or not right:
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
