"""The web page in a real browser (Debian's Chromium through Playwright), with screenshots.

Needs /usr/bin/chromium (`scripts/setup-dev.sh` installs Debian's chromium and chromium-driver).
Screenshots go to tests/artifacts/ (git-ignored).
"""

from urllib.parse import urlparse

import pytest
from PIL import Image
from app_process import ROOT, offline_context, start_app, stop_app

from cnaps_demo.present.examples import bundled_examples

ARTIFACTS = ROOT / "tests" / "artifacts"
EXAMPLE = next(path for path in bundled_examples() if path.name == "chibi_face.png")
RUN_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    # A model folder that does not exist: sd-img2img is unavailable here even on a GPU machine
    # with the weights cached, so the "unavailable engine" test always has one to pick.
    missing_model = str(tmp_path_factory.mktemp("no-model") / "missing-model")
    process, url, _ = start_app(tmp_path_factory.mktemp("browser-app"), env_extra={"CNAPS_SD_MODEL": missing_model})
    yield url
    stop_app(process)


@pytest.fixture
def page(browser, app_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = offline_context(browser, {"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def open_app(page, url, theme="light"):
    page.goto(f"{url}?__theme={theme}")
    page.wait_for_selector("#cnaps-input")
    page.locator("#cnaps-input input[type=file]").set_input_files(str(EXAMPLE))
    page.wait_for_selector("#cnaps-input img")


def contrast_of(page, selector):
    """WCAG contrast between an element's text colour and the nearest opaque background behind it."""
    return page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => {
                const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            let fg = parse(getComputedStyle(el).fill || getComputedStyle(el).color);
            if (!fg.length) fg = parse(getComputedStyle(el).color);
            let node = el, bg = null;
            while (node && node.nodeType === 1) {
                const c = parse(getComputedStyle(node).backgroundColor);
                if (c.length >= 3 && (c.length < 4 || c[3] > 0.9)) { bg = c; break; }
                node = node.parentElement;
            }
            if (!bg) bg = [255, 255, 255];
            const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05);
        }""",
        selector,
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_upload_run_and_see_before_after_and_diagram(page, app_url, theme):
    open_app(page, app_url, theme)
    assert page.locator(".cnaps-header h1").inner_text().startswith("Why does an AI 2x upscale")
    page.locator("#cnaps-run").click()
    page.wait_for_function("document.querySelectorAll('#cnaps-slider img').length >= 2", timeout=RUN_TIMEOUT_MS)
    images = page.locator("#cnaps-slider img")
    assert images.count() == 2
    page.wait_for_selector("#cnaps-diagram .cnaps-diagram-wide svg text")
    diagram_text = page.locator("#cnaps-diagram .cnaps-diagram-wide svg").text_content()
    assert "Input image" in diagram_text and "Output image" in diagram_text
    assert "Before" in page.locator("#cnaps-ba").inner_text() and "After" in page.locator("#cnaps-ba").inner_text()
    # the diagram's text must be readable on this theme's background
    assert contrast_of(page, "#cnaps-diagram .cnaps-diagram-wide svg text") >= 4.5
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"upscale_{theme}.png"), full_page=True)


def test_explanation_links_point_at_papers_and_code_and_open_a_new_tab(page, app_url):
    from cnaps_demo.present.references import reference_urls

    page.goto(app_url)
    page.get_by_role("tab", name="How does it work?").click()
    page.wait_for_selector("#cnaps-explain a")
    links = page.locator("#cnaps-explain a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert set(hrefs) == set(reference_urls())
    for i in range(links.count()):
        assert urlparse(hrefs[i]).hostname in {"arxiv.org", "github.com"}
        assert links.nth(i).get_attribute("target") == "_blank"
        assert "noopener" in links.nth(i).get_attribute("rel")
    assert page.locator("#cnaps-credits").get_by_text("Engines and licences").count() == 1
    with page.context.expect_page() as new_tab:
        links.first.click()
    assert new_tab.value.url.rstrip("/") == hrefs[0].rstrip("/")
    assert page.url.startswith(app_url)  # the demo itself stays open
    page.screenshot(path=str(ARTIFACTS / "explain.png"), full_page=True)


def test_an_unavailable_engine_shows_a_short_card_and_hides_its_controls(page, app_url):
    page.goto(app_url)
    page.wait_for_selector("#cnaps-engine")
    page.locator("#cnaps-engine input").click()
    options = page.get_by_role("option").filter(has_text="not on this server")
    assert options.count() >= 1  # sd-img2img at least: the app_url fixture points it at a missing model
    options.first.click()
    card = page.locator("#cnaps-engine-status .cnaps-card-off")
    card.wait_for()
    text = card.inner_text()
    assert "cannot run on this server" in text and "It needs" in text and "For the operator" in text
    assert "pip install" not in text and "python -m" not in text and len(text) < 500  # a card, not a wall
    assert page.locator("#param-sd_img2img_strength").count() == 0 or not page.locator(
        "#param-sd_img2img_strength"
    ).is_visible()  # its dead controls are hidden
    page.wait_for_timeout(300)
    assert page.locator(".toast-body").count() == 0  # said once, in the card: no toast repeating it
    page.screenshot(path=str(ARTIFACTS / "unavailable_engine.png"))


def test_a_full_queue_shows_a_clear_busy_message(page, app_url):
    from cnaps_demo.ui.theme import BUSY_MESSAGE

    open_app(page, app_url)
    page.route(
        "**/queue/join*",
        lambda route: route.fulfill(status=503, content_type="application/json", body='{"detail": "Queue is full."}'),
    )
    page.locator("#cnaps-run").click()
    message = page.locator(".toast-body").filter(has_text=BUSY_MESSAGE).first
    message.wait_for()
    assert message.is_visible()
    assert "currently busy" not in message.inner_text()  # Gradio's vaguer text was replaced
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "queue_full.png"))


def test_compare_two_engines_side_by_side(page, app_url):
    open_app(page, app_url)
    page.locator("#cnaps-simulate input").check()
    page.get_by_role("tab", name="Compare engines").click()
    page.locator("#cnaps-compare-run").click()
    page.wait_for_function("document.querySelectorAll('#cnaps-compare-slider img').length >= 2", timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector("#cnaps-compare-crops img")
    assert page.locator("#cnaps-compare-crops img").count() >= 3  # bicubic, each engine, ground truth
    assert "PSNR" in page.locator("#cnaps-compare-table").inner_text()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def test_the_ground_truth_shows_with_its_run_and_goes_with_the_next(page, app_url, tmp_path):
    truth_shown = "(() => { const e = document.querySelector('#cnaps-truth'); return !!e && e.offsetParent !== null; })()"
    open_app(page, app_url)
    page.locator("#cnaps-simulate input").check()
    page.locator("#cnaps-run").click()
    page.wait_for_function(f"{truth_shown} && document.querySelectorAll('#cnaps-truth img').length > 0", timeout=RUN_TIMEOUT_MS)
    picture = tmp_path / "another.png"
    Image.open(EXAMPLE).convert("RGB").resize((90, 70)).save(picture)
    page.locator("#cnaps-input input[type=file]").set_input_files(str(picture))
    page.wait_for_function(f"!{truth_shown}")  # a new picture: the old original is gone with its result
    page.locator("#cnaps-simulate input").uncheck()
    page.locator("#cnaps-run").click()
    page.wait_for_function("document.querySelectorAll('#cnaps-slider img').length >= 2", timeout=RUN_TIMEOUT_MS)
    assert not page.evaluate(truth_shown)


def test_stop_keeps_the_page_and_the_next_run_works(page, app_url, tmp_path):
    # Not a bundled example: the app computes those ahead, and a cached result leaves nothing to stop.
    picture = tmp_path / "not-an-example.png"
    Image.open(EXAMPLE).convert("RGB").resize((360, 360)).save(picture)
    page.goto(app_url)
    page.wait_for_selector("#cnaps-input")
    page.locator("#cnaps-input input[type=file]").set_input_files(str(picture))
    page.wait_for_selector("#cnaps-input img")
    page.locator("#cnaps-run").click()
    page.wait_for_function(  # the job itself reports (queued is not started: Stop would find nothing)
        "(() => { const e = document.querySelector('#cnaps-slider .progress-level-inner');"
        " return e && /starting|tile/.test(e.textContent); })()",
        timeout=RUN_TIMEOUT_MS,
    )
    page.locator("#cnaps-stop").click()
    stopped = page.locator(".toast-body").filter(has_text="Stopped at").first
    stopped.wait_for(timeout=RUN_TIMEOUT_MS)
    assert "Press the Upscale button to run again" in stopped.inner_text()
    assert page.locator("#cnaps-slider img").count() == 0  # nothing half-done was shown
    page.locator("#cnaps-run").click()
    page.wait_for_function("document.querySelectorAll('#cnaps-slider img').length >= 2", timeout=RUN_TIMEOUT_MS)


@pytest.mark.parametrize("viewport", [(1280, 720), (390, 844)])
def test_a_bundled_example_runs_through_the_upload_guard(browser, app_url, viewport):
    """Clicking an example sends the copy Gradio made of it: the guard must let exactly that in."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(app_url)
        page.get_by_text("Chibi face", exact=True).first.click()
        page.wait_for_selector("#cnaps-input img")
        page.locator("#cnaps-run").click()
        page.wait_for_function(
            "document.querySelectorAll('#cnaps-slider img').length >= 2", timeout=RUN_TIMEOUT_MS
        )
        assert page.locator(".toast-body").filter(has_text="not uploaded").count() == 0
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / f"example_{viewport[0]}x{viewport[1]}.png"))
    finally:
        context.close()
