"""Running a job for a web client: one stop flag per job, set by Stop, by cancel and by disconnect.

Every engine calls its progress function once per tile or denoising step, and
``running.progress_forwarder`` raises ``JobCancelledError`` there once the job's flag is set. The
flag is the only way a job stops, whoever asks:

* the Stop button (``StopRequests.stop`` for the browser session);
* a gradio_client ``job.cancel()``: Gradio cancels the asyncio task that awaits the job, and
  ``run_job`` turns that into the flag, then holds the concurrency slot until the worker thread
  has really stopped (within one step), so the next job never shares the CPU with a ghost;
* a client that goes away: Gradio marks its event dead, and ``run_job`` polls for that.

Also here: the admission check that gives the CPU and GPU lanes queues of their own, and
``JobControl``, which runs each event's work as such a job.
The small uses of Gradio internals (a job's liveness, a lane's queue length, the queue's polling
pace) live in ``GradioQueue`` and nowhere else, so a Gradio upgrade that moves them breaks one class, and the
tests that drive a real server catch it.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import gradio as gr

from ..errors import CnapsError
from ..web.latest import LatestRequests
from .messages import tell, ui_error, unexpected_error

T = TypeVar("T")
log = logging.getLogger(__name__)

BUSY_MESSAGE = "The server is busy: {waiting} jobs are already waiting for the {lane} queue. Try again in a minute."
# An input value longer than this (a picture inline as a data: URL) is not left in Gradio's session state.
INLINE_KEEP_CHARS = 64 * 1024
# After the last job ends, freed memory is handed back again these many seconds later: its views are
# drawn by then, and Gradio has let go of the call's inputs and outputs.
IDLE_TRIM_S = (3.0, 15.0)
# How often a running job checks whether its client is still there.
ALIVE_POLL_S = 0.25


class StopRequests:
    """The Stop button's flags, per browser session. One instance per app (no module state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, set[threading.Event]] = {}

    def begin(self, session: str) -> threading.Event:
        """A new flag for a job of ``session``; pass it to ``progress_forwarder``, then ``end`` it."""
        flag = threading.Event()
        with self._lock:
            self._running.setdefault(session, set()).add(flag)
        return flag

    def end(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            flags = self._running.get(session, set())
            flags.discard(flag)
            if not flags:
                self._running.pop(session, None)

    def stop(self, session: str) -> int:
        """Flag every running job of ``session``; returns how many there were."""
        with self._lock:
            flags = list(self._running.get(session, ()))
        for flag in flags:
            flag.set()
        return len(flags)

    def running(self) -> int:
        with self._lock:
            return sum(len(flags) for flags in self._running.values())


async def run_job(work: Callable[[], T], *, stop: threading.Event, alive: Callable[[], bool]) -> T:
    """Run blocking ``work`` in a worker thread; cancellation or a lost client sets ``stop``.

    ``work`` sees Gradio's context (progress bars and toasts work from the thread). On
    cancellation this waits for ``work`` to return or raise (one tile or step after the flag is
    set) before letting the cancellation through, so the slot is freed only when the CPU is.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    future = loop.run_in_executor(None, context.run, work)
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=ALIVE_POLL_S)
            if done:
                return future.result()
            if not stop.is_set() and not alive():
                stop.set()
    except asyncio.CancelledError:
        stop.set()
        await _settle(future)
        raise


async def _settle(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, whatever it raises and however often we are cancelled."""
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            continue
    if not future.cancelled():
        future.exception()  # marks an error as retrieved: the cancellation is what the caller reports


# Gradio's queue looks for new work every 1 ms while it has none, and for progress to send every
# 10 ms: about a tenth of a core with nobody on the page, taken from a job on a 2-core machine (and
# the job's threads wait for the interpreter behind it). At 20 ms and 50 ms a job starts at most
# 20 ms later and progress can still show 20 times a second (we send at most 4). Measured on the
# 2-core AVX2 CPU, an idle server: 10% of a core -> 2%.
QUEUE_POLL_S = 0.02
PROGRESS_POLL_S = 0.05


class GradioQueue:
    """The facts about Gradio's queue that jobs need, and its polling pace. The only user of its internals."""

    def __init__(self, demo: gr.Blocks) -> None:
        self._demo = demo

    def _queue(self) -> Any:
        return getattr(self._demo, "_queue", None)

    def alive(self, event_id: str | None) -> bool:
        """False once the client of ``event_id`` has cancelled or disconnected."""
        queue = self._queue()
        if queue is None or event_id is None:
            return True
        event = queue.event_ids_to_events.get(event_id)
        return True if event is None else bool(event.alive)

    def waiting(self, lane: str) -> int:
        """Jobs of ``lane`` (a concurrency id) that wait for a slot."""
        queue = self._queue()
        if queue is None:
            return 0
        lane_queue = queue.event_queue_per_concurrency_id.get(lane)
        return len(lane_queue.queue) if lane_queue is not None else 0

    def forget_inline_inputs(self, session: str, keep_chars: int = INLINE_KEEP_CHARS) -> int:
        """Drop the large inline inputs (a picture as a ``data:`` URL) Gradio copied into ``session``'s
        state: it keeps every input value of every session, for as long as it keeps the session,
        so one 30 MB pasted picture per API call would pile up. Our handlers have them already.
        Returns how many it dropped."""
        holder = getattr(self._demo, "state_holder", None)
        state = getattr(holder, "session_data", {}).get(session) if session else None
        dropped = 0
        for config in getattr(state, "config_values", {}).values():
            props = config.get("props") if isinstance(config, dict) else None
            value = props.get("value") if isinstance(props, dict) else None
            inline = value.get("url") if isinstance(value, dict) else value
            if isinstance(inline, str) and len(inline) > keep_chars:
                props["value"] = None
                dropped += 1
        return dropped

    def poll_gently(self) -> bool:
        """Slow the queue's polling to ``QUEUE_POLL_S`` / ``PROGRESS_POLL_S``; call after
        ``demo.queue()``, which makes a new queue. False where this Gradio has no such knobs."""
        queue = self._queue()
        knobs = ("sleep_when_free", "progress_update_sleep_when_free")
        if queue is None or not all(isinstance(getattr(queue, knob, None), (int, float)) for knob in knobs):
            return False
        queue.sleep_when_free = QUEUE_POLL_S
        queue.progress_update_sleep_when_free = PROGRESS_POLL_S
        return True


def release_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise), so an idle server shrinks again."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def collect_and_release() -> None:
    """``release_memory`` after a garbage collection: a failed call's traceback holds its inputs (a
    30 MB pasted picture) in a reference cycle that only the collector frees."""
    gc.collect()
    release_memory()


