"""The page's run logic without a server (``cnaps_demo.web``): error paths as a visitor reads them, the
engine picker, parameters, sources, one engine's run and its views, the example cache, the explanation."""

import base64
import dataclasses
import pickle
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from refusals import toast
from run_setups import run_setup

from cnaps_demo import upscale
from cnaps_demo.api import availability
from cnaps_demo.engines import (
    DEFAULT_ENGINE_ID,
    FAST_CPU_ENGINE_ID,
    Availability,
    Engine,
    _registry,
    all_engines,
    get_engine,
)
from cnaps_demo.errors import CnapsError, JobCancelledError
from cnaps_demo.image import load_image, read_png_metadata
from cnaps_demo.present.examples import bundled_examples, is_degraded
from cnaps_demo.present.explain import credits_html, explanation_html
from cnaps_demo.present.references import REFERENCES, reference_urls
from cnaps_demo.present.result_cache import ExampleCache
from cnaps_demo.settings import get_settings
from cnaps_demo.ui.jobs import StopRequests
from cnaps_demo.ui.messages import ui_error
from cnaps_demo.web import comparison as cmp
from cnaps_demo.web import picker, views
from cnaps_demo.web.requests import api_name_for, params_for
from cnaps_demo.web.running import progress_forwarder, run_engine
from cnaps_demo.web.sources import load_source
from cnaps_demo.web.untrusted import LocalFiles
from cnaps_demo.web.workdir import Workdir


def load(value, settings, simulate=False):
    """``load_source`` as an in-process caller uses it (local paths are trusted here)."""
    return load_source(value, settings, simulate, guard=LocalFiles())


@pytest.fixture
def settings():
    return get_settings()


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "pic.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


class Unavailable(Engine):
    id = "needs-gpu-test"
    display_name = "Test GPU engine"
    family = "diffusion"
    device_need = "gpu"
    uses_torch = False  # the reason below is the only one, whatever devices this machine has
    colour_fix_by_default = True  # as the real diffusion engines: a cached result must carry the same fix

    def available(self, params, options):
        return Availability(False, "It needs a CUDA GPU. Fix: run it on a machine with an NVIDIA GPU.")

    def run(self, image, *, scale, params, options):  # pragma: no cover - never reached
        raise AssertionError("an unavailable engine must not run")


@pytest.fixture
def unavailable(monkeypatch):
    """A registered engine that cannot run here (found by id everywhere, for this test only)."""
    engine = Unavailable()
    monkeypatch.setitem(_registry(), engine.id, engine)  # the registry's own dict: removed again after
    return engine


# --- input errors ----------------------------------------------------------------


def test_no_image_says_how_to_provide_one(settings):
    with toast() as caught:
        load(None, settings)
    assert "Upload a PNG, JPEG or WebP" in caught.value.message and "examples" in caught.value.message


