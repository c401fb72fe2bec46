"""The Upscale tab laid out: its components in dataclasses, and the values a run shows in them.

``build_upscale_tab`` must run inside the ``gr.Blocks`` and ``gr.Tabs`` of ``ui.build_demo``; the
events are attached by the tab's other modules (``upscale.wire_upscale_tab``). A run's outputs
are declared once, by ``SingleRunView``: ``UpscaleTab.run_outputs`` is derived from its fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from ...engines import Engine
from ...present.examples import example_label
from ...present.verdicts import WHY_SENTENCE
from ...settings import Settings
from ...web.comparison import BASELINE_SHORT, TRUTH_LABEL
from ...web.picker import engine_card_html, engine_choices, runnable_ids
from ...web.requests import COLOUR_FIX_KEYWORD, ParamBinding
from ...web.views import before_after_html, diagram_html, empty_crops_html, short_label
from ..params import build_param_groups
from .inside import InsidePanel, build_inside_panel
from .learned import LearnedPanel, build_learned_panel


class SingleRunView(NamedTuple):
    """The outputs of one Upscale run, in order; ``UpscaleTab.run_outputs`` is derived from these names
    (each names a component of ``ResultPanel`` or ``DetailPanel``)."""

    slider: Any  # (bicubic file, result file)
    labels: str
    summary: str
    truth: Any
    png_file: str
    diagram: str
    svg_file: str
    where: str
    crops: str  # HTML: the detail crops at integer zoom
    added: str
    state: Any  # the run's key in the result store (or the Comparison): a click on the small picture moves the crops


@dataclass
class InputPanel:
    """Left column of the Upscale tab: the picture, the engine and its settings, the buttons."""

    image: gr.Image
    examples: gr.Examples | None  # the bundled examples (None when the package has none)
    simulate: gr.Checkbox
    colour_fix: gr.Checkbox
    engine: gr.Dropdown
    status: gr.HTML  # the engine card: what it does, or what it needs to run here
    groups: dict[str, Any]  # engine id -> its group of settings controls
    bindings: list[ParamBinding]
    run_cpu: gr.Button
    run_gpu: gr.Button
    stop: gr.Button


@dataclass
class ResultPanel:
    """Right column of the Upscale tab: before/after slider, ground truth, summary, downloads."""

    labels: gr.HTML
    slider: gr.ImageSlider
    truth: gr.Image
    summary: gr.Markdown
    png_file: gr.File
    svg_file: gr.File
    filmstrip_box: gr.Column  # shown for the engines that make frames and run here
    filmstrip: gr.Gallery  # the model's clean-image guess at each denoising step
    filmstrip_file: gr.File  # the same frames as one animated WebP
    filmstrip_timer: gr.Timer  # polls the running job's frames
    sweep: gr.Button  # img2img at strengths 0.1-0.6
    explored: gr.Gallery
    explored_note: gr.Markdown


@dataclass
class DetailPanel:
    """Under the Upscale tab's columns: the pipeline diagram and the close-up crops."""

    diagram: gr.HTML
    where: gr.Image
    crops: gr.HTML
    added: gr.Image
    state: gr.State  # the last run's Comparison, for moving the crops


@dataclass
class UpscaleTab:
    inputs: InputPanel
    result: ResultPanel
    detail: DetailPanel
    inside: InsidePanel
    learned: LearnedPanel

    def run_inputs(self) -> list[Any]:
        """The positional inputs of /upscale and /upscale_gpu (image, engine, simulate)."""
        return [self.inputs.image, self.inputs.engine, self.inputs.simulate]

    def run_kwargs(self) -> dict[str, Any]:
        """The keyword inputs: the colour fix switch, and every engine setting control by its API name."""
        controls = {binding.keyword: binding.component for binding in self.inputs.bindings}
        return {COLOUR_FIX_KEYWORD: self.inputs.colour_fix, **controls}

    def run_outputs(self) -> list[Any]:
        """The outputs of a run, in the order of ``SingleRunView`` (its field names name them)."""
        panels = (self.result, self.detail)
        return [next(getattr(p, name) for p in panels if hasattr(p, name)) for name in SingleRunView._fields]


