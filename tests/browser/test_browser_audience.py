"""The page in front of an audience, in a real browser: it fits a projector and a phone, examples
are instant, progress moves during a one-tile run, Stop stops, crops are integer zoom, the
diagram's text stays in its boxes, impossible settings cannot be picked.

Screenshots go to tests/artifacts/ (git-ignored): look at them.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from app_process import ROOT, start_app, stop_app
from PIL import Image

import cnaps_demo
from cnaps_demo.colour import resolve
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.base import RunOptions
from cnaps_demo.image import load_image
from cnaps_demo.present.examples import bundled_examples
from cnaps_demo.present.result_cache import ExampleCache, cache_key
from cnaps_demo.settings import get_settings

ARTIFACTS = ROOT / "tests" / "artifacts"
LAPTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
RUN_TIMEOUT_MS = 240_000
RESULT_SHOWN = "document.querySelectorAll('#cnaps-slider img').length >= 2"
FIGURES_SHOWN = "document.querySelector('#cnaps-summary').innerText.includes('How faithful')"
EXAMPLE = next(path for path in bundled_examples() if path.name == "chibi_face.png")


def _start(tmp_path_factory, *args):
    folder = tmp_path_factory.mktemp("audience-app")
    process, url, _ = start_app(folder, *args)
    return process, url, folder


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    process, url, folder = _start(tmp_path_factory)
    yield url, folder
    stop_app(process)


@pytest.fixture(scope="module")
def presenter_url(tmp_path_factory):
    process, url, _ = _start(tmp_path_factory, "--presenter")
    yield url
    stop_app(process)


@pytest.fixture(scope="module")
def big_picture(tmp_path_factory):
    """A 600x600 drawing-like picture: one tile on the CPU (up to 640x640), several seconds of work."""
    path = tmp_path_factory.mktemp("pictures") / "big.png"
    Image.open(EXAMPLE).convert("RGB").resize((600, 600), Image.Resampling.LANCZOS).save(path)
    return path


def new_page(browser, viewport, url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("#cnaps-input")
    page.wait_for_selector("#cnaps-run")
    return page


def upload(page, path):
    page.locator("#cnaps-input input[type=file]").set_input_files(str(path))
    page.wait_for_selector("#cnaps-input img")


def rect(page, selector):
    page.wait_for_selector(selector)
    return page.evaluate(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height}; }",
        selector,
    )


def assert_above_the_fold(page, height):
    for selector in ("#cnaps-input", "#cnaps-run"):
        box = rect(page, selector)
        assert box["bottom"] <= height, f"{selector} ends at {box['bottom']:.0f} px, below the {height} px fold"
    slider = rect(page, "#cnaps-slider")
    assert slider["top"] + 80 <= height, "the top of the slider is not in view"


@pytest.mark.parametrize("mode", ["normal", "presenter"])
def test_the_page_fits_a_1280x720_projector(browser, app, presenter_url, mode):
    url = app[0] if mode == "normal" else presenter_url
    page = new_page(browser, LAPTOP, url)
    try:
        assert_above_the_fold(page, LAPTOP["height"])
        labels = page.locator("#cnaps-ba span")
        heights = [labels.nth(i).bounding_box()["height"] for i in range(labels.count())]
        assert max(heights) < 48, "a before/after label wraps onto two lines"
        page.screenshot(path=str(ARTIFACTS / f"fit_1280x720_{mode}.png"))
    finally:
        page.context.close()


def _wait_for_cached_example(folder, timeout=300.0):
    """The app computes the examples' results in the background: wait until chibi_face's is there."""
    settings = get_settings()
    image = load_image(EXAMPLE, max_pixels=settings.max_input_pixels).image
    engine = get_engine("realcugan")
    key = cache_key(image, engine.id, engine.check_params({}, settings), colour_fix=resolve(None, engine.colour_fix_by_default))
    entry = folder / "cache" / "examples" / f"{key}.json"
    deadline = time.monotonic() + timeout
    while not entry.exists():
        assert time.monotonic() < deadline, "the example cache was not filled in time"
        time.sleep(0.5)


def test_an_example_shows_its_result_at_once_and_crops_are_integer_zoom(browser, app):
    url, folder = app
    _wait_for_cached_example(folder)
    page = new_page(browser, LAPTOP, url)
    try:
        page.get_by_text("Chibi face", exact=True).first.click()
        started = time.monotonic()
        page.wait_for_function(RESULT_SHOWN, timeout=RUN_TIMEOUT_MS)
        assert time.monotonic() - started < 3.0, "a bundled example's result was not served from the cache"
        assert "cached result" in page.locator("#cnaps-summary").inner_text()
        page.wait_for_selector("#cnaps-crops figure img")
        crops = page.locator("#cnaps-crops figure img")
        assert crops.count() >= 2
        for i in range(crops.count()):
            width, height, natural_w, natural_h = crops.nth(i).evaluate(
                "(img) => { const r = img.getBoundingClientRect();"
                " return [r.width, r.height, img.naturalWidth, img.naturalHeight]; }"
            )
            zoom = width / natural_w
            assert zoom == int(zoom) and zoom >= 2 and height / natural_h == zoom, "uneven pixels in a crop"
        captions = page.locator("#cnaps-crops figcaption")
        for i in range(captions.count()):  # captions fit: nothing cut off
            assert captions.nth(i).evaluate("(c) => c.scrollWidth <= c.clientWidth + 1")
        before = page.locator("#cnaps-crops").inner_text()
        where = page.locator("#cnaps-where img")
        where.scroll_into_view_if_needed()
        box = where.bounding_box()
        where.click(position={"x": box["width"] * 0.15, "y": box["height"] * 0.85})  # bottom left
        page.wait_for_function(
            "(old) => document.querySelector('#cnaps-crops').innerText !== old", arg=before, timeout=10_000
        )
        page.screenshot(path=str(ARTIFACTS / "example_instant_crops.png"), full_page=True)
    finally:
        page.context.close()


def test_progress_moves_during_a_one_tile_run_and_the_result_comes_into_view(browser, app, big_picture):
    page = new_page(browser, LAPTOP, app[0])
    try:
        upload(page, big_picture)
        page.locator("#cnaps-run").click()
        seen, eased = [], set()
        deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
        while not page.evaluate(RESULT_SHOWN):
            assert time.monotonic() < deadline, "the run did not finish"
            text = page.evaluate(
                "(() => { const e = document.querySelector('#cnaps-slider .progress-level-inner');"
                " return e ? e.textContent : ''; })()"
            )
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            # The bar steps: an eased update is a layout per frame, CPU taken from the job.
            eased.add(
                page.evaluate(
                    "(() => { const e = document.querySelector('#cnaps-slider .progress-bar');"
                    " return e && parseFloat(e.style.width) > 0 ? getComputedStyle(e).transitionDuration : ''; })()"
                )
            )
            time.sleep(0.2)
        assert eased - {""} == {"0s"}, f"the progress bar eases its updates: {eased}"
        percents = [float(t.rsplit("-", 1)[-1].strip().rstrip("%")) for t in seen if t.strip().endswith("%")]
        moving = sorted({p for p in percents if 0.0 < p < 100.0})
        assert len(moving) >= 3, f"progress did not move during the run: {seen}"
        assert any("left" in t for t in seen), f"no estimate of the time left: {seen}"
        page.wait_for_function(FIGURES_SHOWN)  # the figures, diagram and crops follow the slider
        # The tile count is a detail of how it ran: in the diagram's hover text and its fold.
        assert "1 tile" in page.locator("#cnaps-summary").inner_text() or "tiles: 1" in page.locator(
            "#cnaps-diagram"
        ).text_content()
        assert rect(page, "#cnaps-slider")["top"] < LAPTOP["height"], "the result is not in view"
        page.screenshot(path=str(ARTIFACTS / "progress_done_1280x720.png"))
    finally:
        page.context.close()


def test_stop_ends_a_one_tile_run_within_the_bound_and_leaves_nothing_stale(browser, app, big_picture):
    page = new_page(browser, LAPTOP, app[0])
    try:
        page.locator("#cnaps-stop").click()  # nothing runs yet: the browser is told so
        page.locator(".toast-body").filter(has_text="Nothing is running").first.wait_for()
        upload(page, big_picture)
        page.locator("#cnaps-run").click()
        page.wait_for_function(
            "(() => { const e = document.querySelector('#cnaps-slider .progress-level-inner');"
            " return e && /tile 1\\/1, [1-9][0-9]*%/.test(e.textContent); })()",
            timeout=RUN_TIMEOUT_MS,
        )  # past the start: the model is working on its single tile
        pressed = time.monotonic()
        page.locator("#cnaps-stop").click()
        page.locator(".toast-body").filter(has_text="Stopped at").first.wait_for(timeout=120_000)
        waited = time.monotonic() - pressed
        # about one second of work, plus the browser's and the queue's round trips on a busy 2-core CI machine
        assert waited < 4.0, f"Stop took {waited:.1f} s"
        assert page.locator("#cnaps-slider img").count() == 0  # no stale or half-done result
        page.screenshot(path=str(ARTIFACTS / "stopped_1280x720.png"))
    finally:
        page.context.close()


ENGINE_SHOWN = "document.querySelector('#cnaps-engine input').value"


def pick_engine(page, label_start: str) -> None:
    """Choose an engine in the dropdown as a visitor does (a click, then the option)."""
    page.locator("#cnaps-engine input").click()
    page.get_by_role("option").filter(has_text=label_start).first.click()
    page.wait_for_function(f"{ENGINE_SHOWN}.startsWith({label_start!r})")


def test_a_large_upload_gets_the_faster_engine_and_its_slider_before_the_figures(browser, app, big_picture):
    page = new_page(browser, LAPTOP, app[0])
    try:
        assert page.evaluate(ENGINE_SHOWN).startswith("Real-CUGAN")
        upload(page, big_picture)
        page.locator(".toast-body").filter(has_text="Faster engine for a large picture").first.wait_for()
        page.wait_for_function(f"{ENGINE_SHOWN}.startsWith('Real-ESRGAN')")  # the page says what will run
        # The toast stays up into the job: without its countdown bar, it draws nothing per frame.
        timers = page.evaluate("[...document.querySelectorAll('.toast-body .timer')].map(e => getComputedStyle(e).display)")
        assert timers and set(timers) == {"none"}, timers
        page.screenshot(path=str(ARTIFACTS / "large_upload_switch_1280x720.png"))
        page.locator("#cnaps-run").click()
        states = []  # (slider shown, summary text) as the page changes
        deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
        while "How faithful" not in (summary := page.locator("#cnaps-summary").inner_text()):
            assert time.monotonic() < deadline, "the run did not finish"
            states.append((page.evaluate(RESULT_SHOWN), summary))
            time.sleep(0.03)
        early = [text for shown, text in states if shown]
        assert any("Measuring how faithful" in text for text in early), f"the slider should come first: {states[-5:]}"
        assert "Real-ESRGAN" in summary and "600\u00d7600 \u2192 1200\u00d71200" in summary
        # A visitor's own pick stays, whatever the picture's size.
        pick_engine(page, "Real-CUGAN")
        upload(page, big_picture)
        time.sleep(1.0)  # the upload's events have run
        assert page.evaluate(ENGINE_SHOWN).startswith("Real-CUGAN")
    finally:
        page.context.close()


def test_impossible_realcugan_combinations_cannot_be_picked(browser, app):
    from cnaps_demo.engines.cnn.realcugan import REALCUGAN_MODELS

    page = new_page(browser, LAPTOP, app[0])
    try:
        denoise = page.locator("#param-realcugan_denoise")
        for variant in ("nose", "pro", "se"):
            page.locator("#param-realcugan_variant").get_by_label(variant, exact=True).check()
            expected = list(REALCUGAN_MODELS[(variant, 2)])
            page.wait_for_function(
                "(n) => document.querySelectorAll('#param-realcugan_denoise input[type=radio]').length === n",
                arg=len(expected),
            )
            offered = denoise.locator("input[type=radio]").evaluate_all("(els) => els.map((e) => e.value)")
            assert offered == expected
            assert denoise.locator("input[type=radio]:checked").count() == 1
    finally:
        page.context.close()


def test_a_phone_can_use_every_part_and_the_diagram_stacks(browser, app):
    page = new_page(browser, PHONE, app[0])
    try:
        upload(page, EXAMPLE)
        page.locator("#cnaps-run").scroll_into_view_if_needed()
        page.locator("#cnaps-run").click()
        page.wait_for_function(RESULT_SHOWN, timeout=RUN_TIMEOUT_MS)
        page.wait_for_timeout(800)  # the smooth scroll
        slider = rect(page, "#cnaps-slider")
        assert slider["top"] < PHONE["height"] and slider["bottom"] > 0, "the result is not in view after the run"
        page.wait_for_selector("#cnaps-diagram .cnaps-diagram-tall svg")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, "sideways scrolling"
        svg = page.locator("#cnaps-diagram .cnaps-diagram-tall svg").first
        box = svg.bounding_box()
        assert box["width"] <= PHONE["width"] and box["height"] > box["width"], "the diagram does not stack"
        sizes = svg.evaluate(
            "(s) => [...s.querySelectorAll('text')].map((t) => t.getBoundingClientRect().height)"
        )
        assert np.median(sizes) >= 9, "the diagram's text is too small to read on a phone"
        for selector in ("#cnaps-run", "#cnaps-stop", "#cnaps-engine", "#cnaps-simulate"):
            element = rect(page, selector)
            assert element["left"] >= 0 and element["right"] <= PHONE["width"] + 1, f"{selector} sticks out"
        page.screenshot(path=str(ARTIFACTS / "phone_390x844.png"), full_page=True)
    finally:
        page.context.close()


def test_diagram_texts_lie_inside_their_boxes_in_the_browser(browser, app):
    page = new_page(browser, LAPTOP, app[0])
    try:
        upload(page, EXAMPLE)
        page.locator("#cnaps-run").click()
        page.wait_for_function(RESULT_SHOWN, timeout=RUN_TIMEOUT_MS)
        page.wait_for_selector("#cnaps-diagram .cnaps-diagram-wide svg rect")
        outside = page.evaluate(
            """() => {
                const bad = [];
                for (const svg of document.querySelectorAll('#cnaps-diagram svg')) {
                    if (!svg.getBoundingClientRect().width) continue;  // the other layout, hidden
                    const frame = svg.getBoundingClientRect();
                    const boxes = [...svg.querySelectorAll('rect')].map((r) => r.getBoundingClientRect())
                        .filter((r) => r.width > 40 && r.height > 30);
                    for (const t of svg.querySelectorAll('text')) {
                        const b = t.getBoundingClientRect();
                        if (!b.width) continue;
                        const inFrame = b.left >= frame.left - 1 && b.right <= frame.right + 1;
                        const inBox = boxes.some((r) => b.left >= r.left - 1 && b.right <= r.right + 1
                            && b.top >= r.top - 1 && b.bottom <= r.bottom + 1);
                        const caption = !boxes.some((r) => b.top < r.bottom && b.bottom > r.top
                            && b.left < r.right && b.right > r.left);
                        if (!inFrame || !(inBox || caption)) bad.push(t.textContent);
                    }
                }
                return bad;
            }"""
        )
        assert outside == [], f"text outside its box: {outside}"
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def tiny_sd_app(tmp_path_factory):
    """The app with sd-img2img pointed at a tiny random pipeline that may run on the CPU."""
    import tiny_sd

    model = tiny_sd.build_img2img_folder(tmp_path_factory.mktemp("tiny-sd"))
    folder = tmp_path_factory.mktemp("sd-app")
    env = {"CNAPS_SD_MODEL": str(model), "CNAPS_ALLOW_CPU_DIFFUSION": "1", "CNAPS_SD_CONTROLNET": "none"}
    process, url, _ = start_app(folder, env_extra=env)
    yield url
    stop_app(process)


def choose_tiny_sd(page, *, steps: int, strength: float) -> None:
    """Pick sd-img2img with a few steps and the quick Lanczos pre-enlarge (the tiny pipeline runs on the CPU)."""
    page.locator("#cnaps-engine input").click()
    page.get_by_role("option").filter(has_text="SD img2img").first.click()
    page.locator("#cnaps-run-gpu").wait_for()
    page.locator("#param-sd_img2img_steps input[type=number]").fill(str(steps))
    page.locator("#param-sd_img2img_strength input[type=number]").fill(str(strength))
    page.locator("#param-sd_img2img_pre_upscaler").get_by_label("lanczos", exact=True).check()


def test_diffusion_frames_appear_as_a_strip_and_figures_sit_beside_the_slider(browser, tiny_sd_app, tmp_path):
    picture = tmp_path / "small.png"
    Image.open(EXAMPLE).convert("RGB").resize((64, 64)).save(picture)
    page = new_page(browser, LAPTOP, tiny_sd_app)
    try:
        choose_tiny_sd(page, steps=6, strength=0.5)
        page.locator("#cnaps-simulate input").check()
        upload(page, picture)
        page.locator("#cnaps-run-gpu").click()
        page.wait_for_function(RESULT_SHOWN, timeout=RUN_TIMEOUT_MS)
        strip = page.locator("#cnaps-filmstrip img")
        page.wait_for_function("document.querySelectorAll('#cnaps-filmstrip img').length >= 3", timeout=30_000)
        assert strip.count() == 3  # strength 0.5 of 6 steps: 3 UNet steps, one frame each
        captions = page.locator("#cnaps-filmstrip").inner_text()
        assert "step 1/3" in captions and "timestep" in captions and "noise" in captions
        page.locator("#cnaps-filmstrip-file a").first.wait_for()  # the animated WebP to download
        summary = page.locator("#cnaps-summary").inner_text()
        assert "How faithful" in summary and "LR-PSNR" in summary and "SSIM" in summary
        assert "/tmp/" not in summary and "tiny-sd-img2img" in summary  # the operator's folder, not its path
        assert "dB" in page.locator("#cnaps-ba").inner_text()  # the score sits in the slider's label
        page.screenshot(path=str(ARTIFACTS / "filmstrip_1280x720.png"), full_page=True)

        page.locator("#cnaps-sweep").click()  # faithful versus invented, at a glance
        page.wait_for_function("document.querySelectorAll('#cnaps-explored img').length === 6", timeout=RUN_TIMEOUT_MS)
        swept = page.locator("#cnaps-explored").inner_text()
        assert "strength 0.1" in swept and "strength 0.6" in swept and "LR-PSNR" in swept and "PSNR" in swept
        # "Inside the network" shows where it guesses in place of the CNN's sum and pixel trace.
        page.locator("#cnaps-seeds").wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
        assert not page.locator("#cnaps-inside-pick").is_visible() and not page.locator("#cnaps-inside-base").is_visible()
        page.locator("#cnaps-seeds").click()  # where the model is guessing: the run on screen at 3 seeds
        page.wait_for_function("document.querySelectorAll('#cnaps-guess img').length === 4", timeout=RUN_TIMEOUT_MS)
        assert "seeds disagree" in page.locator("#cnaps-guess").inner_text()  # three seeds and their spread
        note = page.locator("#cnaps-guess-note").inner_text()
        assert "% of the pixels differ visibly" in note and "/255 on average" in note
        page.locator("#cnaps-seeds").wait_for(state="hidden")  # the same job again would draw the same map
        page.locator("#cnaps-guess-box").screenshot(path=str(ARTIFACTS / "guessing_1280x720.png"))
        page.screenshot(path=str(ARTIFACTS / "explorations_1280x720.png"), full_page=True)
    finally:
        page.context.close()


def test_the_filmstrip_fills_while_the_diffusion_job_runs(browser, tiny_sd_app, tmp_path):
    """The audience watches the drawing emerge: frames reach the page before the result does."""
    picture = tmp_path / "medium.png"
    Image.open(EXAMPLE).convert("RGB").resize((128, 128)).save(picture)
    page = new_page(browser, LAPTOP, tiny_sd_app)
    try:
        choose_tiny_sd(page, steps=8, strength=1.0)
        upload(page, picture)
        page.locator("#cnaps-run-gpu").click()
        during = set()
        deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
        while not page.evaluate(RESULT_SHOWN):
            assert time.monotonic() < deadline, "the run did not finish"
            during.add(page.evaluate("document.querySelectorAll('#cnaps-filmstrip img').length"))
            time.sleep(0.1)
        assert any(0 < count < 8 for count in during), f"no frame arrived before the result: {sorted(during)}"
        page.wait_for_function("document.querySelectorAll('#cnaps-filmstrip img').length === 8", timeout=30_000)
    finally:
        page.context.close()


def test_a_talk_without_a_gpu_shows_a_cached_diffusion_examples_steps_and_seed_map(browser, tmp_path, monkeypatch):
    """Results made ahead (here by the tiny random SD model, standing in for the GPU machine's run) are
    what "Inside the network" shows for Stable Diffusion where it cannot run: its steps and its seed map."""
    import tiny_sd  # as above: diffusers only for the tests that build the tiny model

    from cnaps_demo.engines.diffusion import seed_disagreement

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = get_settings()
    img2img = get_engine("sd-img2img")
    made_with = {"model": str(tiny_sd.build_img2img_folder(tmp_path / "tiny-sd")), "steps": 4, "strength": 0.5,
                 "pre_upscaler": "lanczos", "controlnet": "none"}
    source = load_image(EXAMPLE, max_pixels=settings.max_input_pixels).image
    made = cnaps_demo.upscale(source, img2img.id, device="cpu", frames=True, **made_with)
    shown_params = img2img.check_params({}, settings)  # what the page asks for: the engine's defaults
    fix = resolve(None, img2img.colour_fix_by_default)
    cache = ExampleCache(tmp_path / "app" / "cache" / "examples", settings)
    cache.put(source, dataclasses.replace(made, params=shown_params, colour_fix=fix))
    found = seed_disagreement(img2img, source, img2img.check_params({**made_with, "seed": shown_params["seed"]}),
                              RunOptions(device="cpu"))
    cache.put_seeds(source, img2img.id, shown_params, found)

    process, url, _ = start_app(tmp_path / "app")
    page = new_page(browser, LAPTOP, url)
    try:
        page.locator("#cnaps-engine input").click()
        page.get_by_role("option").filter(has_text="SD img2img").first.click()
        page.locator("#cnaps-engine-status .cnaps-card-off").wait_for()  # it cannot run on this server
        page.get_by_text("Chibi face", exact=True).first.click()
        page.wait_for_function(RESULT_SHOWN, timeout=RUN_TIMEOUT_MS)
        assert "cached result" in page.locator("#cnaps-summary").inner_text()
        steps = len(made.frames)
        page.wait_for_function(f"document.querySelectorAll('#cnaps-inside-layers img').length === {steps}")
        assert f"step {steps}/{steps}" in page.locator("#cnaps-inside-layers").inner_text()
        page.wait_for_function("document.querySelectorAll('#cnaps-guess img').length === 4")
        note = page.locator("#cnaps-guess-note").inner_text()
        assert "computed ahead" in note and f"{found.guessing_share * 100:.1f}%" in note
        assert not page.locator("#cnaps-seeds").is_visible()  # nothing to press: the map is there
        assert not page.locator("#cnaps-inside-pick").is_visible()  # no pixel trace for a diffusion run
        assert page.locator(".toast-body").filter(has_text="Error").count() == 0
        page.locator("#cnaps-inside").screenshot(path=str(ARTIFACTS / "inside_cached_sd_1280x720.png"))
    finally:
        page.context.close()
        stop_app(process)