def test_a_damaged_upload_gives_the_fix(settings, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with toast() as caught:
        load(str(bad), settings)
    assert caught.value.title == "Cannot use this image"
    assert "PNG, JPEG or WebP" in caught.value.message  # the fix: re-save in a supported format


def test_a_web_page_saved_as_image_is_explained(settings, tmp_path):
    page = tmp_path / "<img>.png"
    page.write_text("<!doctype html><html><body>not a picture</body></html>")
    with toast() as caught:
        load({"path": str(page), "orig_name": "<img>.png"}, settings)
    assert "web page" in caught.value.message
    assert "<img>" not in caught.value.message  # no markup from file names reaches the page


def test_a_too_large_image_names_the_limit(settings, picture):
    small_limit = dataclasses.replace(settings, ui_max_input_pixels=100)
    with toast() as caught:
        load(str(picture), small_limit)
    assert caught.value.title == "Image too large"
    # the page's own limit is set by CNAPS_UI_MAX_PIXELS, not CNAPS_MAX_PIXELS
    assert "CNAPS_UI_MAX_PIXELS" in caught.value.message and "Shrink" in caught.value.message


def test_payload_forms_are_all_accepted(settings, picture):
    data = picture.read_bytes()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    for value in (str(picture), {"path": str(picture), "orig_name": "pic.png"}, {"url": url, "path": None}):
        source = load(value, settings)
        assert source.image.size == (48, 40)
    assert load({"path": str(picture), "orig_name": "My Pic!.png"}, settings).stem == "My-Pic"


def test_a_broken_pasted_image_gives_an_error(settings):
    with toast() as caught:
        load({"url": "data:image/png;base64,AAAA", "path": None}, settings)
    assert "PNG, JPEG or WebP" in caught.value.message


def test_simulated_blurry_source_keeps_the_original_as_truth(settings, picture):
    source = load(str(picture), settings, simulate=True)
    assert source.truth is not None and source.truth.size == (48, 40)
    assert source.image.size == (24, 20)
    assert "ground truth" in source.notices[0]


def test_simulation_of_a_tiny_image_explains_itself(settings, tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (5, 5), (9, 9, 9)).save(path)
    with toast() as caught:
        load(str(path), settings, simulate=True)
    assert "larger image" in caught.value.message or "Simulate" in caught.value.message


# --- engines ---------------------------------------------------------------------


def test_unavailable_engine_is_refused_with_reason_and_fix(unavailable, settings, caplog):
    with caplog.at_level("WARNING"), toast() as caught:
        picker.require_available(unavailable.id, settings)
    assert caught.value.title == "Engine unavailable here"
    # the visitor learns what is missing; the operator's fix goes to the server log
    assert "needs a GPU" in caught.value.message and unavailable.display_name in caught.value.message
    assert "whoever runs this server" in caught.value.message.lower()
    assert "NVIDIA GPU" in caplog.text


def test_unknown_engine_lists_the_known_ones(settings):
    with toast() as caught:
        picker.require_available("no-such-engine", settings)
    assert "bicubic" in caught.value.message


def test_picker_labels_and_card_show_unavailability(unavailable, settings):
    label = picker.engine_label(unavailable, settings)
    assert label == "Test GPU engine \u2014 not on this server"  # short: fits a phone picker
    card = picker.engine_card_html(unavailable.id, settings)
    assert "cannot run on this server" in card and "a GPU" in card
    assert "For the operator" in card and "README" in card
    # a web visitor is never told to run commands: the fix is the operator's (README, server log)
    assert "NVIDIA" not in card and "pip install" not in card and "python -m" not in card
    assert len(card) < 700
    ready = picker.engine_card_html("bicubic", settings)
    assert "cnaps-card-off" not in ready and "runs anywhere" in ready


def test_realcugan_offers_only_denoise_levels_that_exist():
    from cnaps_demo.engines import get_engine
    from cnaps_demo.engines.cnn.realcugan import REALCUGAN_MODELS
    from cnaps_demo.ui.params import limited_choices

    engine = get_engine("realcugan")
    for variant in ("se", "pro", "nose"):
        choices, value = limited_choices(engine, 2, {"variant": variant, "denoise": "1"})["denoise"]
        assert choices == list(REALCUGAN_MODELS[(variant, 2)])
        assert value in choices
        engine.check_combination(2, {"variant": variant, "denoise": value})  # every offered pair runs
    assert limited_choices(engine, 2, {"variant": "se", "denoise": "2"})["denoise"][1] == "2"  # kept when allowed
    assert limited_choices(engine, 2, {"variant": "nose", "denoise": "2"})["denoise"] == (["none"], "none")


def test_every_registered_engine_is_listed(settings):
    engines = all_engines()
    assert [value for _, value in picker.engine_choices(engines, settings)] == [e.id for e in engines]
    default = picker.default_engine_id(engines, settings)
    assert availability({e.id: e for e in engines}[default], settings=settings).ok


def test_a_large_upload_on_a_cpu_server_gets_the_faster_engine_unless_the_visitor_picked(settings):
    cpu = dataclasses.replace(settings, device="cpu", large_picture_pixels=300_000)
    default = DEFAULT_ENGINE_ID
    assert picker.engine_for_picture((600, 600), default, False, default, cpu) == FAST_CPU_ENGINE_ID
    assert picker.engine_for_picture((500, 500), default, False, default, cpu) == default  # 250,000 px: small
    # Back to the default for a small picture after an automatic switch; a visitor's pick stays as it is.
    assert picker.engine_for_picture((320, 240), FAST_CPU_ENGINE_ID, False, default, cpu) == default
    assert picker.engine_for_picture((600, 600), default, True, default, cpu) == default
    assert picker.engine_for_picture((320, 240), "lanczos", True, default, cpu) == "lanczos"
    # Unreadable header, the switch turned off, or a page whose default is another engine: no change.
    assert picker.engine_for_picture(None, default, False, default, cpu) == default
    off = dataclasses.replace(cpu, large_picture_pixels=0)
    assert picker.engine_for_picture((2000, 2000), default, False, default, off) == default
    assert picker.engine_for_picture((2000, 2000), "lanczos", False, "lanczos", cpu) == "lanczos"
    # A bad CNAPS_DEVICE does not break an upload: no switch (the run itself says how to fix the setting).
    bad = dataclasses.replace(cpu, device="gpu")
    assert picker.engine_for_picture((600, 600), default, False, default, bad) == default


def test_the_picture_size_comes_from_the_header_or_is_none(settings, picture, tmp_path):
    setup = run_setup(settings, tmp_path / "work")
    assert setup.picture_size(str(picture)) == (48, 40)
    assert setup.picture_size(Image.new("RGB", (30, 20))) == (30, 20)
    text = tmp_path / "notes.png"
    text.write_text("not a picture", encoding="utf-8")
    assert setup.picture_size(str(text)) is None  # the run itself explains what is wrong
    assert setup.picture_size(None) is None


def test_one_request_per_run_is_read_once_from_the_pages_values(settings, picture, tmp_path):
    """The engine looked up, the switches parsed (one reader of yes/no words), its own settings picked."""
    from cnaps_demo.errors import InvalidParameterError, UnknownEngineError
    from cnaps_demo.web.requests import COLOUR_FIX_KEYWORD, ParamBinding, RequestReader, switch
    from cnaps_demo.web.words import WrongEndpointError

    assert [switch(v, "x", True) for v in (None, True, "false", "No", "on", 0, "1")] == [
        True, True, False, False, True, False, True,
    ]
    with pytest.raises(InvalidParameterError):
        switch("maybe", "x", False)
    cugan = get_engine("realcugan")
    bindings = [ParamBinding(cugan.id, spec, api_name_for(cugan.id, spec.name), None) for spec in cugan.params]
    reader = RequestReader(settings, frozenset({"sd-img2img"}), bindings)
    values = {"realcugan_denoise": "conservative", "lanczos_x": 1, COLOUR_FIX_KEYWORD: "false"}
    asked = reader.run("cpu", str(picture), "realcugan", "yes", values, "s1")
    assert asked.engine is cugan and asked.simulate is True and asked.colour_fix is False
    assert asked.params == {"denoise": "conservative"} and asked.session == "s1" and asked.frames() is None
    assert reader.run("cpu", str(picture), "realcugan", False, {}).colour_fix is None  # on: the engine's default
    assert pickle.loads(pickle.dumps(asked)) == asked and pickle.loads(pickle.dumps(asked)).engine is cugan  # ZeroGPU
    with pytest.raises(WrongEndpointError):
        reader.run("cpu", str(picture), "sd-img2img", False, {})
    with pytest.raises(UnknownEngineError):
        reader.run("cpu", str(picture), "no-such-engine", False, {})
    with pytest.raises(InvalidParameterError, match="in the Engine list first"):
        reader.exploration("sweep", str(picture), "realcugan", False, {})
    sd = reader.exploration("seeds", str(picture), "sd-latent-x2", False, {})
    assert sd.lane == "gpu" and dataclasses.replace(sd, keep_frames=True).frames() is True


def test_the_gpu_time_asked_for_is_the_engines_estimate_for_the_picture(settings, picture, tmp_path):
    setup = run_setup(settings, tmp_path, gpu_ids=frozenset({"sd-img2img"}))
    asked = setup.requests.run("gpu", str(picture), "sd-img2img", False, {})
    sd = get_engine("sd-img2img")
    assert setup.gpu_seconds(asked) == sd.gpu_seconds(48, 40, sd.check_params({}, settings), tile=settings.tile)
    assert setup.gpu_seconds(dataclasses.replace(asked, image=None)) is None  # unclear: the fixed default applies


def test_invalid_parameter_becomes_a_ui_error(settings, picture):
    source = load(str(picture), settings)
    engine = picker.require_available("realcugan", settings)  # embedded: available on every machine
    with toast() as caught:
        run_engine(source, engine, {"denoise": "max"}, settings=settings, progress=lambda *a: None)
    assert caught.value.title == "Invalid setting" and "conservative" in caught.value.message


def test_error_text_carries_no_markup_and_no_entities():
    error = ui_error(CnapsError("bad <script>alert(1)</script> isn't"))
    assert "<script>" not in error.message and "&lt;" not in error.message and "&#x27;" not in error.message
    assert "script" in error.message and "isn't" in error.message


def test_params_are_read_back_for_the_chosen_engine_only():
    engines = {e.id: e for e in all_engines()}
    bindings = []
    from cnaps_demo.web.requests import ParamBinding

    for engine_id in ("realcugan", "sd-img2img"):
        for spec in engines[engine_id].params:
            bindings.append(ParamBinding(engine_id, spec, api_name_for(engine_id, spec.name), None))
    values = {b.keyword: b.spec.default for b in bindings}
    values["realcugan_denoise"] = "2"
    values["sd_img2img_steps"] = 12.0
    assert params_for("realcugan", values, bindings) == {"denoise": "2", "variant": values["realcugan_variant"]}
    sd = params_for("sd-img2img", values, bindings)
    assert sd["steps"] == 12 and isinstance(sd["steps"], int) and "denoise" not in sd
    assert api_name_for("sd-latent-x2", "negative_prompt") == "sd_latent_x2_negative_prompt"


def test_progress_text_says_elapsed_time_and_the_time_left():
    from cnaps_demo.web.running import timing_text

    assert timing_text(0.2, 0.0) == " \u00b7 0 s"  # nothing to extrapolate from yet
    assert timing_text(3.0, 0.25) == " \u00b7 3 s, about 9 s left"
    assert timing_text(10.0, 1.0) == " \u00b7 10 s"


def test_progress_is_forwarded_as_a_fraction():
    calls = []
    forward = progress_forwarder(lambda value, desc=None: calls.append((value, desc)), label="E", index=1, count=2)
    forward(1, 4, "tile 1/4")
    assert calls == [(pytest.approx(0.625), "E: tile 1/4 \u00b7 0 s")]
    progress_forwarder(None)(1, 2, "ignored")  # no progress bar: no error


def test_stop_requests_flag_only_their_own_session():
    stops = StopRequests()
    mine, other = stops.begin("me"), stops.begin("someone else")
    assert stops.stop("me") == 1
    assert mine.is_set() and not other.is_set()
    stops.end("me", mine)
    assert stops.stop("me") == 0  # nothing left running: the UI says so


def test_stop_ends_a_real_run_within_one_tile_and_the_engine_runs_again(settings, tmp_path):
    # 192x192 with 64 px tiles: Real-CUGAN runs 16 tiles, reporting after each one.
    path = tmp_path / "cartoon.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (192, 192, 3), dtype=np.uint8)).save(path)
    tiled = dataclasses.replace(settings, tile=64)
    source = load(str(path), tiled)
    engine = get_engine("realcugan")
    stops = StopRequests()
    flag = stops.begin("session")
    seen = []

    def bar(fraction, desc=""):
        seen.append(desc)
        if "tile 2/" in desc:
            stops.stop("session")  # the user presses Stop while tile 2 is reported

    # Progress comes from within each tile now: Stop lands inside tile 2, not at the start of tile 3.
    with pytest.raises(JobCancelledError, match="Stopped at Real-CUGAN tile 2/16"):
        run_engine(source, engine, {}, settings=tiled, progress=progress_forwarder(bar, stop=flag))
    assert not any("tile 3/" in desc for desc in seen)
    stops.end("session", flag)

    again = run_engine(
        source, engine, {}, settings=tiled, progress=progress_forwarder(None, stop=stops.begin("session"))
    )
    assert again.image.size == (384, 384)


def test_a_full_single_run_produces_every_view(settings, picture, tmp_path):
    source = load(str(picture), settings, simulate=True)
    engine = picker.require_available("lanczos", settings)
    result = run_engine(source, engine, {}, settings=settings, progress=lambda *a: None)
    comparison = cmp.build_comparison(source, {"lanczos": result}, Workdir(tmp_path / "work"))
    assert comparison.baseline.size == result.image.size == (48, 40)
    assert read_png_metadata(comparison.download_file("lanczos"))["cnaps:engine"] == "lanczos"
    assert "Lanczos" in Path(comparison.svg_file("lanczos")).read_text(encoding="utf-8")
    crops = views.crops_html(comparison)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", crops)
    assert captions == [cmp.BASELINE_LABEL, result.engine_name, cmp.TRUTH_LABEL]
    sizes = re.findall(r'width="(\d+)" height="(\d+)"', crops)
    zoom = cmp.CROP_ZOOM
    assert len(set(sizes)) == 1 and int(sizes[0][0]) == 2 * cmp.crop_window(source.image.size) * zoom
    summary = views.summary_markdown(comparison)
    assert "PSNR" in summary and "dB" in summary and "SSIM" in summary and "LR-PSNR" in summary
    assert "How faithful is it to the ground truth" in summary
    table = views.fidelity_table(comparison)
    assert "PSNR (dB)" in table and "colour shift (/255)" in table and "Bicubic" in table
    assert "dB" in views.result_label(comparison, "lanczos")  # the slider label carries the score
    assert comparison.moved_to((0, 0)).box_in[:2] == (0, 0)  # a click in a corner moves the crops there
    # The slider's pictures, written side by side: each is its own image, in the order asked, once.
    keys = (cmp.BASELINE_KEY, "lanczos", cmp.TRUTH_KEY)
    paths = comparison.image_files(*keys)
    assert len(set(paths)) == 3 and comparison.image_files(*keys) == paths
    for key, path in zip(keys, paths):
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(comparison.image(key).convert("RGB")))


