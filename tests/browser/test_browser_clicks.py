"""Every click counts, on every screen (issue 23), in a real browser (Debian's Chromium).

* A click on an example or on Upscale at 0, 0.1, 0.2 and 0.5 s after a result is honoured, and the
  slider, the figures and the crops then show the new picture's result (nothing of the old one).
* Stop right after such a click stops the run (it never says "Nothing is running").
* At 1280x720 and 390x844 every tab is one labelled tap away, labels and the engine picker's text
  fit their boxes, and an example's result scrolls into view on a phone.
* An engine that cannot run here keeps no run button, and Compare offers only engines that run.

Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import time

import pytest
from app_process import ROOT, start_app, stop_app
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from cnaps_demo.colour import resolve
from cnaps_demo.engines import get_engine
from cnaps_demo.image import load_image
from cnaps_demo.present.examples import bundled_examples, example_label
from cnaps_demo.present.result_cache import cache_key
from cnaps_demo.settings import get_settings

ARTIFACTS = ROOT / "tests" / "artifacts"
LAPTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
EXAMPLES = {path.name: path for path in bundled_examples()}
SIZES = {name: Image.open(path).size for name, path in EXAMPLES.items()}
# A newer result must show this soon after its click (a cached example is served in well under a second;
# the margin is for a busy 2-core machine). The dropped click of issue 23 left the old one 10-15 s.
SHOWN_WITHIN_S = 8.0


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # A model folder that does not exist: the SD engines cannot run here even on a GPU machine.
    missing = str(tmp_path_factory.mktemp("no-model") / "missing-model")
    folder = tmp_path_factory.mktemp("clicks-app")
    process, url, _ = start_app(folder, env_extra={"CNAPS_SD_MODEL": missing})
    yield url, folder
    stop_app(process)


def wait_for_example_cache(folder, names=None, timeout: float = 400.0) -> None:
    """The app computes the examples' results in the background (the default engine, realcugan): wait
    until those of ``names`` (default: every example) are there, so that a click on one is instant."""
    settings = get_settings()
    engine = get_engine("realcugan")
    params, fix = engine.check_params({}, settings), resolve(None, engine.colour_fix_by_default)
    for name in names or EXAMPLES:
        image = load_image(EXAMPLES[name], max_pixels=settings.max_input_pixels).image
        key = cache_key(image, engine.id, params, colour_fix=fix)
        entry = folder / "cache" / "examples" / f"{key}.json"
        deadline = time.monotonic() + timeout
        while not entry.exists():
            assert time.monotonic() < deadline, f"the example cache has no result for {name} in time"
            time.sleep(0.5)


def new_page(browser, viewport, url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("#cnaps-run")
    return page


# What the page shows, in one look: the input's size, the slider's two pictures, the summary and the
# small picture of where the crops are.
SHOWN = """() => {
  const size = (img) => img && img.complete && img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null;
  return {
    input: size(document.querySelector('#cnaps-input img')),
    slider: [...document.querySelectorAll('#cnaps-slider img')].map(size),
    summary: document.querySelector('#cnaps-summary').innerText,
    where: size(document.querySelector('#cnaps-where img')),
  };
}"""


def shows_result_of(shown: dict, size: tuple[int, int], figures: bool = True) -> bool:
    width, height = size
    doubled = [width * 2, height * 2]
    ok = shown["input"] == [width, height] and len(shown["slider"]) == 2 and all(s == doubled for s in shown["slider"])
    ok = ok and f"{width}\u00d7{height} \u2192 {width * 2}\u00d7{height * 2}" in shown["summary"]
    if figures:
        ok = ok and "How faithful" in shown["summary"] and shown["where"] == [width, height]
    return ok


def wait_until_shown(page, size, within: float = SHOWN_WITHIN_S, figures: bool = True) -> dict:
    deadline = time.monotonic() + within
    while True:
        shown = page.evaluate(SHOWN)
        if shows_result_of(shown, size, figures):
            return shown
        assert time.monotonic() < deadline, f"after {within} s the page shows {shown}, not the result of {size}"
        time.sleep(0.05)


# Clicks ``first`` (an example's label, or "run" for the Upscale button); once the slider shows a
# result of ``size`` (the input's picture doubled), waits ``delay`` seconds and clicks ``then``.
# Also records whether the slider went empty after the second click (a new run clears it first).
CLICK_AFTER_RESULT = """async ({first, then, size, delay}) => {
  const button = (what) => what === 'run' ? document.querySelector('#cnaps-run')
    : [...document.querySelectorAll('#cnaps-examples button')].find((b) => b.textContent.trim() === what);
  const doubled = () => {
    const imgs = [...document.querySelectorAll('#cnaps-slider img')];
    return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth === size[0] * 2
                                                  && i.naturalHeight === size[1] * 2);
  };
  button(first).click();
  const started = performance.now();
  while (document.querySelectorAll('#cnaps-slider img').length > 0) {  // the click empties the outputs first
    if (performance.now() - started > 10000) return {error: 'the first click did not empty the slider'};
    await new Promise((r) => setTimeout(r, 2));
  }
  while (!doubled()) {
    if (performance.now() - started > 60000) return {error: 'the first result did not show'};
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, delay * 1000));
  window.cnapsEmptied = false;
  new MutationObserver(() => {
    if (document.querySelectorAll('#cnaps-slider img').length === 0) window.cnapsEmptied = true;
  }).observe(document.querySelector('#cnaps-slider'), {childList: true, subtree: true});
  button(then).click();
  return {clickedAfterMs: performance.now() - started};
}"""

ROUNDS = [  # (delay, first example, second example): each pair of different sizes
    (0.0, "chibi_face_blurry.png", "starry_night.png"),
    (0.1, "chibi_face.png", "cat_sticker.png"),
    (0.2, "starry_night_jpeg.png", "chibi_face.png"),
    (0.5, "chibi_face_blurry.png", "starry_night.png"),
]


def test_an_example_clicked_right_after_a_result_shows_its_own_result(browser, app):
    url, folder = app
    wait_for_example_cache(folder)
    page = new_page(browser, LAPTOP, url)
    try:
        for delay, first, second in ROUNDS:
            clicked = page.evaluate(
                CLICK_AFTER_RESULT,
                {"first": example_label(EXAMPLES[first]), "then": example_label(EXAMPLES[second]),
                 "size": list(SIZES[first]), "delay": delay},
            )
            assert "error" not in clicked, clicked
            wait_until_shown(page, SIZES[second])
            time.sleep(1.5)  # nothing of the first picture may arrive late
            shown = page.evaluate(SHOWN)
            assert shows_result_of(shown, SIZES[second]), f"{delay} s: a stale result came back: {shown}"
        page.screenshot(path=str(ARTIFACTS / "clicks_examples_1280x720.png"))
    finally:
        page.context.close()


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.2, 0.5])
def test_upscale_pressed_right_after_a_result_runs_again(browser, app, delay):
    url, folder = app
    wait_for_example_cache(folder)
    page = new_page(browser, LAPTOP, url)
    try:
        name = "chibi_face.png"
        page.get_by_text(example_label(EXAMPLES[name]), exact=True).first.click()
        wait_until_shown(page, SIZES[name])
        # Upscale, and Upscale again right after its result (its figures are still being drawn then).
        clicked = page.evaluate(
            CLICK_AFTER_RESULT, {"first": "run", "then": "run", "size": list(SIZES[name]), "delay": delay}
        )
        assert "error" not in clicked, clicked
        # The run really happened: it empties the slider first (the old result is on screen until the
        # server's first answer, so wait for the emptying before looking for the new result).
        try:
            page.wait_for_function("window.cnapsEmptied === true", timeout=SHOWN_WITHIN_S * 1000)
        except PlaywrightTimeout:
            pytest.fail("the Upscale click started no run")
        wait_until_shown(page, SIZES[name])
        assert page.locator(".toast-body").filter(has_text="Nothing is running").count() == 0
    finally:
        page.context.close()


def test_stop_right_after_a_second_upscale_stops_it(browser, app, tmp_path):
    # Not an example: a real job of a few seconds, so that there is something to stop.
    picture = tmp_path / "not-an-example.png"
    Image.open(EXAMPLES["chibi_face.png"]).convert("RGB").resize((240, 240)).save(picture)
    url, _ = app
    page = new_page(browser, LAPTOP, url)
    try:
        page.locator("#cnaps-input input[type=file]").set_input_files(str(picture))
        page.wait_for_selector("#cnaps-input img")
        page.locator("#cnaps-run").click()
        wait_until_shown(page, (240, 240), within=240, figures=False)
        page.evaluate(  # Upscale again 0.1 s after the result (its figures follow), Stop 0.1 s after that
            "async () => { await new Promise((r) => setTimeout(r, 100)); document.querySelector('#cnaps-run').click();"
            " await new Promise((r) => setTimeout(r, 100)); document.querySelector('#cnaps-stop').click(); }"
        )
        stopped = page.locator(".toast-body").filter(has_text="Stopped").first
        stopped.wait_for(timeout=60_000)
        assert page.locator(".toast-body").filter(has_text="Nothing is running").count() == 0
        time.sleep(2.0)  # the stopped run draws nothing afterwards
        assert page.locator("#cnaps-slider img").count() == 0
    finally:
        page.context.close()


def test_toasts_leave_when_a_run_starts(browser, app, tmp_path):
    big = tmp_path / "big.png"  # large enough for the "faster engine" toast on a CPU-only server
    Image.open(EXAMPLES["chibi_face.png"]).convert("RGB").resize((600, 600)).save(big)
    url, _ = app
    page = new_page(browser, LAPTOP, url)
    try:
        page.locator("#cnaps-input input[type=file]").set_input_files(str(big))
        page.locator(".toast-body").filter(has_text="Faster engine").first.wait_for()
        page.locator("#cnaps-run").click()
        page.wait_for_function("document.querySelectorAll('.toast-body').length === 0", timeout=3_000)
        page.locator("#cnaps-stop").click()
    finally:
        page.context.close()


# Texts that must be whole: each element's text fits its own box, and no label lies under a button.
TEXTS_FIT = """() => {
  const bad = [];
  const visible = (e) => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
                            && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const selectors = ['[data-testid="block-label"]', '.cnaps-ba span', '#cnaps-engine input',
                     '#cnaps-compare-left input', '#cnaps-compare-right input', '[role="tab"]',
                     '#cnaps-compare-table th', '#cnaps-examples button', 'button.lg', '.cnaps-header h1'];
  for (const selector of selectors) {
    for (const e of document.querySelectorAll(selector)) {
      if (!visible(e)) continue;
      if (e.scrollWidth > e.clientWidth + 1) bad.push(`${selector} cut: ${(e.value || e.innerText).slice(0, 50)}`);
    }
  }
  for (const label of document.querySelectorAll('[data-testid="block-label"]')) {
    if (!visible(label)) continue;
    const block = label.closest('.block');
    for (const icon of block ? block.querySelectorAll('.icon-button-wrapper button') : []) {
      if (visible(icon) && overlap(label.getBoundingClientRect(), icon.getBoundingClientRect()))
        bad.push(`under an icon: ${label.innerText}`);
    }
  }
  for (const th of document.querySelectorAll('#cnaps-compare-table th')) {  // never a letter per line
    if (!visible(th)) continue;
    const words = th.innerText.split(/[\\s-]+/).filter(Boolean);  // a hyphen may break a line too
    const range = document.createRange();
    range.selectNodeContents(th);
    const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
    if (lines.size > words.length) bad.push(`header wraps inside a word: ${th.innerText}`);
  }
  if (document.querySelector('button[aria-label="More tabs"]')?.offsetParent) bad.push('tabs behind a "..." menu');
  return bad;
}"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280x720", "390x844"])
def test_every_tab_is_one_tap_away_and_every_text_fits(browser, app, viewport):
    url, folder = app
    wait_for_example_cache(folder)
    size = f"{viewport['width']}x{viewport['height']}"
    page = new_page(browser, viewport, url)
    try:
        for name in ("Upscale", "Compare engines", "How does it work?"):
            assert page.get_by_role("tab", name=name).is_visible(), f"the {name} tab is not in view"
        page.get_by_text("Chibi face", exact=True).first.click()
        wait_until_shown(page, SIZES["chibi_face.png"])
        page.wait_for_timeout(800)  # the smooth scroll
        slider = page.locator("#cnaps-slider").bounding_box()
        assert slider["y"] < viewport["height"] and slider["y"] + slider["height"] > 0, "the result is not in view"
        assert page.evaluate(TEXTS_FIT) == []
        page.screenshot(path=str(ARTIFACTS / f"clicks_upscale_{size}.png"))
        page.screenshot(path=str(ARTIFACTS / f"clicks_upscale_full_{size}.png"), full_page=True)
        page.get_by_role("tab", name="Compare engines").click()
        page.locator("#cnaps-compare-run").click()
        page.wait_for_selector("#cnaps-compare-table th", timeout=240_000)
        assert page.evaluate(TEXTS_FIT) == []
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= viewport["width"] + 1, "the page scrolls sideways"
        page.screenshot(path=str(ARTIFACTS / f"clicks_compare_{size}.png"), full_page=True)
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def presenter(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clicks-presenter")
    process, url, _ = start_app(folder, "--presenter")
    yield url, folder
    stop_app(process)


def test_in_presenter_mode_every_text_fits_a_projector(browser, presenter):
    url, folder = presenter
    wait_for_example_cache(folder, ["chibi_face.png"])
    page = new_page(browser, LAPTOP, url)
    try:
        page.get_by_text("Chibi face", exact=True).first.click()
        wait_until_shown(page, SIZES["chibi_face.png"])
        assert page.evaluate(TEXTS_FIT) == []
        labels = page.locator("#cnaps-ba span")
        assert [labels.nth(i).bounding_box()["height"] < 48 for i in range(labels.count())] == [True, True]
        page.screenshot(path=str(ARTIFACTS / "clicks_presenter_1280x720.png"))
    finally:
        page.context.close()


def test_an_engine_that_cannot_run_here_keeps_no_run_button_and_compare_offers_only_live_ones(browser, app):
    url, _ = app
    page = new_page(browser, LAPTOP, url)
    try:
        page.get_by_text("Chibi face", exact=True).first.click()
        wait_until_shown(page, SIZES["chibi_face.png"])
        page.locator("#cnaps-engine input").click()
        page.get_by_role("option").filter(has_text="not on this server").first.click()
        page.locator("#cnaps-engine-status .cnaps-card-off").wait_for()
        for button in ("#cnaps-run", "#cnaps-run-gpu", "#cnaps-stop", "#cnaps-sweep", "#cnaps-seeds"):
            assert not page.locator(button).is_visible(), f"{button} is shown for an engine that cannot run"
        # The pick's card and its emptying of the outputs are two unqueued requests: either may answer
        # first (under load the emptying came after the card), so wait for it, then fail if it never came.
        emptied = "document.querySelectorAll('#cnaps-slider img').length === 0"
        try:
            page.wait_for_function(emptied, timeout=8000)
        except PlaywrightTimeout:
            pytest.fail("the other engine's result stayed")
        # An example now shows a result computed ahead, or says in the slider's place that there is none.
        page.get_by_text("Starry night", exact=True).first.click()
        page.locator("#cnaps-ba .cnaps-no-result, #cnaps-ba").filter(has_text="computed ahead").first.wait_for()
        assert page.locator(".toast-body").filter(has_text="Error").count() == 0
        page.screenshot(path=str(ARTIFACTS / "clicks_engine_off_1280x720.png"), full_page=True)
        page.get_by_role("tab", name="Compare engines").click()
        offered = page.locator("#cnaps-compare-engines label").all_inner_texts()
        assert offered and not any("not on this server" in text for text in offered), offered
        assert "Not on this server" in page.locator("#cnaps-compare-engines").inner_text()
    finally:
        page.context.close()


def test_the_page_has_unique_ids_no_outside_fonts_and_an_eager_crop_picture(browser, app):
    url, _ = app
    page = browser.new_context(viewport=LAPTOP).new_page()
    outside = []
    page.on("request", lambda request: outside.append(request.url) if "127.0.0.1" not in request.url else None)
    try:
        page.goto(url)
        page.wait_for_selector("#cnaps-run")
        page.get_by_text("Chibi face", exact=True).first.click()
        wait_until_shown(page, SIZES["chibi_face.png"])
        ids = page.evaluate(
            "() => { const seen = {}; document.querySelectorAll('[id]')"
            ".forEach((e) => { if (e.id) seen[e.id] = (seen[e.id] || 0) + 1; });"
            " return Object.entries(seen).filter(([, n]) => n > 1); }"
        )
        assert ids == [], f"element ids used twice: {ids}"
        assert outside == [], f"the page asked another server: {outside}"
        fonts = page.evaluate("getComputedStyle(document.querySelector('.cnaps-header h1')).fontFamily")
        assert "Montserrat" not in fonts and "system-ui" in fonts
        assert page.locator("#cnaps-where img").get_attribute("loading") != "lazy"
    finally:
        page.context.close()
