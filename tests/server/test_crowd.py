"""Safe under a public crowd: `python app.py` on loopback, each limit probed the way a crowd or one
careless client would (raw HTTP and gradio_client; the page's own events through ``raw_client``).

* memory: fresh API sessions leave nothing behind; the crop picker keeps one file per run;
* every byte counted: inline pictures, bodies, files per upload and a per-client quota;
* work in proportion: a Compare list runs each engine once;
* every malformed call gets a 4xx (or an error event) with our words, never a 500 or an empty error;
* no server path and no shell command anywhere a visitor reads.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from app_process import start_app, stop_app

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from load_cases import client_header, smooth_picture  # noqa: E402
from raw_client import RawSession, cpu_seconds, http, post_json, rss_mb  # noqa: E402

MB = 1024 * 1024
FILE_META = {"_type": "gradio.FileData"}
# An absolute path of two or more parts that is not part of a URL: what a server path looks like.
SERVER_PATH = re.compile(r"(?<![\w.:/~])/(?:[\w.-]+/)+[\w.-]*")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crowd")
    (tmp / "tmp").mkdir()
    process, url, _ = start_app(
        tmp,
        env_extra={
            "TMPDIR": str(tmp / "tmp"),
            "CNAPS_MAX_UPLOAD_MB": "1",
            "CNAPS_UPLOAD_QUOTA_MB": "3",
            "CNAPS_QUEUE_SIZE": "1",
            "CNAPS_TILE": "96",
        },
    )
    yield {"url": url, "tmp": tmp, "process": process}
    stop_app(process)


def private_dir(server) -> Path:
    (found,) = (server["tmp"] / "tmp").glob("cnaps-demo-*")
    return found


def session(server, visitor: int) -> RawSession:
    """A browser session of a visitor of its own (the quota counts each apart)."""
    return RawSession(server["url"], client_header(visitor))


def uploaded_image(page: RawSession, side: int = 96, seed: int = 0) -> dict:
    status, paths = page.upload([("mine.png", smooth_picture(side, seed))])
    assert status == 200, paths
    return {"path": paths[0], "orig_name": "mine.png", "meta": FILE_META}


def api_call(page: RawSession, image, engine="bicubic", extra: dict | None = None, api="upscale"):
    """A /call to ``api`` with every input at its page value, ``image`` and ``engine`` set."""
    values = {page.component_id("cnaps-input"): image, page.component_id("cnaps-engine"): engine, **(extra or {})}
    return page.run(api, page.inputs_for(api, values))


def wait_until_idle(pid: int, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(2.0)
        if cpu_seconds(pid) - before < 0.2:
            return


# --- memory and disk ----------------------------------------------------------------------------


@pytest.mark.slow
def test_fresh_api_sessions_leave_no_memory_behind(server, tmp_path):
    """Each API session used to keep its whole comparison (about 40 MB at 1024 x 1024) while it stayed
    connected, and API sessions rarely close: here every client stays connected until the end."""
    from gradio_client import Client, handle_file

    picture = tmp_path / "fresh.png"
    picture.write_bytes(smooth_picture(1024))
    pid = server["process"].pid
    clients = []

    def one_session(visitor: int) -> None:
        client = Client(server["url"], verbose=False, headers=client_header(visitor), download_files=False)
        clients.append(client)
        client.predict(image=handle_file(str(picture)), engine="bicubic", api_name="/upscale")

    try:
        one_session(1000)  # warm: first-use allocations are not what this test is about
        wait_until_idle(pid)
        baseline = rss_mb(pid)
        for visitor in range(1001, 1013):
            one_session(visitor)
        time.sleep(16)  # the server hands freed memory back 3 s and 15 s after its last job
        grown = rss_mb(pid) - baseline
    finally:
        for client in clients:
            client.close()
    assert grown < 100, f"12 fresh API sessions at 1024 x 1024 kept {grown:.0f} MB (about 40 MB each before)"


def test_the_crop_picker_keeps_one_picture_per_run(server):
    page = session(server, 1)
    image, engine = page.component_id("cnaps-input"), page.component_id("cnaps-engine")
    values = {image: uploaded_image(page, 1200), engine: "bicubic"}
    kind, outputs = page.run("page_upscale", page.inputs_for("page_upscale", values))
    assert kind == "complete", outputs
    run_dir = Path(outputs[4]["path"]).parent
    before = sorted(p.name for p in run_dir.iterdir())
    crops = set()
    for step in range(30):
        click = {"index": [step * 13 % 400, step * 7 % 400], "value": None, "selected": True}
        status, answer = page.predict("move", [None], click)
        assert status == 200, answer
        crops.add(json.dumps(answer["data"][1]))
    after = sorted(p.name for p in run_dir.iterdir())
    assert len(after) == len(before), (before, after)  # the picker's picture replaced, never added
    assert len(crops) > 10  # and the crops really moved
    # The picker shows a small copy: a click in its bottom-right corner is the picture's bottom-right corner.
    status, answer = page.predict("move", [None], {"index": [511, 511], "value": None, "selected": True})
    where = re.search(r"at \((\d+), (\d+)\)", answer["data"][1])
    assert where and (int(where.group(1)), int(where.group(2))) == (2 * (1200 - 48), 2 * (1200 - 48)), answer


def test_a_closed_tab_frees_its_run(server):
    import http.client
    import urllib.parse

    page = session(server, 9)
    values = {page.component_id("cnaps-input"): uploaded_image(page, 64), page.component_id("cnaps-engine"): "bicubic"}
    kind, outputs = page.run("page_upscale", page.inputs_for("page_upscale", values))
    assert kind == "complete", outputs
    click = {"index": [5, 5], "value": None, "selected": True}
    assert "cnaps-crop" in str(page.predict("move", [None], click)[1]["data"][1])  # the run is kept: crops move
    # The page's heartbeat, as a browser tab holds it; closing it is closing the tab.
    parts = urllib.parse.urlsplit(server["url"])
    tab = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    tab.request("GET", f"/gradio_api/heartbeat/{page.session}", headers=page.headers)
    tab.getresponse().readline()
    tab.close()
    deadline = time.monotonic() + 20
    while "cnaps-crop" in str(page.predict("move", [None], click)[1]["data"][1]):
        assert time.monotonic() < deadline, "the closed tab's run is still kept"
        time.sleep(0.5)


# --- every byte counted -------------------------------------------------------------------------


def test_a_pasted_picture_over_the_upload_limit_gets_the_upload_limits_words(server):
    page = session(server, 2)
    pasted = {"path": None, "url": "data:image/png;base64," + "A" * int(1.45 * MB), "meta": FILE_META}
    kind, answer = api_call(page, pasted)
    assert kind == "error" and "larger than the 1 MB this server accepts" in str(answer), answer
    status, body = post_json(server["url"] + "gradio_api/call/upscale", {"data": ["A" * (3 * MB)]}, client_header(12))
    assert status == 413 and b"larger than the 1 MB" in body  # the body itself: refused before it is decoded
    status, body = session(server, 13).upload([("big.png", b"\0" * int(1.5 * MB))])
    assert status == 413 and "larger than the 1 MB" in str(body)


def test_an_upload_carries_one_file_and_a_visitor_has_a_quota(server):
    page = session(server, 3)
    status, answer = page.upload([("a.png", b"a" * 1000), ("b.png", b"b" * 1000)])
    assert status == 413 and "at most 1 file" in str(answer)
    accepted = 0
    for index in range(10):
        status, answer = page.upload([(f"q{index}.png", bytes([index]) * (900 * 1024))])
        if status != 200:
            break
        accepted += 1
    assert accepted == 3 and status == 429 and "Wait a few minutes" in str(answer)  # 3 MB a visitor here
    assert session(server, 4).upload([("other.png", b"o" * 1000)])[0] == 200  # another visitor is not refused


# --- work in proportion -------------------------------------------------------------------------


def test_a_compare_list_runs_each_engine_once(server):
    page = session(server, 5)
    image = uploaded_image(page, 64, seed=1)
    listed = ["lanczos", "bicubic"] * 25
    values = {page.component_id("cnaps-input"): image, page.component_id("cnaps-compare-engines"): listed}
    kind, outputs = page.run("compare_job", page.inputs_for("compare_job", values))
    assert kind == "complete", outputs
    assert len(outputs[8]) == 2  # one result file per engine run
    values[page.component_id("cnaps-compare-engines")] = ["lanczos", "no-such-engine"]
    kind, answer = page.run("compare_job", page.inputs_for("compare_job", values))
    assert kind == "error" and "no-such-engine" in str(answer)


@pytest.mark.slow
def test_a_full_lane_reads_as_busy_in_gradio_client_not_as_a_bad_image(server, tmp_path):
    from gradio_client import Client, handle_file

    long_picture = tmp_path / "long.png"
    long_picture.write_bytes(smooth_picture(768))  # Real-CUGAN in 96 px tiles: tens of seconds here
    clients = [Client(server["url"], verbose=False, headers=client_header(20 + i)) for i in range(3)]
    running = clients[0].submit(image=handle_file(str(long_picture)), engine="realcugan", api_name="/upscale")
    deadline = time.monotonic() + 120
    while not (running.status().progress_data and "tile" in (running.status().progress_data[0].desc or "")):
        assert time.monotonic() < deadline and not running.done(), "the long job never started its tiles"
        time.sleep(0.2)
    waiting = clients[1].submit(image=handle_file(str(long_picture)), engine="realcugan", api_name="/upscale")
    time.sleep(1.0)  # the lane holds one waiting job here: it is full
    try:
        with pytest.raises(Exception) as refused:
            clients[2].predict(image=handle_file(str(long_picture)), engine="realcugan", api_name="/upscale")
        text = str(refused.value)
        assert "The server is busy" in text and "- queue:" in text and "- image:" not in text, text
    finally:
        waiting.cancel()
        running.cancel()
        deadline = time.monotonic() + 60  # the lane is free again before the next test calls it
        while not (waiting.done() and running.done()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)  # and the refused call's place in the waiting room (Lanes.RESERVATION_S) has lapsed


# --- malformed calls ----------------------------------------------------------------------------


def test_malformed_calls_get_a_4xx_or_an_error_with_our_words(server):
    page = session(server, 6)
    image = uploaded_image(page)
    kind, answer = api_call(page, image, engine=["realcugan"])
    assert kind == "error" and "one engine id as text" in answer, answer
    status, body = post_json(server["url"] + "gradio_api/call/nope", {"data": []}, client_header(6))
    assert status == 404 and b"/upscale" in body
    for route, body_ in (("run/predict", {"fn_index": 9999, "data": [], "session_hash": "x"}),
                         ("queue/join", {"fn_index": 9999, "data": [], "session_hash": "x"}),
                         ("call/upscale", {"data": [1]})):
        status, body = post_json(server["url"] + "gradio_api/" + route, body_, client_header(6))
        assert 400 <= status < 500, (route, status, body)
        assert body and b"Traceback" not in body and b"object at 0x" not in body, body
    silent = RawSession(server["url"], client_header(6))
    silent.session = ""  # Stop with an empty session id: nothing to stop, and no 500
    status, answer = silent.predict("stop_jobs", [time.time() * 1000])  # the page sends its click time
    assert status == 200, answer


def test_each_model_field_checks_its_own_allowlist(server):
    from cnaps_demo.settings import get_settings

    settings = get_settings()
    page = session(server, 7)
    image = uploaded_image(page)
    model, controlnet = page.component_id("param-sd_img2img_model"), page.component_id("param-sd_img2img_controlnet")
    for field, other in ((model, settings.sd_controlnet), (controlnet, settings.sd_model)):
        kind, answer = api_call(page, image, "sd-img2img", {field: other}, api="upscale_gpu")
        assert kind == "error" and "not offered" in str(answer), answer


# --- no server path, no command, anywhere a visitor reads -------------------------------------------


def visible_texts(value, found: list[str]) -> list[str]:
    """Every text in a config or an answer, except file references (their paths are how files are served)."""
    if isinstance(value, dict):
        if "path" in value and ("url" in value or "meta" in value):
            return found
        for key, item in value.items():
            if key not in ("path", "url", "root", "proxy_url", "api_prefix", "elem_id", "elem_classes"):
                visible_texts(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            visible_texts(item, found)
    elif isinstance(value, str):
        found.append(value)
    return found


def test_no_page_text_and_no_api_message_shows_a_server_path_or_a_command(server):
    from cnaps_demo.settings import get_settings

    settings = get_settings()
    page = session(server, 8)
    texts = visible_texts(page.config["components"], [])
    image = uploaded_image(page)
    for engine, api, extra in (("bicubic", "upscale", {}), ("sd-img2img", "upscale_gpu", {}),
                               ("realcugan", "upscale", {page.component_id("cnaps-input"): {"path": "/etc/passwd",
                                                                                             "meta": FILE_META}})):
        texts += visible_texts(api_call(page, image, engine, extra, api=api), [])
    texts += visible_texts(page.predict("move", [None], {"index": ["x"], "value": None, "selected": True}), [])
    private, home = str(private_dir(server)), str(Path.home())
    leaks = []
    for text in texts:
        for secret in (private, home, str(settings.hub_cache), str(ROOT), sys.prefix, "site-packages"):
            if secret in text:
                leaks.append((secret, text[:200]))
        for path in SERVER_PATH.findall(re.sub(r"https?://\S+|data:\S+|</?\w[^>]*>", " ", text)):
            leaks.append((path, text[:200]))
        if re.search(r"\b(pip install|python -m|huggingface-cli|hf download)\b", text):
            leaks.append(("command", text[:200]))
    assert not leaks, leaks[:5]
