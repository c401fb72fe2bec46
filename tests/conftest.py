"""Shared test setup: no network, and a private cache so tests never touch the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test module imports huggingface_hub: nothing may reach the Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cnaps-cache")
    previous = os.environ.get("CNAPS_CACHE_DIR")
    os.environ["CNAPS_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("CNAPS_CACHE_DIR", None)
    else:
        os.environ["CNAPS_CACHE_DIR"] = previous


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module: Playwright's sync API keeps an event
    loop running in this thread while it is open, which later asyncio.run() calls must not meet."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/setup-dev.sh` (it installs Debian's chromium and "
            "chromium-driver) or `apt-get install chromium chromium-driver`."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    """A tiny random SD 1.5 img2img pipeline saved as a diffusers folder (tests/tiny_sd.py), per test module."""
    import tiny_sd

    from cnaps_demo.engines.diffusion import release_pipelines

    folder = tiny_sd.build_img2img_folder(tmp_path_factory.mktemp("tiny-sd"))
    yield folder
    release_pipelines()
