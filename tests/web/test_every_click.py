"""Issue 23 without a browser: which click is the newest, the diagram's total, the newcomer's setup
(the package importable from any folder, the README's Python examples), outputs never overwritten
silently, and bench rows that name their threads alike. The browser side is test_browser_clicks.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from cnaps_demo import cli
from cnaps_demo.bench import thread_note
from cnaps_demo.present import diagram
from cnaps_demo.stages import StageRecord
from cnaps_demo.web.latest import LatestRequests

ROOT = Path(__file__).resolve().parents[2]


# --- which click is the newest ---------------------------------------------------------


def test_a_newer_click_stops_the_older_run_quietly_and_keeps_its_outputs_off_screen():
    latest = LatestRequests()
    first = latest.begin_run("s")
    flag = threading.Event()
    with latest.watch("s", first, flag):
        assert latest.is_newest("s", first) and not flag.is_set()
        second = latest.begin_run("s")  # a click on another example while the first one runs
        assert flag.is_set(), "the older run must stop at its next step"
        assert not latest.is_newest("s", first) and latest.is_newest("s", second)
        assert not latest.ended_by_stop("s", first), "a newer click is not a Stop: no 'Stopped' toast"
    assert latest.may_start("s", second)


def test_a_run_that_waited_for_its_turn_behind_a_newer_click_starts_stopped():
    latest = LatestRequests()
    old = latest.begin_run("s")
    latest.supersede("s")  # a new upload before the run got its turn
    flag = threading.Event()
    assert not latest.may_start("s", old)
    with latest.watch("s", old, flag):
        assert flag.is_set()


def test_a_pick_that_reaches_the_server_after_the_click_it_preceded_does_not_cancel_it():
    # An engine picked at 1000 ms and Upscale pressed at 1004 ms: the click's request came first.
    latest = LatestRequests()
    click = latest.begin_run("s", at=1004.0)
    assert latest.supersede("s", at=1000.0) == click
    assert latest.may_start("s", click), "the click ran with the new engine: it must run"
    # A pick made after the click (in the browser) still stops that run, as before.
    assert latest.supersede("s", at=1010.0) > click and not latest.may_start("s", click)
    # Without the browser's time the server's order decides (an API client, an old page).
    again = latest.begin_run("s")
    latest.supersede("s")
    assert not latest.may_start("s", again)


def test_a_click_that_reaches_the_server_after_its_stop_is_stopped_before_it_starts():
    # Upscale at 2000 ms, Stop at 2100 ms, and Stop's request came first.
    latest = LatestRequests()
    assert latest.stop("s", at=2100.0) == 0
    late = latest.begin_run("s", at=2000.0)
    assert not latest.may_start("s", late) and latest.ended_by_stop("s", late)
    assert latest.took_late_stop("s") and not latest.took_late_stop("s")  # said once
    # A click after that Stop (in the browser) runs.
    later = latest.begin_run("s", at=2200.0)
    assert latest.may_start("s", later) and not latest.took_late_stop("s")


def test_stop_ends_running_and_waiting_runs_but_keeps_what_is_shown():
    latest = LatestRequests()
    number = latest.begin_run("s")
    assert latest.stop("s") == 1  # asked for, not started: Stop counts it
    assert not latest.may_start("s", number) and latest.ended_by_stop("s", number)
    assert latest.is_newest("s", number), "Stop must not hide the result of the picture in the input"
    running = latest.begin_run("s")
    flag = threading.Event()
    with latest.watch("s", running, flag):
        assert latest.stop("s") == 0 and flag.is_set()  # running: it says where it stopped itself
        assert latest.ended_by_stop("s", running)
    assert latest.stop("s") == 0  # nothing left


def test_a_follow_up_job_takes_the_newest_number_and_stops_with_a_newer_click():
    latest = LatestRequests()
    follow_up = latest.newest("fresh")  # a session that has clicked nothing yet
    flag = threading.Event()
    with latest.watch("fresh", follow_up, flag):
        assert not flag.is_set() and latest.may_start("fresh", follow_up)
        latest.supersede("fresh")
        assert flag.is_set() and not latest.is_newest("fresh", follow_up)


def test_sessions_are_apart_and_api_runs_always_count():
    latest = LatestRequests(max_sessions=2)
    mine = latest.begin_run("a")
    flag = threading.Event()
    with latest.watch("a", mine, flag):
        latest.begin_run("b")
        latest.stop("b")
        assert not flag.is_set() and latest.is_newest("a", mine)
    assert latest.is_newest("x", None) and latest.may_start("x", None)  # an API client carries no number
    latest.begin_run("c")  # a third session: the oldest is forgotten, memory stays bounded
    assert len(latest._newest) == 2


# --- the diagram adds up -----------------------------------------------------------------


def _stages(*seconds: float) -> list[StageRecord]:
    return [StageRecord(f"stage {i}", (3, 8, 8), (3, 8, 8), s, {}) for i, s in enumerate(seconds)]


def test_the_diagram_total_is_the_sum_of_its_stages_and_says_cached():
    stages = _stages(0.30, 0.44)
    line = diagram.timing_line(stages, whole_seconds=1.98, cached=True)
    assert line.startswith("2 stages, 740 ms in total") and "whole run 1.98 s" in line and "cached" in line
    assert diagram.timing_line(stages, whole_seconds=0.75) == "2 stages, 740 ms in total"
    svg = diagram.render_svg(stages, input_shape=(3, 8, 8), output_shape=(3, 16, 16), total_seconds=1.98, cached=True)
    assert "740 ms in total" in svg and "1.98 s in total" not in svg and "computed ahead" in svg


# --- the newcomer's setup ----------------------------------------------------------------


def test_setup_says_what_it_does_installs_the_package_and_ends_with_how_to_start():
    script = (ROOT / "scripts" / "setup.sh").read_text()
    steps = re.findall(r'^step "(.*)"$', script, flags=re.MULTILINE)
    assert 3 <= len(steps) <= 6, steps  # a few lines, not pip's hundreds
    assert "app.py" in steps[-1] and "127.0.0.1:7860" in steps[-1]
    assert re.search(r"pip install .*-e \.", script), "the package itself must be installed (editable)"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for pattern in ("/out.png", "/out/", "/evaluation/", "*.log"):
        assert pattern in ignored, f"{pattern} (what the README's commands write) is not git-ignored"
    assert not (ROOT / "app.log").exists()


def _python_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.slow
def test_the_readmes_python_examples_run_from_another_folder(tmp_path):
    """After `scripts/setup.sh` the package is installed in the venv: no ModuleNotFoundError outside
    the repository, and the examples name no path relative to it."""
    examples = _python_examples()
    assert len(examples) == 3
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # only what is installed
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(examples)], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:] + "\n(run `bash scripts/setup.sh`: it installs the package)"
    assert "lr_psnr" in done.stdout and (tmp_path / "chibi_x2.png").is_file()


# --- outputs are never overwritten silently -------------------------------------------------


@pytest.fixture
def one_original(tmp_path):
    folder = tmp_path / "originals"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(folder / "flat.png")
    return folder


def test_evaluate_refuses_a_folder_that_is_not_empty_unless_overwrite(one_original, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    base = ["evaluate", "--engines", "bicubic", "--images", str(one_original), "-o", str(out)]
    assert cli.main(base) == 1
    error = capsys.readouterr().err
    assert "not empty" in error and "--overwrite" in error
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"], "nothing may be written when refused"
    assert cli.main([*base, "--overwrite"]) == 0
    assert (out / "evaluation.csv").is_file() and (out / "notes.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    assert cli.main(["evaluate", "--engines", "bicubic", "--images", str(one_original), "-o", str(fresh)]) == 0


# --- bench rows ------------------------------------------------------------------------------


def test_bench_rows_name_their_threads_alike():
    assert thread_note(2) == "2 threads"
    assert thread_note(None) == "ncnn's default threads"
    assert all(note.endswith("threads") for note in (thread_note(1), thread_note(None)))
