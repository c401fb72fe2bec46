"""In "Inside the network", for a diffusion run: where is it guessing? The run's own job at 3 seeds
and the map of where their pictures disagree (``RunSetup.seed_map``), from the example cache where it
was computed ahead (a talk without a GPU shows it at once), else on the GPU lane at a click.

``build_guess_box`` lays the part out (``inside.build_inside_panel`` places it); ``guess_view`` gives
its values for a run (the section shows them with the rest of the run's views); ``wire_guess_button``
attaches the click.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gradio as gr

from ...engines import get_engine
from ...errors import JobCancelledError
from ...present import inside_text
from ...seed_spread import SeedSpread
from ...web.comparison import Comparison
from ...web.runs import RunSetup
from ..gpu import on_gpu
from ..jobs import JobControl
from ..messages import tell_stopped

SEEDS_BUTTON = "Where is it guessing? (3 seeds)"
SEEDS = "seeds"  # the exploration (``Engine.explorations``) and its key in ``Comparison.on_request``


class GuessBox(NamedTuple):
    """The part's components (named as ``inside.InsidePanel``'s, whose outputs they are)."""

    guess_box: gr.Column  # shown for a run of an engine that draws seed maps
    guess_button: gr.Button  # shown where the map is not there yet and the engine can run here
    guess: gr.Gallery  # the three seeds' pictures, then the map
    guess_note: gr.Markdown


class GuessView(NamedTuple):
    """``GuessBox``'s values for one run (visibility updates for the box and the button)."""

    guess_box: Any
    guess_button: Any
    guess: Any
    guess_note: str


def build_guess_box() -> GuessBox:
    # A Column, not a Group: Gradio 6 writes a Group's elem_id on two nested elements (ids must be unique).
    with gr.Column(visible=False, elem_id="cnaps-guess-box") as box:
        gr.Markdown("### Where is it guessing?")
        button = gr.Button(SEEDS_BUTTON, size="sm", elem_id="cnaps-seeds")
        gallery = gr.Gallery(
            label="Three seeds, then where they disagree",
            columns=4,
            height=260,
            object_fit="contain",
            format="png",
            allow_preview=True,
            elem_id="cnaps-guess",
        )
        note = gr.Markdown(elem_id="cnaps-guess-note")
    return GuessBox(box, button, gallery, note)


def hidden_guess() -> GuessView:
    """For a run of an engine without seed maps (and no run): the part is not shown."""
    return GuessView(gr.update(visible=False), gr.update(visible=False), [], "")


def seed_items(comparison: Comparison, found: SeedSpread) -> list[tuple[str, str]]:
    """The seeds' pictures and the map, written in the run's folder, with their captions."""
    items = [
        (comparison.save_view(image, f"seed-{seed}"), f"seed {seed}") for seed, image in zip(found.seeds, found.images)
    ]
    items.append((comparison.save_view(found.image, "seed-spread"), inside_text.SPREAD_CAPTION))
    return items


def guess_view(setup: RunSetup, comparison: Comparison) -> GuessView:
    """The part for the run in ``comparison``: its stored seed map if the example cache holds one,
    else the button (where the engine can run here) or why there is none. Never runs the engine."""
    result = comparison.results[comparison.first_id]
    engine = get_engine(result.engine_id)
    if SEEDS not in engine.explorations:
        return hidden_guess()
    asked = comparison.on_request.get(SEEDS)  # drawn at a click on this page: shown again on a redraw
    shown = asked if asked is not None else setup.seed_map(result, compute=False)
    if shown is not None:
        note = inside_text.seeds_note(shown, result.engine_name, computed_ahead=asked is None)
        return GuessView(gr.update(visible=True), gr.update(visible=False), seed_items(comparison, shown), note)
    can_run = setup.reruns_here(result)
    return GuessView(
        gr.update(visible=True), gr.update(visible=can_run), [], inside_text.seeds_waiting(result.engine_name, can_run)
    )


def wire_guess_button(box: GuessBox, run_state: gr.State, resolve: Any, setup: RunSetup, control: JobControl) -> None:
    """A click runs the shown run's job at 3 seeds on the GPU lane (Stop ends it) and shows the map."""

    def work(result, progress, stop) -> SeedSpread | None:
        try:
            return setup.seed_map(result, progress, stop)
        except JobCancelledError as stopped:
            tell_stopped(stopped)
            return None

    on_device = on_gpu(work)

    async def job(state_value, progress=gr.Progress(), request: gr.Request = None):  # noqa: B008
        comparison = resolve(state_value)
        if comparison is None:
            return [], inside_text.SEEDS_NO_RUN, gr.skip()
        result = comparison.results[comparison.first_id]
        found = await control.run(lambda stop: on_device(result, progress, stop), request, "gpu")
        if found is None:  # stopped: the button stays for another try
            return gr.skip(), gr.skip(), gr.skip()
        comparison.on_request[SEEDS] = found
        note = inside_text.seeds_note(found, result.engine_name, computed_ahead=False)
        return seed_items(comparison, found), note, gr.update(visible=False)  # the same job again draws the same map

    box.guess_button.click(
        job,
        inputs=run_state,
        outputs=[box.guess, box.guess_note, box.guess_button],
        api_visibility="private",
        concurrency_id="gpu",
        concurrency_limit=1,
        validator=control.lanes.validator("gpu"),
        show_progress_on=box.guess,
    )
