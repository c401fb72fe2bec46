"""The denoising filmstrip on the page: frames stream in while a diffusion job runs, then stay.

A diffusion engine hands each UNet step's picture to a callback (``Plan.load(..., frames=)``). The
callback here writes a small copy into the run's folder and files it under the browser session;
a ``gr.Timer`` on the page polls ``LiveFrames.snapshot`` while the job runs, so the audience sees
the drawing emerge; when the job ends the whole strip (with an animated WebP) comes from the
result itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..frames import save_filmstrip
from ..image import save_png
from .workdir import Workdir

THUMB_SIDE = 320  # px: a strip of many frames must stay light on a phone


def thumbnail(image: Any) -> Any:
    """A small RGB copy of a frame (at most ``THUMB_SIDE`` a side), as the strips show it."""
    copy = image.convert("RGB")
    copy.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return copy


def write_strip(frames: Sequence[Any], folder: Path) -> list[tuple[str, str]]:
    """Each frame as a small PNG in ``folder``: (path, caption) pairs for a ``gr.Gallery``."""
    items = []
    for frame in frames:
        path = save_png(thumbnail(frame.image), folder / f"step-{frame.step:03d}.png", {"cnaps:frame": frame.caption})
        items.append((str(path), frame.caption))
    return items


def finished_strip(comparison: Any) -> tuple[list[tuple[str, str]], str | None]:
    """A finished run's frames as the page shows them: (small PNGs with captions, the animated WebP);
    ([], None) when it made none."""
    frames = [frame for result in (comparison.results.values() if comparison else ()) for frame in result.frames]
    if not frames:
        return [], None
    return write_strip(frames, comparison.run_dir), str(save_filmstrip(frames, comparison.run_dir / "filmstrip.webp"))


class LiveFrames:
    """Frames of the running diffusion jobs, per browser session. One instance per app (no module state)."""

    def __init__(self, workdir: Workdir) -> None:
        self.workdir = workdir
        self._lock = threading.Lock()
        self._frames: dict[str, list[tuple[str, str]]] = {}

    def collector(self, session: str) -> Callable[[Any], None]:
        """A frame callback for one job of ``session``; it starts that session's strip afresh."""
        folder = self.workdir.new_run_dir()
        with self._lock:
            self._frames[session] = []

        def keep(frame: Any) -> None:
            item = write_strip([frame], folder)[0]
            with self._lock:
                self._frames.setdefault(session, []).append(item)

        return keep

    def snapshot(self, session: str) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._frames.get(session, ()))

    def forget(self, session: str) -> None:
        with self._lock:
            self._frames.pop(session, None)
