"""Load test on loopback: many users and careless clients against a fresh `python app.py`.

    .venv/bin/python benchmarks/load_test.py [--case crowd|fresh|data-urls|compare|crop|uploads|all]
        [--users 50] [--gpu-users 3] [--jobs 2] [--deadline 300] [--sessions 50] [--side 1024] [--settle 60]

Starts the app on a free 127.0.0.1 port (never anything else), runs the chosen cases, stops by
itself, then stops the app. Each case prints what happened, then the server's memory (RSS) and the
size of its private folder (uploads and results) before it, at its peak, and after it settles.

* ``crowd`` (the default): ``--users`` concurrent gradio_client users on ``/upscale`` (each
  ``--jobs`` jobs, Real-CUGAN on a small crop of a bundled example) plus ``--gpu-users`` on
  ``/upscale_gpu``: completed, refused ("busy"), failed, p50/p95 latency.
* ``fresh``: ``--sessions`` fresh API sessions, one ``--side`` x ``--side`` picture each (a
  ``Client`` per session, as a crowd of scripts would): memory must come back (within 100 MB for
  50 sessions at 1024 x 1024), since an API call keeps nothing.
* ``data-urls``, ``compare``, ``crop``, ``uploads``: ``load_cases``.

Goal: nothing fails, refusals are the clear "busy" / "too large" / quota messages, memory and
disk come back to their baseline.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # load_cases, raw_client beside this file

import load_cases  # noqa: E402
from raw_client import cpu_seconds, folder_mb, rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "cnaps_demo" / "examples" / "chibi_face.png"
CASES = ("crowd", "fresh", "data-urls", "compare", "crop", "uploads")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(tmp: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        {
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "TMPDIR": str(tmp),
            "CNAPS_CACHE_DIR": str(Path(env.get("CNAPS_CACHE_DIR", tmp / "cache"))),
        }
    )
    log = open(tmp / "app.log", "w")  # noqa: SIM115 - the child writes to it
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the app did not start; see " + str(tmp / "app.log"))


def wait_until_idle(pid: int, limit_s: float = 180.0) -> None:
    """Until the server uses under a tenth of a core for 3 s (or ``limit_s`` has passed)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(3.0)
        if cpu_seconds(pid) - before < 0.3:
            return


class Meter:
    """The server's RSS and private folder size, sampled in the background while a case runs."""

    def __init__(self, app: load_cases.App) -> None:
        self.app = app
        self.peak_rss = self.peak_disk = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_mb(self.app.pid))
            self.peak_disk = max(self.peak_disk, folder_mb(self.app.private))
            self._stop.wait(0.25)

    def measured(self, name: str, case: Callable[[], list[str]], settle: float) -> list[str]:
        before_rss, before_disk = rss_mb(self.app.pid), folder_mb(self.app.private)
        self._thread.start()
        try:
            lines = case()
        finally:
            self._stop.set()
            self._thread.join()
        time.sleep(settle)  # let the server settle
        after_rss, after_disk = rss_mb(self.app.pid), folder_mb(self.app.private)
        return [
            f"== {name}",
            *lines,
            f"server RSS MB   before {before_rss:.0f}, peak {self.peak_rss:.0f}, after {after_rss:.0f} "
            f"({after_rss - before_rss:+.0f} MB, {settle:.0f} s later)",
            f"private folder  before {before_disk:.1f} MB, peak {self.peak_disk:.1f} MB, after {after_disk:.1f} MB",
        ]


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.completed = self.refused = self.unavailable = 0
        self.failures: list[str] = []

    def add(self, kind: str, seconds: float = 0.0, detail: str = "") -> None:
        with self.lock:
            if kind == "completed":
                self.completed += 1
                self.latencies.append(seconds)
            elif kind == "refused":
                self.refused += 1
            elif kind == "unavailable":
                self.unavailable += 1
            else:
                self.failures.append(detail)


