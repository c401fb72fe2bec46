"""What both diffusion engines share: availability, size limits, the CPU refusal, and ``run()``.

``run()`` is one flow for both: plan the tiles, load the resident pipeline, prepare the
model's input (img2img: the pre-enlarge), warm up once if compiled, encode the prompt, run
the whole picture or tile by tile, and collect the stage records. Each engine supplies its
job class and the few values that differ (see the class attributes).
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import numpy as np
from PIL import Image

from ...devices import torch_device
from ...errors import ImageTooLargeError, ImageTooSmallError
from ...image import count_tiles, tiled_apply, to_uint8
from ...stages import ProgressFn, StageRecord, no_progress
from ..base import Availability, Engine, EngineOutput, RunOptions
from . import hub
from .cost import TILE_CONTEXT, estimate_cpu_seconds, minutes_text, tiling_plan
from .job import Job
from .pipelines import Resident, resident_pipeline

MAX_INPUT_PIXELS = 2048 * 2048
MIN_INPUT_SIDE = 8
_PACKAGES = ("torch", "diffusers", "transformers", "safetensors", "huggingface_hub")


class DiffusionEngine(Engine):
    family = "diffusion"
    scales = (2,)
    default_scale = 2
    device_need = "gpu"
    job_class: type[Job] = Job  # its ``model_scale`` is the denoising model's own (img2img: 1, latent x2: 2)
    steps_text = ""  # the default job, for the CPU refusal ("25 steps x 0.3 strength")
    loading_text = ""  # the progress text while the pipeline loads
    warm_up_params: dict[str, Any] = {}  # a short job for the torch.compile warm-up

    # what each engine supplies ---------------------------------------------------------------
    def unet_step_count(self, params: dict[str, Any]) -> int:  # pragma: no cover - overridden
        """UNet steps per tile (progress counts these)."""
        raise NotImplementedError

    def prepare_input(
        self, image: Image.Image, params: dict[str, Any], options: RunOptions, total: int
    ) -> tuple[Image.Image, list[StageRecord]]:
        """The RGB picture the denoising model gets, and the records of any work done to make it."""
        return image.convert("RGB"), []

    # availability --------------------------------------------------------------------------------
    def available(self, params: dict[str, Any], options: RunOptions) -> Availability:
        """Packages and weights on disk for ``params["model"]``. No network, no weights loaded."""
        missing = [name for name in _PACKAGES if find_spec(name) is None]
        if missing:
            return Availability(
                False,
                f"{self.display_name} needs the Python packages {', '.join(missing)}. "
                f"Install them: pip install {' '.join(missing)}",
            )
        return hub.check_available(self.id, params["model"], cache_dir=options.hub_cache)

    def cpu_refusal(self) -> str:
        eta = minutes_text(estimate_cpu_seconds(512, 512, None, engine=self.id))
        return (
            f"{self.display_name} needs a CUDA or Apple GPU; to run slowly on the CPU (about {eta} for a 512 px "
            f"image at {self.steps_text}) pass --device cpu or set CNAPS_ALLOW_CPU_DIFFUSION=1."
        )

    def check_size(self, width: int, height: int) -> None:
        if width * height > MAX_INPUT_PIXELS:
            raise ImageTooLargeError(
                f"{width}x{height} ({width * height / 1e6:.1f} MP) is too large for {self.display_name}: "
                f"the limit is {MAX_INPUT_PIXELS / 1e6:.1f} MP (2048x2048) of input.",
                hint="Downscale the picture first, or use realcugan, which has no such limit.",
            )
        if min(width, height) < MIN_INPUT_SIDE:
            raise ImageTooSmallError(
                f"{width}x{height} is too small for {self.display_name}.",
                hint=f"Both sides must be at least {MIN_INPUT_SIDE} pixels.",
            )

    # running ---------------------------------------------------------------------------------------
    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        device = torch_device(options.device, options.cpu_threads)
        tile, overlap = tiling_plan(options.tile)  # output pixels
        # The model sees (scale / model_scale) x the input; tiles are cut in the model's input pixels.
        model_scale = self.job_class.model_scale
        in_tile, in_overlap, in_context = (value // model_scale for value in (tile, overlap, TILE_CONTEXT))
        grow = scale // model_scale
        n_tiles = count_tiles(image.height * grow, image.width * grow, in_tile, in_overlap)
        total = self.unet_step_count(params) * n_tiles
        options.progress(0, total, self.loading_text)
        resident = resident_pipeline(self.id, params["model"], device, options)
        model_input, records = self.prepare_input(image, params, options, total)
        import torch

        with resident.lock, torch.inference_mode():
            self.warm_up(resident, params, tile)
            job = self.make_job(resident, params, options.progress, n_tiles)
            job.encode_prompt()
            if n_tiles == 1:
                result = job.run_image(model_input)
            else:
                array = np.asarray(model_input, dtype=np.float32) / 255.0
                blended = tiled_apply(
                    array, job.run_array, scale=model_scale, tile=in_tile, overlap=in_overlap, context=in_context
                )
                result = Image.fromarray(to_uint8(blended, overwrite=True), "RGB")
        common = {"tile": tile, "overlap": overlap, "context": TILE_CONTEXT}
        return EngineOutput(result, [*records, *job.sums.records(**common)])

    def make_job(self, resident: Resident, params: dict[str, Any], progress: ProgressFn, n_tiles: int) -> Job:
        return self.job_class(resident, params, progress, n_tiles)  # type: ignore[call-arg]

    def warm_up(self, resident: Resident, params: dict[str, Any], tile: int) -> None:
        """With torch.compile: one untimed job at the default tile size, so users never wait for it."""
        if resident.warmed or not resident.compiled:
            return
        size = tile // self.job_class.model_scale
        job = self.make_job(resident, {**params, **self.warm_up_params}, no_progress, 1)
        job.encode_prompt()
        job.run_image(Image.new("RGB", (size, size), (128, 128, 128)))
        resident.warmed = True
