"""The pieces behind the hardening, without a server: the input guard, typed errors, job control."""

from __future__ import annotations

import asyncio
import re
import base64
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
from cnaps_demo.engines import get_engine
from cnaps_demo.errors import CnapsError, InvalidImageError, InvalidParameterError, NcnnGraphError, NoImageError
from cnaps_demo.image import tiled_apply
from cnaps_demo.ui import jobs
from cnaps_demo.web.untrusted import UploadGuard, check_web_params


@pytest.fixture
def uploaded(tmp_path):
    path = tmp_path / "upload.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    return path


def guard_for(*paths):
    known = {str(p) for p in paths}
    return UploadGuard(lambda: (known,))


# --- the guard -----------------------------------------------------------------------


def test_the_guard_admits_only_paths_the_server_handed_out(uploaded, tmp_path):
    guard = guard_for(uploaded)
    assert guard.admit({"path": str(uploaded), "orig_name": "cat.png", "meta": {}}).data == str(uploaded)
    assert guard.admit({"path": str(uploaded), "orig_name": "cat.png"}).name == "cat.png"
    other = tmp_path / "other.png"
    Image.new("RGB", (8, 8)).save(other)
    refusals = []
    for value in (
        {"path": str(other)},
        str(other),
        {"path": str(tmp_path / "nope.png")},
        {"path": str(tmp_path)},
        {"path": f"{uploaded.parent}/./{uploaded.name}"},  # the same file, spelled differently
        {"path": None, "url": f"file://{uploaded}"},
        {"path": None, "url": "http://127.0.0.1:1/x.png"},
        {"path": str(uploaded) + "\x00.png"},
    ):
        with pytest.raises(InvalidImageError) as caught:
            guard.admit(value)
        refusals.append(str(caught.value))
    assert len(set(refusals)) == 1 and "not uploaded" in refusals[0]


