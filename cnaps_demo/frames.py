"""The frames of a denoising run as records (``Frame``), and the strip they make: small PNGs, one
animated WebP or GIF. The diffusion engines make them; the CLI, the page and the example cache
write and read them, without importing an engine family.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import InvalidParameterError


@dataclass(frozen=True)
class Frame:
    """One UNet step of a diffusion job, as a picture of the model's current clean estimate."""

    step: int  # 1-based, counted over the whole job (tiles one after another)
    total: int  # UNet steps in the whole job
    image: Image.Image  # RGB, the output's size; the last frame is the result
    timestep: float  # the scheduler's timestep at this step (0..999 for SD 1.5)
    sigma: float  # the noise level (k-diffusion sigma) the step started from
    tile: int = 1  # 1-based tile this step worked on
    tiles: int = 1
    exact: bool = False  # True: VAE decode (a tile's last step); False: the linear preview

    @property
    def caption(self) -> str:
        """``step 3/7 · timestep 421 · noise σ 1.84`` (plus the tile when tiled): the strip's label."""
        text = f"step {self.step}/{self.total} · timestep {self.timestep:.0f} · noise σ {self.sigma:.2f}"
        if self.tiles > 1:
            text += f" · tile {self.tile}/{self.tiles}"
        return text


FrameFn = Callable[[Frame], None]


def filmstrip_bytes(frames: Sequence[Any], fmt: str = "webp", *, seconds_per_frame: float = 0.4) -> bytes:
    """The frames as one animated WebP (lossless) or GIF, looping; the last frame held 3x as long."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("webp", "gif"):
        raise InvalidParameterError(f"Cannot write a filmstrip as {fmt!r}.", hint="Use webp or gif.")
    images = [frame.image.convert("RGB") for frame in frames]
    if not images:
        raise InvalidParameterError(
            "There are no frames to write.", hint="Run a diffusion engine with frames=True (CLI: --frames DIR)."
        )
    size = images[-1].size
    images = [image if image.size == size else image.resize(size, Image.Resampling.BILINEAR) for image in images]
    durations = [round(seconds_per_frame * 1000)] * len(images)
    durations[-1] *= 3
    buffer = io.BytesIO()
    options: dict[str, Any] = {"lossless": True, "quality": 80} if fmt == "webp" else {"optimize": False}
    images[0].save(
        buffer, format=fmt.upper(), save_all=True, append_images=images[1:], duration=durations, loop=0, **options
    )
    return buffer.getvalue()


def save_filmstrip(frames: Sequence[Any], path: str | Path, *, seconds_per_frame: float = 0.4) -> Path:
    """Write the frames as an animated ``.webp`` or ``.gif`` (from the suffix), atomically."""
    from .files import atomic_write

    target = Path(path)
    return atomic_write(target, filmstrip_bytes(frames, target.suffix or "webp", seconds_per_frame=seconds_per_frame))


def write_frames(frames: Sequence[Any], folder: str | Path) -> Path:
    """Each frame as ``step_NN.png`` in ``folder`` and the whole strip as ``filmstrip.webp``; the strip's path."""
    from .image import save_png

    folder = Path(folder)
    width = len(str(len(frames)))
    for frame in frames:
        caption = {"cnaps:frame": frame.caption, "cnaps:exact": str(bool(frame.exact)).lower()}
        save_png(frame.image, folder / f"step_{frame.step:0{width}d}.png", caption)
    return save_filmstrip(frames, folder / "filmstrip.webp")
