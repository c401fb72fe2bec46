"""``sd-img2img``: pre-enlarge 2x, then Stable Diffusion img2img re-draws the picture (DreamShaper 8).

What this engine adds to the shared flow (``engine.DiffusionEngine``, ``job.Job``): its
parameters, the pre-enlarge with another engine (Real-CUGAN or Lanczos), the prompt and
negative prompt for classifier-free guidance, and the img2img denoising call (noise up to
where ``strength`` starts, then ``int(steps x strength)`` DPM++ 2M steps), by default with the
SD 1.5 tile ControlNet reading the pre-enlarged picture (``controlnet``, ``controlnet_scale``);
and what it declares about itself for the family's helpers (``descriptor.DiffusionTraits``):
its published model, pipelines, DPM++ 2M scheduler, A1111 fields and CPU time model.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from PIL import Image

from ...errors import EngineUnavailableError
from ...stages import ProgressFn, StageRecord
from ..base import Availability, Credit, Engine, ParamSpec, RunOptions
from . import a1111
from . import controlnet as cn
from .cost import (
    CPU_UNET_STEP_SECONDS_512,
    CPU_VAE_ENCODE_SECONDS_512,
    MAX_SEED,
    PIXELS_512,
    cfg_batch,
    unet_cost,
    unet_steps,
)
from .engine import DiffusionEngine
from .job import Job
from .pipelines import Resident, resident_pipeline

PUBLISHED_MODEL = "Lykon/dreamshaper-8"
# Quality and style words only, no objects: SD upscalers' users find that a prompt naming things
# ("a girl", "a cat") paints small copies of them into the tiles.
DEFAULT_PROMPT = "anime illustration, clean line art, sharp details, high quality"
DEFAULT_NEGATIVE_PROMPT = "blurry, lowres, jpeg artifacts, noise, watermark, text"
# 0.35-0.5 is where SD upscalers run with the tile ControlNet (0.2-0.35 without it): 0.4, the middle.
DEFAULT_STRENGTH = 0.4
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 6.0
# Its time model's own factors (``cost`` has SD 1.5's measured rates):
CPU_REALCUGAN_SECONDS_PER_MP = 15.0  # per input megapixel, pre-enlarge
CONTROLNET_COST = 0.45  # the SD 1.5 ControlNet (a copy of the UNet's encoder and middle) per UNet step, by FLOPs
# CPU seconds per input megapixel of each pre-enlarge choice (Lanczos: next to nothing).
PRE_ENLARGE_SECONDS_PER_MP = {"realcugan": CPU_REALCUGAN_SECONDS_PER_MP, "lanczos": 0.0}

CREDITS = (
    Credit(
        "DreamShaper 8 (Lykon), a Stable Diffusion 1.5 fine-tune",
        "https://huggingface.co/Lykon/dreamshaper-8",
        "CreativeML OpenRAIL-M",
    ),
    Credit(
        "Stable Diffusion 1.5 (CompVis, Runway, Stability AI)",
        "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5",
        "CreativeML OpenRAIL-M",
    ),
    Credit(
        "ControlNet 1.1 tile (Lvmin Zhang)",
        "https://huggingface.co/lllyasviel/control_v11f1e_sd15_tile",
        "CreativeML OpenRAIL-M",
    ),
    Credit("Hugging Face diffusers", "https://github.com/huggingface/diffusers", "Apache-2.0"),
)

PARAMS = (
    ParamSpec(
        "model",
        "str",
        PUBLISHED_MODEL,
        f"Hub id (default {PUBLISHED_MODEL}, or CNAPS_SD_MODEL), a local diffusers "
        "folder, or a single SD 1.5 .safetensors file.",
        setting="sd_model",
    ),
    ParamSpec(
        "strength",
        "float",
        DEFAULT_STRENGTH,
        "How much to re-draw (default 0.4, for the tile ControlNet, which holds the drawing in place; "
        "without it 0.2-0.35 keeps the drawing). UNet steps = int(steps x strength), at least 1.",
        minimum=0.05,
        maximum=1.0,
    ),
    ParamSpec(
        "steps",
        "int",
        DEFAULT_STEPS,
        "DPM++ 2M scheduler steps (default 25); only steps x strength of them run (25 x 0.4 = 10).",
        minimum=1,
        maximum=150,
    ),
    ParamSpec(
        "guidance",
        "float",
        DEFAULT_GUIDANCE,
        "Classifier-free guidance scale (default 6.0); 1 turns it off (one UNet pass per step, not two).",
        minimum=1.0,
        maximum=20.0,
    ),
    ParamSpec("prompt", "str", DEFAULT_PROMPT, f"What the picture should look like (default: {DEFAULT_PROMPT})."),
    ParamSpec(
        "negative_prompt",
        "str",
        DEFAULT_NEGATIVE_PROMPT,
        f"What to steer away from (default: {DEFAULT_NEGATIVE_PROMPT}).",
    ),
    ParamSpec("seed", "int", 0, "Random seed (default 0): same seed, same picture.", minimum=0, maximum=MAX_SEED),
    ParamSpec(
        "pre_upscaler",
        "choice",
        "realcugan",
        "First 2x enlargement before diffusion (default realcugan; lanczos is faster and softer).",
        choices=("realcugan", "lanczos"),
    ),
    ParamSpec(
        "controlnet",
        "str",
        cn.DEFAULT_CONTROLNET,
        f"ControlNet beside the UNet, given the pre-enlarged picture (default {cn.DEFAULT_CONTROLNET}, "
        "or CNAPS_SD_CONTROLNET: keeps composition and colours); a Hub id, a local folder, or none.",
        setting="sd_controlnet",
    ),
    ParamSpec(
        "controlnet_scale",
        "float",
        cn.DEFAULT_SCALE,
        "How strongly the ControlNet holds the picture (default 1.0; lower lets the model invent more).",
        minimum=0.0,
        maximum=2.0,
    ),
)


class Img2ImgJob(Job):
    def __init__(self, resident: Resident, params: dict[str, Any], progress: ProgressFn, n_tiles: int) -> None:
        self.scheduler_steps, k = unet_steps(params["steps"], params["strength"])
        super().__init__(resident, params, progress, k, n_tiles)
        self.controlnet_seconds = 0.0

    def _negative(self) -> str | None:
        return self.params["negative_prompt"] if self.cfg else None

    def prompt_key(self) -> tuple[Any, ...]:
        return ("img2img", self.params["prompt"], self._negative())

    def compute_embeddings(self) -> tuple[Any, ...]:
        return self.pipe.encode_prompt(self.params["prompt"], self.device, 1, self.cfg, self._negative())

    def prompt_detail(self, cached: bool) -> dict[str, Any]:
        return {
            "prompt": self.params["prompt"],
            "negative_prompt": self._negative(),
            "passes": 2 if self.cfg else 1,
            "cached": cached,
        }

    def denoise(self, latents: Any, generator: Any) -> Any:
        params = self.params

        def on_step_end(pipeline: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            self.step_done(i)
            return {}

        control: dict[str, Any] = {}
        if getattr(self.pipe, "controlnet", None) is not None:
            # The tile ControlNet reads the (padded) pre-enlarged picture in [0, 1], as it was trained.
            control = {
                "control_image": self.condition.to(self.resident.dtype),
                "controlnet_conditioning_scale": float(params["controlnet_scale"]),
            }
        handles = self._time_controlnet()
        try:
            return self.pipe(
                prompt_embeds=self.embeds[0],
                negative_prompt_embeds=self.embeds[1] if self.cfg else None,
                image=latents.to(self.resident.dtype),
                strength=params["strength"],
                num_inference_steps=self.scheduler_steps,
                guidance_scale=params["guidance"],
                generator=generator,
                output_type="latent",
                return_dict=False,
                callback_on_step_end=on_step_end,
                **control,
            )[0]
        finally:
            for handle in handles:
                handle.remove()

    def _time_controlnet(self) -> list[Any]:
        """Hooks that add up the ControlNet's seconds in ``self.controlnet_seconds`` (none without one)."""
        self.controlnet_seconds = 0.0
        model = getattr(self.pipe, "controlnet", None)
        if model is None:
            return []
        module = getattr(model, "_orig_mod", model)  # torch.compile keeps the module here
        started: list[float] = []

        def before(module: Any, args: Any) -> None:
            started.append(self.clock())

        def after(module: Any, args: Any, output: Any) -> None:
            if started:
                self.controlnet_seconds += self.clock() - started.pop()

        return [module.register_forward_pre_hook(before), module.register_forward_hook(after)]

    def record_denoising(self, latents: Any, out: Any, before_unet: float, unet: float, timestep: float | None) -> None:
        params = self.params
        shape = tuple(latents.shape[1:])
        scheduler = type(self.pipe.scheduler).__name__
        self.sums.add(
            "add noise",
            shape,
            shape,
            before_unet,
            strength=params["strength"],
            start_step=self.scheduler_steps - self.k_steps,
            scheduler_steps=self.scheduler_steps,
            timestep=timestep,
            scheduler=scheduler,
        )
        model = getattr(self.pipe, "controlnet", None)
        if model is not None:
            seconds = min(unet, self.controlnet_seconds)
            unet -= seconds
            latent_shape = tuple(out.shape[2:])
            channels = int(model.config.block_out_channels[0])  # its first residual's channels (SD 1.5: 320)
            self.sums.add(
                f"ControlNet tile x{self.k_steps}" + (" with CFG" if self.cfg else ""),
                tuple(self.condition.shape[1:]),
                (channels, *latent_shape),
                seconds,
                model=a1111.model_name(params["controlnet"]),
                scale=float(params["controlnet_scale"]),
                condition="the pre-enlarged picture",
                steps=self.k_steps,
            )
        self.sums.add(
            self.unet_stage_name(),
            shape,
            tuple(out.shape[1:]),
            unet,
            steps=self.k_steps,
            scheduler_steps=self.scheduler_steps,
            strength=params["strength"],
            guidance=params["guidance"],
            cfg=self.cfg,
            scheduler=scheduler,
            prompt=params["prompt"],
            compiled=self.resident.compiled,
        )


