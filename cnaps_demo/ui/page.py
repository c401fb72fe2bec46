"""The page assembled: ``build_demo(settings)`` builds each tab (each tab's module lays it out and
wires it), the app-wide parts they share (lanes, Stop, the result store), and ``launch_kwargs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from ..api import warm_up
from ..engines import all_engines, warm_engine_ids
from ..present.examples import bundled_examples
from ..present.result_cache import ExampleCache, warm_in_background
from ..settings import Settings, get_settings
from ..web.latest import LatestRequests
from ..web.picker import default_engine_id
from ..web.requests import RequestReader
from ..web.result_store import ResultStore
from ..web.runs import RunSetup
from ..web.untrusted import UploadGuard
from ..web.workdir import Workdir
from .compare_tab import build_compare_tab, wire_compare_tab
from .explain_tab import build_explain_tab, wire_explain_api
from .jobs import GradioQueue, JobControl, Lanes, StopRequests, release_memory, wire_stop
from .limits import MB, Limits, RequestLimits
from .mcp_bridge import fix_gradio_mcp
from .theme import HEAD_SCRIPT, make_css, make_theme
from .upscale import build_upscale_tab, example_copies, wire_upscale_tab
from .upscale.inside import EXPLAIN_LANE

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
    compute the examples' results ahead (the default engine on every page; in presenter mode every
    engine ``engines.warm_engine_ids`` names, the GPU ones where a GPU is present), then warm the
    engines that have something to warm (``api.warm_up``: the CNNs load and run once), so that the
    first visitor's job pays neither torch's import nor a model load (seconds on a small CPU)."""
    settings = settings or get_settings()
    engines = warm_engine_ids() if settings.presenter else (default_engine_id(all_engines(), settings),)
    warm_in_background(example_cache(settings), bundled_examples(), engines, after=lambda: warm_up(settings))


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

        queue_view = GradioQueue(demo)
        lanes = Lanes(
            queue_view, {"cpu": settings.queue_size, "gpu": settings.gpu_queue_size, EXPLAIN_LANE: settings.queue_size}
        )
        control = JobControl(queue_view, lanes, StopRequests())
        # Uploads Gradio received, and the example copies it made for the gallery: nothing else.
        example_files = example_copies(upscale_tab.inputs.examples)
        guard = UploadGuard(lambda: (demo.upload_file_set, example_files), max_bytes=settings.max_upload_mb * MB)
        requests = RequestReader(settings, gpu_ids, upscale_tab.inputs.bindings)
        setup = RunSetup(settings, requests, guard, workdir, cache, results)
        latest = LatestRequests()  # per browser session, which click the page shows the result of
        wire_upscale_tab(upscale_tab, setup, control, latest, engines, default_id)
        wire_compare_tab(compare_tab, upscale_tab, setup, control, engines)
        wire_stop([upscale_tab.inputs.stop, compare_tab.stop], control, latest)
        wire_explain_api()
        wire_lifetime(demo, results, [upscale_tab.detail.state, compare_tab.state])

    # Gradio's max_size counts every lane together: only a backstop. Each event's validator keeps
    # its own lane within its share, so a full CPU lane never refuses GPU callers.
    demo.queue(max_size=2 * lanes.total, default_concurrency_limit=settings.cpu_concurrency)
    queue_view.poll_gently()
    return demo


def wire_lifetime(demo: gr.Blocks, store: ResultStore, states: list[gr.State]) -> None:
    """The page States that hold a run's key live as long as the store keeps the run; when Gradio lets
    one go, or the browser tab closes (``demo.unload``), the run goes too. Inside the ``gr.Blocks``."""
    for state in states:
        state.time_to_live = store.ttl_s
        state.delete_callback = store.drop

    def tab_closed(request: gr.Request = None) -> None:
        session = getattr(request, "session_hash", None)
        if session:
            store.drop_session(session)

    demo.unload(tab_closed)
