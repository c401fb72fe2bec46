"""The Upscale tab's "Inside the network" section: what the layers of the CNN that just ran picked
up on the visitor's own picture, the plain enlargement + what the network draws = the result,
and, one click on the result away, which input pixels decided that spot (LAM-style attribution).

``build_inside_panel`` lays the section out (inside the Upscale tab, under the crops);
``wire_inside_panel`` attaches its events. Every picture comes from a run of the engine's real
graph on the run's own input (``cnaps_demo.inside`` / ``cnaps_demo.attribution``); the work runs
on the CPU lane after the result is on screen, with progress and Stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

from ...engines import get_engine
from ...errors import JobCancelledError
from ...present import inside_text
from ...web.comparison import Comparison
from ...web.latest import LatestRequests
from ...web.running import progress_forwarder
from ...web.runs import RunSetup
from ..jobs import JobControl, session_of
from .guessing import GuessBox, build_guess_box, guess_view, hidden_guess, wire_guess_button

# Maps shown per layer in the overview strip (all of a layer's maps show when it is clicked).
OVERVIEW_MAPS = 4


class InsideView(NamedTuple):
    """The section's outputs, in the order of ``InsidePanel.outputs`` (derived from these names)."""

    intro: str
    cnn_parts: Any  # visibility of the CNN-only parts (the sum, the pixel trace): shown for an engine with layers
    layers: Any  # [(picture file, short title)], one per layer: its most active channels side by side
    layer_notes: str  # one line per layer: its shape and what its maps respond to
    channels: Any  # the clicked layer's channels
    base: Any
    residual: Any
    output: Any
    sum_note: str
    pick: Any  # the result, to click on
    overlay: Any
    reading: str
    invented_added: Any  # |result - bicubic| x 4: what the model drew that bicubic did not
    invented_lr: Any  # where the result, shrunk back, disagrees with the input
    invented_note: str
    guess_box: Any  # a diffusion run's "Where is it guessing?" (``guessing.GuessView``)
    guess_button: Any
    guess: Any
    guess_note: str
    maps: Any  # per layer: [(file, caption)] of every channel shown (for a click on a layer)


@dataclass
class InsidePanel:
    intro: gr.Markdown
    cnn_parts: gr.Column
    layers: gr.Gallery
    layer_notes: gr.Markdown
    channels: gr.Gallery
    base: gr.Image
    residual: gr.Image
    output: gr.Image
    sum_note: gr.Markdown
    pick: gr.Image
    overlay: gr.Image
    reading: gr.Markdown
    invented_added: gr.Image
    invented_lr: gr.Image
    invented_note: gr.Markdown
    guess_box: gr.Column
    guess_button: gr.Button
    guess: gr.Gallery
    guess_note: gr.Markdown
    maps: gr.State

    def outputs(self) -> list[Any]:
        return [getattr(self, name) for name in InsideView._fields]

    def guess_parts(self) -> GuessBox:
        return GuessBox(*(getattr(self, name) for name in GuessBox._fields))


def shown_picture(label: str, elem_id: str, **extra: Any) -> gr.Image:
    """A picture the explainer sections show (not an input): 260 px high unless told."""
    return gr.Image(
        label=label,
        type="filepath",
        format="png",
        interactive=False,
        elem_id=elem_id,
        buttons=["fullscreen"],
        min_width=150,
        **{"height": 260, **extra},
    )