# --- presenter cache ---------------------------------------------------------------


def test_presenter_cache_round_trip(tmp_path, picture, settings):
    import cnaps_demo

    cache = ExampleCache(tmp_path / "cache", settings)
    image = load_image(picture, max_pixels=settings.max_input_pixels).image
    params = {}
    assert cache.get(image, "bicubic", params) is None
    result = cnaps_demo.upscale(image, engine="bicubic")
    cache.put(image, result)
    hit = cache.get(image, "bicubic", result.params)
    assert hit is not None and hit.extra["cached"]
    assert np.array_equal(np.asarray(hit.image), np.asarray(result.image))
    assert [s.name for s in hit.stages] == [s.name for s in result.stages]
    other = image.copy()
    other.putpixel((0, 0), (1, 2, 3))
    assert cache.get(other, "bicubic", result.params) is None  # keyed by the exact pixels


def test_run_engine_serves_the_examples_results_but_never_stores_a_visitors_picture(settings, picture, tmp_path):
    cache = ExampleCache(tmp_path / "cache", settings)
    source = load(str(picture), settings)
    engine = picker.require_available("bicubic", settings)
    first = run_engine(source, engine, {}, settings=settings, progress=lambda *a: None, cache=cache)
    second = run_engine(source, engine, {}, settings=settings, progress=lambda *a: None, cache=cache)
    assert not first.extra.get("cached") and not second.extra.get("cached")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing kept on disk
    cache.warm([picture], engines=("bicubic",), simulate=(False,))  # what the app does for its examples
    served = run_engine(source, engine, {}, settings=settings, progress=lambda *a: None, cache=cache)
    assert served.extra.get("cached")


