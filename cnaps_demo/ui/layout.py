"""The page assembled: ``build_demo(settings)`` lays out the tabs, then wires their events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from ..engines import all_engines
from ..present.examples import bundled_examples
from ..present.result_cache import WARM_ENGINES, ExampleCache, warm_in_background
from ..settings import Settings, get_settings
from . import engine_events, wiring
from .actions import RunSetup
from .components import build_compare_tab, build_upscale_tab, example_copies
from .explain_tab import build_explain_tab
from .jobs import GradioQueue, JobControl, Lanes, StopRequests, release_memory
from .latest import LatestRequests
from .live import LiveFrames
from .inside_api import wire_inside_api
from .inside_panel import EXPLAIN_LANE, wire_inside_panel
from .learned_panel import wire_learned_panel
from .limits import MB, Limits, RequestLimits
from .mcp_bridge import fix_gradio_mcp
from .picker import default_engine_id
from .result_store import ResultStore, resolver, wire_lifetime
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
        # Every request body counted and capped, a quota per client, our words on every error answer.
        "app_kwargs": {"middleware": [Middleware(RequestLimits, limits=Limits.from_settings(settings))]},
        # Gradio keeps about 170 kB of state per session (API clients included), 10,000 by default.
        "state_session_capacity": settings.session_capacity,
        # Gradio's run history would let a visitor have this server copy each run's pictures to a Hub
        # bucket: work and traffic on the server's account that the page does not offer.
        "run_history": False,
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
    # Inside Gradio's cache, so Gradio serves the files as written (see Workdir); a run's folder lasts as
    # long as the page may still ask about the run.
    workdir = Workdir(Path(get_upload_folder()) / "cnaps-results", max_age=float(settings.result_ttl_s))
    results = ResultStore(settings.result_store_mb * MB, settings.result_ttl_s, on_release=release_memory)
    if settings.mcp:  # MCP tools that work without a progress token, their files in our private folder
        fix_gradio_mcp(Path(get_upload_folder()), float(settings.result_ttl_s))

    with gr.Blocks(title="cnaps-demo: AI upscaling of illustrations, step by step", delete_cache=(1800, 3600)) as demo:
        gr.HTML(_header())
        with gr.Tabs(overflow_behavior="wrap"):  # every tab one labelled tap away, on a phone too
            upscale_tab = build_upscale_tab(engines, settings, default_id, examples)
            compare_tab = build_compare_tab(engines, settings)
            build_explain_tab(engines, settings)

        engine_events.wire_engine_picker(upscale_tab, settings, gpu_ids)
        engine_events.wire_choice_limits(upscale_tab, engines)
        queue_view = GradioQueue(demo)
        lanes = Lanes(
            queue_view, {"cpu": settings.queue_size, "gpu": settings.gpu_queue_size, EXPLAIN_LANE: settings.queue_size}
        )
        control = JobControl(queue_view, lanes, StopRequests())
        # Uploads Gradio received, and the example copies it made for the gallery: nothing else.
        example_files = example_copies(upscale_tab.inputs.examples)
        guard = UploadGuard(lambda: (demo.upload_file_set, example_files), max_bytes=settings.max_upload_mb * MB)
        setup = RunSetup(settings, gpu_ids, upscale_tab.inputs.bindings, guard, workdir, cache, results)
        latest = LatestRequests()  # per browser session, which click the page shows the result of
        wiring.wire_upscale(upscale_tab, setup, control, LiveFrames(workdir), latest)
        wiring.wire_fresh_start(upscale_tab, latest)
        engine_events.wire_large_picture_engine(upscale_tab, setup, default_id)
        wiring.wire_example_autorun(upscale_tab, setup, control, engines, latest)
        wiring.wire_crop_picker(upscale_tab, results)
        wire_inside_panel(upscale_tab.inside, upscale_tab.detail.state, resolver(results), settings, control, latest)
        wire_learned_panel(upscale_tab.learned, upscale_tab.detail.state, resolver(results), settings, control, latest)
        wire_inside_api(upscale_tab.inputs.engine, upscale_tab.inputs.image, setup, control)
        wiring.wire_compare(compare_tab, upscale_tab, setup, control, engines)
        wiring.wire_stop([upscale_tab.inputs.stop, compare_tab.stop], control, latest)
        wiring.wire_pick_pair(compare_tab, results)
        wiring.wire_explain_api()
        wire_lifetime(demo, results, [upscale_tab.detail.state, compare_tab.state])

    # Gradio's max_size counts every lane together: only a backstop. Each event's validator keeps
    # its own lane within its share, so a full CPU lane never refuses GPU callers.
    demo.queue(max_size=2 * lanes.total, default_concurrency_limit=settings.cpu_concurrency)
    queue_view.poll_gently()
    return demo
