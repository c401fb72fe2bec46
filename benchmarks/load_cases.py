"""The load test's cases beyond the crowd of users: what a crowd, or one careless client, can send.

Each case takes the running app (``App``: its URL and process) and returns lines to print. Every
case sends traffic to 127.0.0.1 only, a bounded number of requests, and stops by itself.

* ``fresh``: many fresh API sessions (one gradio_client ``Client`` each, as many clients would),
  each one run on a large picture: what stays in memory once they are gone;
* ``data-urls``: pictures inline as ``data:`` URLs, under and over the upload limit;
* ``compare``: the Compare event with a long list of duplicates (one run per engine expected);
* ``crop``: the crop picker clicked many times (one picture file per run expected);
* ``uploads``: one client uploading until refused; many files, and large files, in one request.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from raw_client import RawSession, cpu_seconds, folder_mb, post_json, rss_mb

MB = 1024 * 1024


@dataclass
class App:
    url: str
    pid: int
    private: Path  # the server's private folder (uploads, results)


def smooth_picture(side: int, seed: int = 0) -> bytes:
    """A side x side PNG of smooth colour and a few shapes: compresses like an illustration."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rgb = np.stack([x * 255, y * 255, (x + y) * 127], axis=-1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.03, 0.12)
        rgb[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def client_header(index: int) -> dict[str, str]:
    """A visitor of its own: the server takes the address a local proxy appends (loopback is one)."""
    return {"X-Forwarded-For": f"10.77.{index // 250}.{index % 250 + 1}"}


def fresh_sessions(app: App, sessions: int, side: int, engine: str, settle: float = 0.0, workers: int = 3) -> list[str]:
    """``sessions`` API sessions, one run each, every client still connected ``settle`` s later (API
    sessions rarely close): the server's memory then, and after they all close."""
    from gradio_client import Client, handle_file

    picture = app.private.parent / f"fresh-{side}.png"
    picture.write_bytes(smooth_picture(side))
    outcomes: dict[str, int] = {}
    clients = []

    def one(index: int) -> str:
        client = Client(app.url, verbose=False, headers=client_header(index), download_files=False)
        clients.append(client)
        try:
            client.predict(image=handle_file(str(picture)), engine=engine, api_name="/upscale")
            return "completed"
        except Exception as error:  # noqa: BLE001 - a load test counts every answer
            return "busy" if "busy" in str(error).lower() else f"failed: {str(error)[:120]}"

    started, before = time.monotonic(), rss_mb(app.pid)
    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for outcome in pool.map(one, range(sessions)):
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        wall = time.monotonic() - started
        time.sleep(settle)
        connected = rss_mb(app.pid)
    finally:
        for client in clients:
            client.close()
    return [f"{sessions} fresh API sessions, {side}x{side} on {engine}, in {wall:.0f} s: {outcomes}",
            f"server RSS with all {len(clients)} clients still connected, {settle:.0f} s later: {connected:.0f} MB "
            f"({connected - before:+.0f} MB)"]


def data_urls(app: App, max_upload_mb: int) -> list[str]:
    """A real picture inline, then payloads around the limit: refused before decoding, same words."""
    session = RawSession(app.url, client_header(900))
    image_id = session.component_id("cnaps-input")
    lines = []
    cases = {
        "1024x1024 picture": smooth_picture(1024),
        "just under the limit (not a picture)": b"\0" * (max_upload_mb * MB - 4096),
        "just over the limit": b"\0" * (max_upload_mb * MB + 4096),
        "4x the limit": b"\0" * (4 * max_upload_mb * MB),
    }
    for name, payload in cases.items():
        url = "data:image/png;base64," + base64.b64encode(payload).decode()
        value = {"path": None, "url": url, "orig_name": "pasted.png", "meta": {"_type": "gradio.FileData"}}
        data = session.inputs_for("upscale", {image_id: value, session.component_id("cnaps-engine"): "bicubic"})
        started = time.monotonic()
        kind, answer = session.run("upscale", data)
        lines.append(f"data URL {name} ({len(url) / MB:.1f} MB of JSON): {kind} in {time.monotonic() - started:.1f} s"
                     f" - {str(answer)[:110]}")
    return lines


def page_run(session: RawSession, side: int, engine: str = "bicubic") -> list:
    """One Upscale run as the page makes it (an upload, then the page's run event): its outputs."""
    status, paths = session.upload([("page.png", smooth_picture(side, seed=3))])
    assert status == 200, paths
    image = {"path": paths[0], "orig_name": "page.png", "meta": {"_type": "gradio.FileData"}}
    values = {session.component_id("cnaps-input"): image, session.component_id("cnaps-engine"): engine}
    kind, outputs = session.run("page_upscale", session.inputs_for("page_upscale", values))
    assert kind == "complete", outputs
    return outputs


def duplicate_compare(app: App, side: int, copies: int) -> list[str]:
    session = RawSession(app.url, client_header(901))
    status, paths = session.upload([("compare.png", smooth_picture(side, seed=5))])
    assert status == 200, paths
    image = {"path": paths[0], "orig_name": "compare.png", "meta": {"_type": "gradio.FileData"}}
    lines = []
    for listed in (["lanczos", "bicubic"], ["lanczos", "bicubic"] * copies):
        values = {session.component_id("cnaps-input"): image, session.component_id("cnaps-compare-engines"): listed}
        started = time.monotonic()
        kind, outputs = session.run("compare_job", session.inputs_for("compare_job", values))
        ran = len(outputs[8]) if kind == "complete" else 0  # CompareView.files: one PNG per engine run
        lines.append(f"Compare with {len(listed)} entries: {kind}, {ran} engine runs, "
                     f"{time.monotonic() - started:.1f} s")
    return lines


def crop_spam(app: App, side: int, clicks: int) -> list[str]:
    session = RawSession(app.url, client_header(902))
    outputs = page_run(session, side)
    run_dir = Path(outputs[4]["path"]).parent  # the result PNG's folder: the run's own
    files_before, cpu_before = len(list(run_dir.iterdir())), cpu_seconds(app.pid)
    rng = random.Random(0)
    refused = 0
    started = time.monotonic()
    for _ in range(clicks):
        point = [rng.uniform(0, 480), rng.uniform(0, 480)]
        status, _ = session.predict("move", [None], {"index": point, "value": None, "selected": True})
        refused += status != 200
    wall = time.monotonic() - started
    files_after = len(list(run_dir.iterdir()))
    return [f"crop picker clicked {clicks} times in {wall:.1f} s ({refused} refused): the run's folder "
            f"{files_before} -> {files_after} files, {folder_mb(run_dir):.1f} MB; "
            f"server CPU {cpu_seconds(app.pid) - cpu_before:.1f} s"]


def upload_bursts(app: App, max_upload_mb: int) -> list[str]:
    lines = []
    session = RawSession(app.url, client_header(903))
    big = b"\0" * (max_upload_mb * MB - 64 * 1024)
    accepted = 0
    answer: object = ""
    for _ in range(40):  # bounded: the quota refuses long before
        status, answer = session.upload([("burst.png", big)])
        if status != 200:
            break
        accepted += 1
    lines.append(f"one client, {len(big) / MB:.0f} MB uploads back to back: {accepted} accepted "
                 f"({accepted * len(big) / MB:.0f} MB), then {status}: {str(answer)[:100]}")
    many = RawSession(app.url, client_header(904))
    status, answer = many.upload([(f"f{i}.png", b"x" * 1024) for i in range(200)])
    lines.append(f"200 files in one request: {status}: {str(answer)[:100]}")
    status, answer = many.upload([(f"g{i}.png", b"\0" * (max_upload_mb * MB * 8 // 10)) for i in range(4)])
    lines.append(f"4 files of {max_upload_mb * 8 // 10} MB in one request: {status}: {str(answer)[:100]}")
    status, answer = post_json(app.url + "gradio_api/call/upscale", {"data": ["x" * (2 * max_upload_mb * MB)]},
                               client_header(905))
    lines.append(f"a {2 * max_upload_mb} MB JSON body: {status}: {str(answer)[:100]}")
    return lines
