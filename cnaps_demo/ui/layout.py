"""The page assembled: ``build_demo(settings)`` lays out the tabs, then wires their events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..engines import all_engines
from ..present.examples import bundled_examples
from ..present.result_cache import WARM_ENGINES, ExampleCache, warm_in_background
from ..settings import Settings, get_settings
from . import engine_events, wiring
from .actions import RunSetup
from .components import build_compare_tab, build_explain_tab, build_upscale_tab, example_copies
from .jobs import GradioQueue, JobControl, Lanes, StopRequests
from .live import LiveFrames
from .picker import default_engine_id
from .running import Workdir
from .theme import HEAD_SCRIPT, make_css, make_theme
from .untrusted import UploadGuard

TITLE = "Why does an AI 2x upscale look like crisp anime art?"
INTRO = "Enlarge a picture 2x and see how each method fills in the missing pixels, and what it invents."


def _header() -> str:
    return f'<div class="cnaps-header"><h1>{TITLE}</h1><p>{INTRO}</p></div>'


def launch_kwargs(settings: Settings | None = None) -> dict[str, Any]:
    """What ``demo.launch()`` needs besides the Blocks (Gradio 6 takes theme/CSS here)."""
    settings = settings or get_settings()
    return {
        "theme": make_theme(settings.presenter),
        "css": make_css(settings.presenter),
        "head": HEAD_SCRIPT,
        "footer_links": ["api", "gradio"],
        "max_file_size": settings.max_upload_mb * 1024 * 1024,  # bigger uploads get HTTP 413
        "enable_monitoring": False,  # /monitoring would tell anyone the traffic of every endpoint
        "mcp_server": settings.mcp,  # off by default: agents get /upscale and /explain as tools
    }


def example_cache(settings: Settings) -> ExampleCache:
    """Where the examples' results are kept: computed ahead, so a click on an example is instant."""
    return ExampleCache(settings.cache_dir / "examples", settings)


def start_background_work(settings: Settings | None = None) -> None:
    """Once the page is served (``app.py`` calls this after ``launch``, so the first page does not wait):
    compute the examples' results ahead (the default engine on every page; every engine, the
    diffusion ones where a GPU is present, in presenter mode), then warm the CNN engines, so that
    the first visitor's job pays neither torch's import nor a model load (seconds on a small CPU)."""
    settings = settings or get_settings()
    engines = WARM_ENGINES if settings.presenter else (default_engine_id(all_engines(), settings),)
    warm_in_background(example_cache(settings), bundled_examples(), engines, after=lambda: warm_cnn_engines(settings))


def warm_cnn_engines(settings: Settings) -> dict[str, float]:
    """Load both CNN engines on the device they run on here and run each once on a small picture."""
    from ..api import run_options
    from ..devices import choose_device
    from ..engines.cnn import warm_up

    device, problem = choose_device("auto", configured=settings.device)
    return {} if problem else warm_up(options=run_options(settings, device=device))


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """Build the whole UI. Loads no model: engines load lazily on their first run."""
    settings = settings or get_settings()
    engines = all_engines()
    gpu_ids = frozenset(engine.id for engine in engines if engine.device_need == "gpu")
    default_id = default_engine_id(engines, settings)
    examples = bundled_examples()
    cache = example_cache(settings)
    # Inside Gradio's cache, so Gradio serves the files as written (see Workdir).
    workdir = Workdir(Path(get_upload_folder()) / "cnaps-results")

    with gr.Blocks(title="cnaps-demo: AI upscaling of illustrations, step by step", delete_cache=(1800, 3600)) as demo:
        gr.HTML(_header())
        with gr.Tabs():
            upscale_tab = build_upscale_tab(engines, settings, default_id, examples)
            compare_tab = build_compare_tab(engines, settings)
            build_explain_tab(engines, settings)

        engine_events.wire_engine_picker(upscale_tab, settings, gpu_ids)
        engine_events.wire_choice_limits(upscale_tab, engines)
        queue_view = GradioQueue(demo)
        lanes = Lanes(queue_view, {"cpu": settings.queue_size, "gpu": settings.gpu_queue_size})
        control = JobControl(queue_view, lanes, StopRequests())
        # Uploads Gradio received, and the example copies it made for the gallery: nothing else.
        example_files = example_copies(upscale_tab.inputs.examples)
        guard = UploadGuard(lambda: (demo.upload_file_set, example_files))
        setup = RunSetup(settings, gpu_ids, upscale_tab.inputs.bindings, guard, workdir, cache)
        wiring.wire_upscale(upscale_tab, setup, control, LiveFrames(workdir))
        wiring.wire_fresh_start(upscale_tab)
        engine_events.wire_large_picture_engine(upscale_tab, setup, default_id)
        wiring.wire_example_autorun(upscale_tab, setup, control, engines)
        wiring.wire_crop_picker(upscale_tab)
        wiring.wire_compare(compare_tab, upscale_tab, setup, control, engines)
        wiring.wire_stop([upscale_tab.inputs.stop, compare_tab.stop], control)
        wiring.wire_pick_pair(compare_tab)
        wiring.wire_explain_api()

    # Gradio's max_size counts every lane together: only a backstop. Each event's validator keeps
    # its own lane within its share, so a full CPU lane never refuses GPU callers.
    demo.queue(max_size=2 * lanes.total, default_concurrency_limit=settings.cpu_concurrency)
    queue_view.poll_gently()
    return demo
