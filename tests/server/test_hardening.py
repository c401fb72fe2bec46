"""A public Space under attack and careless use: `python app.py` on loopback, driven over HTTP.

Payloads are sent raw (Gradio's REST `/call` route and plain HTTP), because gradio_client would
upload a local file it finds in a payload instead of passing the path through.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from app_process import start_app, stop_app
from PIL import Image

from cnaps_demo.present.examples import bundled_examples

EXAMPLE = next(path for path in bundled_examples() if path.name == "chibi_face.png")
# A job cancelled or abandoned must let the next one start within this many seconds.
IDLE_BOUND_S = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    (tmp / "tmp").mkdir()
    process, url, _ = start_app(
        tmp,
        env_extra={
            "TMPDIR": str(tmp / "tmp"),  # the server's private folder is made in here
            "CNAPS_MAX_UPLOAD_MB": "1",
            "CNAPS_TILE": "96",  # long jobs report (and can stop) every few hundred ms
            "CNAPS_QUEUE_SIZE": "2",
            "CNAPS_GPU_QUEUE_SIZE": "2",
        },
    )
    yield {"url": url, "tmp": tmp, "process": process}
    stop_app(process)


def private_dir(server) -> Path:
    found = sorted((server["tmp"] / "tmp").glob("cnaps-demo-*"))
    assert len(found) == 1, found
    return found[0]


# --- raw HTTP helpers ----------------------------------------------------------------


def http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 30):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def raw_call(server, api: str, data: list, timeout: float = 120) -> tuple[str, object]:
    """POST /gradio_api/call/<api>, read its event stream: ("complete", outputs) or ("error", text)."""
    status, body = http(
        f"{server['url']}gradio_api/call/{api}",
        json.dumps({"data": data}).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 200:
        return "refused", body.decode("utf-8", "replace")
    event_id = json.loads(body)["event_id"]
    with urllib.request.urlopen(f"{server['url']}gradio_api/call/{api}/{event_id}", timeout=timeout) as response:
        event = None
        for raw in response:
            line = raw.decode("utf-8").strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                return event, (json.loads(payload) if payload and payload != "null" else payload)
    return "closed", None


def upload(server, path: Path) -> str:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    status, reply = http(
        f"{server['url']}gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 200, reply[:300]
    return json.loads(reply)[0]


def make_png(path: Path, size: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


# --- 1. no server file leaves the machine ---------------------------------------------


def test_server_paths_are_refused_with_one_message_that_reveals_nothing(server, tmp_path):
    secret = make_png(tmp_path / "secret.png", 32)  # a real picture on the server, never uploaded
    folder = private_dir(server)
    inside = folder / "planted.png"  # a picture inside Gradio's folder that was never uploaded
    make_png(inside, 32)
    link = folder / "link.png"  # a symlink in the upload folder pointing out of it
    link.symlink_to(secret)
    uploaded = upload(server, make_png(tmp_path / "mine.png", 24))
    meta = {"_type": "gradio.FileData"}
    payloads = {
        "bare path": {"path": str(secret)},
        "with meta": {"path": str(secret), "meta": meta},
        "bundled asset, not uploaded": {"path": str(EXAMPLE), "meta": meta},
        "planted in the cache": {"path": str(inside), "meta": meta},
        "missing in the cache": {"path": str(folder / "nope.png"), "meta": meta},
        "a folder in the cache": {"path": str(folder), "meta": meta},
        "dot-dot out of an upload": {"path": str(Path(uploaded).parent / ".." / ".." / secret.name), "meta": meta},
        "symlink": {"path": str(link), "meta": meta},
        "missing file": {"path": str(tmp_path / "nothing-here.png"), "meta": meta},
        "folder": {"path": str(tmp_path), "meta": meta},
        "not an image": {"path": "/etc/passwd", "meta": meta},
        "url": {"path": None, "url": f"{server['url']}gradio_api/file={secret}", "meta": meta},
        "file url": {"path": None, "url": f"file://{secret}", "meta": meta},
    }
    answers = {}
    for name, payload in payloads.items():
        kind, text = call(server, "upscale", payload, "bicubic")
        assert kind in ("error", "refused"), f"{name}: the server answered {kind}: {text}"
        answers[name] = str(text)
    # One answer for all of them, once the path the caller sent is blanked out: no oracle for
    # "exists", "is a folder", "is not an image". (Gradio refuses some payloads itself, naming the
    # path it was given; our guard answers the others.)
    normalised = {}
    for name, text in answers.items():
        sent = payloads[name].get("path") or payloads[name].get("url")
        normalised[name] = text.replace(str(Path(sent)), "PATH").replace(sent, "PATH")
    for name, text in normalised.items():
        assert "not uploaded" in text, (name, text)
        assert "root:" not in text and "exist" not in text.lower() and "folder" not in text.lower(), (name, text)
    for group in (
        ("with meta", "missing file", "folder", "not an image"),  # outside Gradio's folder
        ("planted in the cache", "missing in the cache", "a folder in the cache"),  # inside it
    ):
        assert len({normalised[n] for n in group}) == 1, {n: normalised[n] for n in group}

    # the same upload, named by the path the server handed out, works
    kind, outputs = call(server, "upscale", {"path": uploaded, "meta": meta}, "bicubic")
    assert kind == "complete", outputs


def test_a_model_field_from_the_web_may_only_name_an_offered_model(server, tmp_path):
    uploaded = upload(server, make_png(tmp_path / "mine.png", 24))
    image = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    answers = []
    for model in ("/etc", str(tmp_path), str(tmp_path / "missing"), "../../root", "someone/else-model"):
        kind, text = call(server, "upscale_gpu", image, "sd-img2img", {"sd_img2img_model": model})
        assert kind == "error", text
        answers.append(re.sub(r"model='[^']*'", "model=MODEL", str(text)))
        assert "not offered" in str(text) and "Lykon/dreamshaper-8" in str(text)
    assert len(set(answers)) == 1, answers  # the same answer whatever is on disk


def full_inputs(server, api, image, engine, kwargs=None) -> list:
    """Every input of ``api`` in order (defaults from the server's API description), some set."""
    from gradio_client import Client

    if "api_info" not in server:
        server["api_info"] = Client(server["url"], verbose=False).view_api(print_info=False, return_format="dict")
    params = server["api_info"]["named_endpoints"][f"/{api}"]["parameters"]
    names = [p["parameter_name"] for p in params]
    data = [p.get("parameter_default") for p in params]
    values = {"image": image, "engine": engine, "simulate_blurry_source": False, **(kwargs or {})}
    for key, value in values.items():
        data[names.index(key)] = value
    return data


def call(server, api, image, engine, kwargs=None, timeout=120):
    return raw_call(server, api, full_inputs(server, api, image, engine, kwargs), timeout=timeout)


def test_file_routes_serve_no_server_file(server):
    for route in (
        "gradio_api/file=/etc/passwd",
        "file=/etc/passwd",
        "gradio_api/file=" + urllib.parse.quote(str(private_dir(server)) + "/../../../etc/passwd"),
        "gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"gradio_api/file={EXAMPLE}",
    ):
        status, body = http(server["url"] + route)
        assert status in (403, 404), (route, status)
        assert b"root:" not in body


# --- 2. cancel and disconnect stop the work --------------------------------------------


def _long_job_image(tmp_path) -> Path:
    """768 x 768 (realcugan: about 80 tiles of 96 px), smooth so it stays under the 1 MB upload limit."""
    path = tmp_path / "big.png"
    y, x = np.mgrid[0:768, 0:768]
    rgb = np.stack([x % 256, y % 256, ((x // 32 + y // 32) % 2) * 200], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    assert path.stat().st_size < 1024 * 1024
    return path


def _time_next_job(server) -> float:
    from gradio_client import Client, handle_file

    started = time.monotonic()
    Client(server["url"], verbose=False).predict(image=handle_file(str(EXAMPLE)), engine="nearest", api_name="/upscale")
    return time.monotonic() - started


def _wait_until_running(job, timeout=90):
    """Until the job reports its tiles (model loading, which reports nothing, is behind it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job.status()
        if status.progress_data and "tile" in (status.progress_data[0].desc or ""):
            return
        assert not job.done(), f"the long job ended early: {job.exception()}"
        time.sleep(0.1)
    raise AssertionError("the long job never reached its tiles")


def test_cancel_stops_the_job_and_frees_its_slot(server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server["url"], verbose=False)
    job = client.submit(image=handle_file(str(_long_job_image(tmp_path))), engine="realcugan", api_name="/upscale")
    _wait_until_running(job)
    job.cancel()
    elapsed = _time_next_job(server)
    assert elapsed < IDLE_BOUND_S, f"the next job waited {elapsed:.1f} s behind a cancelled one"


def test_a_client_that_disconnects_stops_its_job(server, tmp_path):
    import http.client as http_client

    uploaded = upload(server, _long_job_image(tmp_path))
    session = uuid.uuid4().hex[:10]
    data = full_inputs(server, "upscale", {"path": uploaded, "meta": {"_type": "gradio.FileData"}}, "realcugan")
    fn_index = next(i for i, d in enumerate(_config(server)["dependencies"]) if d.get("api_name") == "upscale")
    status, body = http(
        f"{server['url']}gradio_api/queue/join",
        json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body
    host, port = urllib.parse.urlparse(server["url"]).netloc.split(":")
    connection = http_client.HTTPConnection(host, int(port), timeout=60)
    connection.request("GET", f"/gradio_api/queue/data?session_hash={session}")
    stream = connection.getresponse()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # read until the job reports progress, then vanish
        line = stream.readline().decode()
        if '"progress"' in line and "tile" in line:
            break
    connection.sock.close()
    connection.close()
    time.sleep(0.5)
    elapsed = _time_next_job(server)
    assert elapsed < IDLE_BOUND_S + 1, f"the next job waited {elapsed:.1f} s behind an abandoned one"


def _config(server) -> dict:
    status, body = http(server["url"] + "config")
    assert status == 200
    return json.loads(body)


# --- 3. identical concurrent jobs -------------------------------------------------------


def test_identical_concurrent_jobs_get_their_own_files(server):
    from gradio_client import Client, handle_file

    def one(_):
        client = Client(server["url"], verbose=False, download_files=False)
        for _attempt in range(200):  # the CPU lane holds 2 waiting jobs here: the rest are told to retry
            try:
                outputs = client.predict(image=handle_file(str(EXAMPLE)), engine="lanczos", api_name="/upscale")
                break
            except Exception as error:  # noqa: BLE001 - only "busy" may be retried
                assert "busy" in str(error), error
                time.sleep(0.2)
        else:
            raise AssertionError("never admitted")
        slider, png = outputs[0], outputs[4]
        paths = [item["path"] for item in slider] + [png["path"]]
        contents = []
        for item in [*slider, png]:
            status, body = http(item["url"])
            assert status == 200
            contents.append(body)
        return paths, contents

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(one, range(8)))
    all_paths = [path for paths, _ in runs for path in set(paths)]
    assert len(set(all_paths)) == len(all_paths), "two jobs were handed the same file"
    source = Image.open(EXAMPLE)
    digests = set()
    for _, contents in runs:
        for body in contents:
            image = Image.open(io.BytesIO(body))
            image.load()  # a truncated download fails here
            assert image.size == (source.width * 2, source.height * 2)
        digests.add(hashlib.sha256(np.asarray(Image.open(io.BytesIO(contents[1]))).tobytes()).hexdigest())
    assert len(digests) == 1  # the same input gives the same pixels


# --- 4-6. upload limit, monitoring, queues -------------------------------------------------


def test_an_oversize_upload_is_refused_with_413(server, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(int(1.5 * 1024 * 1024)))
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"oversize.png\"\r\n\r\n".encode()
        + big.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _ = http(
        f"{server['url']}gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 413
    leftovers = [p for p in private_dir(server).rglob("oversize*")]
    assert not leftovers, leftovers


def test_monitoring_is_off(server):
    for route in ("monitoring", "monitoring/summary", "gradio_api/monitoring", "gradio_api/monitoring/summary"):
        status, _ = http(server["url"] + route)
        assert status in (401, 403, 404), (route, status)


def test_gpu_callers_are_not_refused_by_cpu_traffic(server, tmp_path):
    from gradio_client import Client, handle_file

    big = handle_file(str(_long_job_image(tmp_path)))
    clients = [Client(server["url"], verbose=False) for _ in range(4)]
    jobs = [clients[0].submit(image=big, engine="realcugan", api_name="/upscale")]
    _wait_until_running(jobs[0])
    jobs += [c.submit(image=big, engine="realcugan", api_name="/upscale") for c in clients[1:3]]  # the 2 waiting slots
    time.sleep(1.0)
    try:
        with pytest.raises(Exception) as refused:
            clients[3].predict(image=big, engine="realcugan", api_name="/upscale")
        assert "busy" in str(refused.value).lower()
        # the GPU lane has its own queue: it answers (here: the engine cannot run), never "busy"
        with pytest.raises(Exception) as answered:
            Client(server["url"], verbose=False).predict(
                image=handle_file(str(EXAMPLE)), engine="sd-img2img", api_name="/upscale_gpu"
            )
        assert "busy" not in str(answered.value).lower() and "full" not in str(answered.value).lower()
        assert "cannot run" in str(answered.value)
    finally:
        for job in reversed(jobs):  # the waiting ones first, so none starts before it is cancelled
            job.cancel()
    assert _time_next_job(server) < IDLE_BOUND_S


# --- 7-10. inputs that used to fail, and what the messages say ----------------------------


@pytest.mark.parametrize("engine", ["realcugan", "realesrgan-anime"])
@pytest.mark.parametrize("side", [4, 7])
def test_tiny_images_upscale_on_the_cnns(server, tmp_path, engine, side):
    from gradio_client import Client, handle_file

    path = make_png(tmp_path / f"tiny{side}.png", side)
    outputs = Client(server["url"], verbose=False).predict(image=handle_file(str(path)), engine=engine, api_name="/upscale")
    assert Image.open(outputs[4]).size == (2 * side, 2 * side)


def test_messages_name_the_real_limit_and_no_server_path(server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server["url"], verbose=False)
    seven = make_png(tmp_path / "seven.png", 7)
    with pytest.raises(Exception) as caught:
        client.predict(image=handle_file(str(seven)), engine="bicubic", simulate_blurry_source=True, api_name="/upscale")
    assert "7 x 7" in str(caught.value) and "3 x 3" not in str(caught.value)

    broken = tmp_path / "broken-drawing.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(Exception) as caught:
        client.predict(image=handle_file(str(broken)), engine="bicubic", api_name="/upscale")
    text = str(caught.value)
    assert "broken-drawing.png" in text and "/tmp" not in text and str(private_dir(server)) not in text
    assert "&#x27;" not in text and "&lt;" not in text

    with pytest.raises(Exception) as caught:
        client.predict(image=handle_file(str(EXAMPLE)), engine="sd-img2img", api_name="/upscale_gpu")
    text = str(caught.value)
    assert "cannot run" in text and "python -m" not in text and "pip install" not in text and "/root" not in text


def test_expected_errors_print_no_traceback(server):
    # runs after the error cases above (file order): none of them may have logged a traceback
    log = (server["tmp"] / "app.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_the_server_folder_is_removed_when_it_stops(tmp_path):
    from gradio_client import Client, handle_file

    (tmp_path / "tmp").mkdir()
    process, url, _ = start_app(tmp_path, env_extra={"TMPDIR": str(tmp_path / "tmp")})
    try:
        Client(url, verbose=False).predict(image=handle_file(str(EXAMPLE)), engine="nearest", api_name="/upscale")
        assert list((tmp_path / "tmp").glob("cnaps-demo-*/cnaps-results/*"))  # results were written there
    finally:
        stop_app(process)
    assert not list((tmp_path / "tmp").glob("cnaps-demo-*")), list((tmp_path / "tmp").iterdir())