def build_inside_panel() -> InsidePanel:
    """The section's components (inside the Upscale tab's ``gr.Tab``)."""
    with gr.Column(elem_id="cnaps-inside"):
        gr.Markdown("## Inside the network: what it looked at, on your picture")
        intro = gr.Markdown(inside_text.WAITING, elem_id="cnaps-inside-intro")
        layers, layer_notes, channels = _layer_galleries()
        with gr.Column(elem_id="cnaps-inside-cnn") as cnn_parts:  # hidden for an engine without layers
            with gr.Row(equal_height=True, elem_id="cnaps-inside-sum"):
                base = shown_picture("Base", "cnaps-inside-base", elem_classes="cnaps-pixelated")
                residual = shown_picture("+ Network's part", "cnaps-inside-residual", elem_classes="cnaps-pixelated")
                output = shown_picture("= Result", "cnaps-inside-output", elem_classes="cnaps-pixelated")
            sum_note = gr.Markdown(elem_id="cnaps-inside-sum-note")
            gr.Markdown("### Where does this pixel come from?")
            with gr.Row(equal_height=False):
                pick = shown_picture("Click a spot", "cnaps-inside-pick", height=320)
                overlay = shown_picture("What decided it", "cnaps-inside-overlay", height=320)
            reading = gr.Markdown(inside_text.CLICK_HINT, elem_id="cnaps-inside-reading")
        guess = build_guess_box()  # shown for a diffusion run
        gr.Markdown("### Where did it invent?")
        with gr.Row(equal_height=True):
            invented_added = shown_picture("Drawn, not in bicubic", "cnaps-invented-added", height=300)
            invented_lr = shown_picture("Not in your picture", "cnaps-invented-lr", height=300)
        invented_note = gr.Markdown(elem_id="cnaps-invented-note")
    return InsidePanel(
        intro, cnn_parts, layers, layer_notes, channels, base, residual, output, sum_note, pick, overlay, reading,
        invented_added, invented_lr, invented_note, *guess, gr.State(None),
    )  # ``guess``: a GuessBox, in InsidePanel's order


def _layer_galleries() -> tuple[gr.Gallery, gr.Markdown, gr.Gallery]:
    """The layers side by side (a few maps each), their notes, and the clicked layer's channels."""
    gr.Markdown(inside_text.LAYERS_LABEL, elem_classes="cnaps-gallery-label")
    layers = gr.Gallery(
        label="Layers",
        show_label=False,
        columns=6,
        height=230,
        object_fit="contain",
        format="png",
        allow_preview=False,
        elem_id="cnaps-inside-layers",
        elem_classes="cnaps-pixelated",
    )
    layer_notes = gr.Markdown(elem_id="cnaps-inside-layer-notes")
    gr.Markdown("**The clicked layer, channel by channel**", elem_classes="cnaps-gallery-label")
    channels = gr.Gallery(
        label="Channels",
        show_label=False,
        columns=5,
        height=340,
        object_fit="contain",
        format="png",
        allow_preview=True,
        elem_id="cnaps-inside-channels",
        elem_classes="cnaps-pixelated",
    )
    return layers, layer_notes, channels


def cleared_inside(
    intro: str = inside_text.WAITING, invented: tuple = (None, None, ""), cnn_parts: bool = True
) -> InsideView:
    """The section without a look inside: no run yet (the CNN parts wait, as on a fresh page), or the
    run's engine has no layers here (``cnn_parts`` False); ``invented``: the run's maps, for every engine."""
    added, lr, note = invented
    return InsideView(
        intro=intro, cnn_parts=gr.update(visible=cnn_parts), layers=[], layer_notes="", channels=[],
        base=None, residual=None, output=None, sum_note="", pick=None, overlay=None, reading=inside_text.CLICK_HINT,
        invented_added=added, invented_lr=lr, invented_note=note, maps=None, **hidden_guess()._asdict(),
    )


def where_invented(comparison: Comparison) -> tuple[str, str, str]:
    """(added-vs-bicubic map file, LR disagreement map file, what they show): for every engine."""
    import numpy as np

    from ... import fidelity
    from ...present import compare

    result = comparison.results[comparison.first_id]
    added = compare.difference(result.image, comparison.baseline)
    disagreement = fidelity.lr_disagreement(result.image, result.input_image)
    gain = inside_text.MAP_GAIN
    return (
        comparison.save_view(compare.colourise(np.clip(added * gain / 255, 0, 1)), "invented-added"),
        comparison.save_view(compare.colourise(np.clip(disagreement * gain / 255, 0, 1)), "invented-lr"),
        inside_text.invented_note(added, disagreement, result.engine_name),
    )