def test_presenter_cache_is_served_even_where_the_engine_cannot_run(unavailable, settings, picture, tmp_path):
    cache = ExampleCache(tmp_path / "presenter", settings)
    source = load(str(picture), settings)
    with toast() as refused:  # nothing cached yet: the engine is refused
        run_engine(source, unavailable, {}, settings=settings, progress=lambda *a: None, cache=cache)
    assert refused.value.title == "Engine unavailable here"
    # a result computed earlier, where the engine could run (here: made with bicubic, stored under its id)
    made = upscale(source.image, engine="bicubic")
    from cnaps_demo.colour import resolve

    fix = resolve(None, unavailable.colour_fix_by_default)  # what a run of this engine would have applied
    earlier = dataclasses.replace(
        made, engine_id=unavailable.id, engine_name=unavailable.display_name, params={}, colour_fix=fix
    )
    cache.put(source.image, earlier)
    served = run_engine(source, unavailable, {}, settings=settings, progress=lambda *a: None, cache=cache)
    assert served.extra.get("cached") and served.engine_name == unavailable.display_name
    assert served.image.tobytes() == made.image.tobytes()


def test_bundled_examples_are_cartoon_pngs():
    examples = bundled_examples()
    assert len(examples) >= 3
    for path in examples:
        image = Image.open(path)
        assert image.format == "PNG" and 256 <= max(image.size) <= 512
        if is_degraded(path):
            continue  # soft and JPEG-damaged on purpose: tests/present/test_examples.py checks those
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
        _colours, counts = np.unique(rgb, axis=0, return_counts=True)
        # flat cel shading: a handful of colours cover most of the picture
        assert np.sort(counts)[::-1][:12].sum() > 0.6 * len(rgb), path.name
        # bold dark outlines
        assert (rgb.max(axis=1) < 70).mean() > 0.01, path.name