def user(
    url: str, crop: Path, expected: tuple[int, int], jobs: int, api: str, engine: str, tally: Tally, stop_at: float
):
    from gradio_client import Client, handle_file
    from PIL import Image

    try:
        client = Client(url, verbose=False)
    except Exception as error:  # noqa: BLE001 - a load test counts every kind of failure
        tally.add("failed", detail=f"connect: {error}")
        return
    for _ in range(jobs):
        if time.monotonic() > stop_at:
            return
        started = time.monotonic()
        try:
            outputs = client.predict(image=handle_file(str(crop)), engine=engine, api_name=api)
        except Exception as error:  # noqa: BLE001
            text = str(error)
            if "busy" in text.lower():
                tally.add("refused")
            elif "cannot run" in text:
                tally.add("unavailable")  # the GPU engines on a machine without one: an answer, not a failure
            else:
                tally.add("failed", detail=text[:200])
            continue
        try:
            with Image.open(outputs[4]) as result:
                result.load()
                ok = result.size == expected
        except Exception as error:  # noqa: BLE001
            tally.add("failed", detail=f"unreadable result: {error}")
            continue
        if ok:
            tally.add("completed", time.monotonic() - started)
        else:
            tally.add("failed", detail=f"wrong size {result.size}, expected {expected}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def crowd(app: load_cases.App, args: argparse.Namespace, crop: Path) -> list[str]:
    tally = Tally()
    stop_at = time.monotonic() + args.deadline
    expected = (2 * args.crop, 2 * args.crop)
    targets = [("/upscale", args.engine)] * args.users + [("/upscale_gpu", "sd-img2img")] * args.gpu_users
    threads = [
        threading.Thread(target=user, args=(app.url, crop, expected, args.jobs, api, engine, tally, stop_at))
        for api, engine in targets
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at + 120 - time.monotonic()))
    lines = [
        f"users            {args.users} on /upscale ({args.engine}, {args.crop}x{args.crop}) "
        f"+ {args.gpu_users} on /upscale_gpu",
        f"jobs             {len(targets) * args.jobs} asked, over {time.monotonic() - began:.1f} s",
        f"completed        {tally.completed} (every one a correct {expected[0]}x{expected[1]} PNG)",
        f"refused (busy)   {tally.refused}",
        f"GPU unavailable  {tally.unavailable} (answered 'cannot run here': no GPU on this machine)",
        f"failed           {len(tally.failures)}",
        *(f"  - {detail}" for detail in tally.failures[:10]),
        f"latency p50/p95  {percentile(tally.latencies, 0.5):.2f} s / {percentile(tally.latencies, 0.95):.2f} s",
    ]
    if tally.latencies:
        lines.append(f"latency mean     {statistics.fmean(tally.latencies):.2f} s")
    return lines


def run_cases(app: load_cases.App, args: argparse.Namespace, crop: Path) -> list[str]:
    max_mb = int(os.environ.get("CNAPS_MAX_UPLOAD_MB", "25"))
    cases = {
        "crowd": lambda: crowd(app, args, crop),
        "fresh": lambda: load_cases.fresh_sessions(app, args.sessions, args.side, args.fresh_engine, args.settle),
        "data-urls": lambda: load_cases.data_urls(app, max_mb),
        "compare": lambda: load_cases.duplicate_compare(app, 256, args.copies),
        "crop": lambda: load_cases.crop_spam(app, args.side, args.clicks),
        "uploads": lambda: load_cases.upload_bursts(app, max_mb),
    }
    chosen = CASES if "all" in args.case else args.case
    lines = []
    for name in chosen:
        settle = 10.0  # the fresh case waits --settle itself, with its clients still connected
        if name == "fresh":  # one session first: first-use allocations are not what this case measures
            load_cases.fresh_sessions(app, 1, args.side, args.fresh_engine)
            wait_until_idle(app.pid)
        measured = Meter(app).measured(name, cases[name], settle)
        print("\n".join(measured), flush=True)  # each case as it ends: a long run shows its progress
        lines += measured
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", default=["crowd"], choices=[*CASES, "all"])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--gpu-users", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="jobs per user")
    parser.add_argument("--engine", default="realcugan")
    parser.add_argument("--crop", type=int, default=96, help="side of the picture each crowd user sends")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds; users stop starting jobs after it")
    parser.add_argument("--sessions", type=int, default=50, help="fresh API sessions")
    parser.add_argument("--side", type=int, default=1024, help="side of the fresh sessions' and crop picker's picture")
    parser.add_argument("--fresh-engine", default="bicubic")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds the fresh case waits, clients connected")
    parser.add_argument("--copies", type=int, default=20, help="how often Compare's list repeats itself")
    parser.add_argument("--clicks", type=int, default=30, help="crop picker clicks")
    args = parser.parse_args(argv)
    # Bounded whatever is asked: this is a load test for one machine's loopback, not a flood.
    args.users, args.gpu_users, args.jobs = min(args.users, 200), min(args.gpu_users, 20), min(args.jobs, 20)
    args.sessions, args.side = min(args.sessions, 200), min(args.side, 2048)
    args.copies, args.clicks = min(args.copies, 100), min(args.clicks, 500)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from gradio_client import Client, handle_file
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="cnaps-load-") as tmp_name:
        tmp = Path(tmp_name)
        crop = tmp / "crop.png"
        Image.open(EXAMPLE).convert("RGB").crop((100, 60, 100 + args.crop, 60 + args.crop)).save(crop)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        process = start_app(tmp, port)
        try:
            Client(url, verbose=False).predict(image=handle_file(str(crop)), engine=args.engine, api_name="/upscale")
            wait_until_idle(process.pid)  # the examples and engines warm up in the background first
            private = next(tmp.glob("cnaps-demo-*"))
            lines = run_cases(load_cases.App(url, process.pid, private), args, crop)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0 if not any(line.startswith("failed ") and not line.endswith(" 0") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
