"""``sd-latent-x2``: the SD x2 latent upscaler draws a latent twice the size of the picture's.

What this engine adds to the shared flow (``engine.DiffusionEngine``, ``job.Job``): its
parameters, the prompt (ignored at guidance 0, as the pipeline does), and the denoising call:
a k-diffusion UNet removes pure noise at twice the latent size in ``steps`` Euler steps,
conditioned on the (nearest-upsampled) low-resolution latents; and what it declares about
itself for the family's helpers (``descriptor.DiffusionTraits``).
"""

from __future__ import annotations

from typing import Any

from ...stages import ProgressFn
from ..base import Credit, ParamSpec
from .cost import CPU_UNET_STEP_SECONDS_512, CPU_VAE_ENCODE_SECONDS_512, MAX_SEED, PIXELS_512, cfg_batch
from .descriptor import SD15_CONFIGS
from .engine import DiffusionEngine
from .job import Job
from .pipelines import Resident

PUBLISHED_MODEL = "stabilityai/sd-x2-latent-upscaler"
LATENT_DEFAULT_STEPS = 20
LATENT_DEFAULT_GUIDANCE = 0.0  # the model's usual setting: no guidance, the prompt ignored
LATENT_UNET_COST = 1.3  # its UNet relative to SD 1.5's, per latent pixel (the time model's factor)

CREDITS = (
    Credit(
        "SD x2 latent upscaler (Katherine Crowson, Stability AI)",
        "https://huggingface.co/stabilityai/sd-x2-latent-upscaler",
        "CreativeML Open RAIL++-M",
    ),
    Credit("Hugging Face diffusers", "https://github.com/huggingface/diffusers", "Apache-2.0"),
)

PARAMS = (
    ParamSpec(
        "model",
        "str",
        PUBLISHED_MODEL,
        f"Hub id (default {PUBLISHED_MODEL}) or a local diffusers folder.",
    ),
    ParamSpec(
        "steps",
        "int",
        LATENT_DEFAULT_STEPS,
        "Euler steps (default 20); each is one UNet pass (two with guidance above 1).",
        minimum=1,
        maximum=100,
    ),
    ParamSpec(
        "guidance",
        "float",
        LATENT_DEFAULT_GUIDANCE,
        "Classifier-free guidance (default 0, the model's usual value: no guidance and the prompt "
        "is ignored); above 1 the prompt steers the result.",
        minimum=0.0,
        maximum=20.0,
    ),
    ParamSpec("prompt", "str", "", "Prompt (default empty); used only with guidance above 0."),
    ParamSpec("negative_prompt", "str", "", "Negative prompt (default empty); used only with guidance above 1."),
    ParamSpec("seed", "int", 0, "Random seed (default 0): same seed, same picture.", minimum=0, maximum=MAX_SEED),
)


