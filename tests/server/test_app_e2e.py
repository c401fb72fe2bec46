"""`python app.py` in a subprocess, driven through gradio_client like an API user would."""

import time
import urllib.request
from html import escape
from pathlib import Path

import pytest
from app_process import start_app, stop_app
from PIL import Image

from cnaps_demo.api import availability
from cnaps_demo.colour import resolve
from cnaps_demo.image import load_image, read_png_metadata
from cnaps_demo.present.examples import bundled_examples
from cnaps_demo.settings import get_settings

EXAMPLE = next(path for path in bundled_examples() if path.name == "chibi_face.png")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("app")
    process, url, startup = start_app(tmp_dir)
    yield url, startup
    stop_app(process)


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[0], verbose=False)


def test_first_page_is_served_and_building_it_imports_no_model_code(app):
    """Cold start: the page must not wait for torch (its speed is benchmarks/bench_cold_start.py's job)."""
    import subprocess
    import sys

    url, _startup = app
    with urllib.request.urlopen(url, timeout=5) as response:
        page = response.read().decode("utf-8", "replace")
    assert "Gradio" in page or "gradio" in page
    probe = (
        "import sys, os; from cnaps_demo.ui import build_demo; build_demo(); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)); os._exit(0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_only_the_upscale_endpoints_are_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/upscale", "/upscale_gpu", "/explain", "/inside", "/attribution"}
    names = [p["parameter_name"] for p in api["named_endpoints"]["/upscale"]["parameters"]]
    assert names[:3] == ["image", "engine", "simulate_blurry_source"]
    assert "realcugan_denoise" in names and "sd_img2img_prompt" in names


def test_inside_and_attribution_endpoints_look_into_the_network(client):
    from gradio_client import handle_file

    layers, notes, base, residual, output, total = client.predict(
        image=handle_file(str(EXAMPLE)), engine="realesrgan-anime", api_name="/inside"
    )
    assert len(layers) >= 4 and "3x3 convolution" in notes and "what the network draws" in total
    assert Image.open(base).size == Image.open(residual).size == Image.open(output).size
    overlay, reading = client.predict(
        image=handle_file(str(EXAMPLE)), engine="realesrgan-anime", x=240, y=200, api_name="/attribution"
    )
    assert Image.open(overlay).width > 16 and "of what decided this" in reading
    with pytest.raises(Exception, match="no network to look into"):  # a classical engine has no network: our message, not a crash
        client.predict(image=handle_file(str(EXAMPLE)), engine="lanczos", api_name="/inside")


def test_upscale_an_example_with_realcugan(client):
    from gradio_client import handle_file

    import cnaps_demo

    source = Image.open(EXAMPLE)
    outputs = client.predict(
        image=handle_file(str(EXAMPLE)), engine="realcugan", realcugan_denoise="conservative", api_name="/upscale"
    )
    slider, labels, summary, _truth, png, diagram_html, svg, _where, crops, added = outputs

    # the slider pair: bicubic before, the engine after, both 2x
    assert len(slider) == 2
    before, after = (Image.open(path) for path in slider)
    assert before.size == after.size == (source.width * 2, source.height * 2)
    assert "Bicubic" in labels and "Real-CUGAN" in labels

    # the downloadable PNG carries its metadata
    meta = read_png_metadata(png)
    assert meta["cnaps:engine"] == "realcugan" and meta["cnaps:scale"] == "2"
    assert Image.open(png).size == after.size

    # the diagram names every stage of this engine (names taken from a run in this process)
    stage_names = [stage.name for stage in cnaps_demo.upscale(str(EXAMPLE), engine="realcugan").stages]
    svg_text = Path(svg).read_text(encoding="utf-8")
    for name in stage_names:
        assert escape(name, quote=False) in diagram_html, name
        assert escape(name, quote=False) in svg_text, name
    assert "<svg" in diagram_html and "Input image" in svg_text and "Output image" in svg_text

    assert "Real-CUGAN" in summary and "SSIM" not in summary  # no ground truth without simulation
    assert "How faithful is it to your picture" in summary and "LR-PSNR" in summary  # figures all the same
    assert crops.count("<figure") == 2 and Image.open(added).size == after.size  # bicubic and the result


def test_simulated_blurry_source_reports_psnr(client):
    from gradio_client import handle_file

    outputs = client.predict(
        image=handle_file(str(EXAMPLE)), engine="lanczos", simulate_blurry_source=True, api_name="/upscale"
    )
    slider, _, summary, truth, *_ = outputs
    assert "PSNR" in summary and "dB" in summary
    source = Image.open(EXAMPLE)
    assert Image.open(slider[1]).size == source.size  # half, then doubled: back to the original size
    truth_path = truth["value"] if isinstance(truth, dict) else truth
    assert Image.open(truth_path).size == source.size


