"""The diffusion-only parts of the Upscale tab's events: the live filmstrip, the strength sweep and
the seed map (all on the GPU lane; private to the page)."""

from __future__ import annotations

import gradio as gr

from ..engines.diffusion.filmstrip import save_filmstrip
from .actions import RunSetup, explore
from .components import UpscaleTab
from .gpu import on_gpu
from .jobs import JobControl, session_of
from .live import LiveFrames, write_strip
from .result_store import ResultStore, resolver


def wire_explorations(tab: UpscaleTab, setup: RunSetup, control: JobControl) -> None:
    """The strength sweep and the seed map: diffusion jobs on the GPU lane, private to the page."""
    result = tab.result

    def work(what, image_value, engine_id, simulate_flag, progress, stop, params) -> tuple:
        found = explore(setup, what, image_value, engine_id, simulate_flag, progress, stop, params)
        return found.items, found.note

    on_device = on_gpu(work)

    for button, what in ((result.sweep, "sweep"), (result.seeds, "seeds")):

        async def job(image, engine, simulate_flag, progress=gr.Progress(), request: gr.Request = None, what=what, **params):  # noqa: B008
            return await control.run(
                lambda stop: on_device(what, image, engine, simulate_flag, progress, stop, params), request, "gpu"
            )

        button.click(
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
    """While a diffusion job runs the strip fills step by step (a timer polls); then it shows the
    result's own frames and offers them as an animated WebP."""
    result = tab.result
    comparison_of = resolver(results)

    def poll(request: gr.Request = None):
        frames = live.snapshot(session_of(request))
        return frames if frames else gr.skip()

    def finish(state, request: gr.Request = None):
        live.forget(session_of(request))
        comparison = comparison_of(state)
        frames = [frame for res in (comparison.results.values() if comparison else ()) for frame in res.frames]
        if not frames:
            return [], None, gr.Timer(active=False)
        strip = save_filmstrip(frames, comparison.run_dir / "filmstrip.webp")
        return write_strip(frames, comparison.run_dir), str(strip), gr.Timer(active=False)

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