class LatentJob(Job):
    model_scale = 2

    def __init__(self, resident: Resident, params: dict[str, Any], progress: ProgressFn, n_tiles: int) -> None:
        super().__init__(resident, params, progress, int(params["steps"]), n_tiles)
        # The UNet works at twice the input latent size: the input must fit half its stride, and
        # its coarsest level must stay at least 2 latents wide (its upsamplers reflect-pad).
        self.multiple = max(1, resident.vae_scale * resident.unet_down // 2)
        self.minimum = resident.vae_scale * resident.unet_down

    def _prompts(self) -> tuple[str, str | None]:
        # At guidance 0 the pipeline ignores the prompt and encodes "" instead; so do we.
        prompt = "" if self.params["guidance"] == 0 else self.params["prompt"]
        return prompt, self.params["negative_prompt"] if self.cfg else None

    def prompt_key(self) -> tuple[Any, ...]:
        return ("latent", *self._prompts())

    def compute_embeddings(self) -> tuple[Any, ...]:
        prompt, negative = self._prompts()
        return self.pipe.encode_prompt(prompt, self.device, self.cfg, negative)

    def prompt_detail(self, cached: bool) -> dict[str, Any]:
        prompt, negative = self._prompts()
        return {
            "prompt": prompt,
            "negative_prompt": negative,
            "pooled": tuple(self.embeds[2].shape[1:]),
            "passes": 2 if self.cfg else 1,
            "cached": cached,
            "prompt_ignored": self.params["guidance"] == 0,
        }

    def denoise(self, latents: Any, generator: Any) -> Any:
        prompt_embeds, negative_embeds, pooled, negative_pooled = self.embeds

        def on_step(i: int, t: Any, latents_now: Any) -> None:
            self.step_done(i)

        return self.pipe(
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds if self.cfg else None,
            pooled_prompt_embeds=pooled,
            negative_pooled_prompt_embeds=negative_pooled if self.cfg else None,
            image=latents.to(self.resident.dtype),
            num_inference_steps=self.k_steps,
            guidance_scale=self.params["guidance"],
            generator=generator,
            output_type="latent",
            return_dict=False,
            callback=on_step,
            callback_steps=1,
        )[0]

    def record_denoising(self, latents: Any, out: Any, before_unet: float, unet: float, timestep: float | None) -> None:
        params = self.params
        scheduler = type(self.pipe.scheduler).__name__
        out_shape = tuple(out.shape[1:])
        self.sums.add(
            "noise",
            out_shape,
            out_shape,
            before_unet,
            start="pure noise at sigma_max",
            scheduler=scheduler,
            steps=self.k_steps,
            condition=f"low-res latents {tuple(latents.shape[1:])} upsampled x2 (nearest)",
        )
        unet_in = (out_shape[0] + latents.shape[1], *out_shape[1:])
        self.sums.add(
            self.unet_stage_name(),
            unet_in,
            out_shape,
            unet,
            steps=self.k_steps,
            guidance=params["guidance"],
            cfg=self.cfg,
            scheduler=scheduler,
            prompt=params["prompt"] if params["guidance"] != 0 else "",
            compiled=self.resident.compiled,
        )


class SDLatentX2Engine(DiffusionEngine):
    id = "sd-latent-x2"
    display_name = "SD x2 latent upscaler"
    picker_name = "SD latent x2"
    summary = (
        "Encodes the picture into Stable Diffusion's latent space and lets a diffusion model "
        "draw a latent twice the size, then decodes it."
    )
    credits = CREDITS
    params = PARAMS
    job_class = LatentJob
    steps_text = f"{LATENT_DEFAULT_STEPS} steps"
    loading_text = "loading the latent upscaler"
    warm_up_params = {"steps": 2}
    explorations = ("seeds",)  # no strength: it always starts from pure noise
    # what it declares for the family's helpers (descriptor.DiffusionTraits)
    published_model = PUBLISHED_MODEL
    # Pinned by other public projects that load this model (checked 2026-11-26).
    published_revision = "1f2883b22f62cfb29323770ba9cfdcf601757bd3"
    published_gb = 2.5
    unet_configs = SD15_CONFIGS / "x2_latent_upscaler"  # its k-diffusion UNet and Euler scheduler
    pipeline = "StableDiffusionLatentUpscalePipeline"
    scheduler = "EulerDiscreteScheduler"
    sampler = "Euler"
    prompt_needs_guidance = True

    def unet_step_count(self, params: dict[str, Any]) -> int:
        return int(params["steps"])

    @classmethod
    def cpu_work(
        cls, width: int, height: int, params: dict[str, Any], n_tiles: int, per_tile: float
    ) -> tuple[float, float, float]:
        steps = int(params.get("steps", LATENT_DEFAULT_STEPS))
        batch = cfg_batch(float(params.get("guidance", LATENT_DEFAULT_GUIDANCE)))
        unet = n_tiles * steps * CPU_UNET_STEP_SECONDS_512 * batch * LATENT_UNET_COST * per_tile / PIXELS_512
        encode = CPU_VAE_ENCODE_SECONDS_512 * (width * height) / PIXELS_512  # the input, at its own size
        return unet, encode, 0.0