def inside_view(comparison: Comparison | None, setup: RunSetup, progress: Any, stop: Any) -> InsideView:
    """The section for the run in ``comparison`` (blocking; a job's worker thread)."""
    from ... import inside

    if comparison is None:
        return cleared_inside()
    result = comparison.results[comparison.first_id]
    engine = get_engine(result.engine_id)
    invented = where_invented(comparison)
    if engine.makes_frames:
        return denoising_view(comparison, invented)._replace(**guess_view(setup, comparison)._asdict())
    if min(result.input_image.size) < inside_text.SMALLEST_SIDE:
        return cleared_inside(inside_text.too_small(result.input_image.size), invented, cnn_parts=False)
    if not engine.looks_inside:
        return cleared_inside(inside_text.not_for(engine.display_name), invented, cnn_parts=False)
    forward = progress_forwarder(progress, label="Looking inside", stop=stop)
    region = inside_text.region_around(comparison.box_in, result.input_image.size)
    try:
        seen = inside(
            result.input_image,
            result.engine_id,
            region=region,
            progress=forward,
            settings=setup.settings,
            scale=result.scale,
            **result.params,
        )
    except JobCancelledError:
        return cleared_inside(inside_text.STOPPED, invented)
    return layers_view(comparison, seen, engine.display_name, invented)


def layers_view(comparison: Comparison, seen: Any, engine_name: str, invented: tuple[str, str, str]) -> InsideView:
    """The section from ``cnaps_demo.inside``'s look at the run (``seen``): its pictures written in the
    run's folder."""
    maps = []
    overview = []
    for index, layer in enumerate(seen.layers):
        shown = [
            (comparison.save_view(picture, f"layer{index}-ch{k}"), f"ch {channel + 1}")
            for k, (picture, channel) in enumerate(zip(layer.maps, layer.channels))
        ]
        maps.append(shown)
        strip = inside_text.strip(layer.maps[:OVERVIEW_MAPS])
        overview.append((comparison.save_view(strip, f"layer{index}"), inside_text.layer_title(index, layer)))
    return cleared_inside(inside_text.intro(seen, engine_name), invented)._replace(
        layers=overview,
        layer_notes=inside_text.layer_notes(seen.layers),
        channels=maps[0] if maps else [],
        base=comparison.save_view(seen.base_image, "inside-base"),
        residual=comparison.save_view(seen.residual_image, "inside-residual"),
        output=comparison.save_view(seen.output_image, "inside-output"),
        sum_note=inside_text.sum_note(seen),
        pick=comparison.image_file(comparison.first_id),
        maps=maps,
    )


def denoising_view(comparison: Comparison, invented: tuple[str, str, str]) -> InsideView:
    """For a diffusion run, the section shows its denoising steps where a CNN's layers would be: the run's
    own frames (kept when it ran on this page, or with a result computed ahead), a click on a step shows
    it whole; a pixel is not traced back (the seed map, ``guessing``, says where it guesses)."""
    from ...present.result_cache import kept_frames
    from ...web.live import thumbnail

    result = comparison.results[comparison.first_id]
    frames = kept_frames(result.frames)
    if not frames:
        return cleared_inside(inside_text.no_frames(result.engine_name), invented, cnn_parts=False)._replace(
            reading=inside_text.DENOISING_TRACE
        )
    shown = []
    for frame in frames:
        whole = comparison.save_view(frame.image, f"step{frame.step}")
        small = comparison.save_view(thumbnail(frame.image), f"step{frame.step}-small")
        shown.append((small, whole, inside_text.step_title(frame)))
    view = cleared_inside(inside_text.denoising_intro(frames, result.engine_name), invented, cnn_parts=False)
    return view._replace(
        layers=[(small, title) for small, _, title in shown],
        layer_notes=inside_text.denoising_notes(frames),
        channels=[(shown[-1][1], shown[-1][2])],
        reading=inside_text.DENOISING_TRACE,
        maps=[[(whole, title)] for _, whole, title in shown],
    )


