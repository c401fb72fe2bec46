"""The Upscale tab's engine picker: its card and settings follow the choice, choices that depend on
other settings follow them, and a large upload on a CPU-only server gets the faster engine."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from ...engines import FAST_CPU_ENGINE_ID, Engine, all_engines, get_engine
from ...settings import Settings
from ...web.picker import engine_card_html, engine_for_picture, runnable_ids
from ...web.runs import RunSetup
from ..messages import tell
from ..params import group_visible, limited_choices
from .layout import UpscaleTab


def wire_engine_picker(tab: UpscaleTab, settings: Settings, gpu_ids: frozenset[str]) -> None:
    """Picking an engine: its card, its settings and the right Upscale button (only where it can run here)."""
    panel = tab.inputs
    runnable = frozenset(runnable_ids(all_engines(), settings))

    def on_engine_change(engine_id: str):
        visible = [gr.update(visible=group_visible(eid, engine_id, runnable)) for eid in panel.groups]
        # An engine that cannot run here keeps no run button, Stop nor filmstrip: its card says why.
        live, is_gpu = engine_id in runnable, engine_id in gpu_ids
        buttons = [gr.update(visible=live and not is_gpu), gr.update(visible=live and is_gpu), gr.update(visible=live)]
        strip = gr.update(visible=live and engine_id in filmstrip_ids)
        return [engine_card_html(engine_id, settings), *visible, *buttons, strip]

    filmstrip_ids = frozenset(engine.id for engine in all_engines() if engine.makes_frames)
    panel.engine.change(
        on_engine_change,
        inputs=panel.engine,
        outputs=[
            panel.status, *panel.groups.values(), panel.run_cpu, panel.run_gpu, panel.stop, tab.result.filmstrip_box
        ],
        queue=False,
        api_visibility="private",
    )


def wire_choice_limits(tab: UpscaleTab, engines: Sequence[Engine], scale: int = 2) -> None:
    """Choices that depend on other settings (Real-CUGAN's denoise levels per variant) follow them,
    so that a combination without a model cannot be picked."""
    for engine in engines:
        bindings = [binding for binding in tab.inputs.bindings if binding.engine_id == engine.id]
        limited = limited_choices(engine, scale, {binding.spec.name: binding.spec.default for binding in bindings})
        if not limited:
            continue
        drivers = [binding for binding in bindings if binding.spec.kind == "choice" and binding.spec.name not in limited]
        targets = [binding for binding in bindings if binding.spec.name in limited]

        def follow(*values, engine=engine, bindings=bindings, targets=targets):
            named = {binding.spec.name: value for binding, value in zip(bindings, values)}
            updates = limited_choices(engine, scale, named)
            changed = [gr.update(choices=updates[t.spec.name][0], value=updates[t.spec.name][1]) for t in targets]
            return changed[0] if len(changed) == 1 else changed  # Gradio takes one output's list as its value

        gr.on(
            [binding.component.change for binding in drivers],
            follow,
            inputs=[binding.component for binding in bindings],
            outputs=[binding.component for binding in targets],
            queue=False,
            api_visibility="private",
        )


def wire_large_picture_engine(tab: UpscaleTab, setup: RunSetup, default_id: str) -> None:
    """A large upload on a CPU-only server switches the page's default engine to the faster one
    (``picker.engine_for_picture``), and says so; an engine the visitor picked always stays."""
    panel = tab.inputs
    picked = gr.State(False)  # per browser session: has the visitor chosen an engine themselves?
    panel.engine.input(lambda: True, outputs=picked, queue=False, api_visibility="private")

    def follow(image_value, current_id, visitor_picked):
        size = setup.picture_size(image_value)
        chosen = engine_for_picture(size, current_id, bool(visitor_picked), default_id, setup.settings)
        if chosen == current_id:
            return gr.skip()
        if chosen == FAST_CPU_ENGINE_ID and size is not None:
            fast, usual = get_engine(chosen).short_name, get_engine(default_id).short_name
            words = (
                f"{size[0]}\u00d7{size[1]} runs on {fast}, about 1.3x faster than {usual} on this CPU "
                f"server. Pick {usual} in the engine list to use it anyway."
            )
            tell("Faster engine for a large picture", words)
        return chosen

    panel.image.upload(
        follow,
        inputs=[panel.image, panel.engine, picked],
        outputs=panel.engine,
        preprocess=False,
        api_visibility="private",  # queued (its own quick slot): a toast needs the queue
    )