def current_event_id() -> str | None:
    """The Gradio event the calling handler serves (None outside an event)."""
    from gradio.context import LocalContext

    return LocalContext.event_id.get(None)


def current_session() -> str:
    """The browser session of the Gradio event the calling code serves ("" outside one)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return (getattr(request, "session_hash", None) or "") if request is not None else ""


class Lanes:
    """Separate waiting room per lane ("cpu", "gpu"): a full CPU queue never refuses GPU callers.

    Gradio's own ``max_size`` counts all lanes together, so it is only a backstop (twice the sum);
    each event's validator refuses a job whose lane is full, before it is queued.
    """

    NAMES = {"cpu": "CPU", "gpu": "GPU", "explain": "explainer"}
    # An admitted job counts as waiting until Gradio has surely queued it (validators of
    # simultaneous requests run in parallel, before any of their jobs is in the queue).
    RESERVATION_S = 2.0

    def __init__(self, queue: GradioQueue, sizes: dict[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        self._queue = queue
        self.sizes = dict(sizes)
        self._clock = clock
        self._lock = threading.Lock()
        self._reserved: dict[str, list[float]] = {lane: [] for lane in sizes}

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    def refusal(self, lane: str) -> str | None:
        """The "busy" message when ``lane``'s waiting room is full, else None (and a place is held)."""
        with self._lock:
            now = self._clock()
            fresh = [t for t in self._reserved[lane] if now - t < self.RESERVATION_S]
            waiting = self._queue.waiting(lane) + len(fresh)
            if waiting >= self.sizes[lane]:
                self._reserved[lane] = fresh
                return BUSY_MESSAGE.format(waiting=waiting, lane=self.NAMES.get(lane, lane))
            self._reserved[lane] = [*fresh, now]
        return None

    def started(self, lane: str) -> None:
        """A job of ``lane`` has left the waiting room: it no longer holds a place there."""
        with self._lock:
            if self._reserved[lane]:
                self._reserved[lane].pop(0)

    def validator(self, lane: str) -> Callable[..., tuple[Any, ...]]:
        """An event ``validator``: refuses when the lane is full, else passes every input unchanged.

        A refusal is a validation result (HTTP 422), which gradio_client raises with our message.
        """

        def admit_job(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            answers = [gr.skip() for _ in range(len(args) + len(kwargs))]  # one answer per input
            forget = getattr(self._queue, "forget_inline_inputs", None)  # a stand-in queue may lack it
            if forget is not None:
                forget(current_session())  # admitted or not, Gradio kept the inputs: let a large one go
            message = self.refusal(lane)
            if message is not None and answers:
                answers[0] = gr.validate(False, message)
            return tuple(answers)

        return admit_job


def session_of(request: gr.Request | None) -> str:
    """The browser session a job belongs to (the Stop button stops only its own session's jobs)."""
    return (getattr(request, "session_hash", None) or "") if request is not None else ""


class JobControl:
    """One app's jobs: its queue view, its lanes and its Stop flags, used by every run event."""

    def __init__(self, queue: GradioQueue, lanes: Lanes, stops: StopRequests) -> None:
        self.queue = queue
        self.lanes = lanes
        self.stops = stops

    async def run(self, work: Callable[[threading.Event], T], request: gr.Request | None, lane: str = "cpu") -> T:
        """Run ``work(stop_flag)`` in ``lane`` so that Stop, cancel and a lost client all end it."""
        self.lanes.started(lane)
        session = session_of(request)
        self.queue.forget_inline_inputs(session)  # the work has its inputs; Gradio's copy can go
        stop = self.stops.begin(session)
        event_id = current_event_id()
        try:
            return await run_job(lambda: work(stop), stop=stop, alive=lambda: self.queue.alive(event_id))
        except (gr.Error, asyncio.CancelledError):
            raise
        except CnapsError as error:  # a library error that no handler put in a visitor's words
            raise ui_error(error) from None
        except Exception as error:  # noqa: BLE001 - Gradio would send an empty error: say something
            log.exception("a job failed")  # the operator's traceback; the visitor gets one plain line
            raise unexpected_error() from error
        finally:
            self.stops.end(session, stop)
            if not self.stops.running():
                release_memory()
                # The run's views are drawn after its job (figures, PNGs: hundreds of MB at 2048 px);
                # once that is done too, and still nothing runs, hand that back as well.
                for delay in IDLE_TRIM_S:
                    asyncio.get_running_loop().call_later(delay, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        if not self.stops.running():
            asyncio.get_running_loop().run_in_executor(None, collect_and_release)

    def stop(self, request: gr.Request | None) -> int:
        """Flag every running job of the caller's session; returns how many there were. A call without
        a session (an API client's) names no session: it stops nothing, not every such job."""
        session = session_of(request)
        return self.stops.stop(session) if session else 0


# When the browser saw a click (ms since 1970): the order the visitor acted in, which two unqueued
# requests (a pick and Upscale, Upscale and Stop) may lose on their way to the server.
BROWSER_TIME_JS = "() => Date.now()"
# How long "Nothing is running" waits for a click that came before Stop but reached the server after it.
LATE_CLICK_S = 0.5


def browser_time(value: Any) -> float | None:
    """The browser's time sent with an event, or None when it is not a finite number (then the server's
    order decides, as before)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) < 1e15 else None


def wire_stop(buttons: Sequence[gr.Button], control: JobControl, latest: LatestRequests) -> None:
    """Stop (on every tab): flags the jobs of the caller's own browser session (they end within one
    step); a run that was asked for and waits for its turn never starts."""
    stopped = gr.State("")

    def stop_jobs(at: Any = None, request: gr.Request = None) -> str:
        waiting = latest.stop(session_of(request), browser_time(at))
        running = control.stop(request)
        return "waiting" if waiting else ("running" if running else "")

    async def say_if_nothing_ran(what: str, request: gr.Request = None) -> None:
        if not what:  # an Upscale click just before Stop may reach the server just after it: a moment's grace
            await asyncio.sleep(LATE_CLICK_S)
            what = "waiting" if latest.took_late_stop(session_of(request)) else what
        if what == "waiting":  # a running job says where it stopped itself
            tell("Stopped", "Stopped before it started. Press the Upscale button to run again.", lead=False)
        elif not what:
            tell("Stop", "Nothing is running.", lead=False)

    gr.on(
        [button.click for button in buttons],
        stop_jobs,
        inputs=gr.Number(visible=False),
        js=BROWSER_TIME_JS,
        outputs=stopped,
        queue=False,  # at once: it must not wait behind anything
        api_visibility="private",
    ).then(  # queued, because only queued events show toasts in the browser; no limit, so it never waits
        say_if_nothing_ran,
        inputs=stopped,
        outputs=None,
        api_visibility="private",
        concurrency_id="stop",
        concurrency_limit=None,
        show_progress="hidden",
    )
