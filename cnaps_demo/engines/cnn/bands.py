"""One CNN piece run as horizontal bands, one per core, each on a single-threaded worker (CPU only).

Why: torch splits each layer across the cores and waits at its end for the slowest core. When
something else takes part of one core (a browser on the same laptop, the web server's own
threads), every layer waits for that core. Bands, each on its own thread with one core's worth
of work, let the OS move the other load between cores, and no layer waits for another thread.
Measured on the 2-core AVX2 CPU, Real-ESRGAN on a 600x600 picture (median of 4, OpenMP passive):
3.70 s layer-split and 3.46 s in two bands when idle; with a process taking 30% of a core, 4.11 s
and 3.76 s.

Each band is cut with ``halo`` extra rows of its neighbours (at least the network's reach), so it
sees what the whole piece would show it: the result equals the whole-piece run (measured: bit for
bit). torch's thread count is per thread; the workers set theirs to one once, when the pool is
made, and the caller's count is put back at once (a thread that first touches torch takes the
count last set by any thread).
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable

import numpy as np

# The most the shared rows may add to a piece's work (a cut costs 2 x halo rows). Above it the
# piece runs whole, every core on each layer: on 2 cores a 600-row piece is cut (6% more work),
# on 16 cores only a piece of about 6000 rows would be.
MAX_SHARED = 0.1
# How often the calling thread hands the bands' progress on (and so may stop them), in seconds.
POLL_S = 0.05

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def band_count(rows: int, halo: int, threads: int) -> int:
    """How many bands a piece of ``rows`` rows is cut into on ``threads`` cores: one per core, or
    1 (run it whole) where the shared rows would cost more than ``MAX_SHARED`` of the work."""
    if threads < 2 or 2 * (threads - 1) * halo > MAX_SHARED * rows:
        return 1
    return threads


def run_in_bands(
    fn: Callable[[np.ndarray, Callable[[float], None]], np.ndarray],
    piece: np.ndarray,
    *,
    halo: int,
    scale: int,
    bands: int,
    on_step: Callable[[float], None],
) -> np.ndarray:
    """``fn(piece, on_step)`` (an x``scale`` upscaler of an HxWxC array) computed in ``bands``
    row bands at once.

    ``on_step`` gets the share of the whole piece done, always in the calling thread (a web job's
    progress and Stop belong to its own thread), about every ``POLL_S``. It may raise to stop:
    every band then ends at its next layer, and the error is raised here once they all have."""
    rows = piece.shape[0]
    edges = np.linspace(0, rows, bands + 1).round().astype(int)
    heights = np.diff(edges)
    done = [0.0] * bands
    stop = threading.Event()

    def one(band: int) -> np.ndarray:
        top, bottom = int(edges[band]), int(edges[band + 1])
        start, end = max(0, top - halo), min(rows, bottom + halo)

        def step(fraction: float) -> None:
            done[band] = fraction
            if stop.is_set():
                raise _Stopped

        out = fn(piece[start:end], step)
        return out[(top - start) * scale : (bottom - start) * scale]

    futures = [_workers(bands).submit(one, band) for band in range(bands)]
    try:
        reported = -1.0
        while True:
            finished, running = wait(futures, timeout=POLL_S, return_when=FIRST_EXCEPTION)
            if any(future.exception() is not None for future in finished):
                break
            share = float(np.dot(done, heights)) / rows
            if share > reported:
                reported = share
                on_step(share)
            if not running:
                break
    finally:
        stop.set()  # a no-op when every band is done; else they end at their next layer
        wait(futures)  # all of them, even after an error: no band is left running
    errors = [future.exception() for future in futures if future.exception() is not None]
    failure = next((error for error in errors if not isinstance(error, _Stopped)), None)
    if failure is not None:
        raise failure  # the band's own error, not the early end it caused in the others
    return np.concatenate([future.result() for future in futures], axis=0)


class _Stopped(Exception):
    """Ends a band early because another band failed or the caller stopped the job."""


def _workers(count: int) -> ThreadPoolExecutor:
    """The process's band workers (at least ``count``), each with one torch thread."""
    global _pool, _pool_size
    import torch

    with _pool_lock:
        if _pool is not None and _pool_size >= count:
            return _pool
        ready = threading.Barrier(count + 1)

        def single_threaded() -> None:
            # A thread takes the last count set by any thread at its first torch call: make that
            # call first, or the worker would take the caller's count back later.
            torch.get_num_threads()
            torch.set_num_threads(1)
            ready.wait()

        caller_threads = torch.get_num_threads()
        pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="cnaps-band", initializer=single_threaded)
        for _ in range(count):  # each task makes a new worker: the first ones wait in the barrier
            pool.submit(lambda: None)
        ready.wait()
        torch.set_num_threads(caller_threads)
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool, _pool_size = pool, count
        return pool