def test_errors_reach_the_api_user_with_their_fix(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "not-an-image.png"
    bad.write_text("<html><body>oops</body></html>")
    with pytest.raises(Exception) as caught:
        client.predict(image=handle_file(str(bad)), engine="bicubic", api_name="/upscale")
    assert "web page" in str(caught.value)

    with pytest.raises(Exception) as caught:
        client.predict(image=handle_file(str(EXAMPLE)), engine="sd-img2img", api_name="/upscale")
    message = str(caught.value)
    assert "GPU" in message or "unavailable" in message or "cannot run" in message


def test_presenter_mode_serves_example_results_from_its_cache(tmp_path):
    """`--presenter`: results for the bundled examples are computed ahead and then served instantly."""
    from gradio_client import Client, handle_file

    from cnaps_demo.engines import get_engine
    from cnaps_demo.present.result_cache import cache_key

    settings = get_settings()
    engine = get_engine("realcugan")
    ready = availability(engine, settings=settings)
    assert ready.ok, ready.reason  # embedded: it must run everywhere
    process, url, _ = start_app(tmp_path, "--presenter")
    try:
        image = load_image(EXAMPLE, max_pixels=settings.max_input_pixels).image
        key = cache_key(image, "realcugan", engine.check_params({}, settings), colour_fix=resolve(None, engine.colour_fix_by_default))
        entry = tmp_path / "cache" / "examples" / f"{key}.json"
        deadline = time.monotonic() + 300
        while not entry.exists():
            assert time.monotonic() < deadline, "the presenter cache was not filled in time"
            time.sleep(0.5)
        client = Client(url, verbose=False)
        started = time.monotonic()
        outputs = client.predict(image=handle_file(str(EXAMPLE)), engine="realcugan", api_name="/upscale")
        assert "cached result" in outputs[2]
        assert time.monotonic() - started < 10
    finally:
        stop_app(process)


def test_presenter_serves_a_gpu_result_computed_earlier_on_a_machine_without_one(tmp_path):
    """A talk on a laptop: results made ahead on a GPU machine are shown, not refused."""
    import dataclasses

    from gradio_client import Client, handle_file

    import cnaps_demo
    from cnaps_demo.engines import get_engine
    from cnaps_demo.present.result_cache import ExampleCache

    settings = get_settings()
    img2img = get_engine("sd-img2img")
    assert not availability(img2img, settings=settings).ok  # no weights, no GPU here: it cannot run
    source = load_image(EXAMPLE, max_pixels=settings.max_input_pixels).image
    made = cnaps_demo.upscale(source, engine="lanczos")  # stands in for the GPU machine's result
    earlier = dataclasses.replace(
        made,
        engine_id=img2img.id,
        engine_name=img2img.display_name,
        params=img2img.check_params({}, settings),
        colour_fix=resolve(None, img2img.colour_fix_by_default),  # as the GPU machine's run would have done it
    )
    ExampleCache(tmp_path / "cache" / "examples", settings).put(source, earlier)

    process, url, _ = start_app(tmp_path, "--presenter")
    try:
        client = Client(url, verbose=False)
        outputs = client.predict(image=handle_file(str(EXAMPLE)), engine="sd-img2img", api_name="/upscale_gpu")
        slider, labels, summary = outputs[0], outputs[1], outputs[2]
        assert "cached result" in summary and "Stable Diffusion" in labels
        assert Image.open(slider[1]).tobytes() == made.image.tobytes()
    finally:
        stop_app(process)


def test_mcp_server_is_off_by_default_and_lists_upscale_and_explain_when_on(tmp_path):
    import json
    import urllib.error
    import urllib.request

    for name in ("off", "on"):
        (tmp_path / name).mkdir()
    process, url, _ = start_app(tmp_path / "off")
    try:
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "gradio_api/mcp/schema", timeout=10)
    finally:
        stop_app(process)
    process, url, _ = start_app(tmp_path / "on", "--mcp")
    try:
        with urllib.request.urlopen(url + "gradio_api/mcp/schema", timeout=30) as response:
            tools = {tool["name"]: tool for tool in json.load(response)}
        assert {"upscale", "explain"} <= set(tools)
        assert "engine" in tools["upscale"]["inputSchema"]["properties"]
        assert "realcugan" in tools["upscale"]["inputSchema"]["properties"]["engine"]["enum"]
        assert "crisp" in tools["explain"]["description"]
    finally:
        stop_app(process)
