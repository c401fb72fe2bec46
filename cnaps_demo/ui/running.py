"""Running one engine for the page: progress (and Stop) forwarding, the example cache, the result folder."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..api import Plan, UpscaleResult, prepare
from ..engines import Engine
from ..errors import CnapsError, DeviceUnavailableError, JobCancelledError
from ..present.result_cache import ExampleCache
from ..settings import Settings
from ..stages import ProgressFn
from .messages import ui_error
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


def fetch_on_first_use(plan: Plan, progress: ProgressFn) -> bool:
    """Fetch a diffusion engine's missing weights when this server may (a GPU, downloads allowed, the
    model on the operator's allowlist), with the download in the progress bar. True if it fetched."""
    if plan.engine.family != "diffusion" or plan.problem_type is DeviceUnavailableError:
        return False
    from ..engines.diffusion import ensure_weights, may_download

    settings, device = plan.settings, plan.options.device
    try:
        if not may_download(plan.engine.id, plan.params, settings=settings, device=device).ok:
            return False
    except CnapsError:  # not an engine with Hub weights: nothing to fetch, refuse as before
        return False

    def bytes_progress(done: int, total: int, description: str) -> None:
        megabytes = f"{done / 1e6:.0f} of {total / 1e6:.0f} MB" if total else f"{done / 1e6:.0f} MB"
        progress(done, total or 1, f"{description} (once): {megabytes}")

    return bool(ensure_weights(plan.engine.id, plan.params, settings=settings, device=device, progress=bytes_progress))


def with_weights(plan: Plan, progress: ProgressFn) -> Plan:
    """``plan``, or (when it lacked only weights this server fetches on first use) the plan after fetching them."""
    return replan(plan) if plan.problem and fetch_on_first_use(plan, progress) else plan


def replan(old: Plan) -> Plan:
    """``old`` with its availability looked at again (after a download the engine can run)."""
    ok, reason = old.engine.available(old.params, old.options)
    return dataclasses.replace(old, problem="" if ok else reason)


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
    """Run one engine (or take the example cache's copy); library errors become gr.Error.

    A cached result is served even when the engine cannot run here any more (a talk on a laptop
    without the GPU the results were computed on); otherwise ``Request.run`` refuses with the fix.
    ``JobCancelledError`` (the Stop button) passes through unchanged.
    """
    try:
        request = prepare(
            source.image,
            engine.id,
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
        request = dataclasses.replace(request, plan=with_weights(request.plan, progress))
        if cache is not None:
            hit = cache.get(source.image, engine.id, request.params, colour_fix=request.plan.colour_fix)
            if hit is not None:
                progress(1, 1, "cached result")
                return hit
        result = request.run()
    except JobCancelledError:
        raise  # not a failure: the caller tells the user and keeps what is on screen
    except CnapsError as error:
        raise ui_error(error) from None
    # Nothing is stored here: only the bundled examples' results are kept (ExampleCache.warm), never
    # a visitor's picture, which would pile up on a public server's disk.
    return result


class Workdir:
    """Per-app folder for every file the page shows or offers; folders older than ``max_age`` go.

    It lives inside Gradio's cache folder, so Gradio serves these files as they are instead of
    copying them (Gradio names its copies by content and rewrites them in place, which corrupts a
    download of one identical result while another job writes it). Each run gets a fresh folder
    and each file is written once, before its path is handed out.
    """

    def __init__(self, root: Path, max_age: float = 3600.0) -> None:
        self.root = Path(root)
        self.max_age = max_age
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run_dir(self) -> Path:
        self.prune()
        # Its birth time is in its name: a file written into it later (a moved crop window) must not
        # make an old folder look new, or a folder clicked on forever would never go.
        path = self.root / f"{int(time.time())}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def prune(self) -> None:
        cutoff = time.time() - self.max_age
        for child in self.root.iterdir():
            try:
                born, _, _ = child.name.partition("-")
                when = int(born) if born.isdigit() else child.stat().st_mtime
                if child.is_dir() and when < cutoff:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                pass
