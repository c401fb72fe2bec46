"""Our errors and notices as Gradio shows them: the one place that makes ``gr.Error`` and ``gr.Info``.

``web`` raises typed errors (``cnaps_demo.errors``) and words them for a visitor
(``web.words``); here they become Gradio's toasts. Expected errors print no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from ..errors import CnapsError, JobCancelledError
from ..web.words import title_for, titled, toast_text

T = TypeVar("T")
log = logging.getLogger(__name__)

UNEXPECTED_MESSAGE = (
    "Upscaling failed: something unexpected went wrong on the server (it is in the server log). "
    "Try again, or another engine or picture."
)


def ui_error(error: CnapsError) -> gr.Error:
    """A ``gr.Error`` carrying the message and its fix, led by what kind of problem it is."""
    return gr.Error(toast_text(error), title=title_for(error), print_exception=False)


def unexpected_error() -> gr.Error:
    """What a visitor reads of a failure that is not ours to word (its traceback goes to the log)."""
    return gr.Error(UNEXPECTED_MESSAGE, title="Upscaling failed", print_exception=False)


def tell(title: str, words: str, *, lead: bool = True) -> None:
    """A notice toast (it needs a queued event to show in the browser); ``lead``: its words start with
    the title (``web.words.titled``), for the toasts that stand alone."""
    gr.Info(titled(title, words) if lead else words, title=title)


def tell_stopped(stopped: JobCancelledError) -> None:
    """Where the Stop button ended a run, as a toast."""
    gr.Info(str(stopped), title="Stopped")


def in_words(draw: Callable[[], T]) -> T:
    """``draw()``; a failure while drawing a run's views (after its job) reaches the client as words,
    not as Gradio's empty error: a library error with its fix, anything else as one plain line."""
    try:
        return draw()
    except (gr.Error, JobCancelledError):
        raise
    except CnapsError as error:
        raise ui_error(error) from None
    except Exception as error:  # noqa: BLE001 - the traceback goes to the log, a plain line to the client
        log.exception("drawing a run's views failed")
        raise unexpected_error() from error