class SDImg2ImgEngine(DiffusionEngine):
    id = "sd-img2img"
    display_name = "Stable Diffusion img2img (DreamShaper 8)"
    picker_name = "SD img2img"
    summary = (
        "Enlarges 2x, then Stable Diffusion adds a little noise and removes it guided by a prompt, "
        "re-drawing crisp lines and detail."
    )
    credits = CREDITS
    params = PARAMS
    job_class = Img2ImgJob
    steps_text = f"{DEFAULT_STEPS} steps x {DEFAULT_STRENGTH} strength"
    loading_text = "loading Stable Diffusion"
    warm_up_params = {"steps": 4, "strength": 0.5}
    explorations = ("sweep", "seeds")
    # what it declares for the family's helpers (descriptor.DiffusionTraits)
    published_model = PUBLISHED_MODEL
    # Pinned by other public projects that load this model (checked 2026-11-26); a pin gone missing
    # on the Hub fails the download with a typed error naming it.
    published_revision = "a7e52b98680b1ba8ff7bce97c7f9f2e2e5337917"
    published_gb = 2.0
    pipeline = "StableDiffusionImg2ImgPipeline"
    controlnet_pipeline = "StableDiffusionControlNetImg2ImgPipeline"
    safety_checker_slot = True
    # DPM++ 2M whatever the model ships (DEIS, PNDM, Euler...): betas and prediction type stay the model's.
    scheduler = "DPMSolverMultistepScheduler"
    scheduler_overrides = {"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint"}
    sampler = "DPM++ 2M"
    single_file = True

    def __init__(self, pre_upscalers: dict[str, Engine]) -> None:
        # The engines that may do the first 2x (passed in by the registry, never looked up here).
        self.pre_upscalers = dict(pre_upscalers)

    shared_params = ("model", "controlnet", "pre_upscaler")

    def unet_step_count(self, params: dict[str, Any]) -> int:
        return unet_steps(params["steps"], params["strength"])[1]

    @classmethod
    def cpu_work(
        cls, width: int, height: int, params: dict[str, Any], n_tiles: int, per_tile: float
    ) -> tuple[float, float, float]:
        _, k = unet_steps(int(params.get("steps", DEFAULT_STEPS)), float(params.get("strength", DEFAULT_STRENGTH)))
        batch = cfg_batch(float(params.get("guidance", DEFAULT_GUIDANCE)))
        unet = n_tiles * k * CPU_UNET_STEP_SECONDS_512 * batch * unet_cost(per_tile)
        if not cn.is_off(params.get("controlnet", cn.DEFAULT_CONTROLNET)):
            unet *= 1 + CONTROLNET_COST
        encode = CPU_VAE_ENCODE_SECONDS_512 * n_tiles * per_tile / PIXELS_512
        pre = PRE_ENLARGE_SECONDS_PER_MP.get(params.get("pre_upscaler", "realcugan"), 0.0) * width * height / 1e6
        return unet, encode, pre

    @classmethod
    def a1111_fields(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The scheduler steps that ran (raised when steps x strength < 1), the strength, the ControlNet unit."""
        fields: dict[str, Any] = {
            "Steps": unet_steps(int(params["steps"]), float(params["strength"]))[0],
            "Denoising strength": float(params["strength"]),
        }
        if not cn.is_off(params.get("controlnet")):
            fields["ControlNet 0"] = a1111.controlnet_unit(params["controlnet"], params.get("controlnet_scale"))
        return fields

    def download_gb(self, params: dict[str, Any]) -> float:
        gb = super().download_gb(params)
        return gb + (cn.APPROX_GB if str(params.get("controlnet", "")).strip() == cn.DEFAULT_CONTROLNET else 0.0)

    def available(self, params: dict[str, Any], options: RunOptions) -> Availability:
        """The model's weights and, unless switched off, the ControlNet's; no network."""
        found = super().available(params, options)
        if not found:
            return found
        return cn.check_available(self, params["controlnet"], cache_dir=options.hub_cache)

    def load_resident(self, params: dict[str, Any], device: Any, options: RunOptions) -> Resident:
        return resident_pipeline(self, params["model"], device, options, params["controlnet"])

    def prepare_input(
        self, image: Image.Image, params: dict[str, Any], options: RunOptions, total: int
    ) -> tuple[Image.Image, list[StageRecord]]:
        """The 2x pre-enlarge with the chosen engine: its picture, and one stage record."""
        enlarged, record = pre_enlarge(image, self.pre_upscalers[params["pre_upscaler"]], options, total)
        return enlarged, [record]


def pre_enlarge(image: Image.Image, engine: Engine, options: RunOptions, total: int) -> tuple[Image.Image, StageRecord]:
    """2x with another engine (Real-CUGAN or Lanczos); one stage record."""
    params = engine.check_params({})
    ok, reason = engine.available(params, options)
    if not ok:
        raise EngineUnavailableError(
            f"The pre-enlarge engine {engine.id!r} cannot run here: {reason}",
            hint="Pass pre_upscaler=lanczos to enlarge with Lanczos instead.",
        )

    def progress(done: int, sub_total: int, description: str) -> None:
        options.progress(0, total, f"pre-enlarge: {description}")

    started = time.perf_counter()
    sub_options = dataclasses.replace(options, tile=0, progress=progress)
    output = engine.run(image.convert("RGB"), scale=2, params=params, options=sub_options)
    enlarged = output.image.convert("RGB")
    width, height = image.size
    record = StageRecord(
        f"pre-enlarge x2 ({engine.display_name})",
        (3, height, width),
        (3, enlarged.height, enlarged.width),
        time.perf_counter() - started,
        {"engine": engine.id, "engine_name": engine.display_name, "stages": [s.name for s in output.stages]},
    )
    return enlarged, record
