"""What an Upscale run shows: the values of ``SingleRunView`` drawn from its ``Comparison``.

Used by the page's own run events (``runs``) and by the public API (``api``); ``single_run`` is the
whole blocking job (the run, then its views), the one ZeroGPU decorates for the GPU lane.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import gradio as gr

from ...errors import JobCancelledError
from ...web.comparison import BASELINE_KEY, BASELINE_SHORT, TRUTH_KEY, Comparison
from ...web.requests import RunRequest
from ...web.runs import RunSetup
from ...web.views import (
    added_map,
    before_after_html,
    crops_html,
    diagram_html,
    empty_crops_html,
    note_html,
    pair_view,
    run_lines,
    short_label,
    state_value,
    summary_markdown,
    where_image,
)
from ..messages import in_words, tell_stopped
from .layout import SingleRunView

STATE_INDEX = SingleRunView._fields.index("state")  # where a run's values hold what the page keeps of it


def stoppable_comparison(
    setup: RunSetup,
    request: RunRequest,
    progress: Any,
    stop: threading.Event,
    announce_stop: Callable[[], bool] | None = None,
) -> Comparison | None:
    """``RunSetup.single_comparison``; None when Stop ended the run (the visitor has been told, unless
    ``announce_stop()`` says a newer click ended it: they asked for something else, not for a stop)."""
    try:
        return setup.single_comparison(request, progress, stop)
    except JobCancelledError as stopped:
        if announce_stop is None or announce_stop():
            tell_stopped(stopped)
        return None


def single_run(
    setup: RunSetup,
    request: RunRequest,
    progress: Any,
    stop: threading.Event,
    announce_stop: Callable[[], bool] | None = None,
) -> tuple:
    """The run and every view of it at once: the values of ``SingleRunView``."""
    return full_view(stoppable_comparison(setup, request, progress, stop, announce_stop))


def single_view(comparison: Comparison, engine_id: str) -> SingleRunView:
    """Every output of an Upscale run of ``engine_id``."""
    result = comparison.results[engine_id]
    has_truth = comparison.source.truth is not None
    slider, labels = pair_view(comparison, BASELINE_KEY, engine_id)
    return SingleRunView(
        slider=slider,
        labels=labels,
        summary=summary_markdown(comparison),
        truth=comparison.image_file(TRUTH_KEY) if has_truth else None,  # the page shows/hides it
        png_file=comparison.download_file(engine_id),
        diagram=diagram_html([result]),
        svg_file=comparison.svg_file(engine_id),
        where=where_image(comparison),
        crops=crops_html(comparison),
        added=added_map(comparison, engine_id),
        state=state_value(comparison),
    )


def preview_view(comparison: Comparison, engine_id: str) -> SingleRunView:
    """The first outputs of an Upscale run, shown the moment the engine is done: the slider and its
    labels, and the run's line. The figures, diagram, crops and files follow (``single_view``)."""
    skip = gr.skip()
    slider, labels = pair_view(comparison, BASELINE_KEY, engine_id)
    return SingleRunView(
        slider=slider,
        labels=labels,
        summary="\n\n".join([*run_lines(comparison), "*Measuring how faithful it is\u2026*"]),
        truth=skip,
        png_file=skip,
        diagram=skip,
        svg_file=skip,
        where=skip,
        crops=skip,
        added=skip,
        state=skip,
    )


def cleared_single(note: str = "") -> SingleRunView:
    """Empty Upscale outputs: nothing of an earlier picture stays beside a new one. ``note``: one line
    shown in the slider's place (why there is no result), instead of its labels."""
    return SingleRunView(
        slider=None,
        labels=note_html(note) if note else before_after_html(short_label(BASELINE_SHORT), "the engine"),
        summary="",
        truth=None,
        png_file=None,
        diagram=diagram_html([]),
        svg_file=None,
        where=None,
        crops=empty_crops_html(),
        added=None,
        state=None,
    )


def unchanged() -> tuple:
    """``gr.skip()`` for every output: the page keeps what it shows (a stopped or overtaken run)."""
    return tuple(gr.skip() for _ in SingleRunView._fields)


def first_view(comparison: Comparison) -> tuple:
    """The outputs an Upscale run shows first: the slider and its labels (``preview_view``)."""
    return in_words(lambda: tuple(preview_view(comparison, comparison.first_id)))


def full_view(comparison: Comparison | None) -> tuple:
    """Every output of an Upscale run (blocking: it measures the figures and writes the files); a
    stopped run (None) leaves nothing of an earlier one."""
    if comparison is None:
        return tuple(cleared_single())
    return in_words(lambda: tuple(single_view(comparison, comparison.first_id)))
