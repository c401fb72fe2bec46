"""Every byte counted, every error ours: the request limits and the error answers, without a Gradio server.

``limits.RequestLimits`` runs here around small ASGI apps (Starlette's test client), so each limit is
checked on its own: the body caps (declared and streamed), the files per upload, the per-client
quota over a window, who counts as a client, and the rewriting of Gradio's error answers.
"""

from __future__ import annotations

import base64
import json

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cnaps_demo.errors import ImageTooLargeError
from cnaps_demo.ui import limits, public_errors
from cnaps_demo.ui.limits import ByteQuota, Limits, RequestLimits, client_key
from cnaps_demo.web.untrusted import UploadGuard

KB = 1024
SMALL = Limits(max_upload_bytes=100 * KB, max_files=1, quota_bytes=400 * KB, window_s=60.0)


async def echo_size(request: Request):
    body = await request.body()
    return JSONResponse({"size": len(body)})


def gradio_refusal(status: int, detail):
    async def answer(request: Request):
        await request.body()
        return JSONResponse({"detail": detail}, status_code=status)

    return answer


async def raises(request: Request):
    raise KeyError("no such function")


def client_for(limits_: Limits = SMALL, quota: ByteQuota | None = None, routes=None) -> TestClient:
    routes = routes or [
        Route("/gradio_api/upload", echo_size, methods=["POST"]),
        Route("/gradio_api/queue/join", echo_size, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(RequestLimits, limits=limits_, quota=quota)])
    return TestClient(app, raise_server_exceptions=False)


def multipart(count: int, size: int) -> tuple[bytes, str]:
    boundary = "BOUNDARY123"
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.png"\r\n\r\n'.encode()
        + b"x" * size
        + b"\r\n"
        for i in range(count)
    )
    return parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def chunks(total: int, size: int = 8 * KB):
    for start in range(0, total, size):
        yield b"y" * min(size, total - start)


# --- body caps -------------------------------------------------------------------------------


def test_a_body_within_its_cap_passes_whole():
    answer = client_for().post("/gradio_api/queue/join", content=b"z" * (50 * KB))
    assert answer.status_code == 200 and answer.json() == {"size": 50 * KB}


def test_a_declared_oversize_body_is_refused_before_it_is_read():
    cap = SMALL.inline_cap
    answer = client_for().post("/gradio_api/queue/join", content=b"z" * (cap + 1))
    assert answer.status_code == 413
    assert answer.json()["detail"] == public_errors.too_large_message(SMALL.max_upload_bytes)


def test_a_streamed_oversize_body_is_refused_midway_with_the_same_words():
    answer = client_for().post("/gradio_api/queue/join", content=chunks(SMALL.inline_cap + 20 * KB))
    assert answer.status_code == 413
    assert "larger than the 0 MB" not in answer.text  # the limit is said in MB only when it is one
    assert answer.json()["detail"] == public_errors.too_large_message(SMALL.max_upload_bytes)


def test_an_inline_picture_may_be_as_large_as_an_upload_and_no_larger():
    limits_ = Limits(max_upload_bytes=300 * KB, max_files=1, quota_bytes=10_000 * KB, window_s=60.0)
    picture = base64.b64encode(b"\0" * (300 * KB)).decode()
    body = json.dumps({"data": [{"url": f"data:image/png;base64,{picture}"}, "realcugan", False]}).encode()
    assert client_for(limits_).post("/gradio_api/queue/join", content=body).status_code == 200
    over = base64.b64encode(b"\0" * (300 * KB + limits.JSON_SLACK)).decode()
    assert client_for(limits_).post("/gradio_api/queue/join", content=over.encode()).status_code == 413


def test_an_upload_carries_at_most_max_files_files():
    body, kind = multipart(1, 10 * KB)
    assert client_for().post("/gradio_api/upload", content=body, headers={"content-type": kind}).status_code == 200
    body, kind = multipart(2, 10 * KB)
    answer = client_for().post("/gradio_api/upload", content=body, headers={"content-type": kind})
    assert answer.status_code == 413 and answer.text == limits.too_many_files_message(1)
    # 200 tiny files in one streamed request: refused at the third delimiter, whatever the chunking
    body, kind = multipart(200, 10)
    pieces = (body[i : i + 7] for i in range(0, len(body), 7))  # delimiters split across chunks
    answer = client_for().post("/gradio_api/upload", content=pieces, headers={"content-type": kind})
    assert answer.status_code == 413 and "at most 1 file" in answer.text


def test_the_body_meter_finds_delimiters_split_across_chunks():
    meter = limits.BodyMeter(cap=10**6, max_files=2, boundary=b"abc")
    stream = b"--abc\r\n1\r\n--abc\r\n2\r\n--abc\r\n3\r\n--abc--"
    verdicts = [meter.feed(stream[i : i + 2]) for i in range(0, len(stream), 2)]
    assert "files" in verdicts  # 3 files, 4 delimiters: one more than 2 files allow
    meter = limits.BodyMeter(cap=10**6, max_files=3, boundary=b"abc")
    assert all(meter.feed(stream[i : i + 3]) is None for i in range(0, len(stream), 3))


# --- the quota -------------------------------------------------------------------------------


