"""Diffusion engines: Stable Diffusion re-draws the enlarged picture with fresh detail.

``sd-img2img`` — "Stable Diffusion img2img (DreamShaper 8)"
    1. pre-enlarge 2x with Real-CUGAN (``pre_upscaler=realcugan``, default) or Lanczos;
    2. the CLIP text encoder turns the prompt into a 77 x 768 embedding (and the negative
       prompt into a second one, for classifier-free guidance);
    3. the VAE encoder maps the enlarged picture to latents (3 x H x W -> 4 x H/8 x W/8);
    4. noise is added up to the timestep where ``strength`` starts (img2img);
    5. the UNet removes it in ``int(steps x strength)`` DPM++ 2M steps (at least one), with
       classifier-free guidance (two UNet passes per step, batched), and beside it the tile
       ControlNet reads the pre-enlarged picture and adds its features to the UNet's skip
       connections, holding composition and colours in place;
    6. the VAE decoder maps the latents back to pixels.

    Defaults: model ``Lykon/dreamshaper-8`` (``CNAPS_SD_MODEL``), strength 0.4, steps 25 (so
    10 UNet steps), guidance 6.0, prompt "anime illustration, clean line art, sharp details,
    high quality" (no objects: they would be painted into tiles), negative prompt "blurry,
    lowres, jpeg artifacts, noise, watermark, text", seed 0, pre_upscaler realcugan,
    controlnet ``lllyasviel/control_v11f1e_sd15_tile`` (``CNAPS_SD_CONTROLNET``; ``none``:
    plain img2img) at controlnet_scale 1.0. ``model`` may be a Hub id, a local diffusers folder
    or a single SD 1.5 ``.safetensors`` file (loaded offline with the configs in ``configs/sd15``).

``sd-latent-x2`` — "SD x2 latent upscaler" (``stabilityai/sd-x2-latent-upscaler``)
    The VAE encodes the picture; a k-diffusion UNet denoises pure noise at twice the latent
    size, conditioned on the (nearest-upsampled) low-resolution latents, in ``steps`` Euler
    steps (default 20); the VAE decodes. Guidance defaults to 0, the model's usual setting:
    no classifier-free guidance, and then the prompt is ignored (the pipeline encodes "").

Large pictures run tile by tile (``image.tiled_apply``): tiles of 1024 output pixels
(``--tile`` to change) that overlap by 128, each seen with 32 extra pixels of real neighbours
(cropped afterwards) and blended with linear feathering; each tile gets its own seed
(``seed + tile index``). Decodes above 1536 x 1536 (only with a larger ``--tile``) use VAE
tiling. Inputs above 2048 x 2048 are refused (ImageTooLargeError).

GPU first: CUDA in fp16 (SDPA attention, channels-last, fused QKV projections, TF32 for what
stays in fp32), Apple MPS in fp16, the VAE upcast to fp32 only if an fp16 decode overflows.
``CNAPS_TORCH_COMPILE=1`` compiles the UNet and VAE decoder (max-autotune, no CUDA graphs) and
warms them up once. Each pipeline is loaded once per (model, device, dtype) and kept resident
(loaded lazily, guarded by locks; one resident pipeline per engine). The CPU is used only when
asked for (``device="cpu"``, ``CNAPS_DEVICE=cpu``) or allowed (``CNAPS_ALLOW_CPU_DIFFUSION=1``):
see :func:`estimate_cpu_seconds` for why.

Every result carries the AUTOMATIC1111 ``parameters`` PNG text (``a1111``). With a frame
callback (``RunOptions.frames``) each UNet step also yields a :class:`Frame` of the model's
clean estimate (``filmstrip``); ``explore`` runs strength sweeps and seed disagreement maps;
``provision`` fetches missing weights for a web visitor where the operator allows it, and
``cost.spaces_duration`` sizes a ZeroGPU ``@spaces.GPU`` call.

Nothing heavy is imported at module level: torch, diffusers and transformers load on first use.

Each engine describes itself (``descriptor.DiffusionTraits``: its published model, pinned
revision and download size, the weights a download fetches, pipeline and scheduler classes,
A1111 sampler name, CPU time model) and the helpers take the engine and read that, never an
engine id: a third diffusion engine is one module with its class plus its line in the registry
(``cnaps_demo/engines/__init__.py``).

Modules, one job each: ``descriptor`` (what an engine declares),
``cost`` (planning and the CPU time model, no torch), ``pipelines``
(assembling, loading and keeping pipelines resident), ``job`` (one job's shared machinery),
``engine`` (the engines' shared base and ``run()``), ``img2img`` and ``latent_x2`` (what each
engine adds), ``controlnet`` (the tile ControlNet's weights on disk), ``hub`` (weights on disk),
``download`` (fetching them), ``provision`` (who may fetch what), ``filmstrip``, ``explore``
and ``a1111``.
"""

from .cost import estimate_cpu_seconds, estimate_gpu_seconds, spaces_duration, tiling_plan, unet_steps
from .descriptor import DiffusionTraits
from .explore import SeedSpread, SweepFrame, seed_disagreement, strength_sweep
from .filmstrip import Frame, FrameFn, filmstrip_bytes, save_filmstrip, write_frames
from .img2img import SDImg2ImgEngine
from .latent_x2 import SDLatentX2Engine
from .pipelines import assemble_pipeline, dtype_kwarg, release_pipelines
from .provision import allowed_downloads, ensure_weights, may_download, missing_weights

__all__ = [
    "DiffusionTraits",
    "Frame",
    "FrameFn",
    "SDImg2ImgEngine",
    "SDLatentX2Engine",
    "SeedSpread",
    "SweepFrame",
    "allowed_downloads",
    "assemble_pipeline",
    "dtype_kwarg",
    "ensure_weights",
    "estimate_cpu_seconds",
    "estimate_gpu_seconds",
    "filmstrip_bytes",
    "may_download",
    "missing_weights",
    "release_pipelines",
    "save_filmstrip",
    "seed_disagreement",
    "spaces_duration",
    "strength_sweep",
    "tiling_plan",
    "unet_steps",
    "write_frames",
]
