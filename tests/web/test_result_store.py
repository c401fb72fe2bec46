"""Memory per visitor, bounded and freed: the result store, and the page's handlers around it.

Each run's comparison lives on the server only for the page's follow-ups, within a byte budget and a
time to live, one per session and tab; an API call keeps nothing. Also here: the handler-level limits
of a run (the Compare list, an engine sent as a list, each model field's own allowlist, text escaped
once, Stop without a session, an unexpected failure with words) and the crop picker's one file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from refusals import toast
from run_setups import run_setup
from cnaps_demo.settings import get_settings
from cnaps_demo.ui.jobs import GradioQueue, JobControl, Lanes, StopRequests
from cnaps_demo.ui.upscale import shown
from cnaps_demo.ui.upscale.layout import SingleRunView
from cnaps_demo.web import comparison as cmp
from cnaps_demo.web import picker, views
from cnaps_demo.web.requests import ParamBinding, RequestReader, api_name_for
from cnaps_demo.web.result_store import ResultStore, comparison_bytes, kept_state, released, resolver
from cnaps_demo.web.running import run_engine
from cnaps_demo.web.sources import load_source
from cnaps_demo.web.untrusted import LocalFiles
from cnaps_demo.web.workdir import Workdir

STATE = SingleRunView._fields.index("state")



@pytest.fixture
def settings():
    return dataclasses.replace(get_settings(), device="cpu")


def picture(side: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))


def comparison_of(settings, tmp_path, side: int = 64, engine: str = "lanczos") -> cmp.Comparison:
    source = load_source(picture(side), settings, guard=LocalFiles())
    chosen = picker.require_available(engine, settings)
    result = run_engine(source, chosen, {}, settings=settings, progress=lambda *a: None)
    return cmp.build_comparison(source, {engine: result}, Workdir(tmp_path / "work"))


# --- the store ---------------------------------------------------------------------------------


def test_a_comparison_costs_its_pictures_once_each(settings, tmp_path):
    comparison = comparison_of(settings, tmp_path, side=64)
    # 4 bytes a pixel: the source (also the original), the result's own copy of its input (64x64), the
    # baseline and the result (128x128); the original, the same picture as the source, counts once
    assert comparison.source.original is comparison.source.image
    assert comparison_bytes(comparison) == 4 * (2 * 64 * 64 + 2 * 128 * 128)


def test_the_store_keeps_within_its_budget_dropping_the_least_recently_used(settings, tmp_path):
    one = comparison_bytes(comparison_of(settings, tmp_path))
    released_calls = []
    store = ResultStore(max_bytes=2 * one, ttl_s=600, on_release=lambda: released_calls.append(1))
    keys = [store.add(comparison_of(settings, tmp_path), f"session-{i}") for i in range(2)]
    assert store.get(keys[0]) is not None  # used: the other one is now the least recent
    third = store.add(comparison_of(settings, tmp_path), "session-2")
    assert store.get(keys[1]) is None and store.get(keys[0]) is not None and store.get(third) is not None
    assert store.stats() == (2, 2 * one) and released_calls


def test_the_store_forgets_a_run_after_its_time_to_live(settings, tmp_path):
    now = [0.0]
    store = ResultStore(max_bytes=10**9, ttl_s=60, clock=lambda: now[0])
    key = store.add(comparison_of(settings, tmp_path), "session")
    now[0] = 59.0
    assert store.get(key) is not None
    now[0] = 61.0
    assert store.get(key) is None and store.stats() == (0, 0)


def test_one_run_per_session_and_tab_and_a_closed_tab_frees_them(settings, tmp_path):
    store = ResultStore(max_bytes=10**9, ttl_s=600)
    first = store.add(comparison_of(settings, tmp_path), "s1", "upscale")
    second = store.add(comparison_of(settings, tmp_path), "s1", "upscale")  # the page shows only this one
    compare = store.add(comparison_of(settings, tmp_path), "s1", "compare")
    other = store.add(comparison_of(settings, tmp_path), "s2", "upscale")
    assert store.get(first) is None and store.get(second) is not None and store.get(compare) is not None
    assert store.drop_session("s1") == 2
    assert store.get(second) is None and store.get(compare) is None and store.get(other) is not None
    store.drop(other)  # what the State's delete_callback does
    assert store.stats() == (0, 0)


def test_an_api_call_keeps_nothing_and_a_page_run_keeps_a_key(settings, tmp_path):
    store = ResultStore(max_bytes=10**9, ttl_s=600)
    comparison = comparison_of(settings, tmp_path)
    key = store.add(comparison, "api-session")
    values = tuple(shown.single_view(comparison, comparison.first_id))
    assert values[STATE] == key  # the page's State holds the key, not the pictures
    assert released(values, store, STATE)[STATE] is None and store.stats() == (0, 0)
    gpu_values = tuple(shown.single_view(comparison_of(settings, tmp_path), "lanczos"))  # made elsewhere: no key
    kept = kept_state(gpu_values, store, STATE, "s1")
    assert isinstance(kept[STATE], str) and resolver(store)(kept[STATE]) is not None
    assert resolver(store)(None) is None and resolver(store)("forged-key") is None
    assert kept_state(shown.unchanged(), store, STATE, "s1")[STATE] is not None  # a skip stays


def test_fifty_api_runs_leave_the_store_empty(settings, tmp_path):
    store = ResultStore(max_bytes=10**9, ttl_s=600)
    setup = run_setup(settings, tmp_path / "work", results=store)
    for _ in range(50):
        request = setup.requests.run("cpu", picture(32), "nearest", False, {})
        comparison = setup.single_comparison(request, None, threading.Event())
        assert store.stats()[0] == 1  # kept while its views are drawn...
        released(tuple(shown.single_view(comparison, "nearest")), store, STATE)
    assert store.stats() == (0, 0)  # ...and gone once the API call's values are out


# --- the crop picker -----------------------------------------------------------------------------


def test_the_crop_picker_replaces_its_one_picture_and_draws_on_a_small_copy(settings, tmp_path):
    comparison = comparison_of(settings, tmp_path, side=1200)
    first = views.where_image(comparison)
    assert max(Image.open(first).size) == cmp.WHERE_SIDE
    assert views.where_scale(comparison) == pytest.approx(1200 / cmp.WHERE_SIDE)
    moved = comparison
    for corner in [(0, 0), (1199, 1199), (600, 10)] * 10:
        moved = moved.moved_to(corner)
        latest = views.where_image(moved)
    where_files = [p for p in comparison.run_dir.iterdir() if p.name.startswith("where-")]
    assert where_files == [comparison.run_dir / latest.rsplit("/", 1)[1]] and latest != first


# --- a run's inputs, checked ------------------------------------------------------------------------


def setup_for(settings, tmp_path, **extra) -> RequestReader:
    return RequestReader(dataclasses.replace(settings, **extra), frozenset({"sd-img2img"}), [])


def test_the_compare_list_runs_each_engine_once_and_only_known_ones(settings, tmp_path):
    setup = setup_for(settings, tmp_path)
    ran = [engine.id for engine in setup.compare_engines(["lanczos", "bicubic"] * 20 + ["lanczos"])]
    assert ran == ["lanczos", "bicubic"]
    for bad in (["lanczos", "no-such-engine"], "lanczos", [["lanczos"]], [3], ["x"] * 1 + [f"e{i}" for i in range(50)]):
        with toast():
            setup.compare_engines(bad)


def test_an_engine_sent_as_a_list_is_refused_with_words():
    with toast() as refused:
        picker.find_engine(["realcugan"])
    assert "one engine id as text" in str(refused.value.message)


def test_each_model_field_takes_only_its_own_allowlist(settings, tmp_path):
    from cnaps_demo.engines import get_engine

    sd = get_engine("sd-img2img")
    bindings = [ParamBinding(sd.id, spec, api_name_for(sd.id, spec.name), None) for spec in sd.params]
    setup = dataclasses.replace(setup_for(settings, tmp_path), bindings=bindings)
    model, controlnet = settings.sd_model, settings.sd_controlnet
    chosen = setup.web_params(sd, {"sd_img2img_model": model, "sd_img2img_controlnet": controlnet})
    assert (chosen["model"], chosen["controlnet"]) == (model, controlnet)  # each field takes its own
    for field, other in (("model", controlnet), ("controlnet", model)):
        with toast() as refused:
            setup.web_params(sd, {f"sd_img2img_{field}": other})
        assert f"{field}=" in refused.value.message and "not offered" in refused.value.message


def test_a_setting_is_one_value_of_a_size_a_page_field_holds():
    from cnaps_demo.engines import get_engine
    from cnaps_demo.errors import InvalidParameterError
    from cnaps_demo.web.untrusted import MAX_TEXT_CHARS, check_web_params

    sd = get_engine("sd-img2img")
    assert check_web_params(sd, {"prompt": "x" * MAX_TEXT_CHARS})["prompt"] == "x" * MAX_TEXT_CHARS
    with pytest.raises(InvalidParameterError) as refused:
        check_web_params(sd, {"prompt": "x" * (30 * 1024 * 1024)})
    assert len(str(refused.value)) < 200  # the answer does not echo what it refuses
    with pytest.raises(InvalidParameterError, match="one value"):
        check_web_params(sd, {"strength": [0.5] * 1000})


def test_a_prompt_with_quotes_is_shown_as_typed(settings, tmp_path):
    comparison = comparison_of(settings, tmp_path)
    result = comparison.results["lanczos"]
    comparison.results["lanczos"] = dataclasses.replace(result, params={"prompt": 'a "cat" <b>&amp;</b>'})
    line = views.run_lines(comparison)[0]
    assert '`prompt=a "cat" \u2039b\u203a&amp;\u2039/b\u203a`' in line and "&quot;" not in line


def test_the_explanation_tab_tells_a_visitor_what_is_missing_never_where_or_how(settings):
    from cnaps_demo.engines import get_engine

    engine = get_engine("sd-img2img")
    ok, words = picker.visitor_availability(engine, settings)
    assert not ok and words.startswith("needs")
    for leak in ("/", "python -m", "pip install", "huggingface-cli", "CNAPS_"):
        assert leak not in words, words


# --- jobs ---------------------------------------------------------------------------------------


class _Request:
    def __init__(self, session):
        self.session_hash = session


def control() -> JobControl:
    queue = GradioQueue(gr.Blocks())
    return JobControl(queue, Lanes(queue, {"cpu": 4}), StopRequests())


def test_a_failure_while_drawing_the_views_reaches_the_client_in_words(settings, tmp_path, monkeypatch):
    from cnaps_demo.errors import InvalidParameterError

    comparison = comparison_of(settings, tmp_path)
    for error, words in ((InvalidParameterError("A spectrum needs 8x8 pixels.", hint="Use a larger one."), "8x8"),
                         (TypeError("unhashable type: 'list'"), "went wrong on the server")):

        def failing(*args, error=error):
            raise error

        monkeypatch.setattr(shown, "single_view", failing)
        with toast() as caught:
            shown.full_view(comparison)
        assert words in caught.value.message and "unhashable" not in caught.value.message


def test_a_large_inline_input_does_not_stay_in_gradios_session_state():
    from types import SimpleNamespace

    pasted = {"path": None, "url": "data:image/png;base64," + "A" * 200_000}
    config = {1: {"props": {"value": pasted}}, 2: {"props": {"value": "realcugan"}}, 3: {"props": {}}}
    demo = SimpleNamespace(state_holder=SimpleNamespace(session_data={"s": SimpleNamespace(config_values=config)}))
    queue = GradioQueue(demo)
    assert queue.forget_inline_inputs("other") == 0 and config[1]["props"]["value"] is pasted
    assert queue.forget_inline_inputs("s") == 1
    assert config[1]["props"]["value"] is None and config[2]["props"]["value"] == "realcugan"


def test_stop_without_a_session_stops_nothing():
    jobs = control()
    flag = jobs.stops.begin("")  # an API client's job: no session
    assert jobs.stop(_Request("")) == 0 and jobs.stop(None) == 0 and not flag.is_set()
    mine = jobs.stops.begin("page")
    assert jobs.stop(_Request("page")) == 1 and mine.is_set()


def test_an_unexpected_failure_reaches_the_client_in_words_not_empty():
    def broken(stop):
        raise TypeError("unhashable type: 'list'")

    with toast() as caught:
        asyncio.run(control().run(broken, None))
    assert "went wrong on the server" in caught.value.message and "unhashable" not in caught.value.message
