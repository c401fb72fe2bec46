"""The Upscale tab's own run events: every click is honoured, and nothing stale reaches the screen.

A click on Upscale or on an example first empties the run's outputs and takes a number from
``latest.LatestRequests`` (one quick unqueued step); the run then carries that number. Gradio's browser
side drops a click on an event that is still running (``trigger_mode="once"``, its default), which
is how a click during the previous result's figures was lost; these events use ``"always_last"``
(the click runs as soon as the earlier one is done) and the number decides what may still show:
an overtaken run stops at its next step and yields nothing.

The public API (``/upscale``, ``/upscale_gpu``, in ``api``) runs the same work without numbers. Also
here: a new picture or engine empties the outputs, and a click on the small picture moves the crops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from ...engines import Engine
from ...web.latest import LatestRequests
from ...web.live import LiveFrames
from ...web.picker import runs_here
from ...web.result_store import ResultStore, kept_state, resolver
from ...web.runs import RunSetup
from ...web.views import crops_html, state_value, where_image, where_scale
from ..gpu import can_stream_frames
from ..jobs import BROWSER_TIME_JS, JobControl, browser_time, session_of
from ..messages import in_words
from .layout import UpscaleTab
from .shown import STATE_INDEX, cleared_single, first_view, full_view, stoppable_comparison, unchanged

# When a run starts: the toasts of earlier steps leave (they would cover the header through the
# run), and on a phone, where the slider sits below the settings, it comes into view so that the
# progress and then the result are where the visitor looks (nothing moves where it is in view).
START_JS = """() => {
  document.querySelectorAll('[data-testid="toast-close"]').forEach((button) => button.click());
  const slider = document.querySelector('#cnaps-slider');
  if (slider && slider.getBoundingClientRect().top > window.innerHeight * 0.6) {
    (document.querySelector('#cnaps-ba') || slider).scrollIntoView({behavior: 'smooth', block: 'start'});
  }
}"""

PAGE_REQUEST = "page_request"  # the keyword the page's run events get their click's number under


def clear_outputs(note: str = "") -> list:
    """Every run output emptied, the ground truth hidden too (one answer: one round trip)."""
    return [*cleared_single(note)._replace(truth=gr.update(value=None, visible=False))]


def numbered_start(trigger: Any, tab: UpscaleTab, latest: LatestRequests, number: gr.State) -> Any:
    """The first step of a run: empty the outputs and number the click (in the same chain as the run,
    so that it cannot land after the result)."""

    def start(at: Any = None, request: gr.Request = None) -> list:
        return [*clear_outputs(), latest.begin_run(session_of(request), browser_time(at))]

    return trigger(
        start,
        inputs=gr.Number(visible=False),
        js=BROWSER_TIME_JS,
        outputs=[*tab.run_outputs(), number],
        queue=False,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="multiple",
    )


def superseding_clear(trigger: Any, tab: UpscaleTab, latest: LatestRequests) -> Any:
    """A new picture, a cleared input or another engine: the outputs empty and any run of the old
    one stops without drawing anything."""

    def clear(at: Any = None, request: gr.Request = None) -> list:
        latest.supersede(session_of(request), browser_time(at))
        return clear_outputs()

    return trigger(
        clear,
        inputs=gr.Number(visible=False),
        js=BROWSER_TIME_JS,
        outputs=tab.run_outputs(),
        queue=False,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="multiple",
    )


async def numbered_steps(
    control: JobControl, latest: LatestRequests, work: Callable[..., Any], request: Any, number: int | None
):
    """Run ``work(stop, announce_stop)`` (``shown.stoppable_comparison``) as a job for the click numbered
    ``number``; yield its slider the moment the engine is done, then every output. Once a newer
    click (or picture, or engine) came, nothing more is yielded that would overwrite it."""
    session = session_of(request)
    if not latest.may_start(session, number):
        control.lanes.started("cpu")  # admitted, but it gives its place up at once
        yield unchanged()
        return

    def watched(stop):
        with latest.watch(session, number, stop):
            return work(stop, lambda: latest.ended_by_stop(session, number))

    comparison = await control.run(watched, request)
    if not latest.is_newest(session, number):
        yield unchanged()
        return
    if comparison is None:  # stopped: nothing half-done stays
        yield full_view(None)
        return
    yield await asyncio.to_thread(first_view, comparison)
    if latest.is_newest(session, number):
        values = await asyncio.to_thread(full_view, comparison)
        yield values if latest.is_newest(session, number) else unchanged()


def _run_options(tab: UpscaleTab, number: gr.State, control: JobControl, lane: str, limit: int | None) -> dict:
    return {
        "inputs": tab.run_inputs(),
        "inputs_kwargs": {**tab.run_kwargs(), PAGE_REQUEST: number},
        "outputs": tab.run_outputs(),
        "preprocess": False,
        "api_visibility": "private",
        "concurrency_id": lane,
        "concurrency_limit": limit,
        "validator": control.lanes.validator(lane),
        # The progress bar on the slider only: a pulsing overlay on every output kept a browser on the
        # same 2-core machine busy enough to slow the job itself by a third (measured in Chromium).
        "show_progress_on": tab.result.slider,
        "trigger_mode": "always_last",
    }


def wire_page_runs(
    tab: UpscaleTab,
    setup: RunSetup,
    control: JobControl,
    latest: LatestRequests,
    gpu_single_run: Callable[..., Any],
    live: LiveFrames,
) -> tuple[Any, Any]:
    """The Upscale buttons (CPU lane; GPU lane, one slot; ``gpu_single_run`` is ``shown.single_run`` as
    ZeroGPU wants it, decorated once: (request, progress, stop, announce_stop)). Returns the two run events."""
    number = gr.State(None)

    async def page_upscale(
        image, engine, simulate, progress=gr.Progress(), request: gr.Request = None, **params  # noqa: B008
    ):
        page_request = params.pop(PAGE_REQUEST, None)
        session = session_of(request)

        def work(stop, announce_stop):
            asked = setup.requests.run("cpu", image, engine, simulate, params, session)
            return stoppable_comparison(setup, asked, progress, stop, announce_stop)

        async for values in numbered_steps(control, latest, work, request, page_request):
            yield values

    async def page_upscale_gpu(
        image, engine, simulate, progress=gr.Progress(), request: gr.Request = None, **params  # noqa: B008
    ):
        page_request = params.pop(PAGE_REQUEST, None)
        session = session_of(request)
        if not latest.may_start(session, page_request):
            control.lanes.started("gpu")
            return unchanged()
        on_frame = live.collector(session) if can_stream_frames() else None

        def work(stop):
            with latest.watch(session, page_request, stop):
                asked = setup.requests.run(
                    "gpu", image, engine, simulate, params, session, on_frame=on_frame, keep_frames=True
                )
                return gpu_single_run(asked, progress, stop, lambda: latest.ended_by_stop(session, page_request))

        values = await control.run(work, request, "gpu")
        if not latest.is_newest(session, page_request):
            return unchanged()
        # On ZeroGPU the job ran in another process: its comparison is kept here, for the follow-ups.
        return kept_state(values, setup.results, STATE_INDEX, session)

    cpu_run = numbered_start(tab.inputs.run_cpu.click, tab, latest, number).then(
        page_upscale, **_run_options(tab, number, control, "cpu", setup.settings.cpu_concurrency)
    )
    gpu_run = numbered_start(tab.inputs.run_gpu.click, tab, latest, number).then(
        page_upscale_gpu, **_run_options(tab, number, control, "gpu", 1)
    )
    for button in (tab.inputs.run_cpu, tab.inputs.run_gpu):
        button.click(None, js=START_JS, queue=False, api_visibility="private")
    return cpu_run, gpu_run


def no_result_note(engine: Engine, can_run: bool) -> str:
    """What shows in the slider's place when an example has no result computed ahead for ``engine``."""
    if can_run:
        return f"Press \u201cUpscale 2x on the GPU\u201d to run {engine.display_name} on this example."
    return f"{engine.display_name} cannot run on this server, and no result of it was computed ahead for this example."


