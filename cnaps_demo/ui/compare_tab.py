"""The "Compare engines" tab: every ticked engine on the Upscale tab's picture and settings, then
any two results side by side. Lays the tab out, declares its outputs once (``CompareView``, from
which ``CompareTab.outputs`` is derived) and wires its events."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

from ..engines import Engine
from ..errors import JobCancelledError
from ..settings import Settings
from ..web.comparison import BASELINE_KEY, Comparison
from ..web.picker import compare_choices, compare_preset, runs_here
from ..web.result_store import COMPARE_SLOT, ResultStore, kept_state, resolver
from ..web.runs import RunSetup
from ..web.views import (
    added_maps,
    before_after_html,
    crops_html,
    diagram_html,
    empty_crops_html,
    fidelity_table,
    pair_view,
    state_value,
)
from .gpu import on_gpu
from .jobs import JobControl, session_of
from .messages import in_words, tell_stopped
from .upscale import UpscaleTab


class CompareView(NamedTuple):
    """The outputs of one Compare run, in order; ``CompareTab.outputs`` is derived from these names."""

    state: Any  # the run's key in the result store (or the Comparison): the pair picker redraws from it
    left: Any
    right: Any
    slider: Any
    labels: str
    table: str
    crops: Any
    maps: list[tuple[str, str]]
    files: list[str]
    diagrams: str


COMPARE_STATE_INDEX = CompareView._fields.index("state")  # where a run's values hold what the page keeps


@dataclass
class CompareTab:
    engines: gr.CheckboxGroup
    run: gr.Button
    stop: gr.Button
    state: gr.State
    left: gr.Dropdown
    right: gr.Dropdown
    labels: gr.HTML
    slider: gr.ImageSlider
    table: gr.Markdown
    crops: gr.HTML
    maps: gr.Gallery
    files: gr.File
    diagrams: gr.HTML

    def outputs(self) -> list[Any]:
        """The outputs of a Compare run, in the order of ``CompareView`` (its field names name them)."""
        return [getattr(self, name) for name in CompareView._fields]


def build_compare_tab(engines: Sequence[Engine], settings: Settings) -> CompareTab:
    with gr.Tab("Compare engines", id="compare"):
        gr.Markdown(
            "Runs every ticked engine on the picture and settings from the **Upscale** tab "
            "(including *Simulate a blurry source*), then lets you put any two side by side."
        )
        with gr.Row():
            choices, elsewhere = compare_choices(engines, settings)  # only engines that run here
            ticked = gr.CheckboxGroup(
                choices,
                value=compare_preset(engines, settings),
                label="Engines to run",
                info=elsewhere,
                elem_id="cnaps-compare-engines",
                scale=4,
            )
            with gr.Column(scale=1, min_width=160):
                run = gr.Button("Run all ticked \u25b6", variant="primary", size="lg", elem_id="cnaps-compare-run")
                stop = gr.Button("Stop", variant="stop", size="sm", elem_id="cnaps-compare-stop")
        state = gr.State(None)
        with gr.Row():
            left = gr.Dropdown(label="Left of the slider", choices=[], elem_id="cnaps-compare-left", min_width=240)
            right = gr.Dropdown(label="Right of the slider", choices=[], elem_id="cnaps-compare-right", min_width=240)
        labels = gr.HTML(before_after_html("\u2026", "\u2026"))
        slider = gr.ImageSlider(
            label="Pick any two results above",
            show_label=False,  # the two pickers above say it; its icons need the line
            type="filepath",
            format="png",
            max_height=640,
            elem_id="cnaps-compare-slider",
        )
        table = gr.Markdown(elem_classes="cnaps-status", elem_id="cnaps-compare-table")
        crops, maps = _compare_galleries()
        files = gr.File(
            label="Every result as PNG (with metadata)", file_count="multiple", elem_id="cnaps-compare-files"
        )
        diagrams = gr.HTML(diagram_html([]), elem_id="cnaps-compare-diagrams")
    return CompareTab(ticked, run, stop, state, left, right, labels, slider, table, crops, maps, files, diagrams)


def _compare_galleries() -> tuple[gr.HTML, gr.Gallery]:
    crops = gr.HTML(empty_crops_html(), elem_id="cnaps-compare-crops")
    maps = gr.Gallery(
        label="Added detail \u00d74",  # short: the gallery's icons share its line
        columns=4,
        format="png",
        object_fit="contain",
        height=300,
        elem_id="cnaps-compare-maps",
    )
    return crops, maps


def compare_view(comparison: Comparison) -> CompareView:
    """Every output of a Compare run: bicubic left of the slider, the first result right of it."""
    left, right = BASELINE_KEY, comparison.first_id
    slider, labels = pair_view(comparison, left, right)
    return CompareView(
        state=state_value(comparison),
        left=gr.update(choices=comparison.choices(), value=left),
        right=gr.update(choices=comparison.choices(), value=right),
        slider=slider,
        labels=labels,
        table=fidelity_table(comparison),
        crops=crops_html(comparison),
        maps=added_maps(comparison),
        files=[comparison.download_file(engine_id) for engine_id in comparison.results],
        diagrams=diagram_html(list(comparison.results.values())),
    )


def wire_compare_tab(
    tab: CompareTab, upscale_tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine]
) -> None:
    """Run all ticked (on the Upscale tab's picture and settings), and the pair picker."""
    _wire_compare_run(tab, upscale_tab, setup, control, engines)
    _wire_pick_pair(tab, setup.results)


def _wire_compare_run(
    tab: CompareTab, upscale_tab: UpscaleTab, setup: RunSetup, control: JobControl, engines: Sequence[Engine]
) -> None:
    """Run all ticked: on the GPU lane (one slot) when any GPU engine can run here, else the CPU lane."""
    settings = setup.settings
    gpu_ids = setup.requests.gpu_ids
    uses_gpu = any(runs_here(engine, settings) for engine in engines if engine.id in gpu_ids)
    lane = "gpu" if uses_gpu else "cpu"

    def compare_run(requests, progress, stop: threading.Event) -> tuple:
        try:
            comparison = setup.compare_comparison(requests, progress, stop)
        except JobCancelledError as stopped:
            tell_stopped(stopped)
            return tuple(gr.skip() for _ in CompareView._fields)  # the page keeps what it shows
        return in_words(lambda: tuple(compare_view(comparison)))  # its handler keeps it

    compare_work = on_gpu(compare_run) if uses_gpu else compare_run

    async def compare_job(
        image_value,
        engine_ids,
        simulate_flag,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
        **params,
    ):
        session = session_of(request)

        def work(stop):
            requests = setup.requests.compare(lane, image_value, engine_ids, simulate_flag, params, session)
            return compare_work(requests, progress, stop)

        values = await control.run(work, request, lane)
        return kept_state(values, setup.results, COMPARE_STATE_INDEX, session, COMPARE_SLOT)  # the pair picker's run

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


def _wire_pick_pair(tab: CompareTab, results: ResultStore | None = None) -> None:
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