# --- explanation and credits ---------------------------------------------------------


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs))


def links_of(html_text):
    parser = Links()
    parser.feed(html_text)
    return parser.links


def test_explanation_links_exactly_the_references():
    links = links_of(explanation_html())
    assert {link["href"] for link in links} == set(reference_urls())
    for link in links:
        assert link.get("target") == "_blank" and "noopener" in link.get("rel", "")
    assert len(REFERENCES) == 4
    assert "Lykon/dreamshaper-8" in explanation_html()


def test_explanation_covers_the_three_parts():
    text = re.sub(r"<[^>]+>", " ", explanation_html())
    for phrase in (
        "super-resolution",
        "interpolates",
        "trained on pairs",
        "UNet",
        "VAE encoder",
        "4 channels",
        "strength",
        "CLIP text",
        "VAE decoder",
        "re-draws",
    ):
        assert phrase in text, phrase


def test_engine_credits_appear_only_in_the_credits_section(settings):
    engines = all_engines()
    credit_urls = {credit.url for engine in engines for credit in engine.credits}
    assert credit_urls, "engines must credit what they run"
    explanation = explanation_html()
    credits = credits_html(engines, lambda engine: availability(engine, settings=settings))
    for url in credit_urls:
        assert url not in explanation
        assert url in {link["href"] for link in links_of(credits)}
    for link in links_of(credits):
        assert link.get("target") == "_blank" and "noopener" in link.get("rel", "")
    assert not set(reference_urls()) & {link["href"] for link in links_of(credits)}


