"""Gradio controls for an engine's ``ParamSpec`` list (``web.requests`` reads their values back)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import gradio as gr

from ..engines import Engine, ParamSpec
from ..settings import Settings
from ..web.requests import ParamBinding, api_name_for

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+|none")  # "owner/name" (or "none"), not a path


def _label(spec: ParamSpec) -> str:
    return spec.name.replace("_", " ").capitalize()


def make_control(engine: Engine, spec: ParamSpec, settings: Settings | None = None) -> Any:
    """One control for ``spec``: dropdown/radio for choices, slider for bounded numbers, etc.

    It starts at the operator's value where a setting replaces the default (CNAPS_SD_MODEL), or blank
    (which means that value) when it is a server path: a visitor must not read the server's folders."""
    value = spec.default_for(settings)
    if spec.setting and isinstance(value, str) and not HUB_ID.fullmatch(value):
        value = None
    spec = dataclasses.replace(spec, default=value)
    label = _label(spec)
    info = spec.help or None
    elem_id = f"param-{api_name_for(engine.id, spec.name)}"
    if spec.kind == "choice":
        choices = [str(c) for c in spec.choices]
        value = str(spec.default) if spec.default is not None else (choices[0] if choices else None)
        if len(choices) <= 5:
            return gr.Radio(choices, value=value, label=label, info=info, elem_id=elem_id)
        return gr.Dropdown(choices, value=value, label=label, info=info, elem_id=elem_id)
    if spec.kind in ("int", "float"):
        bounded = spec.minimum is not None and spec.maximum is not None
        # A slider over a huge range (a seed) is unusable: take a number box instead.
        if bounded and not (spec.kind == "int" and float(spec.maximum) - float(spec.minimum) > 1000):
            if spec.kind == "int":
                step = 1
            else:
                span = float(spec.maximum) - float(spec.minimum)
                step = 0.01 if span <= 2 else 0.1 if span <= 30 else 1
            return gr.Slider(
                minimum=spec.minimum,
                maximum=spec.maximum,
                value=spec.default,
                step=step,
                label=label,
                info=info,
                elem_id=elem_id,
            )
        return gr.Number(
            value=spec.default,
            precision=0 if spec.kind == "int" else None,
            label=label,
            info=info,
            minimum=spec.minimum,
            maximum=spec.maximum,
            elem_id=elem_id,
        )
    if spec.kind == "bool":
        return gr.Checkbox(value=bool(spec.default), label=label, info=info, elem_id=elem_id)
    lines = 2 if "prompt" in spec.name else 1
    return gr.Textbox(
        value="" if spec.default is None else str(spec.default),
        label=label,
        info=info,
        lines=lines,
        max_lines=6,
        elem_id=elem_id,
    )


def build_param_groups(
    engines: list[Engine], selected: str, runnable: frozenset[str] | None = None, settings: Settings | None = None
) -> tuple[dict[str, Any], list[ParamBinding]]:
    """A group of controls per engine, shown while it is selected and can run here. Returns
    (groups by id, bindings). ``runnable``: the ids that can run (None: all)."""
    groups: dict[str, Any] = {}
    bindings: list[ParamBinding] = []
    for engine in engines:
        with gr.Group(visible=group_visible(engine.id, selected, runnable)) as group:
            if not engine.params:
                gr.Markdown(f"*{engine.display_name} has no settings.*", elem_classes="cnaps-status")
            for spec in engine.params:
                bindings.append(
                    ParamBinding(engine.id, spec, api_name_for(engine.id, spec.name), make_control(engine, spec, settings))
                )
        groups[engine.id] = group
    return groups, bindings


def group_visible(engine_id: str, selected: str, runnable: frozenset[str] | None) -> bool:
    """Settings show for the selected engine only, and not when it cannot run here (dead controls)."""
    return engine_id == selected and (runnable is None or engine_id in runnable)


def limited_choices(engine: Engine, scale: int, values: dict[str, Any]) -> dict[str, tuple[list[str], str]]:
    """For each choice parameter whose allowed values depend on the others: (choices, value to show).

    The value stays when it is still allowed; otherwise the default if allowed, else the first.
    """
    specs = {spec.name: spec for spec in engine.params}
    limits = engine.choice_limits(scale, {name: values.get(name, spec.default) for name, spec in specs.items()})
    updates = {}
    for name, allowed in limits.items():
        choices = [str(choice) for choice in allowed]
        current, default = str(values.get(name)), str(specs[name].default)
        value = current if current in choices else default if default in choices else (choices or [""])[0]
        updates[name] = (choices, value)
    return updates