def wire_example_runs(
    tab: UpscaleTab, setup: RunSetup, control: JobControl, latest: LatestRequests, engines: Sequence[Engine]
) -> Any:
    """A click on an example shows the chosen engine's result at once (from the example cache, computed
    ahead): a CPU engine runs when it has none; a GPU engine, or one that cannot run here, shows its
    cached result or says why there is none. Returns the run event (None without examples)."""
    examples = tab.inputs.examples
    if examples is None:
        return None
    by_id = {engine.id: engine for engine in engines}
    number = gr.State(None)

    async def example_run(
        image, engine_id, simulate, progress=gr.Progress(), request: gr.Request = None, **params  # noqa: B008
    ):
        page_request = params.pop(PAGE_REQUEST, None)
        session = session_of(request)
        engine = by_id.get(engine_id)
        can_run = engine is not None and runs_here(engine, setup.settings)
        on_gpu_lane = engine_id in setup.requests.gpu_ids
        if engine is not None and (on_gpu_lane or not can_run):
            asked = ("gpu" if on_gpu_lane else "cpu", image, engine_id, simulate, params, session)
            async for values in _cached_only(setup, control, latest, request, page_request, engine, can_run, asked):
                yield values
            return

        def work(stop, announce_stop):
            asked = setup.requests.run("cpu", image, engine_id, simulate, params, session)
            return stoppable_comparison(setup, asked, progress, stop, announce_stop)

        async for values in numbered_steps(control, latest, work, request, page_request):
            yield values

    examples.dataset.click(None, js=START_JS, queue=False, api_visibility="private")
    return numbered_start(examples.load_input_event.then, tab, latest, number).then(
        example_run, **_run_options(tab, number, control, "cpu", setup.settings.cpu_concurrency)
    )


async def _cached_only(setup, control, latest, request, number, engine, can_run, run_args):
    """An example's cached result for an engine that does not run on a click here, or a note why none."""
    session = session_of(request)
    control.lanes.started("cpu")  # admitted to the CPU lane, but no job: its place is free at once
    if not latest.may_start(session, number):
        yield unchanged()
        return
    comparison = await asyncio.to_thread(
        in_words, lambda: setup.cached_comparison(setup.requests.run(*run_args))  # errors in a visitor's words
    )
    if not latest.is_newest(session, number):
        yield unchanged()
    elif comparison is None:
        yield tuple(clear_outputs(no_result_note(engine, can_run)))
    else:
        yield await asyncio.to_thread(full_view, comparison)


def show_truth_when_present(event: Any, tab: UpscaleTab) -> None:
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
        superseding_clear(trigger, tab, latest)


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
