"""What both diffusion engines share: availability, size limits, the CPU refusal, what they offer, ``run()``.

``run()`` is one flow for both: plan the tiles, load the resident pipeline, prepare the
model's input (img2img: the pre-enlarge), warm up once if compiled, encode the prompt, run
the whole picture or tile by tile, and collect the stage records. Each engine supplies its
job class and the few values that differ (see the class attributes); what each declares about
itself for the family's helpers (model, pipeline, scheduler, time model) is ``descriptor.DiffusionTraits``.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PIL import Image

from ...devices import torch_device
from ...errors import ImageTooLargeError, ImageTooSmallError, InvalidParameterError
from ...image import count_tiles, tiled_apply, to_uint8
from ...stages import ProgressFn, StageRecord, no_progress
from ..base import Availability, Engine, EngineOutput, RunOptions
from . import hub, provision
from .a1111 import a1111_parameters
from .cost import TILE_CONTEXT, estimate_cpu_seconds, minutes_text, spaces_duration, tiling_plan
from .descriptor import DiffusionTraits
from .download import download, download_controlnet
from .explore import seed_disagreement, strength_sweep
from .filmstrip import Filmstrip, tile_regions
from .job import Job
from .pipelines import Resident, resident_pipeline

if TYPE_CHECKING:
    from ...settings import Settings

MAX_INPUT_PIXELS = 2048 * 2048
MIN_INPUT_SIDE = 8
_PACKAGES = ("torch", "diffusers", "transformers", "safetensors", "huggingface_hub")


# The explorations an engine may declare, and what runs each.
_EXPLORATIONS = {"sweep": strength_sweep, "seeds": seed_disagreement}


class DiffusionEngine(Engine, DiffusionTraits):
    family = "diffusion"
    colour_fix_by_default = True
    kind_words = "diffusion"
    learned_from = (
        "It was not trained on this damage: it redraws what it recognises from the pictures it was trained on, "
        "so it may clean the damage or draw something new."
    )
    scales = (2,)
    default_scale = 2
    device_need = "gpu"
    makes_frames = True
    fetches_weights = True
    job_class: type[Job] = Job  # its ``model_scale`` is the denoising model's own (img2img: 1, latent x2: 2)
    steps_text = ""  # the default job, for the CPU refusal ("25 steps x 0.3 strength")
    loading_text = ""  # the progress text while the pipeline loads
    warm_up_params: dict[str, Any] = {}  # a short job for the torch.compile warm-up
    shared_params: tuple[str, ...] = ("model",)  # what ``run_many``'s jobs must share (input and pipeline)

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
        return hub.check_available(self, params["model"], cache_dir=options.hub_cache)

    def cpu_refusal(self) -> str:
        eta = minutes_text(estimate_cpu_seconds(512, 512, None, engine=self))
        return (
            f"{self.display_name} needs a CUDA or Apple GPU; to run slowly on the CPU (about {eta} for a 512 px "
            f"image at {self.steps_text}) pass --device cpu or set CNAPS_ALLOW_CPU_DIFFUSION=1."
        )

    # what it offers beyond a run --------------------------------------------------------------
    def explore(self, what: str, image: Image.Image, params: dict[str, Any], options: RunOptions) -> Any:
        """``"sweep"``: ``explore.strength_sweep``; ``"seeds"``: ``explore.seed_disagreement``."""
        if what not in self.explorations:
            return super().explore(what, image, params, options)
        return _EXPLORATIONS[what](self, image, params, options)

    def gpu_seconds(self, width: int, height: int, params: dict[str, Any], tile: int = 0) -> int:
        return spaces_duration(width, height, params, engine=self, tile=tile)

    def offered_values(self, field: str) -> tuple[str, ...]:
        return (self.published_model,) if field == "model" and self.published_model else ()

    def download_gb(self, params: dict[str, Any]) -> float:
        """Approximate GB of the weights ``params`` name, where known (the published model's)."""
        return self.published_gb if str(params.get("model", "")).strip() == self.published_model else 0.0

    def download_size(self, params: dict[str, Any]) -> str:
        gb = self.download_gb(params)
        return f"about {gb:g} GB" if gb else ""

    def may_fetch_weights(self, params: dict[str, Any], *, settings: Settings, device: str) -> Availability:
        return provision.may_download(self, params, settings=settings, device=device)

    def fetch_weights(
        self,
        params: dict[str, Any],
        *,
        settings: Settings,
        device: str,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[Path]:
        return provision.ensure_weights(self, params, settings=settings, device=device, progress=progress)

    def download_weights(
        self, params: dict[str, Any], *, settings: Settings, progress: bool | Callable[[int, int, str], None] = True
    ) -> list[tuple[str, Path]]:
        where = {"cache_dir": settings.hub_cache, "offline": settings.hub_offline, "endpoint": settings.hub_endpoint}
        model = str(params["model"]).strip()
        fetched = [(model, download(self, model, progress, **where))]
        if self.takes_controlnet():
            folder = download_controlnet(self, params["controlnet"], progress, **where)
            if folder is not None:
                fetched.append((f"ControlNet {str(params['controlnet']).strip()}", folder))
        return fetched

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
        return self.run_many(image, [params], scale=scale, options=options)[0]

    def load_resident(self, params: dict[str, Any], device: Any, options: RunOptions) -> Resident:
        """The resident pipeline these ``params`` run on (img2img adds its ControlNet)."""
        return resident_pipeline(self, params["model"], device, options)

    def run_many(
        self, image: Image.Image, param_sets: list[dict[str, Any]], *, scale: int, options: RunOptions
    ) -> list[EngineOutput]:
        """Several jobs on one picture with one load and one input preparation (sweeps, seed maps).

        The parameter sets must share what the input and pipeline depend on (``shared_params``).
        Progress counts the UNet steps of all jobs; ``options.frames`` gets every job's frames.
        """
        first = param_sets[0]
        for other in param_sets[1:]:
            differ = [name for name in self.shared_params if other.get(name) != first.get(name)]
            if differ:
                raise InvalidParameterError(
                    f"Jobs run together must share {', '.join(differ)}.", hint="Run them one by one instead."
                )
        device = torch_device(options.device, options.cpu_threads)
        tile, overlap = tiling_plan(options.tile)  # output pixels
        # The model sees (scale / model_scale) x the input; tiles are cut in the model's input pixels.
        model_scale = self.job_class.model_scale
        in_tile, in_overlap, in_context = (value // model_scale for value in (tile, overlap, TILE_CONTEXT))
        grow = scale // model_scale
        n_tiles = count_tiles(image.height * grow, image.width * grow, in_tile, in_overlap)
        steps = [self.unet_step_count(params) * n_tiles for params in param_sets]
        total = sum(steps)
        options.progress(0, total, self.loading_text)
        resident = self.load_resident(first, device, options)
        model_input, records = self.prepare_input(image, first, options, total)
        layout = (model_scale, in_tile, in_overlap, in_context, n_tiles)
        import torch

        outputs = []
        with resident.lock, torch.inference_mode():
            self.warm_up(resident, first, tile)
            for index, params in enumerate(param_sets):
                progress = options.progress
                if len(param_sets) > 1:
                    progress = _offset_progress(options.progress, sum(steps[:index]), total)
                job = self.make_job(resident, params, progress, n_tiles)
                result = self._run_job(job, model_input, options, layout)
                common = {"tile": tile, "overlap": overlap, "context": TILE_CONTEXT}
                stages = [*records, *job.sums.records(**common)]
                outputs.append(EngineOutput(result, stages, self.png_text(params, result)))
        return outputs

    def _run_job(self, job: Job, model_input: Image.Image, options: RunOptions, layout: tuple[int, ...]) -> Image.Image:
        """One job on the prepared input: the prompt, then the whole picture or tile by tile."""
        model_scale, in_tile, in_overlap, in_context, n_tiles = layout
        if options.frames is not None:
            out_size = (model_input.width * model_scale, model_input.height * model_scale)
            background = model_input if model_scale == 1 else model_input.resize(out_size, Image.Resampling.BICUBIC)
            regions = (
                [(0, out_size[1], 0, out_size[0])]
                if n_tiles == 1
                else tile_regions(model_input.height, model_input.width, in_tile, in_overlap, model_scale)
            )
            job.filmstrip = Filmstrip(options.frames, background, regions, in_context * model_scale, job.k_steps)
        job.encode_prompt()
        if n_tiles == 1:
            result = job.run_image(model_input)
        else:
            array = np.asarray(model_input, dtype=np.float32) / 255.0
            blended = tiled_apply(
                array, job.run_array, scale=model_scale, tile=in_tile, overlap=in_overlap, context=in_context
            )
            result = Image.fromarray(to_uint8(blended, overwrite=True), "RGB")
        if job.filmstrip is not None:
            job.filmstrip.finish(result)
        return result

    def png_text(self, params: dict[str, Any], result: Image.Image) -> dict[str, str]:
        """Text chunks for the output PNG (the AUTOMATIC1111 ``parameters`` chunk)."""
        return {"parameters": a1111_parameters(self, params, result.size)}

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


def _offset_progress(progress: ProgressFn, offset: int, total: int) -> ProgressFn:
    """A job's progress, counted on from ``offset`` of ``total`` (several jobs in one run)."""

    def forward(done: int, job_total: int, description: str) -> None:
        progress(offset + done, max(total, offset + job_total), description)

    return forward
