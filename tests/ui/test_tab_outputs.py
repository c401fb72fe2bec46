"""Each tab declares its outputs once: the view type's field names name its components, in order.

A run's values are a ``NamedTuple`` (``SingleRunView``, ``CompareView``); the tab's output list is
derived from its field names, so adding an output means one field and one component of that name.
"""

import gradio as gr

from cnaps_demo.engines import all_engines
from cnaps_demo.present.examples import bundled_examples
from cnaps_demo.settings import get_settings
from cnaps_demo.ui.compare_tab import CompareView, build_compare_tab
from cnaps_demo.ui.upscale import SingleRunView, build_upscale_tab, shown
from cnaps_demo.web.picker import default_engine_id


def build_tabs():
    settings, engines = get_settings(), all_engines()
    with gr.Blocks():
        with gr.Tabs():
            upscale = build_upscale_tab(engines, settings, default_engine_id(engines, settings), bundled_examples())
            compare = build_compare_tab(engines, settings)
    return upscale, compare


def test_the_upscale_tabs_outputs_are_the_components_its_view_names():
    upscale, _ = build_tabs()
    outputs = upscale.run_outputs()
    assert len(outputs) == len(SingleRunView._fields) == len(set(map(id, outputs)))
    for name, component in zip(SingleRunView._fields, outputs):
        owner = upscale.result if hasattr(upscale.result, name) else upscale.detail
        assert getattr(owner, name) is component, name
    assert not set(SingleRunView._fields) - set(vars(upscale.result)) - set(vars(upscale.detail))
    assert len(shown.cleared_single()) == len(shown.unchanged()) == len(outputs)  # every view fills every output


def test_the_compare_tabs_outputs_are_the_components_its_view_names():
    _, compare = build_tabs()
    outputs = compare.outputs()
    assert outputs == [getattr(compare, name) for name in CompareView._fields]
    assert len(set(map(id, outputs))) == len(CompareView._fields)


def test_a_view_field_without_its_component_is_caught():
    """The check can fail: a view naming a component the tab does not have."""
    upscale, _ = build_tabs()
    extra = SingleRunView._fields + ("no_such_output",)
    assert not all(hasattr(upscale.result, name) or hasattr(upscale.detail, name) for name in extra)
