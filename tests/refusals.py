"""What a visitor reads of a refusal, for the tests of the page's logic (shared by tests/web/)."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import gradio as gr
import pytest

from cnaps_demo.errors import CnapsError
from cnaps_demo.ui.messages import ui_error


@contextmanager
def toast():
    """What a visitor reads of a refusal: the typed error as ``ui.messages.ui_error`` shows it (the one
    place that turns our errors into Gradio's); ``.value`` is that ``gr.Error``."""
    caught = SimpleNamespace(value=None)
    try:
        yield caught
    except CnapsError as error:
        caught.value = ui_error(error)
    except gr.Error as error:
        caught.value = error
    else:
        pytest.fail("nothing was refused")