# --- the Blocks ---------------------------------------------------------------------


def test_build_demo_wires_the_public_api_and_the_queues(settings):
    from cnaps_demo.ui import build_demo

    demo = build_demo(dataclasses.replace(settings, cpu_concurrency=2, queue_size=5))
    fns = list(demo.fns.values())
    public = {fn.api_name: fn for fn in fns if fn.api_visibility == "public"}
    assert set(public) == {"upscale", "upscale_gpu", "explain", "inside", "attribution"}
    for name in ("upscale", "inside", "attribution"):  # the looks inside are CPU work, counted on its lane
        assert public[name].concurrency_id == "cpu" and public[name].concurrency_limit == 2, name
    assert public["upscale_gpu"].concurrency_id == "gpu" and public["upscale_gpu"].concurrency_limit == 1
    # each lane has its own share of the queue: CPU 5 (CNAPS_QUEUE_SIZE), the explainers' 5, and GPU
    assert demo._queue.max_size == 2 * (5 + 5 + settings.gpu_queue_size)  # a backstop behind the lanes
    # The queue polls gently (Gradio's 1 ms / 10 ms loops took a tenth of a core with nobody there).
    from cnaps_demo.ui.jobs import PROGRESS_POLL_S, QUEUE_POLL_S

    assert (demo._queue.sleep_when_free, demo._queue.progress_update_sleep_when_free) == (QUEUE_POLL_S, PROGRESS_POLL_S)
    names = public["upscale"].input_parameter_names
    assert names[:3] == ["image", "engine", "simulate_blurry_source"] and "realcugan_denoise" in names


