"""Tune glibc's allocator for the CNN feature maps: ``keep_freed_memory()``, once per process.

A CNN run allocates and frees one 16-64 MB feature map per layer. By default glibc serves
blocks that size with mmap and unmaps them on free, so every layer page-faults its output in
again: a quarter to a third of Real-ESRGAN's CPU time at 512x512 (measured, one core).
Raising the mmap and trim thresholds lets a freed map be reused at once. That only works in
glibc's main arena: a thread's own arena lives in heaps of at most 64 MB, so its big blocks
are mmap'ed whatever the threshold. The web server runs jobs in worker threads (measured: a
600x600 Real-ESRGAN job took 5.8 s there against 4.2 s in the main thread), so every thread
is kept on the main arena too. glibc fixes its arena limit when the first thread arena is
made, so the server calls this first thing, before any thread starts.

The peak is unchanged; the process keeps its peak until it exits. No torch here; a no-op
(False) off glibc.
"""

from __future__ import annotations

import functools

# glibc's mallopt() parameter numbers (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_KEEP_BYTES = 1 << 30


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """One arena for every thread, and freed blocks up to 1 GB kept for reuse. True if glibc took it."""
    import ctypes
    import ctypes.util

    try:  # glibc's usual name first: find_library runs ldconfig (40 ms of the page's cold start)
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, _KEEP_BYTES), (_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES))
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])