def attribution_view(comparison: Comparison | None, point: tuple[int, int], settings: Any, progress: Any, stop: Any):
    """(overlay file, reading) for a click at ``point`` (result pixels) on the run in ``comparison``."""
    from ... import attribution

    if comparison is None:
        return None, inside_text.CLICK_HINT
    result = comparison.results[comparison.first_id]
    engine = get_engine(result.engine_id)
    if engine.makes_frames:
        return None, inside_text.DENOISING_TRACE
    if not engine.looks_inside:
        return None, inside_text.not_for(result.engine_name)
    forward = progress_forwarder(progress, label="Tracing the pixel back", stop=stop)
    try:
        found = attribution(
            result.input_image,
            result.engine_id,
            point,
            progress=forward,
            settings=settings,
            scale=result.scale,
            **result.params,
        )
    except JobCancelledError:
        return gr.skip(), inside_text.STOPPED
    return comparison.save_view(found.zoom, "attribution"), inside_text.reading(found)


def wire_inside_panel(
    panel: InsidePanel, run_state: gr.State, resolve: Any, setup: RunSetup, control: JobControl, latest: LatestRequests
) -> None:
    """Whenever the Upscale tab's run state changes (a new run, the crops moved, a cleared result),
    the section follows on the CPU lane; a click on a layer shows its channels (no job, nothing
    written); a click on the result traces that spot back (a job on the CPU lane).

    ``resolve(state_value)`` gives the run's ``Comparison`` (or None). Like a run, each job belongs to
    the page's newest request (``latest``): a newer click stops it at its next step, and its outputs
    are dropped, so it never holds the lane for a picture no longer on screen."""
    lane = explainer_lane(control)

    async def look_inside(state_value, progress=gr.Progress(), request: gr.Request = None):  # noqa: B008
        comparison = resolve(state_value)
        if comparison is None:
            return tuple(cleared_inside())
        view = await follow_up(control, latest, request, lambda stop: inside_view(comparison, setup, progress, stop))
        return tuple(view) if view is not None else tuple(gr.skip() for _ in InsideView._fields)

    run_state.change(look_inside, inputs=run_state, outputs=panel.outputs(), show_progress_on=panel.layers, **lane)

    def show_channels(maps, event: gr.SelectData):
        if not maps or not isinstance(event.index, int) or event.index >= len(maps):
            return gr.skip()
        return maps[event.index]

    panel.layers.select(
        show_channels,
        inputs=panel.maps,
        outputs=panel.channels,
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )

    async def trace(state_value, event: gr.SelectData, progress=gr.Progress(), request: gr.Request = None):  # noqa: B008
        if not isinstance(event.index, (list, tuple)):
            return gr.skip(), gr.skip()
        point = (int(event.index[0]), int(event.index[1]))
        comparison = resolve(state_value)
        found = await follow_up(
            control, latest, request, lambda stop: attribution_view(comparison, point, setup.settings, progress, stop)
        )
        return found if found is not None else (gr.skip(), gr.skip())

    panel.pick.select(
        trace, inputs=run_state, outputs=[panel.overlay, panel.reading], show_progress_on=panel.overlay, **lane
    )
    wire_guess_button(panel.guess_parts(), run_state, resolve, setup, control)


# The explainer views' own lane: one job at a time, beside (not behind) the runs of the CPU lane, and
# counted apart, so a visitor's run is never refused "busy" because of views computed after a result.
# A newer click stops a running view at its next step (``follow_up``), so it shares the CPU briefly.
EXPLAIN_LANE = "explain"


def explainer_lane(control: JobControl) -> dict[str, Any]:
    """The event settings every explainer job shares (the lane's size is set in ``ui.page``)."""
    return {
        "api_visibility": "private",
        "concurrency_id": EXPLAIN_LANE,
        "concurrency_limit": 1,
        "validator": control.lanes.validator(EXPLAIN_LANE),
        "trigger_mode": "always_last",
    }


async def follow_up(control: JobControl, latest: LatestRequests, request: Any, work: Any) -> Any:
    """Run ``work(stop)`` on the CPU lane for what the page shows now; None when a newer request came
    (the job was stopped, and what it made belongs to a picture no longer on screen)."""
    session = session_of(request)
    number = latest.newest(session)

    def watched(stop: Any) -> Any:
        with latest.watch(session, number, stop):
            return work(stop)

    result = await control.run(watched, request, EXPLAIN_LANE)
    return result if latest.is_newest(session, number) else None
