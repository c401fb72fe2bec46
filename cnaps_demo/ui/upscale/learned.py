"""The Upscale tab's "Why is it crisp?" section, on the visitor's own picture:

1. *What it learned from*: the picture damaged the way the training pairs were (Real-ESRGAN's
   second-order degradation, ``cnaps_demo.degrade``), step by step with the values drawn; the
   engine's restoration of the damaged copy beside bicubic's, both scored against the picture.
   Runs on a click (the CPU lane, progress and Stop); "New draw" re-seeds it.
2. *Why crisp, not averaged*: crisp pictures that all shrink to the small picture, and their
   pixel average, which is soft (``present.why_crisp``); computed after every run (milliseconds).
3. *Edges and detail, measured*: the brightness across an outline and the spectrum of bicubic
   against the result (``present.result_plots``).

``build_learned_panel`` lays it out; ``wire_learned_panel`` attaches its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

from ...engines import get_engine
from ...errors import CnapsError, JobCancelledError
from ...present import learned_text
from ...web.comparison import Comparison
from ...web.latest import LatestRequests
from ...web.running import progress_forwarder
from ..jobs import JobControl
from .inside import explainer_lane, follow_up, shown_picture

# The knobs a visitor can move (the rest of the chain is drawn from Real-ESRGAN's published ranges).
# Moderate by default: with every value drawn, round one may shrink the picture to 0.15x and the
# restoration of a busy crop then loses to bicubic on one seed in three (measured on the drawings);
# at blur 1 px, noise 4/255 and JPEG 70 it beat bicubic on every drawing tried, by 0.3-4 dB.
DEFAULT_KNOBS = {"blur": 1.0, "noise": 4, "jpeg_quality": 70}


class CrispView(NamedTuple):
    """The outputs drawn after every run, in the order of ``LearnedPanel.crisp_outputs``."""

    candidates: Any  # [(file, caption)]: the crisp candidates, then their average
    story: str
    plots: str  # HTML: the edge profile and the spectrum, side by side


class TrialView(NamedTuple):
    """The outputs of "what it learned from", in the order of ``LearnedPanel.trial_outputs``."""

    trial_box: Any  # shown once there is a trial to show (no empty boxes before)
    steps: Any  # [(file, caption)]: the picture, each damage step, the small copy
    restored: Any
    bicubic: Any
    truth: Any
    trial_note: str


@dataclass
class LearnedPanel:
    show: gr.Button
    redraw: gr.Button
    seed: gr.State
    blur: gr.Slider
    noise: gr.Slider
    jpeg_quality: gr.Slider
    trial_box: gr.Column
    steps: gr.Gallery
    restored: gr.Image
    bicubic: gr.Image
    truth: gr.Image
    trial_note: gr.Markdown
    candidates: gr.Gallery
    story: gr.Markdown
    plots: gr.HTML

    def crisp_outputs(self) -> list[Any]:
        return [getattr(self, name) for name in CrispView._fields]

    def trial_outputs(self) -> list[Any]:
        return [getattr(self, name) for name in TrialView._fields]


def build_learned_panel() -> LearnedPanel:
    """The section's components (inside the Upscale tab's ``gr.Tab``)."""
    with gr.Column(elem_id="cnaps-learned"):
        gr.Markdown("## Why is it crisp? What it learned from, and why it commits to one answer")
        gr.Markdown(learned_text.LEARNED_INTRO, elem_id="cnaps-learned-intro")
        with gr.Row():
            show = gr.Button(
                "Damage my picture like a training pair \u25b6",
                variant="secondary",
                elem_id="cnaps-learned-show",
                scale=3,
            )
            redraw = gr.Button("New draw", size="md", elem_id="cnaps-learned-redraw", scale=1, min_width=110)
        with gr.Row(elem_id="cnaps-learned-knobs"):
            blur = gr.Slider(0, 3, value=DEFAULT_KNOBS["blur"], step=0.1, label="Blur (px)", min_width=140)
            noise = gr.Slider(0, 30, value=DEFAULT_KNOBS["noise"], step=1, label="Noise (of 255)", min_width=140)
            jpeg_quality = gr.Slider(
                10, 100, value=DEFAULT_KNOBS["jpeg_quality"], step=1, label="JPEG quality", min_width=140
            )
        with gr.Column(visible=False, elem_id="cnaps-learned-trial") as trial_box:
            steps, restored, bicubic, truth = _trial_pictures()
        trial_note = gr.Markdown(elem_id="cnaps-learned-note")
        gr.Markdown("### Why crisp, not averaged")
        gr.Markdown(
            "**Crisp answers that all shrink to your picture, then their average**", elem_classes="cnaps-gallery-label"
        )
        candidates = gr.Gallery(
            label="Candidates",
            show_label=False,
            columns=5,
            height=250,
            object_fit="contain",
            format="png",
            elem_id="cnaps-crisp",
            elem_classes="cnaps-pixelated",
        )
        story = gr.Markdown(elem_id="cnaps-crisp-story")
        gr.Markdown("### Edges and detail, measured")
        plots = gr.HTML(learned_text.PLOTS_WAITING, elem_id="cnaps-plots")
    return LearnedPanel(
        show,
        redraw,
        gr.State(0),
        blur,
        noise,
        jpeg_quality,
        trial_box,
        steps,
        restored,
        bicubic,
        truth,
        trial_note,
        candidates,
        story,
        plots,
    )


def _trial_pictures() -> tuple[gr.Gallery, gr.Image, gr.Image, gr.Image]:
    gr.Markdown(
        "**The damage, step by step** (values drawn from the published ranges)", elem_classes="cnaps-gallery-label"
    )
    steps = gr.Gallery(
        label="Damage steps",
        show_label=False,
        columns=6,
        height=380,
        object_fit="contain",
        format="png",
        elem_id="cnaps-learned-steps",
        elem_classes="cnaps-pixelated",
    )
    with gr.Row(equal_height=True):
        pixelated = {"elem_classes": "cnaps-pixelated"}
        restored = shown_picture("The model's 2x of the damaged copy", "cnaps-learned-restored", **pixelated)
        bicubic = shown_picture("Bicubic's 2x of it", "cnaps-learned-bicubic", **pixelated)
        truth = shown_picture("Your picture (the answer)", "cnaps-learned-truth", **pixelated)
    return steps, restored, bicubic, truth


def cleared_crisp() -> CrispView:
    return CrispView([], "", learned_text.PLOTS_WAITING)


def cleared_trial(note: str = "") -> TrialView:
    return TrialView(gr.update(visible=False), [], None, None, None, note)


def crisp_view(comparison: Comparison | None) -> CrispView:
    """Candidates, their average and the plots for the run in ``comparison`` (milliseconds)."""
    from ...present.result_plots import result_curves
    from ...present.why_crisp import crisp_candidates

    if comparison is None:
        return cleared_crisp()
    result = comparison.results[comparison.first_id]
    small = result.input_image.convert("RGB")
    window = comparison.box_in
    found = crisp_candidates(result.image.convert("RGB"), small, box=window)
    items = [
        (comparison.save_view(c.image, f"candidate{k}"), learned_text.candidate_caption(k, c))
        for k, c in enumerate(found.candidates)
    ]
    items.append((comparison.save_view(found.average, "average"), learned_text.average_caption(found)))
    curves = result_curves(result)
    return CrispView(
        items,
        learned_text.crisp_story(found, result.engine_name),
        learned_text.plots_html(curves.edge_svg(), curves.spectrum_svg(), result.engine_name),
    )


def trial_view(
    comparison: Comparison | None, seed: int, knobs: dict[str, Any], settings: Any, progress: Any, stop: Any
) -> TrialView:
    """The restoration trial for the run's engine on the run's picture (blocking; a job's thread).
    ``knobs``: ``blur``, ``noise``, ``jpeg_quality`` as the visitor set them (the rest is drawn)."""
    from ...present.learned_from import restoration_trial

    if comparison is None:
        return cleared_trial(learned_text.NO_PICTURE)
    result = comparison.results[comparison.first_id]
    engine = get_engine(result.engine_id)
    if engine.device_need == "gpu":
        return cleared_trial(learned_text.gpu_engine_note(engine.display_name))
    forward = progress_forwarder(progress, label="Training pair", stop=stop)
    try:
        picture = comparison.source.truth if comparison.source.truth is not None else comparison.source.image
        trial = restoration_trial(
            picture, engine.id, seed=seed, progress=forward, settings=settings, engine_params=result.params, **knobs
        )
    except JobCancelledError:
        return cleared_trial(learned_text.STOPPED)
    steps = [(comparison.save_view(trial.truth, "pair-clean"), "Your picture: the clean half of the pair")]
    steps += [
        (comparison.save_view(step.image, f"pair-step{k}"), step.caption)
        for k, step in enumerate(trial.degradation.steps)
    ]
    steps.append(
        (
            comparison.save_view(trial.small, "pair-small"),
            f"The damaged copy, half size ({trial.small.width}\u00d7{trial.small.height}): what the model is given",
        )
    )
    return TrialView(
        trial_box=gr.update(visible=True),
        steps=steps,
        restored=comparison.save_view(trial.restored, "pair-restored"),
        bicubic=comparison.save_view(trial.bicubic, "pair-bicubic"),
        truth=comparison.save_view(trial.truth, "pair-truth"),
        trial_note=learned_text.trial_note(trial),
    )


def wire_learned_panel(
    panel: LearnedPanel, run_state: gr.State, resolve: Any, settings: Any, control: JobControl, latest: LatestRequests
) -> None:
    """After every run: the candidates and plots (a light queue of their own); on a click: the
    training-pair trial on the CPU lane ("New draw" takes the next seed). ``resolve(state_value)``
    gives the run's ``Comparison`` (or None)."""

    def draw_crisp(state_value):
        try:
            return tuple(crisp_view(resolve(state_value)))
        except CnapsError as error:  # e.g. a picture too small for a detail window: said in place, no toast
            return tuple(cleared_crisp()._replace(story=f"*{learned_text.escape(error)}*"))

    run_state.change(
        draw_crisp,
        inputs=run_state,
        outputs=panel.crisp_outputs(),
        api_visibility="private",
        concurrency_id="figures",
        concurrency_limit=2,
        trigger_mode="always_last",
        show_progress="hidden",
    )
    run_state.change(
        lambda _: tuple(cleared_trial()),
        inputs=run_state,
        outputs=panel.trial_outputs(),
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )

    async def trial(state_value, seed, blur, noise, jpeg_quality, progress=gr.Progress(), request: gr.Request = None):  # noqa: B008
        comparison = resolve(state_value)
        knobs = {"blur": blur, "noise": noise, "jpeg_quality": jpeg_quality}
        view = await follow_up(
            control, latest, request, lambda stop: trial_view(comparison, int(seed), knobs, settings, progress, stop)
        )
        return tuple(view) if view is not None else tuple(gr.skip() for _ in TrialView._fields)

    lane = {**explainer_lane(control), "show_progress_on": panel.steps}
    inputs = [run_state, panel.seed, panel.blur, panel.noise, panel.jpeg_quality]
    panel.show.click(trial, inputs=inputs, outputs=panel.trial_outputs(), **lane)
    panel.redraw.click(
        lambda seed: int(seed) + 1,
        inputs=panel.seed,
        outputs=panel.seed,
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    ).then(trial, inputs=inputs, outputs=panel.trial_outputs(), **lane)
