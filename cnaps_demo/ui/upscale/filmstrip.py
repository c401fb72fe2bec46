"""The Upscale tab's filmstrip box: the live denoising frames and the strength sweep (for the engines
that make frames; on the GPU lane, private to the page)."""

from __future__ import annotations

import gradio as gr

from ...errors import JobCancelledError
from ...web.live import LiveFrames, finished_strip
from ...web.result_store import ResultStore, resolver
from ...web.runs import RunSetup
from ..gpu import on_gpu
from ..jobs import JobControl, session_of
from ..messages import tell_stopped
from .layout import UpscaleTab


def wire_sweep(tab: UpscaleTab, setup: RunSetup, control: JobControl) -> None:
    """The strength sweep (img2img at 0.1-0.6, same seed): a job on the GPU lane, for the page's picture,
    engine and settings. (The seed map sits in "Inside the network": ``guessing``.)"""
    result = tab.result

    def work(request, progress, stop) -> tuple:
        try:
            found = setup.sweep(request, progress, stop)
        except JobCancelledError as stopped:
            tell_stopped(stopped)
            return [], ""
        return found.items, found.note

    on_device = on_gpu(work)

    async def job(image, engine, simulate_flag, progress=gr.Progress(), request: gr.Request = None, **params):  # noqa: B008
        session = session_of(request)

        def sweep(stop):
            asked = setup.requests.exploration("sweep", image, engine, simulate_flag, params, session)
            return on_device(asked, progress, stop)

        return await control.run(sweep, request, "gpu")

    result.sweep.click(
        job,
        inputs=tab.run_inputs(),
        inputs_kwargs=tab.run_kwargs(),
        outputs=[result.explored, result.explored_note],
        preprocess=False,
        api_visibility="private",
        concurrency_id="gpu",
        concurrency_limit=1,
        validator=control.lanes.validator("gpu"),
    )


def wire_filmstrip(tab: UpscaleTab, gpu_run, live: LiveFrames, results: ResultStore | None = None) -> None:
    """While a job that makes frames runs, the strip fills step by step (a timer polls); then it shows
    the result's own frames and offers them as an animated WebP."""
    result = tab.result
    comparison_of = resolver(results)

    def poll(request: gr.Request = None):
        frames = live.snapshot(session_of(request))
        return frames if frames else gr.skip()

    def finish(state, request: gr.Request = None):
        live.forget(session_of(request))
        items, strip = finished_strip(comparison_of(state))
        return items, strip, gr.Timer(active=False)

    tab.inputs.run_gpu.click(lambda: gr.Timer(active=True), outputs=result.filmstrip_timer, queue=False, api_visibility="private")
    result.filmstrip_timer.tick(poll, outputs=result.filmstrip, queue=False, api_visibility="private", show_progress="hidden")
    gpu_run.then(
        finish,
        inputs=tab.detail.state,
        outputs=[result.filmstrip, result.filmstrip_file, result.filmstrip_timer],
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )
