"""The explainer sections under the Upscale result, in a real browser: inside the network (layers,
base + residual = output, a click on the result traced back to the input), why crisp (candidates
and their average, the plots), and what it learned from (the training pair on the visitor's picture).

Needs /usr/bin/chromium (`scripts/setup-dev.sh`). Screenshots go to tests/artifacts/ (git-ignored).
"""


import pytest
from app_process import ROOT, offline_context, start_app, stop_app

from cnaps_demo.present.examples import bundled_examples

ARTIFACTS = ROOT / "tests" / "artifacts"
EXAMPLE = next(path for path in bundled_examples() if path.name == "chibi_face.png")
RUN_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    process, url, _ = start_app(tmp_path_factory.mktemp("explainers-app"))
    yield url
    stop_app(process)


@pytest.fixture
def page(browser, app_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = offline_context(browser, {"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def run_engine(page, url, engine_name):
    page.goto(url)
    page.wait_for_selector("#cnaps-input")
    page.locator("#cnaps-input input[type=file]").set_input_files(str(EXAMPLE))
    page.wait_for_selector("#cnaps-input img")
    page.locator("#cnaps-engine input").click()
    page.get_by_role("option").filter(has_text=engine_name).first.click()
    page.locator("#cnaps-run").click()
    page.wait_for_function("document.querySelectorAll('#cnaps-slider img').length >= 2", timeout=RUN_TIMEOUT_MS)


def test_inside_the_network_follows_a_run_and_a_click_traces_a_pixel_back(page, app_url):
    run_engine(page, app_url, "Real-ESRGAN")
    page.wait_for_function("document.querySelectorAll('#cnaps-inside-layers img').length >= 4", timeout=RUN_TIMEOUT_MS)
    layers = page.locator("#cnaps-inside-layer-notes").inner_text()
    assert "3x3 convolution" in layers and "channels at" in layers  # captions from the real graph
    page.wait_for_selector("#cnaps-inside-residual img", state="attached")
    assert "what the network draws" in page.locator("#cnaps-inside-sum-note").inner_text()
    assert "Real-ESRGAN" in page.locator("#cnaps-inside-intro").inner_text()
    # A layer click shows more of its channels (no job: at once): the channel pictures change.
    first_channel = "document.querySelector('#cnaps-inside-channels img').getAttribute('src')"
    before = page.evaluate(first_channel)
    page.locator("#cnaps-inside-layers button.thumbnail-item").nth(2).click()
    page.wait_for_function(f"{first_channel} !== {before!r}")
    assert page.locator("#cnaps-inside-overlay img").count() == 0
    pick = page.locator("#cnaps-inside-pick img")
    pick.scroll_into_view_if_needed()
    box = pick.bounding_box()
    pick.click(position={"x": box["width"] * 0.45, "y": box["height"] * 0.4})
    page.wait_for_selector("#cnaps-inside-overlay img", state="attached", timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(
        "document.querySelector('#cnaps-inside-reading').innerText.includes('of what decided this')",
        timeout=RUN_TIMEOUT_MS,
    )
    page.locator("#cnaps-inside").screenshot(path=str(ARTIFACTS / "inside_network.png"))


def test_why_crisp_and_what_it_learned_from_on_the_visitors_picture(page, app_url):
    run_engine(page, app_url, "Real-ESRGAN")
    page.wait_for_function("document.querySelectorAll('#cnaps-crisp img').length >= 5", timeout=RUN_TIMEOUT_MS)
    crisp = page.locator("#cnaps-crisp").inner_text()
    assert "average: soft" in crisp
    story = page.locator("#cnaps-crisp-story").inner_text()
    assert "their pixel average" in story and "LR-PSNR" in story
    assert page.locator("#cnaps-plots svg").count() == 2
    page.locator("#cnaps-learned-show").click()
    page.wait_for_function("document.querySelectorAll('#cnaps-learned-steps img').length >= 4", timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(
        "document.querySelector('#cnaps-learned-note').innerText.includes('PSNR')", timeout=RUN_TIMEOUT_MS
    )
    first = page.locator("#cnaps-learned-note").inner_text()
    assert "Seed 0" in first
    page.locator("#cnaps-learned-redraw").click()
    page.wait_for_function(
        "document.querySelector('#cnaps-learned-note').innerText.includes('Seed 1')", timeout=RUN_TIMEOUT_MS
    )
    page.locator("#cnaps-learned").screenshot(path=str(ARTIFACTS / "learned_from.png"))


def test_a_classical_engine_says_there_is_no_network_to_look_into(page, app_url):
    run_engine(page, app_url, "Lanczos")
    page.wait_for_function(
        "document.querySelector('#cnaps-inside-intro').innerText.includes('no layers to look into')",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.locator("#cnaps-inside-layers img").count() == 0


def test_the_tour_steps_open_the_live_views_on_the_upscale_tab(page, app_url):
    run_engine(page, app_url, "Real-ESRGAN")
    page.wait_for_function("document.querySelectorAll('#cnaps-inside-layers img').length >= 4", timeout=RUN_TIMEOUT_MS)
    page.get_by_role("tab", name="How does it work?").click()
    page.wait_for_selector("#cnaps-glossary dt")
    assert page.locator("#cnaps-glossary dt").filter(has_text="convolution").count() == 1
    page.locator("#cnaps-tour-2").click()  # "Look inside"
    page.wait_for_function(
        "(() => { const r = document.querySelector('#cnaps-inside').getBoundingClientRect();"
        " return r.top >= -5 && r.top < window.innerHeight; })()"
    )
    assert page.locator("#cnaps-inside-layers").is_visible()  # on the Upscale tab, in view
