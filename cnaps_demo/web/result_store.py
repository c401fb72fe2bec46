"""The runs a browser page may still ask about, kept on the server within a budget.

A run's ``Comparison`` (source, bicubic baseline, results: about 28 MB for a 1024 x 1024 picture,
110 MB at the page's 2048 x 2048 limit) is what the page's follow-ups draw from: the crop picker,
the Compare tab's pair picker, the filmstrip, "Inside the network". The page's ``gr.State`` holds
only the run's key (a short text); ``ResultStore`` holds the comparison

* for ``ttl_s`` after the run (the State's ``time_to_live`` is the same, and its
  ``delete_callback`` drops the entry when Gradio lets the State go);
* within ``max_bytes`` for every session together: the least recently used go first;
* until its browser session closes (``demo.unload``: ``drop_session``), or until the same session
  runs that tab again (one run per session and tab: the page shows only the newest).

An API or MCP call cannot follow up: its handler drops its run's entry as soon as the values are
out (``released``), so a crowd of fresh API sessions leaves nothing behind. One store per app.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .comparison import Comparison

UPSCALE_SLOT = "upscale"
COMPARE_SLOT = "compare"


def image_bytes(image: Image.Image | None) -> int:
    """Memory of a decoded picture: PIL keeps RGB as 4 bytes a pixel."""
    if image is None:
        return 0
    per_pixel = 1 if image.mode in ("1", "L", "P") else 2 if image.mode in ("LA", "I;16") else 4
    return image.width * image.height * per_pixel


def comparison_bytes(comparison: Comparison) -> int:
    """What keeping ``comparison`` costs: each distinct picture it holds, counted once."""
    source = comparison.source
    pictures = [source.image, source.original, source.truth, comparison.baseline]
    for result in comparison.results.values():
        pictures += [result.image, result.input_image, result.truth, *(frame.image for frame in result.frames)]
    seen: dict[int, int] = {}
    for picture in pictures:
        if picture is not None:
            seen[id(picture)] = image_bytes(picture)
    return sum(seen.values())


@dataclass
class _Entry:
    comparison: Comparison
    session: str
    slot: str
    size: int
    born: float


class ResultStore:
    """Comparisons by key, bounded by time, bytes and count. Thread-safe."""

    def __init__(
        self,
        max_bytes: int,
        ttl_s: float,
        *,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._on_release = on_release  # e.g. ``jobs.release_memory``: give the freed heap back
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._by_slot: dict[tuple[str, str], str] = {}

    def add(self, comparison: Comparison, session: str, slot: str = UPSCALE_SLOT) -> str:
        """Keep ``comparison`` for ``session``'s follow-ups; returns its key (also set on ``comparison.key``).
        The session's earlier run in ``slot`` goes: the page shows only the newest."""
        key = uuid.uuid4().hex
        comparison.key = key
        entry = _Entry(comparison, session, slot, comparison_bytes(comparison), self._clock())
        with self._lock:
            if session:
                self._pop(self._by_slot.get((session, slot)))
                self._by_slot[(session, slot)] = key
            self._entries[key] = entry
            released = self._prune()
        self._released(released)
        return key

    def get(self, key: Any) -> Comparison | None:
        """The comparison kept under ``key`` (a State's value), or None once it has gone."""
        if not isinstance(key, str):
            return None
        with self._lock:
            released = self._prune()
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        self._released(released)
        return None if entry is None else entry.comparison

    def replace(self, key: str, comparison: Comparison) -> None:
        """``comparison`` (the same run, its detail window moved) in place of the one under ``key``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                comparison.key = key
                entry.comparison = comparison

    def drop(self, key: Any) -> None:
        """Forget ``key`` (an API call that cannot follow up; a State that Gradio deletes)."""
        if not isinstance(key, str):
            return
        with self._lock:
            released = self._pop(key)
        self._released(released)

    def drop_session(self, session: str) -> int:
        """Forget every run of ``session`` (its browser tab closed). Returns how many."""
        with self._lock:
            keys = [key for key, entry in self._entries.items() if entry.session == session]
            for key in keys:
                self._pop(key)
        self._released(bool(keys))
        return len(keys)

    def stats(self) -> tuple[int, int]:
        """(entries, bytes) kept now."""
        with self._lock:
            return len(self._entries), sum(entry.size for entry in self._entries.values())

    def _pop(self, key: str | None) -> bool:
        entry = self._entries.pop(key, None) if key else None
        if entry is None:
            return False
        if self._by_slot.get((entry.session, entry.slot)) == key:
            del self._by_slot[(entry.session, entry.slot)]
        return True

    def _prune(self) -> bool:
        """Drop what is past its time, then the least recently used until within budget (lock held)."""
        cutoff = self._clock() - self.ttl_s
        dropped = [key for key, entry in self._entries.items() if entry.born < cutoff]
        for key in dropped:
            self._pop(key)
        total = sum(entry.size for entry in self._entries.values())
        while self._entries and (total > self.max_bytes or len(self._entries) > self.max_entries):
            key, entry = next(iter(self._entries.items()))
            total -= entry.size
            self._pop(key)
            dropped.append(key)
        return bool(dropped)

    def _released(self, released: bool) -> None:
        if released and self._on_release is not None:
            self._on_release()


def released(values: tuple, store: ResultStore | None, state_index: int) -> tuple:
    """``values`` of an API call's run with nothing kept for it and its State output empty: a client of
    the API cannot follow up, so nothing stays on the server for it."""
    state = values[state_index] if len(values) > state_index else None
    if isinstance(state, str) and store is not None:
        store.drop(state)
    elif not isinstance(state, (str, Comparison)):
        return values  # a skip (the preview) or None: nothing to let go
    return (*values[:state_index], None, *values[state_index + 1 :])


def kept_state(
    values: tuple, store: ResultStore | None, state_index: int, session: str, slot: str = UPSCALE_SLOT
) -> tuple:
    """``values`` of a page run whose State output is a ``Comparison`` (a GPU job, which on ZeroGPU ran in
    another process; a Compare run): the comparison kept in ``store`` under the calling session, the
    State given its key. Other values pass unchanged."""
    comparison = values[state_index] if len(values) > state_index else None
    if store is None or not isinstance(comparison, Comparison):
        return values
    key = store.add(comparison, session, slot)
    return (*values[:state_index], key, *values[state_index + 1 :])


def resolver(store: ResultStore | None) -> Callable[[Any], Comparison | None]:
    """A State's value -> its comparison: looked up by key, or the comparison itself (no store)."""

    def comparison_of(value: Any) -> Comparison | None:
        if isinstance(value, Comparison):
            return value
        return store.get(value) if store is not None else None

    return comparison_of