# --- Upscale -------------------------------------------------------------------------


def build_upscale_tab(
    engines: Sequence[Engine], settings: Settings, default_id: str, examples: Sequence[Path]
) -> UpscaleTab:
    with gr.Tab("Upscale", id="upscale"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                inputs = _input_panel(engines, settings, default_id, examples)
            with gr.Column(scale=3, min_width=420):
                makes_frames = any(engine.makes_frames for engine in engines if engine.id == default_id)
                result = _result_panel(makes_frames)
        detail = _detail_panel()
        inside = build_inside_panel()
        learned = build_learned_panel()
    return UpscaleTab(inputs, result, detail, inside, learned)


def _input_panel(
    engines: Sequence[Engine], settings: Settings, default_id: str, examples: Sequence[Path]
) -> InputPanel:
    # Top to bottom in the order a visitor acts, so that at 1280x720 the picture, the engine and
    # the Upscale button are all above the fold; the settings come after.
    gpu_default = any(engine.id == default_id and engine.device_need == "gpu" for engine in engines)
    image = gr.Image(
        label="Your illustration",  # short: the drop area says how, and the icons need the room
        type="filepath",
        sources=["upload", "clipboard"],
        image_mode=None,
        format="png",
        height=210,
        elem_id="cnaps-input",
    )
    example_block = (
        gr.Examples(
            examples=[[str(path)] for path in examples],
            inputs=[image],
            label="Examples (CC0): a click shows the result",
            example_labels=[example_label(path) for path in examples],
            api_visibility="private",
            elem_id="cnaps-examples",
        )
        if examples
        else None
    )
    engine = gr.Dropdown(
        engine_choices(engines, settings),
        value=default_id,
        label="Engine",
        filterable=False,
        elem_id="cnaps-engine",
        container=False,
    )
    run_cpu, run_gpu, stop = _run_buttons(gpu_default)
    status = gr.HTML(engine_card_html(default_id, settings), elem_id="cnaps-engine-status")
    simulate = gr.Checkbox(
        label="Simulate a blurry source",
        info="Shrink the picture 2x with a slight blur and JPEG (quality 60) first; "
        "the original then serves as ground truth.",
        elem_id="cnaps-simulate",
    )
    colour_fix = gr.Checkbox(
        value=True,
        label="Colour fix",
        info="Keep your picture's own colours: the model's fine detail over your picture's smooth colours "
        "(AI engines; models tend to tint or darken a little).",
        elem_id="cnaps-colour-fix",
    )
    with gr.Accordion("Engine settings", open=not settings.presenter, elem_id="cnaps-settings"):
        runnable = frozenset(runnable_ids(engines, settings))
        groups, bindings = build_param_groups(list(engines), default_id, runnable, settings)
    return InputPanel(
        image, example_block, simulate, colour_fix, engine, status, groups, bindings, run_cpu, run_gpu, stop
    )


def _run_buttons(gpu_default: bool) -> tuple[gr.Button, gr.Button, gr.Button]:
    """Upscale (the CPU lane), Upscale on the GPU (one shows, for the chosen engine), and Stop."""
    with gr.Row(elem_id="cnaps-buttons"):
        run_cpu = gr.Button(
            "Upscale 2x \u25b6", variant="primary", size="lg", visible=not gpu_default, elem_id="cnaps-run", scale=3
        )
        run_gpu = gr.Button(
            "Upscale 2x on the GPU \u25b6",
            variant="primary",
            size="lg",
            visible=gpu_default,
            elem_id="cnaps-run-gpu",
            scale=3,
        )
        stop = gr.Button("Stop", variant="stop", size="lg", elem_id="cnaps-stop", scale=1, min_width=80)
    return run_cpu, run_gpu, stop


def _result_panel(filmstrip_shown: bool) -> ResultPanel:
    labels = gr.HTML(before_after_html(short_label(BASELINE_SHORT), "the engine"), elem_id="cnaps-ba")
    with gr.Row(equal_height=False):
        slider = gr.ImageSlider(
            label="Drag the handle: left = bicubic, right = the engine",
            type="filepath",
            format="png",
            max_height=430,
            elem_id="cnaps-slider",
            scale=3,
            show_label=False,
        )
        truth = gr.Image(
            label=TRUTH_LABEL,
            type="filepath",
            format="png",
            interactive=False,
            visible=False,
            height=430,
            elem_id="cnaps-truth",
            scale=2,
        )
    summary = gr.Markdown(label="Summary", elem_classes="cnaps-status", elem_id="cnaps-summary")
    gr.Markdown(WHY_SENTENCE, elem_id="cnaps-why", elem_classes="cnaps-muted")
    with gr.Row():
        png_file = gr.File(label="Result PNG (with metadata)", elem_id="cnaps-png", height=90)
        svg_file = gr.File(label="Pipeline diagram (SVG)", elem_id="cnaps-svg", height=90)
    # A Column, not a Group: Gradio 6 writes a Group's elem_id on two nested elements (ids must be unique).
    with gr.Column(visible=filmstrip_shown, elem_id="cnaps-filmstrip-box") as filmstrip_box:
        filmstrip = gr.Gallery(
            label="Watch it re-draw: the model's guess of the clean picture at each denoising step",
            columns=6,
            height=210,
            object_fit="contain",
            format="png",
            allow_preview=True,
            elem_id="cnaps-filmstrip",
        )
        filmstrip_file = gr.File(label="The steps as an animated WebP", elem_id="cnaps-filmstrip-file", height=70)
        sweep = gr.Button("Strength sweep 0.1\u20130.6", size="sm", elem_id="cnaps-sweep")
        explored = gr.Gallery(
            label="Faithful versus invented", columns=4, height=230, object_fit="contain", elem_id="cnaps-explored"
        )
        explored_note = gr.Markdown(elem_classes="cnaps-status", elem_id="cnaps-explored-note")
    timer = gr.Timer(0.5, active=False)
    return ResultPanel(
        labels, slider, truth, summary, png_file, svg_file, filmstrip_box, filmstrip, filmstrip_file, timer,
        sweep, explored, explored_note,
    )


def _detail_panel() -> DetailPanel:
    gr.Markdown("## What happened inside: the pipeline, stage by stage")
    diagram = gr.HTML(diagram_html([]), label="Pipeline diagram", elem_id="cnaps-diagram")
    gr.Markdown("## Up close: the same pixels from each image")
    with gr.Row(equal_height=False):
        where = gr.Image(
            label="Click to move the crops",
            buttons=[],  # no icon over the label in a narrow column; the crops beside it are the close-up
            type="filepath",
            format="png",
            interactive=False,
            elem_id="cnaps-where",
            scale=1,
            min_width=200,
            height=300,
        )
        with gr.Column(scale=3, min_width=300):
            crops = gr.HTML(empty_crops_html(), elem_id="cnaps-crops")
        added = gr.Image(
            label="Added detail \u00d74",  # short: its fullscreen icon shares the line in a narrow column
            buttons=["fullscreen"],
            type="filepath",
            format="png",
            interactive=False,
            elem_id="cnaps-added",
            scale=1,
            min_width=200,
            height=300,
            elem_classes="cnaps-pixelated",
        )
    return DetailPanel(diagram, where, crops, added, gr.State(None))


def example_copies(example_block: gr.Examples | None) -> frozenset[str]:
    """Paths of the copies Gradio made of the bundled examples (what a click on one sends)."""
    if example_block is None:
        return frozenset()
    found = set()
    for sample in example_block.dataset.samples:
        for value in sample:
            path = value.get("path") if isinstance(value, dict) else None
            if path:
                found.add(str(path))
    return frozenset(found)