def test_a_client_over_its_quota_is_refused_until_the_window_moves_on():
    now = [0.0]
    quota = ByteQuota(limit=300 * KB, window_s=60.0, clock=lambda: now[0])
    client = client_for(quota=quota)
    for _ in range(3):
        assert client.post("/gradio_api/queue/join", content=b"q" * (100 * KB)).status_code == 200
    refused = client.post("/gradio_api/queue/join", content=b"q" * (100 * KB))  # 400 KB: one too many
    assert refused.status_code == 429 and "Wait a few minutes" in refused.json()["detail"]
    assert refused.headers["retry-after"]
    assert client.post("/gradio_api/queue/join", content=b"q").status_code == 429  # over: nothing more
    now[0] = 61.0  # the window moved on
    assert client.post("/gradio_api/queue/join", content=b"q" * (100 * KB)).status_code == 200


def test_the_quota_counts_each_client_apart_and_forgets_the_oldest():
    quota = ByteQuota(limit=100, window_s=60.0, max_clients=2)
    assert quota.charge("a", 100) and not quota.charge("a", 1)
    assert quota.charge("b", 100)
    quota.charge("c", 1)  # a third client: the least recent ("a") is forgotten
    assert quota.used("a") == 0 and quota.used("b") == 100


def test_a_client_is_its_address_or_behind_a_private_proxy_the_address_it_appends():
    def scope(peer, forwarded=None):
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 1234), "headers": headers}

    assert client_key(scope("93.184.216.34")) == "93.184.216.34"
    assert client_key(scope("93.184.216.34", "1.2.3.4")) == "93.184.216.34"  # a public peer cannot pretend
    assert client_key(scope("10.0.0.5", "6.6.6.6, 198.51.100.7")) == "198.51.100.7"  # the proxy's own entry
    assert client_key(scope("127.0.0.1", "198.51.100.8")) == "198.51.100.8"
    assert client_key({"client": None, "headers": []}) == "unknown"


# --- our words on every error answer ------------------------------------------------------------


def test_gradios_path_refusal_reads_as_ours_without_the_path():
    detail = "Cannot move /srv/secret/picture.png to the gradio cache dir because it was not uploaded by a user."
    routes = [Route("/gradio_api/queue/join", gradio_refusal(400, detail), methods=["POST"])]
    answer = client_for(routes=routes).post("/gradio_api/queue/join", content=b"{}")
    assert answer.status_code == 400
    assert "/srv" not in answer.text and "not uploaded to this server" in answer.json()["detail"]


def test_a_full_lane_reads_as_busy_not_as_a_bad_picture():
    detail = [
        {"__type__": "validate", "is_valid": False, "message": "The server is busy: 2 jobs are already waiting for "
         "the CPU queue. Try again in a minute.", "parameter_name": "image"},
        {"is_valid": True, "message": ""},
    ]
    routes = [Route("/gradio_api/queue/join", gradio_refusal(422, detail), methods=["POST"])]
    answer = client_for(routes=routes).post("/gradio_api/queue/join", content=b"{}")
    assert answer.status_code == 422
    (only,) = answer.json()["detail"]
    assert only["parameter_name"] == "queue" and only["message"].startswith("The server is busy")


def test_an_unknown_function_is_a_404_with_our_message_not_a_500():
    routes = [Route("/gradio_api/call/{name}", raises, methods=["POST"])]
    answer = client_for(routes=routes).post("/gradio_api/call/nope", content=b"{}")
    assert answer.status_code == 404 and "no such endpoint" in answer.json()["detail"]


def test_an_unqueued_event_that_failed_silently_is_a_400_with_words():
    async def silent_failure(request: Request):
        return JSONResponse({"error": None}, status_code=500)

    routes = [Route("/gradio_api/run/predict", silent_failure, methods=["POST"])]
    answer = client_for(routes=routes).post("/gradio_api/run/predict", content=b"{}")
    assert answer.status_code == 400 and "could not be read" in answer.json()["error"]


def test_every_text_error_is_scrubbed_of_server_paths():
    async def text_error(request: Request):
        return PlainTextResponse("failed to open /home/op/.cache/huggingface/hub/models--x/blob", status_code=400)

    routes = [Route("/gradio_api/queue/join", text_error, methods=["POST"])]
    answer = client_for(routes=routes).post("/gradio_api/queue/join", content=b"{}")
    assert answer.status_code == 400 and "/home" not in answer.text and "huggingface/hub" not in answer.text


def test_successes_pass_untouched():
    answer = client_for().post("/gradio_api/queue/join", content=b"ok")
    assert answer.status_code == 200 and answer.json() == {"size": 2}


# --- inline pictures in the guard -----------------------------------------------------------------


def test_a_pasted_picture_over_the_upload_limit_is_refused_before_decoding(monkeypatch):
    guard = UploadGuard(lambda: (), max_bytes=100 * KB)
    small = base64.b64encode(b"\x89PNG" + b"\0" * 1000).decode()
    assert guard.admit({"path": None, "url": f"data:image/png;base64,{small}"}).data.startswith(b"\x89PNG")

    def no_decoding(*args, **kwargs):
        raise AssertionError("a payload over the limit was decoded")

    monkeypatch.setattr("cnaps_demo.web.untrusted.base64.b64decode", no_decoding)
    large = "A" * (200 * KB)
    with pytest.raises(ImageTooLargeError) as refused:
        guard.admit({"path": None, "url": f"data:image/png;base64,{large}"})
    assert str(refused.value) == public_errors.too_large_message(100 * KB)
