"""``/inside`` and ``/attribution`` for gradio_client and MCP: the "Inside the network" views of a
picture sent over the network (API only: no trigger on the page, outputs in hidden components).
The picture goes through the same guard and limits as ``/upscale``; the work runs on the CPU lane."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...engines import INSIDE_ENGINE_ID
from ...image import save_png
from ...present import inside_text
from ...probe import attribution as trace_pixel
from ...probe import inside as look_inside
from ...web.running import progress_forwarder
from ...web.runs import RunSetup
from ...web.sources import load_source
from ..jobs import JobControl


def _outputs() -> dict[str, Any]:
    with gr.Column(visible=False):  # the API's outputs: nothing of them shows on the page
        return {
            "layers": gr.Gallery(format="png", label="Layers"),
            "notes": gr.Markdown(label="What each layer responds to"),
            "base": gr.Image(type="filepath", format="png", label="Base"),
            "residual": gr.Image(type="filepath", format="png", label="Residual"),
            "output": gr.Image(type="filepath", format="png", label="Output"),
            "sum": gr.Markdown(label="Base + residual = output"),
            "overlay": gr.Image(type="filepath", format="png", label="Attribution"),
            "reading": gr.Textbox(label="Reading"),
        }


def _inside_values(picture, engine, forward, folder, settings) -> tuple:
    """The /inside outputs: each layer's maps as one picture, the notes, base/residual/output, the sum."""
    seen = look_inside(picture, engine, progress=forward, settings=settings)
    files = [
        (str(save_png(inside_text.strip(layer.maps), folder / f"layer{k}.png", {})), layer.name)
        for k, layer in enumerate(seen.layers)
    ]
    parts = (("base", seen.base_image), ("residual", seen.residual_image), ("output", seen.output_image))
    pictures = [str(save_png(shown, folder / f"{name}.png", {})) for name, shown in parts]
    return (files, inside_text.layer_notes(seen.layers), *pictures, inside_text.sum_note(seen))


def wire_inside_api(engine_input: gr.Dropdown, image_input: gr.Image, setup: RunSetup, control: JobControl) -> None:
    """Register /inside (image, engine) and /attribution (image, engine, x, y) on the CPU lane."""
    shown = _outputs()
    with gr.Column(visible=False):
        x, y = gr.Number(label="x", precision=0), gr.Number(label="y", precision=0)
    inside, attribution = _endpoints(setup, control)
    lane = {
        "preprocess": False,
        "concurrency_id": "cpu",
        "concurrency_limit": setup.settings.cpu_concurrency,
        "validator": control.lanes.validator("cpu"),
    }
    names = ("layers", "notes", "base", "residual", "output", "sum")
    gr.on([], inside, inputs=[image_input, engine_input], outputs=[shown[n] for n in names], api_name="inside", **lane)
    gr.on(
        [],
        attribution,
        inputs=[image_input, engine_input, x, y],
        outputs=[shown["overlay"], shown["reading"]],
        api_name="attribution",
        **lane,
    )


def _endpoints(setup: RunSetup, control: JobControl) -> tuple[Any, Any]:
    """The /inside and /attribution handlers (their docstrings are what an API client or agent reads)."""
    settings = setup.settings

    def run(image, engine, progress, stop, what):  # a job: our errors reach the visitor through JobControl
        forward = progress_forwarder(progress, label="Looking inside", stop=stop)
        folder = setup.workdir.new_run_dir()
        source = load_source(image, settings, False, guard=setup.guard)
        return what(source.image, engine, forward, folder)

    async def inside(image, engine=INSIDE_ENGINE_ID, progress=gr.Progress(), request: gr.Request = None):  # noqa: B008
        """Look inside an anime CNN on a picture: each layer's most active channels, and base + residual = output.

        Args:
            image: the illustration (PNG, JPEG or WebP).
            engine: realesrgan-anime or realcugan.

        Returns:
            One picture per layer with its name, what each layer responds to, the base, the residual and the output pictures, and the sentence that says how they add up.
        """
        return await control.run(
            lambda stop: run(image, engine, progress, stop, lambda *args: _inside_values(*args, settings)), request
        )

    async def attribution(
        image,
        engine=INSIDE_ENGINE_ID,
        x=0,
        y=0,
        progress=gr.Progress(),  # noqa: B008
        request: gr.Request = None,
    ):
        """Where a pixel of the 2x result comes from: the input pixels that decided the 16x16 window around (x, y).

        Args:
            image: the illustration (PNG, JPEG or WebP).
            engine: realesrgan-anime or realcugan.
            x: the point's column in the 2x result.
            y: the point's row in the 2x result.

        Returns:
            The attribution overlay around the point, and one line on how far the network looked.
        """

        def values(picture, name, forward, folder):
            found = trace_pixel(picture, name, (int(x or 0), int(y or 0)), progress=forward, settings=settings)
            return str(save_png(found.zoom, folder / "attribution.png", {})), found.reading

        return await control.run(lambda stop: run(image, engine, progress, stop, values), request)

    return inside, attribution
