"""The Upscale tab's public API: /upscale (the CPU lane) and /upscale_gpu (one GPU slot).

API only (no trigger on the page): a client gets the last values, after the figures, and nothing of
its run stays on the server (it cannot follow up). The page's buttons run the same work as their
own events (``runs``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import gradio as gr

from ...engines import DEFAULT_ENGINE_ID, all_engines
from ...web.live import LiveFrames
from ...web.result_store import released
from ...web.runs import RunSetup
from ..gpu import can_stream_frames
from ..jobs import JobControl, session_of
from .layout import UpscaleTab
from .shown import STATE_INDEX, first_view, full_view, stoppable_comparison


def wire_upscale_api(
    tab: UpscaleTab, setup: RunSetup, control: JobControl, live: LiveFrames, gpu_single_run: Callable[..., Any]
) -> None:
    """Register /upscale and /upscale_gpu (``gpu_single_run``: ``shown.single_run`` as ZeroGPU wants it)."""
    upscale = _cpu_endpoint(setup, control)
    upscale_gpu = _gpu_endpoint(setup, control, live, gpu_single_run)
    common = {"inputs": tab.run_inputs(), "inputs_kwargs": tab.run_kwargs(), "outputs": tab.run_outputs()}
    for handler, lane, limit in ((upscale, "cpu", setup.settings.cpu_concurrency), (upscale_gpu, "gpu", 1)):
        gr.on(
            [], handler, **common, preprocess=False, api_name=handler.__name__,  # /upscale, /upscale_gpu
            concurrency_id=lane, concurrency_limit=limit, validator=control.lanes.validator(lane),
        )


def _cpu_endpoint(setup: RunSetup, control: JobControl) -> Callable[..., Any]:
    """The /upscale handler (its docstring is what an API client or agent reads)."""

    async def upscale(
        image,
        engine=DEFAULT_ENGINE_ID,
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
            asked = setup.requests.run("cpu", image, engine, simulate_blurry_source, params, session_of(request))
            return stoppable_comparison(setup, asked, progress, stop)

        async for values in api_steps(control, setup, work, request):
            yield values

    return upscale


def _gpu_endpoint(
    setup: RunSetup, control: JobControl, live: LiveFrames, gpu_single_run: Callable[..., Any]
) -> Callable[..., Any]:
    """The /upscale_gpu handler; its default engine is the first GPU engine in the registry's order."""
    gpu_default = next((engine.id for engine in all_engines() if engine.device_need == "gpu"), DEFAULT_ENGINE_ID)

    async def upscale_gpu(
        image,
        engine=gpu_default,
        simulate_blurry_source=False,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        """Same as /upscale, for engines that need the GPU (they share one GPU slot)."""
        # The page polls these while the job runs (where the job runs in this process).
        session = session_of(request)
        on_frame = live.collector(session) if can_stream_frames() else None

        def work(stop):
            asked = setup.requests.run(
                "gpu", image, engine, simulate_blurry_source, params, session, on_frame=on_frame, keep_frames=True
            )
            return gpu_single_run(asked, progress, stop)

        return released(await control.run(work, request, "gpu"), setup.results, STATE_INDEX)  # keep nothing

    return upscale_gpu


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
    """Run ``work`` (``shown.stoppable_comparison``) as a job; yield its preview the moment the engine
    is done, then every output (figures, diagram, crops, files: most of a second more on a 2-core CPU).
    A client of the API gets only the last values."""
    comparison = await control.run(work, request)
    if comparison is not None:
        yield await asyncio.to_thread(first_view, comparison)
    yield await asyncio.to_thread(full_view, comparison)
