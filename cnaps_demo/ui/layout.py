"""The Blocks layout and its events. ``build_demo(settings)`` is the only entry point."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..api import availability
from ..engines import all_engines
from ..errors import CnapsError, JobCancelledError
from ..present.explain import credits_html, explanation_html
from ..present.examples import bundled_examples, example_label
from ..present.result_cache import ExampleCache, warm_in_background
from ..settings import Settings, get_settings
from . import handlers as h
from . import jobs
from .gpu import on_gpu
from .params import build_param_groups, params_for
from .theme import HEAD_SCRIPT, make_css, make_theme
from .untrusted import UploadGuard, check_web_params

log = logging.getLogger(__name__)

TITLE = "Why does an AI 2x upscale look like crisp anime art?"
INTRO = (
    "Enlarge an illustration 2x and watch how each method fills in the missing pixels: "
    "classical interpolation, a CNN trained on anime, or Stable Diffusion re-drawing it."
)


def _header() -> str:
    return f'<div class="cnaps-header"><h1>{TITLE}</h1><p>{INTRO}</p></div>'


def _session(request: gr.Request | None) -> str:
    """The browser session a job belongs to (the Stop button stops only its own session's jobs)."""
    return (getattr(request, "session_hash", None) or "") if request is not None else ""


def _example_copies(example_block: gr.Examples | None) -> frozenset[str]:
    """Paths of the copies Gradio made of the bundled examples (what a click on one sends)."""
    if example_block is None:
        return frozenset()
    found = set()
    for sample in example_block.dataset.samples:
        for value in sample:
            path = value.get("path") if isinstance(value, dict) else None
            if path:
                found.add(str(path))
    return frozenset(found)


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
    }


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """Build the whole UI. Loads no model: engines load lazily on their first run."""
    settings = settings or get_settings()
    engines = all_engines()
    by_id = {engine.id: engine for engine in engines}
    gpu_ids = {engine.id for engine in engines if engine.device_need == "gpu"}
    default_id = h.default_engine_id(engines, settings)
    # Inside Gradio's cache, so Gradio serves the files as written (see Workdir).
    workdir = h.Workdir(Path(get_upload_folder()) / "cnaps-results")
    cache = ExampleCache(settings.cache_dir / "presenter", settings) if settings.presenter else None
    stops = h.StopRequests()
    examples = bundled_examples()
    if cache is not None and examples:
        warm_in_background(cache, examples)

    with gr.Blocks(title="cnaps-demo: AI upscaling of illustrations, step by step", delete_cache=(1800, 3600)) as demo:
        gr.HTML(_header())
        with gr.Tabs():
            # ----------------------------------------------------------------- upscale
            with gr.Tab("Upscale", id="upscale"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        image = gr.Image(
                            label="Your illustration (drop, paste or click to upload)",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            image_mode=None,
                            format="png",
                            height=300,
                            elem_id="cnaps-input",
                        )
                        example_block = (
                            gr.Examples(
                                examples=[[str(path)] for path in examples],
                                inputs=[image],
                                label="Examples (drawn for this demo, CC0)",
                                example_labels=[example_label(path) for path in examples],
                                api_visibility="private",
                            )
                            if examples
                            else None
                        )
                        simulate = gr.Checkbox(
                            label="Simulate a blurry source",
                            info="Shrink the picture 2x with a slight blur and JPEG (quality 60) first; "
                            "the original then serves as ground truth for PSNR.",
                            elem_id="cnaps-simulate",
                        )
                        engine = gr.Dropdown(
                            h.engine_choices(engines, settings),
                            value=default_id,
                            label="Engine",
                            filterable=False,
                            elem_id="cnaps-engine",
                        )
                        status = gr.Markdown(
                            h.engine_status_markdown(default_id, settings),
                            elem_classes="cnaps-status",
                            elem_id="cnaps-engine-status",
                        )
                        with gr.Accordion("Engine settings", open=True):
                            groups, bindings = build_param_groups(engines, default_id)
                        run_cpu = gr.Button(
                            "Upscale 2x \u25b6",
                            variant="primary",
                            size="lg",
                            visible=default_id not in gpu_ids,
                            elem_id="cnaps-run",
                        )
                        run_gpu = gr.Button(
                            "Upscale 2x on the GPU \u25b6",
                            variant="primary",
                            size="lg",
                            visible=default_id in gpu_ids,
                            elem_id="cnaps-run-gpu",
                        )
                        stop_button = gr.Button("Stop", variant="stop", size="sm", elem_id="cnaps-stop")
                    with gr.Column(scale=3, min_width=420):
                        labels = gr.HTML(
                            h.before_after_html(h.BASELINE_SHORT, "the engine"),
                            label="Before/after labels",
                            elem_id="cnaps-ba",
                        )
                        with gr.Row(equal_height=False):
                            slider = gr.ImageSlider(
                                label="Drag the handle: left = bicubic, right = the engine",
                                type="filepath",
                                format="png",
                                max_height=640,
                                elem_id="cnaps-slider",
                                scale=3,
                                show_label=False,
                            )
                            truth = gr.Image(
                                label=h.TRUTH_LABEL,
                                type="filepath",
                                format="png",
                                interactive=False,
                                visible=False,
                                elem_id="cnaps-truth",
                                scale=2,
                            )
                        summary = gr.Markdown(label="Summary", elem_classes="cnaps-status", elem_id="cnaps-summary")
                        with gr.Row():
                            png_file = gr.File(label="Result PNG (with metadata)", elem_id="cnaps-png")
                            svg_file = gr.File(label="Pipeline diagram (SVG)", elem_id="cnaps-svg")
                gr.Markdown("## What happened inside: the pipeline, stage by stage")
                diagram_out = gr.HTML(h.diagram_html([]), label="Pipeline diagram", elem_id="cnaps-diagram")
                gr.Markdown("## Up close: the same pixels from each image")
                with gr.Row(equal_height=False):
                    where = gr.Image(
                        label="Where the crops are",
                        buttons=["fullscreen"],  # one icon: leaves room for the label in a narrow column
                        type="filepath",
                        format="png",
                        interactive=False,
                        elem_id="cnaps-where",
                        scale=1,
                    )
                    crops = gr.Gallery(
                        label="1:1 crops (each pixel shown 3x)",
                        columns=3,
                        format="png",
                        object_fit="contain",
                        height="auto",
                        elem_id="cnaps-crops",
                        scale=3,
                    )
                    added = gr.Image(
                        label="Added vs bicubic \u00d74",
                        buttons=["fullscreen"],
                        type="filepath",
                        format="png",
                        interactive=False,
                        elem_id="cnaps-added",
                        scale=1,
                        elem_classes="cnaps-pixelated",
                    )

            # ----------------------------------------------------------------- compare
            with gr.Tab("Compare engines", id="compare"):
                gr.Markdown(
                    "Runs every ticked engine on the picture and settings from the **Upscale** tab "
                    "(including *Simulate a blurry source*), then lets you put any two side by side."
                )
                runnable = [e.id for e in engines if availability(e, settings=settings).ok]
                preset = [i for i in runnable if by_id[i].family != "classical"][:2] + (
                    ["lanczos"] if "lanczos" in runnable else []
                )
                with gr.Row():
                    cmp_engines = gr.CheckboxGroup(
                        h.engine_choices(engines, settings),
                        value=preset,
                        label="Engines to run",
                        elem_id="cnaps-compare-engines",
                        scale=4,
                    )
                    with gr.Column(scale=1, min_width=160):
                        cmp_run = gr.Button(
                            "Run all ticked \u25b6", variant="primary", size="lg", elem_id="cnaps-compare-run"
                        )
                        cmp_stop = gr.Button("Stop", variant="stop", size="sm", elem_id="cnaps-compare-stop")
                cmp_state = gr.State(None)
                with gr.Row():
                    cmp_left = gr.Dropdown(label="Left of the slider", choices=[], elem_id="cnaps-compare-left")
                    cmp_right = gr.Dropdown(label="Right of the slider", choices=[], elem_id="cnaps-compare-right")
                cmp_labels = gr.HTML(h.before_after_html("\u2026", "\u2026"))
                cmp_slider = gr.ImageSlider(
                    label="Pick any two results above",
                    type="filepath",
                    format="png",
                    max_height=640,
                    elem_id="cnaps-compare-slider",
                )
                cmp_table = gr.Markdown(elem_classes="cnaps-status", elem_id="cnaps-compare-table")
                cmp_crops = gr.Gallery(
                    label="The same detail from every result, 1:1 (each pixel shown 3x)",
                    columns=4,
                    format="png",
                    object_fit="contain",
                    height=300,
                    elem_id="cnaps-compare-crops",
                )
                cmp_maps = gr.Gallery(
                    label="What each model added over bicubic (|output \u2212 bicubic| \u00d7 4)",
                    columns=4,
                    format="png",
                    object_fit="contain",
                    height=300,
                    elem_id="cnaps-compare-maps",
                )
                cmp_files = gr.File(
                    label="Every result as PNG (with metadata)", file_count="multiple", elem_id="cnaps-compare-files"
                )
                cmp_diagrams = gr.HTML(h.diagram_html([]), elem_id="cnaps-compare-diagrams")

            # ----------------------------------------------------------------- explain
            with gr.Tab("How does it work?", id="explain"):
                gr.HTML(explanation_html(), elem_id="cnaps-explain")
                gr.HTML(credits_html(engines, lambda engine: availability(engine, settings=settings)), elem_id="cnaps-credits")

        # ===================================================================== events
        def on_engine_change(engine_id: str):
            visible = {eid: gr.update(visible=eid == engine_id) for eid in groups}
            is_gpu = engine_id in gpu_ids
            return [
                h.engine_status_markdown(engine_id, settings),
                *visible.values(),
                gr.update(visible=not is_gpu),
                gr.update(visible=is_gpu),
            ]

        def check_engine(engine_id: str) -> None:
            # Picking an engine is not a failure: warn (the status line keeps the whole fix).
            try:
                h.require_available(engine_id, settings)
            except gr.Error as unavailable:
                gr.Warning(unavailable.message, title="Engine unavailable here")

        engine.change(
            on_engine_change,
            inputs=engine,
            outputs=[status, *groups.values(), run_cpu, run_gpu],
            queue=False,
            api_visibility="private",
        ).then(  # queued (instantly, no limit): Gradio shows toasts only for queued events
            check_engine,
            inputs=engine,
            outputs=None,
            api_visibility="private",
            concurrency_id="ui",
            concurrency_limit=None,
            show_progress="hidden",
        )

        run_inputs = [image, engine, simulate]
        run_kwargs = {binding.keyword: binding.component for binding in bindings}
        run_outputs = [slider, labels, summary, truth, png_file, diagram_out, svg_file, where, crops, added]

        queue_view = jobs.GradioQueue(demo)
        lanes = jobs.Lanes(queue_view, {"cpu": settings.queue_size, "gpu": settings.gpu_queue_size})
        # Uploads Gradio received, and the example copies it made for the gallery: nothing else.
        example_files = _example_copies(example_block)
        guard = UploadGuard(lambda: (demo.upload_file_set, example_files))

        def web_params(engine_obj, params) -> dict:
            try:
                return check_web_params(engine_obj, params_for(engine_obj.id, params, bindings), settings.web_models)
            except CnapsError as error:
                raise h.ui_error(error) from None

        async def as_job(work, request, lane="cpu"):
            """Run ``work(stop_flag)`` so that Stop, cancel and a lost client all end it."""
            lanes.started(lane)
            session = _session(request)
            stop = stops.begin(session)
            event_id = jobs.current_event_id()
            try:
                return await jobs.run_job(lambda: work(stop), stop=stop, alive=lambda: queue_view.alive(event_id))
            finally:
                stops.end(session, stop)
                if not stops.running():
                    jobs.release_memory()

        def single_run(kind: str, image_value, engine_id, simulate_flag, progress, stop, params) -> tuple:
            # Not require_available: a presenter cache may hold this engine's result even where it
            # cannot run; run_engine serves that or refuses with the fix.
            chosen = h.find_engine(engine_id)
            if kind == "cpu" and chosen.id in gpu_ids:
                raise h.ui_error(
                    f"{chosen.display_name} runs on the GPU queue: call api_name='/upscale_gpu' with the same "
                    "arguments (in the web page, the button does this for you).",
                    title="Wrong endpoint",
                )
            if kind == "gpu" and chosen.id not in gpu_ids:
                raise h.ui_error(
                    f"{chosen.display_name} runs on the CPU queue: call api_name='/upscale'.", title="Wrong endpoint"
                )
            checked = web_params(chosen, params)
            source = h.load_source(image_value, settings, bool(simulate_flag), guard=guard)
            try:
                result = h.run_engine(
                    source,
                    chosen,
                    checked,
                    settings=settings,
                    progress=h.progress_forwarder(progress, label=chosen.display_name, stop=stop),
                    cache=cache,
                )
            except JobCancelledError as stopped:
                gr.Info(str(stopped), title="Stopped")
                return tuple(gr.skip() for _ in run_outputs)  # keep what the page already shows
            comparison = h.build_comparison(source, {chosen.id: result}, workdir)
            return (
                (comparison.image_file(h.BASELINE_KEY), comparison.image_file(chosen.id)),
                h.before_after_html(h.BASELINE_SHORT, result.engine_name),
                h.summary_markdown(comparison),
                gr.update(
                    value=comparison.image_file(h.TRUTH_KEY) if source.truth is not None else None,
                    visible=source.truth is not None,
                ),
                comparison.files[chosen.id],
                h.diagram_html([result]),
                comparison.svgs[chosen.id],
                h.where_image(comparison),
                h.crops_gallery(comparison),
                h.added_map(comparison, chosen.id),
            )

        gpu_single_run = on_gpu(single_run)  # ZeroGPU wants the function decorated once, up front

        async def upscale(
            image,
            engine="realcugan",
            simulate_blurry_source=False,
            progress=gr.Progress(),  # noqa: B008
            request: gr.Request = None,
            **params,
        ):
            """Upscale an illustration 2x on the CPU queue (classical and CNN engines).

            Returns: before/after slider pair (bicubic, result), labels HTML, summary markdown,
            ground truth (if simulated), result PNG file, diagram HTML, diagram SVG file,
            detail-window image, detail crops, "what the model added" map.
            """
            return await as_job(
                lambda stop: single_run("cpu", image, engine, simulate_blurry_source, progress, stop, params), request
            )

        async def upscale_gpu(
            image,
            engine="sd-img2img",
            simulate_blurry_source=False,
            progress=gr.Progress(),  # noqa: B008
            request: gr.Request = None,
            **params,
        ):
            """Same as /upscale, for engines that need the GPU (they share one GPU slot)."""
            return await as_job(
                lambda stop: gpu_single_run("gpu", image, engine, simulate_blurry_source, progress, stop, params),
                request,
                "gpu",
            )

        run_cpu.click(
            upscale,
            inputs=run_inputs,
            inputs_kwargs=run_kwargs,
            outputs=run_outputs,
            preprocess=False,
            api_name="upscale",
            concurrency_id="cpu",
            concurrency_limit=settings.cpu_concurrency,
            validator=lanes.validator("cpu"),
        )
        run_gpu.click(
            upscale_gpu,
            inputs=run_inputs,
            inputs_kwargs=run_kwargs,
            outputs=run_outputs,
            preprocess=False,
            api_name="upscale_gpu",
            concurrency_id="gpu",
            concurrency_limit=1,
            validator=lanes.validator("gpu"),
        )

        if settings.presenter and example_block is not None:

            async def auto_run(
                image_value,
                engine_id,
                simulate_flag,
                progress=gr.Progress(),  # noqa: B008
                request: gr.Request = None,
                **params,
            ):
                if engine_id in gpu_ids or not availability(by_id[engine_id], settings=settings).ok:
                    return tuple(gr.skip() for _ in run_outputs)
                return await as_job(
                    lambda stop: single_run("cpu", image_value, engine_id, simulate_flag, progress, stop, params),
                    request,
                )

            example_block.load_input_event.then(
                auto_run,
                inputs=run_inputs,
                inputs_kwargs=run_kwargs,
                outputs=run_outputs,
                preprocess=False,
                api_visibility="private",
                concurrency_id="cpu",
                concurrency_limit=settings.cpu_concurrency,
                validator=lanes.validator("cpu"),
            )

        # ------------------------------------------------------------- compare events
        compare_outputs = [
            cmp_state,
            cmp_left,
            cmp_right,
            cmp_slider,
            cmp_labels,
            cmp_table,
            cmp_crops,
            cmp_maps,
            cmp_files,
            cmp_diagrams,
        ]

        def compare_run(image_value, engine_ids, simulate_flag, progress, stop, params) -> tuple:
            if not engine_ids:
                raise h.ui_error("No engine is ticked. Tick at least one engine to compare.", title="Nothing to run")
            chosen = []
            problems = []
            for engine_id in engine_ids:
                try:
                    chosen.append(h.require_available(engine_id, settings))
                except gr.Error as error:
                    problems.append(str(error.message))
            if problems:
                raise gr.Error("\n".join(problems), title="Engine unavailable here", print_exception=False)
            checked = {engine_obj.id: web_params(engine_obj, params) for engine_obj in chosen}
            source = h.load_source(image_value, settings, bool(simulate_flag), guard=guard)
            results = {}
            try:
                for index, engine_obj in enumerate(chosen):
                    results[engine_obj.id] = h.run_engine(
                        source,
                        engine_obj,
                        checked[engine_obj.id],
                        settings=settings,
                        progress=h.progress_forwarder(
                            progress, label=engine_obj.display_name, index=index, count=len(chosen), stop=stop
                        ),
                        cache=cache,
                    )
            except JobCancelledError as stopped:
                gr.Info(str(stopped), title="Stopped")
                return tuple(gr.skip() for _ in compare_outputs)
            comparison = h.build_comparison(source, results, workdir)
            left, right = h.BASELINE_KEY, next(iter(results))
            crops = h.crops_gallery(comparison)
            return (
                comparison,
                gr.update(choices=comparison.choices(), value=left),
                gr.update(choices=comparison.choices(), value=right),
                (comparison.image_file(left), comparison.image_file(right)),
                h.before_after_html(comparison.label(left), comparison.label(right)),
                h.psnr_table(comparison),
                gr.update(value=crops, columns=min(len(crops), 6)),  # one row: same detail side by side
                h.added_maps(comparison),
                list(comparison.files.values()),
                h.diagram_html(list(results.values())),
            )

        compare_uses_gpu = any(availability(by_id[i], settings=settings).ok for i in gpu_ids)
        compare_work = on_gpu(compare_run) if compare_uses_gpu else compare_run

        async def compare_job(
            image_value,
            engine_ids,
            simulate_flag,
            progress=gr.Progress(),  # noqa: B008
            request: gr.Request = None,
            **params,
        ):
            return await as_job(
                lambda stop: compare_work(image_value, engine_ids, simulate_flag, progress, stop, params),
                request,
                "gpu" if compare_uses_gpu else "cpu",
            )

        cmp_run.click(
            compare_job,
            inputs=[image, cmp_engines, simulate],
            inputs_kwargs=run_kwargs,
            outputs=compare_outputs,
            preprocess=False,
            api_visibility="private",
            concurrency_id="gpu" if compare_uses_gpu else "cpu",
            concurrency_limit=1 if compare_uses_gpu else settings.cpu_concurrency,
            validator=lanes.validator("gpu" if compare_uses_gpu else "cpu"),
        )

        def stop_jobs(request: gr.Request = None) -> None:
            if not stops.stop(_session(request)):
                gr.Info("Nothing is running.")

        gr.on(
            [stop_button.click, cmp_stop.click],
            stop_jobs,
            inputs=None,
            outputs=None,
            queue=False,  # must not wait behind the job it stops
            api_visibility="private",
        )

        def pick_pair(comparison, left, right):
            if comparison is None or not left or not right:
                return gr.skip(), gr.skip()
            return (comparison.image_file(left), comparison.image_file(right)), h.before_after_html(
                comparison.label(left), comparison.label(right)
            )

        gr.on(
            [cmp_left.input, cmp_right.input],
            pick_pair,
            inputs=[cmp_state, cmp_left, cmp_right],
            outputs=[cmp_slider, cmp_labels],
            queue=False,
            api_visibility="private",
        )

    # Gradio's max_size counts every lane together: only a backstop. Each event's validator keeps
    # its own lane within its share, so a full CPU lane never refuses GPU callers.
    demo.queue(max_size=2 * lanes.total, default_concurrency_limit=settings.cpu_concurrency)
    return demo