def test_zero_gpu_decorator_is_applied_only_when_spaces_imports(monkeypatch):
    import sys
    import types

    from cnaps_demo.ui.gpu import on_gpu

    def handler(image, engine="x", progress=None, **params):
        return "ran"

    monkeypatch.setitem(sys.modules, "spaces", None)  # "import spaces" raises ImportError
    assert on_gpu(handler) is handler

    calls = []
    fake = types.ModuleType("spaces")

    def GPU(duration=60):
        def decorate(fn):
            calls.append(duration)

            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)

            return wrapper

        return decorate

    fake.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", fake)
    wrapped = on_gpu(handler, duration=77)
    assert wrapped is not handler and calls == [77] and wrapped("img") == "ran"
    import inspect

    assert list(inspect.signature(wrapped).parameters) == ["image", "engine", "progress", "params"]


def test_live_frames_reach_the_page_while_a_diffusion_job_runs(tmp_path, monkeypatch):
    """The page polls LiveFrames during a run: each UNet step's picture must be there before the
    result, in order, as small PNGs with their captions."""
    import tiny_sd

    from cnaps_demo.engines import get_engine
    from cnaps_demo.settings import get_settings
    from cnaps_demo.web.live import LiveFrames

    model = tiny_sd.build_img2img_folder(tmp_path / "sd")
    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")
    settings = get_settings()
    live = LiveFrames(Workdir(tmp_path / "work"))
    keep = live.collector("visitor")
    seen_during = []

    def progress(done, total, description):
        seen_during.append(len(live.snapshot("visitor")))  # what a poll would find at this moment

    picture = tmp_path / "in.png"
    tiny_sd.noise_image(16, 16).save(picture)
    source = load(str(picture), settings)
    params = {"model": str(model), "controlnet": "none", "steps": 6, "strength": 0.5, "pre_upscaler": "lanczos"}
    result = run_engine(source, get_engine("sd-img2img"), params, settings=settings, progress=progress, frames=keep)
    strip = live.snapshot("visitor")
    assert len(strip) == len(result.frames) == 3  # 0.5 of 6 steps
    assert max(seen_during) >= 1 and sorted(seen_during) == seen_during  # frames arrived during the run
    assert [caption.split(" ·")[0] for _, caption in strip] == ["step 1/3", "step 2/3", "step 3/3"]
    assert all(Image.open(path).size == (32, 32) for path, _ in strip)
    live.forget("visitor")
    assert live.snapshot("visitor") == []
