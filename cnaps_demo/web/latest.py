"""Which Upscale-tab request of a browser session is the newest: older runs stop and show nothing.

Every click that starts a run (Upscale, an example) gets a number from ``begin_run``; a new picture and
an engine pick take a number too. The page's run events carry their click's number (a
``gr.State`` the click's first step writes), so a run can tell whether anything happened since:

* a run that is no longer the newest stops at its next step (its stop flag is set) and yields
  nothing, so what the page shows always belongs to the picture and settings in the input;
* Stop ends the session's runs, a running one at its next step and one that waits for its turn
  before it starts; what is on screen stays (it still belongs to the input).

Gradio's browser side drops a click on an event that is still running (``trigger_mode="once"``)
and defers it with ``"always_last"``; the page's run events use the latter, and this registry is what
keeps a deferred or overtaken run from drawing an older picture's result. One instance per app.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

# Sessions remembered at most (the oldest are forgotten first): a few ints each, so a public
# server's memory stays bounded however many browsers come and go.
MAX_SESSIONS = 10_000


class LatestRequests:
    """Per browser session: the newest request's number, the runs that watch it, and the last Stop."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._lock = threading.Lock()
        self._max_sessions = max_sessions
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._pending: dict[str, int] = {}  # a run's number from its click until it starts
        self._stopped_upto: dict[str, int] = {}  # numbers up to this were ended by Stop
        self._watched: dict[str, dict[threading.Event, int]] = {}  # running jobs' stop flags
        self._clicked_at: dict[str, float] = {}  # the newest run click's time in the browser (ms)
        self._stop_at: dict[str, float] = {}  # the last Stop's time in the browser (ms)
        self._stopped_late: dict[str, int] = {}  # a click that reached the server after its Stop: its number

    def _bump(self, session: str) -> int:
        """A new newest number for ``session``; flags every running job with an older one (lock held)."""
        number = self._newest.pop(session, 0) + 1
        self._newest[session] = number
        while len(self._newest) > self._max_sessions:
            old, _ = self._newest.popitem(last=False)
            self._pending.pop(old, None)
            self._stopped_upto.pop(old, None)
            self._clicked_at.pop(old, None)
            self._stop_at.pop(old, None)
            self._stopped_late.pop(old, None)
        for flag, watched in self._watched.get(session, {}).items():
            if watched < number:
                flag.set()
        return number

    def begin_run(self, session: str, at: float | None = None) -> int:
        """A click that starts a run (Upscale, an example): its number, for the run to carry. ``at``: when
        the browser saw the click (ms), so that a pick made just before it cannot cancel it (``supersede``)."""
        with self._lock:
            number = self._bump(session)
            stop_at = self._stop_at.get(session)
            if at is not None and stop_at is not None and at <= stop_at:
                # Stop was pressed after this click but reached the server first: the run is stopped
                # before it starts, as if the requests had come in the visitor's order.
                self._stopped_upto[session] = number
                self._stopped_late[session] = number
                return number
            self._pending[session] = number
            if at is not None:
                self._clicked_at[session] = at
            return number

    def supersede(self, session: str, at: float | None = None) -> int:
        """A new picture or engine: older runs stop and show nothing. Returns the newest number.

        The pick and a click right after it are two separate requests, which the server may take in
        either order (an engine picked and Upscale pressed within a few ms lost the run about once in
        20 tries). A pick that the browser saw no later than the newest click (``at``, ms) came before
        it: that click already runs with the new picture or engine, so nothing is stopped."""
        with self._lock:
            clicked = self._clicked_at.get(session)
            if at is not None and clicked is not None and at <= clicked:
                return self._newest.get(session, 0)
            self._pending.pop(session, None)
            return self._bump(session)

    def took_late_stop(self, session: str) -> bool:
        """Whether a click that reached the server after its Stop was stopped by it (asked once)."""
        with self._lock:
            return self._stopped_late.pop(session, None) is not None

    def stop(self, session: str, at: float | None = None) -> int:
        """The Stop button: the session's runs end (a running one says where it stopped; one that
        waits for its turn never starts). What is on screen stays: it still belongs to the input.
        Returns 1 when a run had been asked for and not started yet, else 0."""
        with self._lock:
            if at is not None:
                self._stop_at[session] = at
            waiting = self._pending.pop(session, None) is not None
            upto = self._newest.get(session, 0)
            self._stopped_upto[session] = upto
            for flag, watched in self._watched.get(session, {}).items():
                if watched <= upto:
                    flag.set()
            return int(waiting)

    def newest(self, session: str) -> int:
        """The session's newest number now: a follow-up job (drawn from what is on screen) takes it at its
        start, ``watch``es it and shows its outputs only while ``is_newest``, like a run."""
        with self._lock:
            return self._newest.get(session, 0)

    def is_newest(self, session: str, number: int | None) -> bool:
        """Whether the run numbered ``number`` is still what the page asked for last (its outputs
        belong on screen). A run without a number (an API client's) always is."""
        if number is None:
            return True
        with self._lock:
            return self._newest.get(session, 0) == number

    def may_start(self, session: str, number: int | None) -> bool:
        """Whether the run numbered ``number`` should still start: the newest, and not stopped."""
        if number is None:
            return True
        with self._lock:
            return self._newest.get(session, 0) == number and number > self._stopped_upto.get(session, -1)

    def ended_by_stop(self, session: str, number: int | None) -> bool:
        """Whether the Stop button (not a newer click) is what ended the run numbered ``number``."""
        if number is None:
            return True
        with self._lock:
            return number <= self._stopped_upto.get(session, -1)

    @contextmanager
    def watch(self, session: str, number: int | None, flag: threading.Event) -> Iterator[None]:
        """While the run numbered ``number`` works, a newer request sets ``flag`` (set at once when one
        came while the run waited for its turn)."""
        if number is None:
            yield
            return
        with self._lock:
            if self._pending.get(session) == number:
                del self._pending[session]
            if self._newest.get(session, 0) != number or number <= self._stopped_upto.get(session, -1):
                flag.set()
            self._watched.setdefault(session, {})[flag] = number
        try:
            yield
        finally:
            with self._lock:
                flags = self._watched.get(session, {})
                flags.pop(flag, None)
                if not flags:
                    self._watched.pop(session, None)
