"""The AUTOMATIC1111 ``parameters`` PNG text chunk: a result's settings in the web UI's own words.

A1111 writes (and its PNG Info tab reads) one text chunk named ``parameters``::

    anime illustration, clean line art
    Negative prompt: blurry, lowres
    Steps: 25, Sampler: DPM++ 2M, CFG scale: 6.0, Seed: 0, Size: 1024x1024, Model: dreamshaper-8, ...

The prompt lines, then an optional ``Negative prompt:`` line, then one line of ``Key: value``
pairs; a value holding a comma, colon or newline is written as a JSON string (as A1111 quotes
it). :func:`parse_parameters` reads the format back the way A1111's PNG Info does. What differs
between engines (the sampler's name, whether the prompt counted, the steps and extra fields) is
each engine's own declaration (``descriptor.DiffusionTraits``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...version import __version__
from . import controlnet as cn
from .descriptor import Traits

# A1111's own pattern for one "Key: value" pair of the last line.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def quote(text: str) -> str:
    """A value as A1111 writes it: plain, or a JSON string when it holds ``,``, ``:`` or a newline."""
    text = str(text)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def model_name(ref: str) -> str:
    """What A1111 would call the checkpoint: the file or folder name, without ``.safetensors``."""
    name = Path(str(ref).strip().replace("\\", "/")).name
    return name[: -len(".safetensors")] if name.lower().endswith(".safetensors") else name


def controlnet_unit(ref: str, scale: float | None) -> str:
    """A1111's ControlNet extension's ``ControlNet 0`` value for the tile ControlNet ``ref``."""
    weight = float(cn.DEFAULT_SCALE if scale is None else scale)
    return (
        f"Module: tile_resample, Model: {model_name(ref)}, "
        f"Weight: {weight}, Guidance Start: 0.0, Guidance End: 1.0"
    )


def a1111_parameters(engine: Traits, params: dict[str, Any], size: tuple[int, int]) -> str:
    """The ``parameters`` text of a result of the diffusion ``engine`` (``size``: the output's width
    and height)."""
    prompt = str(params.get("prompt", ""))
    guidance = float(params.get("guidance", 0))
    if engine.prompt_needs_guidance and guidance == 0:
        prompt = ""  # e.g. the latent upscaler ignores the prompt without guidance
    lines = [prompt]
    negative = str(params.get("negative_prompt", ""))
    if negative and guidance > 1:
        lines.append(f"Negative prompt: {negative}")
    own = engine.a1111_fields(params)
    pairs: list[tuple[str, Any]] = [
        ("Steps", own.pop("Steps")),
        ("Sampler", engine.sampler),
        ("CFG scale", guidance),
        ("Seed", int(params.get("seed", 0))),
        ("Size", f"{size[0]}x{size[1]}"),
        ("Model", model_name(params["model"])),
        *own.items(),
        ("Version", f"cnaps-demo {__version__}"),
    ]
    lines.append(", ".join(f"{key}: {quote(str(value))}" for key, value in pairs))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict[str, str]:
    """Read a ``parameters`` text as A1111's PNG Info does: ``Prompt``, ``Negative prompt`` and each pair."""
    *lines, last = text.strip().split("\n")
    pairs = _PARAM.findall(last)
    if len(pairs) < 3:  # not a settings line: all of it is prompt
        lines.append(last)
        pairs = []
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    out = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in pairs:
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = json.loads(value)
        out[key.strip()] = value
    return out