def test_a_symlink_swapped_in_for_an_upload_is_refused(uploaded, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    guard = guard_for(uploaded)
    uploaded.unlink()
    uploaded.symlink_to(secret)
    with pytest.raises(InvalidImageError, match="not uploaded"):
        guard.admit({"path": str(uploaded)})


def test_pasted_images_are_decoded_in_memory_and_nothing_is_no_image():
    guard = guard_for()
    data = base64.b64encode(b"\x89PNG fake").decode()
    assert guard.admit({"path": None, "url": f"data:image/png;base64,{data}"}).data == b"\x89PNG fake"
    for empty in (None, "", {}):
        with pytest.raises(NoImageError):
            guard.admit(empty)


def test_a_web_model_field_names_only_offered_models():
    engine = get_engine("sd-img2img")
    assert check_web_params(engine, {"model": ""})["model"] is None  # blank: the default
    assert check_web_params(engine, {"model": "Lykon/dreamshaper-8"})["model"] == "Lykon/dreamshaper-8"
    assert check_web_params(engine, {"model": "me/mine"}, ["me/mine"])["model"] == "me/mine"
    for probe in ("/etc", "../..", "me/mine", "x" * 5000):
        with pytest.raises(InvalidParameterError, match="not offered"):
            check_web_params(engine, {"model": probe})
    assert check_web_params(get_engine("realcugan"), {"denoise": "1"}) == {"denoise": "1"}


def test_a_web_controlnet_field_names_only_offered_controlnets():
    from cnaps_demo.engines.diffusion.controlnet import DEFAULT_CONTROLNET

    engine = get_engine("sd-img2img")
    assert check_web_params(engine, {"controlnet": DEFAULT_CONTROLNET})["controlnet"] == DEFAULT_CONTROLNET
    assert check_web_params(engine, {"controlnet": "none"})["controlnet"] == "none"  # switching it off is fine
    assert check_web_params(engine, {"controlnet": " "})["controlnet"] is None  # blank: the operator's default
    for probe in ("/etc", "../..", "someone/any-controlnet", "x" * 5000):
        with pytest.raises(InvalidParameterError, match="controlnet=.*not offered"):
            check_web_params(engine, {"controlnet": probe})


# --- typed errors --------------------------------------------------------------------


def test_an_impossible_file_name_is_a_typed_error():
    for name in ("a" * 5000, "bad\x00name.png"):
        with pytest.raises(InvalidImageError, match="not a usable file name"):
            cnaps_demo.upscale(name)


def test_a_damaged_model_file_error_is_in_the_family():
    assert issubclass(NcnnGraphError, CnapsError)
    assert "reinstall" in str(NcnnGraphError("bad layer")).lower()
    from cnaps_demo.ncnn import NcnnGraphError as reexported

    assert reexported is NcnnGraphError


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cnaps_demo", *args], capture_output=True, text=True, timeout=120)


def test_the_cli_never_prints_a_traceback_for_impossible_names(tmp_path):
    long_name = "x" * 300 + ".png"
    result = _cli("upscale", long_name, "-o", str(tmp_path), "--engine", "nearest")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "not a usable file name" in result.stderr
    result = _cli("upscale", long_name, "-o", str(tmp_path / ("y" * 300 + ".png")), "--engine", "nearest")
    assert "Traceback" not in result.stderr and result.returncode == 2
    source = tmp_path / "in.png"
    Image.new("RGB", (16, 16)).save(source)
    result = _cli("upscale", str(source), "-o", str(tmp_path / "o.png"), "--engine", "sd-img2img", "--model", "m" * 5000)
    assert "Traceback" not in result.stderr and result.returncode in (1, 2), result.stderr[-500:]


def test_download_without_network_exits_1_not_2():
    result = _cli("download", "sd-img2img")  # HF_HUB_OFFLINE=1 in the tests: nothing can be fetched
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "error:" in result.stderr
    assert _cli("download", "realcugan").returncode == 2  # a bad command stays 2


# --- tiling of tiny images -------------------------------------------------------------


def test_an_image_smaller_than_the_minimum_tile_runs_as_one_tile():
    image = np.random.default_rng(0).random((7, 5, 3), dtype=np.float32)
    out = tiled_apply(image, lambda t: t.repeat(2, 0).repeat(2, 1), scale=2, tile=0)
    assert out.shape == (14, 10, 3)
    with pytest.raises(InvalidParameterError):
        tiled_apply(image, lambda t: t, scale=1, tile=8)  # a chosen tile must still be >= 16


# --- job control -----------------------------------------------------------------------


def _stoppable_work(stop: threading.Event, started: threading.Event, log: list):
    def work():
        started.set()
        for step in range(200):  # 200 steps of 20 ms: 4 s unless stopped
            if stop.is_set():
                log.append(("stopped", step))
                return "stopped"
            time.sleep(0.02)
        log.append(("finished", 200))
        return "finished"

    return work


def test_cancelling_a_job_sets_its_flag_and_waits_for_the_work_to_stop():
    async def scenario():
        stop, started, log = threading.Event(), threading.Event(), []
        task = asyncio.ensure_future(jobs.run_job(_stoppable_work(stop, started, log), stop=stop, alive=lambda: True))
        while not started.is_set():
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return stop.is_set(), log, time.monotonic() - t0

    flagged, log, seconds = asyncio.run(scenario())
    assert flagged and log and log[0][0] == "stopped"  # the work had stopped before the cancel returned
    assert seconds < 1.0


def test_a_lost_client_stops_the_job():
    async def scenario():
        stop, started, log = threading.Event(), threading.Event(), []
        gone = threading.Event()
        task = asyncio.ensure_future(
            jobs.run_job(_stoppable_work(stop, started, log), stop=stop, alive=lambda: not gone.is_set())
        )
        while not started.is_set():
            await asyncio.sleep(0.01)
        gone.set()
        return await task

    assert asyncio.run(scenario()) == "stopped"


def test_a_job_left_alone_finishes():
    async def scenario():
        stop, started, log = threading.Event(), threading.Event(), []
        return await jobs.run_job(_stoppable_work(stop, started, log), stop=stop, alive=lambda: True)

    assert asyncio.run(scenario()) == "finished"


def test_lanes_refuse_only_the_full_lane():
    class FakeQueue:
        def __init__(self):
            self.lengths = {"cpu": 0, "gpu": 0}

        def waiting(self, lane):
            return self.lengths[lane]

    queue = FakeQueue()
    lanes = jobs.Lanes(queue, {"cpu": 2, "gpu": 1})
    assert lanes.total == 3
    queue.lengths["cpu"] = 2
    answers = lanes.validator("cpu")("image", "engine", flag=False)
    assert len(answers) == 3 and answers[0]["is_valid"] is False and "busy" in answers[0]["message"]
    assert all(a.get("__type__") != "validate" or a["is_valid"] for a in lanes.validator("gpu")("image", "engine"))


def test_security_floors_are_declared_and_installed():
    from importlib.metadata import version

    from packaging.version import Version

    text = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()
    floors = dict(re.findall(r"^(gradio|pillow)>=([\d.]+)", text, flags=re.M))
    assert Version(floors["gradio"]) >= Version("6.31.0") and Version(floors["pillow"]) >= Version("12.3.0")
    for name, floor in floors.items():
        assert Version(version(name)) >= Version(floor), name


def test_simultaneous_admissions_cannot_overfill_a_lane():
    class EmptyQueue:  # Gradio has queued none of them yet: only the reservations count
        def waiting(self, lane):
            return 0

    now = [100.0]
    lanes = jobs.Lanes(EmptyQueue(), {"cpu": 3, "gpu": 1}, clock=lambda: now[0])
    answers = [lanes.refusal("cpu") for _ in range(5)]
    assert answers[:3] == [None, None, None] and all("busy" in a for a in answers[3:])
    assert lanes.refusal("gpu") is None  # the other lane is untouched
    now[0] += lanes.RESERVATION_S + 0.1  # by now Gradio's queue counts them itself
    assert lanes.refusal("cpu") is None


def test_a_started_job_gives_its_place_back():
    class EmptyQueue:
        def waiting(self, lane):
            return 0

    lanes = jobs.Lanes(EmptyQueue(), {"cpu": 1, "gpu": 1}, clock=lambda: 5.0)
    for _ in range(3):  # one after another: each starts before the next asks
        assert lanes.refusal("cpu") is None
        lanes.started("cpu")
