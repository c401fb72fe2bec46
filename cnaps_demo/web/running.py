"""Running one engine for the page: progress (and Stop) forwarding, weights on first use, the example cache."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..api import UpscaleResult, prepare
from ..engines import Engine
from ..errors import JobCancelledError
from ..present.result_cache import ExampleCache
from ..settings import Settings
from ..stages import ProgressFn
from .sources import Source

log = logging.getLogger(__name__)


# A percentage inside one step (a CNN layer) reaches the bar at most 4 times a second: a page re-lays
# itself out for each update, CPU taken from the job where the browser shares the cores. A new step
# (the next tile, a denoising step) and the end always show.
DISPLAY_EVERY_S = 0.25


def progress_forwarder(
    progress: Any, *, label: str = "", index: int = 0, count: int = 1, stop: threading.Event | None = None
) -> ProgressFn:
    """A ``ProgressFn`` for ``upscale()`` that reports into a ``gr.Progress`` (or any callable).

    When ``stop`` is set (the Stop button), the next progress step raises ``JobCancelledError``:
    engines call it once per tile or denoising step, so a job stops within one step.
    """

    started = time.monotonic()
    shown = {"at": -DISPLAY_EVERY_S, "what": None}  # the last update the bar got

    def forward(done: int, total: int, description: str) -> None:
        if stop is not None and stop.is_set():  # checked on every call: Stop lands within one layer
            raise JobCancelledError(
                f"Stopped at {description or 'the current step'}.", hint="Press the Upscale button to run again."
            )
        if progress is None:
            return
        now, what = time.monotonic() - started, _step_of(description)
        if now - shown["at"] < DISPLAY_EVERY_S and what == shown["what"] and done < total:
            return  # a percentage inside the same step, too soon after the last one
        shown.update(at=now, what=what)
        fraction = (done / total) if total else 0.0
        overall = (index + max(0.0, min(1.0, fraction))) / max(1, count)
        text = f"{label}: {description}" if label else description
        text += timing_text(time.monotonic() - started, overall)
        try:
            progress(overall, desc=text)
        except Exception as error:  # noqa: BLE001 - a progress bar must never break a run
            log.debug("progress update failed: %s", error)

    return forward


def _step_of(description: str) -> str:
    """ "Real-CUGAN tile 2/16, 35%" -> "Real-CUGAN tile 2/16": what a percentage is a percentage of."""
    head, _, tail = description.rpartition(", ")
    return head if head and tail.endswith("%") else description


def timing_text(elapsed: float, fraction: float) -> str:
    """" \u00b7 3 s, about 4 s left": the remainder extrapolated once a little of the work is done."""
    text = f" \u00b7 {elapsed:.0f} s"
    if 0.05 <= fraction < 1.0 and elapsed >= 0.5:
        text += f", about {max(1.0, elapsed * (1.0 - fraction) / fraction):.0f} s left"
    return text


def download_progress(progress: ProgressFn) -> Callable[[int, int, str], None]:
    """A weights download (bytes done, bytes in all, what) as steps of ``progress``, in megabytes."""

    def bytes_progress(done: int, total: int, description: str) -> None:
        megabytes = f"{done / 1e6:.0f} of {total / 1e6:.0f} MB" if total else f"{done / 1e6:.0f} MB"
        progress(done, total or 1, f"{description} (once): {megabytes}")

    return bytes_progress


def run_engine(
    source: Source,
    engine: Engine,
    params: dict[str, Any],
    *,
    settings: Settings,
    progress: ProgressFn,
    cache: ExampleCache | None = None,
    frames: Any = None,
    colour_fix: bool | None = None,
) -> UpscaleResult:
    """Run one engine (or take the example cache's copy); weights this server fetches on first use are
    fetched first (``Plan.provisioned``), with the download in the progress bar.

    A cached result is served even when the engine cannot run here any more (a talk on a laptop
    without the GPU the results were computed on); otherwise ``Request.run`` refuses with the fix
    (a ``CnapsError``). ``JobCancelledError`` (the Stop button) passes through too.
    """
    request = prepare(
        source.image,
        engine,
        progress=progress,
        max_pixels=settings.ui_max_input_pixels,
        limit_setting="CNAPS_UI_MAX_PIXELS",
        settings=settings,
        truth=source.truth,  # Simulate a blurry source: PSNR and SSIM join result.fidelity
        colour_fix=colour_fix,
        **({"frames": frames} if frames else {}),
        **params,
    )
    progress(0, 1, "starting")  # also where a Stop pressed before the start takes effect
    if cache is not None:  # before any download: a result computed ahead needs no weights here
        hit = cache.get(source.image, engine.id, request.params, colour_fix=request.plan.colour_fix)
        if hit is not None:
            progress(1, 1, "cached result")
            return hit
    request = dataclasses.replace(request, plan=request.plan.provisioned(download_progress(progress)))
    # Nothing is stored here: only the bundled examples' results are kept (ExampleCache.warm), never
    # a visitor's picture, which would pile up on a public server's disk.
    return request.run()
