"""The allocator tuning that keeps CNN feature maps reusable in the web server's worker threads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import ctypes, json, sys, threading
    import numpy as np
    if sys.argv[1] == "tuned":
        from cnaps_demo.memory import keep_freed_memory
        assert keep_freed_memory()

    class MallInfo(ctypes.Structure):  # glibc's struct mallinfo2: every field a size_t
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo
    seen = {}
    def job():  # a CNN layer in a web worker thread: a 96 MB map (600x600x64 floats), more than a thread heap holds
        block = np.ones(24 << 20, dtype=np.float32)
        seen["mmapped_while_used"] = libc.mallinfo2().hblkhd
        del block
        seen["kept_after_free"] = libc.mallinfo2().fordblks
    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    print(json.dumps(seen))
    """
)


def _probe(mode: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_a_worker_thread_keeps_freed_feature_maps_once_tuned():
    """Tuned first thing (as app.py does), a worker thread's 96 MB map comes from the heap and stays
    there for reuse when freed. Untuned, glibc maps it from the kernel and unmaps it on free, so
    every layer of every job faults its memory in again."""
    size = 96 << 20
    untuned, tuned = _probe("plain"), _probe("tuned")
    assert untuned["mmapped_while_used"] >= size, f"the untuned baseline should mmap the map: {untuned}"
    assert untuned["kept_after_free"] < size, untuned
    assert tuned["mmapped_while_used"] < size, f"the map should come from the heap: {tuned}"
    assert tuned["kept_after_free"] >= size, f"the freed map should stay for reuse: {tuned}"


def test_app_tunes_the_allocator_before_it_builds_anything():
    source = (ROOT / "app.py").read_text(encoding="utf-8")
    body = source[source.index("def main(") :]
    assert body.index("keep_freed_memory()") < body.index("build_demo(") < body.index(".launch(")
