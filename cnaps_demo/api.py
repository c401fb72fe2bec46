"""``upscale()``: one image in, one engine, one result out (image + stage records)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from . import imaging
from .engines import RunOptions, get_engine
from .errors import EngineUnavailableError
from .stages import ProgressFn, StageRecord, no_progress
from .version import __version__


@dataclass
class UpscaleResult:
    image: Image.Image  # RGB or RGBA, scale x the input
    input_image: Image.Image  # the decoded input (RGB or RGBA)
    engine_id: str
    engine_name: str
    scale: int
    params: dict[str, Any]
    stages: list[StageRecord]
    seconds: float
    notices: tuple[str, ...] = ()
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, str]:
        """Text chunks written into the output PNG."""
        return {
            "Software": f"cnaps-demo {__version__}",
            "cnaps:engine": self.engine_id,
            "cnaps:scale": str(self.scale),
            "cnaps:params": json.dumps(self.params, sort_keys=True, default=str),
            "cnaps:version": __version__,
        }

    def png_bytes(self) -> bytes:
        return imaging.encode_png(self.image, self.metadata)

    def save(self, path: str | Path) -> Path:
        return imaging.save_png(self.image, path, self.metadata)


def upscale(
    image: Any,
    engine: str = "realcugan",
    *,
    scale: int | None = None,
    device: str = "auto",
    tile: int = 0,
    progress: ProgressFn = no_progress,
    max_pixels: int | None = None,
    **params: Any,
) -> UpscaleResult:
    """Upscale ``image`` (path, bytes, PIL image or numpy array) with ``engine``.

    Everything is checked before any model loads: the image header, the engine id, the
    scale, the parameters, and whether the engine can run here.
    """
    chosen = get_engine(engine)
    scale = chosen.check_scale(scale)
    checked = chosen.check_params(params)
    loaded = imaging.load_image(image, max_pixels=max_pixels)
    ok, reason = chosen.available(device=device, params=checked)
    if not ok:
        raise EngineUnavailableError(f"{chosen.display_name} ({chosen.id}) cannot run here.", hint=reason)

    started = time.perf_counter()
    rgb, alpha = imaging.split_alpha(loaded.image)
    options = RunOptions(device=device, tile=tile, progress=progress)
    output = chosen.run(rgb, scale=scale, params=checked, options=options)
    stages = list(output.stages)
    if alpha is not None:
        alpha_started = time.perf_counter()
        result_image = imaging.merge_alpha(output.image, alpha)
        stages.append(
            StageRecord(
                "alpha bicubic x" + str(scale),
                (1, alpha.height, alpha.width),
                (1, result_image.height, result_image.width),
                time.perf_counter() - alpha_started,
            )
        )
    else:
        result_image = output.image
    return UpscaleResult(
        image=result_image,
        input_image=loaded.image,
        engine_id=chosen.id,
        engine_name=chosen.display_name,
        scale=scale,
        params=checked,
        stages=stages,
        seconds=time.perf_counter() - started,
        notices=loaded.notices,
        device=device,
    )
