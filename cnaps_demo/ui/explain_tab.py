"""The "How does it work?" tab: a guided tour whose steps open the live views of the Upscale tab
(on the visitor's picture or an example), the explanation with its sources, a glossary, and the
engines' and methods' credits apart from the sources; and /explain, the explanation as plain text."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from ..engines import Engine
from ..present import tour
from ..present.explain import credits_html, explanation_html, explanation_text
from ..settings import Settings
from ..web.picker import visitor_availability


def build_explain_tab(engines: Sequence[Engine], settings: Settings) -> None:
    """Lays out the tab and wires its step buttons (browser-only: they switch tab and scroll)."""
    with gr.Tab("How does it work?", id="explain"):
        gr.HTML(tour.intro_html(), elem_id="cnaps-tour")
        for index, step in enumerate(tour.STEPS):
            with gr.Row(equal_height=True, elem_classes="cnaps-tour-step"):
                gr.HTML(tour.step_html(step), min_height=0)
                target = gr.Textbox(step.target, visible=False)
                button = gr.Button(step.button, size="sm", scale=0, min_width=170, elem_id=f"cnaps-tour-{index + 1}")
            button.click(None, inputs=target, js=tour.SHOW_JS, api_visibility="private")
        gr.HTML(explanation_html(), elem_id="cnaps-explain")
        gr.HTML(tour.glossary_html(), elem_id="cnaps-glossary")
        gr.HTML(credits_html(engines, lambda engine: visitor_availability(engine, settings)), elem_id="cnaps-credits")


def wire_explain_api() -> None:
    """/explain: the explanation as plain text with its sources, for scripts and MCP agents."""

    def explain() -> str:
        """How AI upscaling makes a 2x enlargement of an illustration look crisp: the task, the three
        paths this demo runs (classical interpolation, an anime CNN, Stable Diffusion img2img), and
        the papers and code behind them, with links.

        Returns:
            The explanation as plain text, followed by the sources with their URLs.
        """
        return explanation_text()

    gr.api(explain, api_name="explain")
