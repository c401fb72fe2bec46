"""Cold start: seconds from ``python app.py`` to its first page, and what was imported by then.

    .venv/bin/python benchmarks/bench_cold_start.py [--runs 5]

Each run starts a fresh process on a free loopback port with an empty cache folder, polls until
``/`` answers 200, and stops it. A second measurement builds the page in this process's own child
and reports whether torch, diffusers or transformers were imported before any job ran (they
should not be: the first job pays for them, not the first page). Prints the CPU kind, because
figures from different machines differ.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys, time
started = time.perf_counter()
from cnaps_demo.ui import build_demo
demo = build_demo()
print(json.dumps({"build_s": time.perf_counter() - started,
                  "heavy": sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)}),
      flush=True)
import os
os._exit(0)
"""


def cpu_kind() -> str:
    """"avx512_bf16", "avx512" or "avx2": what the CNN fast paths depend on (from /proc/cpuinfo)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    for kind in ("avx512_bf16", "avx512f", "avx2"):
        if f" {kind}" in flags:
            return kind.replace("avx512f", "avx512")
    return "no avx2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_page_seconds(python: str, timeout: float = 120.0) -> float:
    """Start app.py once; seconds until ``/`` answers 200."""
    port = free_port()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
        env.update(CNAPS_CACHE_DIR=cache, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
        started = time.monotonic()
        process = subprocess.Popen(
            [python, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while time.monotonic() - started < timeout:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                        if response.status == 200:
                            return time.monotonic() - started
                except OSError:
                    time.sleep(0.05)
            raise SystemExit(f"app.py did not serve a page within {timeout} s")
        finally:
            process.terminate()
            process.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    python = sys.executable
    import importlib.util

    mcp = "installed (Gradio imports it at start-up)" if importlib.util.find_spec("mcp") else "not installed"
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} cores; python {sys.version.split()[0]}; mcp {mcp}")
    times = [first_page_seconds(python) for _ in range(args.runs)]
    print(
        f"first page: median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s "
        f"over {args.runs} runs (goal: at most 6 s on a quiet 2-core machine)"
    )
    probe = subprocess.run(
        [python, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True,
        env=dict(os.environ, CNAPS_CACHE_DIR=tempfile.mkdtemp()),
    )
    facts = json.loads(probe.stdout.strip().splitlines()[-1])
    heavy = ", ".join(facts["heavy"]) or "none"
    print(f"build_demo(): {facts['build_s']:.2f} s in-process; heavy imports before the first job: {heavy}")


if __name__ == "__main__":
    main()
