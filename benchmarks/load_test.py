"""Load test on loopback: many gradio_client users against a fresh `python app.py`.

    .venv/bin/python benchmarks/load_test.py [--users 50] [--gpu-users 3] [--jobs 2] [--deadline 300]

Starts the app on a free 127.0.0.1 port (never anything else), runs ``--users`` concurrent
clients on ``/upscale`` (each ``--jobs`` jobs, Real-CUGAN on a small crop of a bundled example)
plus ``--gpu-users`` on ``/upscale_gpu``, stops by itself at ``--deadline`` seconds, then stops the
app. Prints users, jobs, completed, refused ("busy"), failed, p50/p95 latency of completed jobs,
the server's peak RSS and its RSS after it settles, against the baseline after one warm-up job.

Goal: nothing fails, every completed output is a correct 2x image, refusals are the clear "busy"
message, RSS returns to within 20% of its baseline.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "chibi_face.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


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


def user(url: str, crop: Path, expected: tuple[int, int], jobs: int, api: str, engine: str, tally: Tally, stop_at: float):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--gpu-users", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="jobs per user")
    parser.add_argument("--engine", default="realcugan")
    parser.add_argument("--crop", type=int, default=96, help="side of the picture each user sends")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds; users stop starting jobs after it")
    args = parser.parse_args(argv)
    args.users, args.gpu_users, args.jobs = min(args.users, 200), min(args.gpu_users, 20), min(args.jobs, 20)

    from gradio_client import Client, handle_file
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="cnaps-load-") as tmp_name:
        tmp = Path(tmp_name)
        crop = tmp / "crop.png"
        Image.open(EXAMPLE).convert("RGB").crop((100, 60, 100 + args.crop, 60 + args.crop)).save(crop)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        process = start_app(tmp, port)
        peak = [0.0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], rss_mb(process.pid))
                time.sleep(0.2)

        try:
            Client(url, verbose=False).predict(image=handle_file(str(crop)), engine=args.engine, api_name="/upscale")
            time.sleep(2)
            baseline = rss_mb(process.pid)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            tally = Tally()
            stop_at = time.monotonic() + args.deadline
            expected = (2 * args.crop, 2 * args.crop)
            threads = [
                threading.Thread(
                    target=user, args=(url, crop, expected, args.jobs, "/upscale", args.engine, tally, stop_at)
                )
                for _ in range(args.users)
            ] + [
                threading.Thread(
                    target=user, args=(url, crop, expected, args.jobs, "/upscale_gpu", "sd-img2img", tally, stop_at)
                )
                for _ in range(args.gpu_users)
            ]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(1.0, stop_at + 120 - time.monotonic()))
            wall = time.monotonic() - began
            time.sleep(10)  # let the server settle
            settled = rss_mb(process.pid)
        finally:
            sampling.set()
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    jobs = (args.users + args.gpu_users) * args.jobs
    print(f"users            {args.users} on /upscale ({args.engine}, {args.crop}x{args.crop}) + {args.gpu_users} on /upscale_gpu")
    print(f"jobs             {jobs} asked, over {wall:.1f} s")
    print(f"completed        {tally.completed} (every one a correct {expected[0]}x{expected[1]} PNG)")
    print(f"refused (busy)   {tally.refused}")
    print(f"GPU unavailable  {tally.unavailable} (answered 'cannot run here': no GPU on this machine)")
    print(f"failed           {len(tally.failures)}")
    for detail in tally.failures[:10]:
        print(f"  - {detail}")
    print(f"latency p50/p95  {percentile(tally.latencies, 0.5):.2f} s / {percentile(tally.latencies, 0.95):.2f} s")
    if tally.latencies:
        print(f"latency mean     {statistics.fmean(tally.latencies):.2f} s")
    print(f"server RSS       baseline {baseline:.0f} MB, peak {peak[0]:.0f} MB, settled {settled:.0f} MB "
          f"({100 * (settled - baseline) / baseline:+.0f}% of baseline)")
    return 0 if not tally.failures else 1


if __name__ == "__main__":
    sys.exit(main())
