"""``inside`` and ``attribution`` written as PNG files: one strip per layer, the decomposition, the
attribution overlay (the CLI's ``inside`` command)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..engines import INSIDE_ENGINE_ID
from ..image import save_png
from ..settings import Settings
from ..stages import ProgressFn
from . import pictures
from .looking import Inside, inside
from .tracing import Attribution, attribution


def _slug(text: str, longest: int = 48) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:longest].rstrip("-")


def write_inside(
    image: Any,
    folder: str | Path,
    stem: str,
    engine: str = INSIDE_ENGINE_ID,
    *,
    point: Any = None,
    region: Any = None,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
    **params: Any,
) -> tuple[Inside, Attribution, list[tuple[Path, str]]]:
    """Run ``inside`` and ``attribution`` (at ``point``, output pixels; default: the centre of the
    region) and write their pictures into ``folder`` as ``<stem>-<engine>-...png``. Returns both
    results and (path, what it shows) for each file written, in order."""
    seen = inside(image, engine, region=region, progress=progress, settings=settings, **params)
    if point is None:
        left, top, width, height = seen.region
        point = ((2 * left + width) * seen.scale // 2, (2 * top + height) * seen.scale // 2)
    found = attribution(image, engine, point, progress=progress, settings=settings, **params)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    prefix = f"{stem}-{seen.engine_id}"
    written: list[tuple[Path, str]] = []

    def save(picture, name: str, what: str) -> None:
        written.append((save_png(picture, target / f"{prefix}-{name}.png", {"Software": "cnaps-demo inside"}), what))

    for number, layer in enumerate(seen.layers, start=1):
        channels, height, width = layer.shape
        save(pictures.strip(layer.maps), f"layer{number:02d}-{_slug(layer.name)}",
             f"{layer.name} ({channels}x{height}x{width}): {layer.caption}")
    save(seen.base_image, "base", seen.base_label)
    save(seen.residual_image, "residual", f"{seen.residual_label} ({seen.residual_legend})")
    save(seen.output_image, "output", f"{seen.decomposition}, before the colour fix")
    save(found.overlay, "attribution", f"point {found.point}: {found.reading}")
    save(found.zoom, "attribution-zoom", "the same, enlarged around the receptive field")
    return seen, found, written
