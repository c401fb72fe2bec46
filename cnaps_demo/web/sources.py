"""The picture a run starts from: an image value admitted, decoded, and maybe made blurry first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from ..errors import InvalidImageError
from ..image import MIN_SIDE, LoadedImage, load_image
from ..present import compare
from ..settings import Settings
from .untrusted import Admitted

SIMULATE_NOTE = (
    "Blurry source simulated: your {w}\u00d7{h} picture was shrunk to {sw}\u00d7{sh}, blurred slightly and "
    "saved as a JPEG of quality 60. The original is the ground truth."
)


@dataclass
class Source:
    """What goes into the engine, and what to compare it with."""

    image: Image.Image  # the engine's input (the original, or its simulated blurry copy)
    original: Image.Image  # the decoded upload
    truth: Image.Image | None  # ground truth when the blurry source is simulated
    stem: str  # for download file names
    notices: tuple[str, ...] = ()


class InputPolicy(Protocol):
    """Decides what an image value may be: ``untrusted.UploadGuard`` for the web."""

    def admit(self, value: Any) -> Admitted: ...


def _stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-")
    return (stem or "image")[:40]


def load_source(value: Any, settings: Settings, simulate: bool = False, *, guard: InputPolicy) -> Source:
    """Admit ``value`` through ``guard``, then decode it through ``image.load_image`` (the page's limit).
    Raises ``CnapsError`` (a refused or unreadable picture)."""
    admitted = guard.admit(value)
    loaded = load_image(
        admitted.data, max_pixels=settings.ui_max_input_pixels, limit_setting="CNAPS_UI_MAX_PIXELS", name=admitted.name
    )
    if not simulate:
        return Source(loaded.image, loaded.image, None, _stem(admitted.name), tuple(loaded.notices))
    return _simulated(loaded, _stem(admitted.name))


def _simulated(loaded: LoadedImage, stem: str) -> Source:
    """The upload shrunk, blurred and JPEG'd (the engine's input), with the upload as ground truth."""
    width, height = loaded.image.size
    need = 2 * MIN_SIDE
    if min(width, height) < need:
        raise InvalidImageError(
            f"Your picture is {width} x {height} pixels; 'Simulate a blurry source' halves it, and "
            f"that needs at least {need} x {need}.",
            hint="Turn off 'Simulate a blurry source', or use a larger image.",
        )
    try:
        small, truth = compare.simulate_blurry_source(loaded.image)
    except ValueError as error:
        hint = "Turn off 'Simulate a blurry source' or use a larger image."
        raise InvalidImageError(f"{error}.", hint=hint) from None
    notices = list(loaded.notices)
    if loaded.image.mode == "RGBA":
        notices.append("Transparency was flattened onto white for the blurry-source simulation.")
    notices.insert(0, SIMULATE_NOTE.format(w=truth.width, h=truth.height, sw=small.width, sh=small.height))
    return Source(small, loaded.image, truth, stem, tuple(notices))
