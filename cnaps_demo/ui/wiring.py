"""The page's events: one function per group attaches its handlers (queues, lanes, API names).

Call them inside the ``gr.Blocks`` in the order of ``layout.build_demo`` (the order of the events
is the order of the API's function indices). The work itself is in ``actions.RunSetup``; jobs run
through ``jobs.JobControl``, so Stop, cancel and a lost client end them.
"""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from ..api import availability
from ..engines import Engine
from ..settings import Settings
from .actions import RunSetup
from .components import CompareTab, UpscaleTab
from .gpu import on_gpu
from .jobs import JobControl
from .picker import engine_status_markdown, require_available
from .views import SingleRunView, pair_view, unchanged


def wire_engine_picker(tab: UpscaleTab, settings: Settings, gpu_ids: frozenset[str]) -> None:
    """Picking an engine: its settings and the right Upscale button show, and its status line."""
    panel = tab.inputs

    def on_engine_change(engine_id: str):
        visible = {eid: gr.update(visible=eid == engine_id) for eid in panel.groups}
        is_gpu = engine_id in gpu_ids
        return [
            engine_status_markdown(engine_id, settings),
            *visible.values(),
            gr.update(visible=not is_gpu),
            gr.update(visible=is_gpu),
        ]

    def check_engine(engine_id: str) -> None:
        # Picking an engine is not a failure: warn (the status line keeps the whole fix).
        try:
            require_available(engine_id, settings)
        except gr.Error as unavailable:
            gr.Warning(unavailable.message, title="Engine unavailable here")

    panel.engine.change(
        on_engine_change,
        inputs=panel.engine,
        outputs=[panel.status, *panel.groups.values(), panel.run_cpu, panel.run_gpu],
        queue=False,
        api_visibility="private",
    ).then(  # queued (instantly, no limit): Gradio shows toasts only for queued events
        check_engine,
        inputs=panel.engine,
        outputs=None,
        api_visibility="private",
        concurrency_id="ui",
        concurrency_limit=None,
        show_progress="hidden",
    )


def wire_upscale(tab: UpscaleTab, setup: RunSetup, control: JobControl) -> None:
    """The public API: /upscale (CPU lane) and /upscale_gpu (one GPU slot), the page's two buttons."""
    settings = setup.settings

    def single_run(kind: str, image_value, engine_id, simulate_flag, progress, stop, params) -> tuple:
        return setup.single_run(kind, image_value, engine_id, simulate_flag, progress, stop, params)

    gpu_single_run = on_gpu(single_run)  # ZeroGPU wants the function decorated once, up front

    async def upscale(
        image,
        engine="realcugan",
        simulate_blurry_source=False,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        """Upscale an illustration 2x on the CPU queue (classical and CNN engines).

        Returns: before/after slider pair (bicubic, result), labels HTML, summary markdown,
        ground truth (if simulated), result PNG file, diagram HTML, diagram SVG file,
        detail-window image, detail crops, "what the model added" map.
        """
        return await control.run(
            lambda stop: single_run("cpu", image, engine, simulate_blurry_source, progress, stop, params), request
        )

    async def upscale_gpu(
        image,
        engine="sd-img2img",
        simulate_blurry_source=False,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        """Same as /upscale, for engines that need the GPU (they share one GPU slot)."""
        return await control.run(
            lambda stop: gpu_single_run("gpu", image, engine, simulate_blurry_source, progress, stop, params),
            request,
            "gpu",
        )

    common = {"inputs": tab.run_inputs(), "inputs_kwargs": tab.run_kwargs(), "outputs": tab.run_outputs()}
    tab.inputs.run_cpu.click(
        upscale,
        **common,
        preprocess=False,
        api_name="upscale",
        concurrency_id="cpu",
        concurrency_limit=settings.cpu_concurrency,
        validator=control.lanes.validator("cpu"),
    )
    tab.inputs.run_gpu.click(
        upscale_gpu,
        **common,
        preprocess=False,
        api_name="upscale_gpu",
        concurrency_id="gpu",
        concurrency_limit=1,
        validator=control.lanes.validator("gpu"),
    )


def wire_presenter_autorun(tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine]) -> None:
    """Presenter mode: clicking an example runs the chosen CPU engine at once (mostly from the cache)."""
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
            return unchanged(SingleRunView)
        return await control.run(
            lambda stop: setup.single_run("cpu", image_value, engine_id, simulate_flag, progress, stop, params),
            request,
        )

    tab.inputs.examples.load_input_event.then(
        auto_run,
        inputs=tab.run_inputs(),
        inputs_kwargs=tab.run_kwargs(),
        outputs=tab.run_outputs(),
        preprocess=False,
        api_visibility="private",
        concurrency_id="cpu",
        concurrency_limit=settings.cpu_concurrency,
        validator=control.lanes.validator("cpu"),
    )


def wire_compare(
    tab: CompareTab, upscale_tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine]
) -> None:
    """Run all ticked: on the GPU lane (one slot) when any GPU engine can run here, else the CPU lane."""
    settings = setup.settings
    uses_gpu = any(availability(engine, settings=settings).ok for engine in engines if engine.id in setup.gpu_ids)
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
    )


def wire_stop(buttons: Sequence[gr.Button], control: JobControl) -> None:
    """Stop: flags the jobs of the caller's own browser session (they end within one step)."""

    def stop_jobs(request: gr.Request = None) -> None:
        if not control.stop(request):
            gr.Info("Nothing is running.")

    gr.on(
        [button.click for button in buttons],
        stop_jobs,
        inputs=None,
        outputs=None,
        queue=False,  # must not wait behind the job it stops
        api_visibility="private",
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
