"""Diffusion engines: Stable Diffusion re-draws the enlarged picture with fresh detail.

``sd-img2img`` — "Stable Diffusion img2img (DreamShaper 8)"
    1. pre-enlarge 2x with Real-CUGAN (``pre_upscaler="realcugan"``, default) or Lanczos;
    2. the CLIP text encoder turns the prompt into a 77 x 768 embedding (and the negative
       prompt into a second one, for classifier-free guidance);
    3. the VAE encoder maps the enlarged picture to latents (3 x H x W -> 4 x H/8 x W/8);
    4. noise is added up to the timestep where ``strength`` starts (img2img);
    5. the UNet removes it in ``int(steps x strength)`` DPM++ 2M steps (at least one), with
       classifier-free guidance (two UNet passes per step, batched);
    6. the VAE decoder maps the latents back to pixels.

    Defaults: model ``Lykon/dreamshaper-8`` (``CNAPS_SD_MODEL``), strength 0.3, steps 25 (so
    7 UNet steps), guidance 6.0, prompt "anime illustration, clean line art, sharp details,
    high quality", negative prompt "blurry, lowres, jpeg artifacts, noise, watermark, text",
    seed 0, pre_upscaler realcugan. ``model`` may be a Hub id, a local diffusers folder or a
    single SD 1.5 ``.safetensors`` file (loaded offline with the configs in ``configs/sd15``).

``sd-latent-x2`` — "SD x2 latent upscaler" (``stabilityai/sd-x2-latent-upscaler``)
    The VAE encodes the picture; a k-diffusion UNet denoises pure noise at twice the latent
    size, conditioned on the (nearest-upsampled) low-resolution latents, in ``steps`` Euler
    steps (default 20); the VAE decodes. Guidance defaults to 0, the model's usual setting:
    no classifier-free guidance, and then the prompt is ignored (the pipeline encodes "").

Large pictures run tile by tile (``tiling.tiled_apply``): tiles of 1024 output pixels
(``--tile`` to change) that overlap by 128, each seen with 32 extra pixels of real neighbours
(cropped afterwards) and blended with linear feathering; each tile gets its own seed
(``seed + tile index``). Decodes above 1536 x 1536 (only with a larger ``--tile``) use VAE tiling. Inputs
above 2048 x 2048 are refused (ImageTooLargeError).

GPU first: CUDA in fp16 (SDPA attention, channels-last, fused QKV projections, TF32 for what
stays in fp32), Apple MPS in fp16, the VAE upcast to fp32 only if an fp16 decode overflows.
``CNAPS_TORCH_COMPILE=1`` compiles the UNet and VAE decoder (max-autotune, no CUDA graphs) and
warms them up once. Each pipeline is loaded once per (model, device, dtype) and kept resident
(loaded lazily, guarded by locks; one resident pipeline per engine). The CPU is used only when
asked for (``device="cpu"``, ``CNAPS_DEVICE=cpu``) or allowed (``CNAPS_ALLOW_CPU_DIFFUSION=1``):
see :func:`estimate_cpu_seconds` for why.

Nothing heavy is imported at module level: torch, diffusers and transformers load on first use.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

import numpy as np
from PIL import Image

from ...devices import available_cores, torch_device
from . import hub
from ...errors import (
    EngineUnavailableError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidParameterError,
)
from ...stages import ProgressFn, StageRecord, no_progress
from ...image import tile_spans, tiled_apply
from ..base import Availability, Credit, Engine, EngineOutput, ParamSpec, RunOptions

_log = logging.getLogger(__name__)

DEFAULT_PROMPT = "anime illustration, clean line art, sharp details, high quality"
DEFAULT_NEGATIVE_PROMPT = "blurry, lowres, jpeg artifacts, noise, watermark, text"
DEFAULT_STRENGTH = 0.3
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 6.0
LATENT_DEFAULT_STEPS = 20
LATENT_DEFAULT_GUIDANCE = 0.0
MAX_SEED = 2**32 - 1

DEFAULT_TILE = 1024  # output pixels; a 512 px input runs in one pass
TILE_OVERLAP = 128  # output pixels
TILE_CONTEXT = 32  # output pixels of real neighbours seen around each tile, then cropped
MIN_TILE = 128
MAX_INPUT_PIXELS = 2048 * 2048
MIN_INPUT_SIDE = 8
VAE_TILING_ABOVE = 1536 * 1536  # decoded pixels; a default 1024 tile (+ context) decodes whole
_PACKAGES = ("torch", "diffusers", "transformers", "safetensors", "huggingface_hub")

# --- CPU time model (used for the "needs a GPU" message and shown up front by the UI) ------
# Measured: full-size SD 1.5 UNet, one step with CFG (batch 2) at 512 x 512, 2 CPU cores: ~11 s.
CPU_REFERENCE_CORES = 2
CPU_UNET_STEP_SECONDS_512 = 11.0
CPU_VAE_ENCODE_SECONDS_512 = 4.0  # estimated from FLOPs relative to the UNet
CPU_VAE_DECODE_SECONDS_512 = 9.0
CPU_TEXT_ENCODER_SECONDS = 0.5
CPU_REALCUGAN_SECONDS_PER_MP = 15.0  # per input megapixel, pre-enlarge
LATENT_UNET_COST = 1.3  # the x2 latent upscaler's UNet relative to SD 1.5's, per latent pixel

_CREDITS_SD = (
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
    Credit("Hugging Face diffusers", "https://github.com/huggingface/diffusers", "Apache-2.0"),
)
_CREDITS_LATENT = (
    Credit(
        "SD x2 latent upscaler (Katherine Crowson, Stability AI)",
        "https://huggingface.co/stabilityai/sd-x2-latent-upscaler",
        "CreativeML Open RAIL++-M",
    ),
    Credit("Hugging Face diffusers", "https://github.com/huggingface/diffusers", "Apache-2.0"),
)


# --- planning helpers (no torch) ---------------------------------------------------------


def unet_steps(steps: int, strength: float) -> tuple[int, int]:
    """(scheduler steps, UNet steps) for img2img: UNet steps = int(steps x strength).

    When that is 0 (e.g. 2 steps at strength 0.3) the scheduler gets just enough steps for one
    UNet step at the same noise level (ceil(1/strength)), instead of failing.
    """
    total = max(1, int(steps))
    while int(total * strength) < 1:
        total += 1
    return total, min(int(total * strength), total)


def tiling_plan(tile: int) -> tuple[int, int]:
    """(tile, overlap) in output pixels: 0 means the default; tiles are multiples of 64."""
    if tile <= 0:
        tile = DEFAULT_TILE
    if tile < MIN_TILE:
        raise InvalidParameterError(
            f"tile={tile} is too small for the diffusion engines.",
            hint=f"Use tile >= {MIN_TILE}, or 0 for {DEFAULT_TILE}.",
        )
    tile = tile // 64 * 64
    return tile, min(TILE_OVERLAP, tile // 4)


def count_tiles(width: int, height: int, tile: int, overlap: int) -> int:
    if max(width, height) <= tile:
        return 1
    return len(tile_spans(height, tile, overlap)) * len(tile_spans(width, tile, overlap))


def _processed_pixels(width: int, height: int, tile: int, overlap: int) -> int:
    """Pixels the model actually processes, overlaps included."""
    if max(width, height) <= tile:
        return width * height
    ys, xs = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    return sum(y1 - y0 for y0, y1 in ys) * sum(x1 - x0 for x0, x1 in xs)


def _unet_cost(pixels: float) -> float:
    """UNet step cost relative to 512 x 512: linear in pixels plus self-attention's quadratic share."""
    ratio = pixels / (512 * 512)
    return ratio * (0.85 + 0.15 * ratio)


def estimate_cpu_seconds(
    width: int,
    height: int,
    params: dict[str, Any] | None = None,
    *,
    engine: str = "sd-img2img",
    cores: int | None = None,
    tile: int = 0,
) -> float:
    """Rough CPU seconds to upscale a ``width`` x ``height`` input 2x with a diffusion engine.

    Based on ~11 s per full-size SD 1.5 UNet step with CFG at 512 x 512 on 2 cores, scaled by
    the pixels each tile holds (attention grows faster than linearly) and by core count.
    """
    params = dict(params or {})
    cores = max(1, cores or available_cores())
    core_factor = (CPU_REFERENCE_CORES / cores) ** 0.85
    tile, overlap = tiling_plan(tile)
    out_w, out_h = 2 * width, 2 * height
    n_tiles = count_tiles(out_w, out_h, tile, overlap)
    per_tile = _processed_pixels(out_w, out_h, tile, overlap) / n_tiles
    if engine == "sd-latent-x2":
        steps = int(params.get("steps", LATENT_DEFAULT_STEPS))
        guidance = float(params.get("guidance", LATENT_DEFAULT_GUIDANCE))
        batch = 1.0 if guidance > 1 else 0.5
        unet = n_tiles * steps * CPU_UNET_STEP_SECONDS_512 * batch * LATENT_UNET_COST * per_tile / (512 * 512)
        encode = CPU_VAE_ENCODE_SECONDS_512 * (width * height) / (512 * 512)
        pre = 0.0
    else:
        _, k = unet_steps(int(params.get("steps", DEFAULT_STEPS)), float(params.get("strength", DEFAULT_STRENGTH)))
        batch = 1.0 if float(params.get("guidance", DEFAULT_GUIDANCE)) > 1 else 0.5
        unet = n_tiles * k * CPU_UNET_STEP_SECONDS_512 * batch * _unet_cost(per_tile)
        encode = CPU_VAE_ENCODE_SECONDS_512 * n_tiles * per_tile / (512 * 512)
        pre = 0.0
        if params.get("pre_upscaler", "realcugan") == "realcugan":
            pre = CPU_REALCUGAN_SECONDS_PER_MP * width * height / 1e6
    decode = CPU_VAE_DECODE_SECONDS_512 * n_tiles * per_tile / (512 * 512)
    return (unet + encode + decode + CPU_TEXT_ENCODER_SECONDS) * core_factor + pre


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


# --- resident pipelines -----------------------------------------------------------------------


@dataclass
class _Resident:
    """A loaded pipeline kept in memory, with what every job needs to know about it."""

    key: tuple[Any, ...]
    kind: str
    pipe: Any
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    lock: threading.Lock = field(default_factory=threading.Lock)
    embeddings: OrderedDict[tuple[Any, ...], Any] = field(default_factory=OrderedDict)
    compiled: bool = False
    warmed: bool = False

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.pipe.vae.config.block_out_channels) - 1)

    @property
    def unet_down(self) -> int:
        return 2 ** (len(self.pipe.unet.config.block_out_channels) - 1)


_RESIDENT: dict[tuple[Any, ...], _Resident] = {}
_RESIDENT_LOCK = threading.Lock()


def release_pipelines() -> None:
    """Drop every resident pipeline (frees GPU memory)."""
    with _RESIDENT_LOCK:
        _RESIDENT.clear()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _dtype_for(device: Any) -> Any:
    import torch

    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def _get_resident(kind: str, model_ref: str, device: Any, options: RunOptions) -> _Resident:
    path = hub.resolve_model(model_ref, kind=kind, cache_dir=options.hub_cache)  # no network; raises with the fix
    dtype = _dtype_for(device)
    compile_ = bool(options.torch_compile and device.type == "cuda")
    key = (kind, str(path), str(device), str(dtype), compile_)
    with _RESIDENT_LOCK:
        resident = _RESIDENT.get(key)
        if resident is None:
            for other in [k for k in _RESIDENT if k[0] == kind]:  # one resident pipeline per engine
                del _RESIDENT[other]
            if device.type == "cuda":
                import torch

                torch.cuda.empty_cache()
            resident = _load(kind, path, device, dtype, compile_, key, options.hub_cache)
            _RESIDENT[key] = resident
    return resident


def _dtype_kwarg() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); use what is there."""
    try:
        from diffusers.utils.deprecation_utils import _TORCH_DTYPE_DEPRECATION_MESSAGE  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


# DPM++ 2M whatever the model ships (DEIS, PNDM, Euler...): betas and prediction type stay the model's.
_DPM_OVERRIDES = {"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint"}


def _load(
    kind: str, path: Any, device: Any, dtype: Any, compile_: bool, key: tuple[Any, ...], hub_cache: Any
) -> _Resident:
    import torch
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionLatentUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    if path.is_file():  # single-file SD 1.5 checkpoint, offline, with our configs
        tokenizer = CLIPTokenizer.from_pretrained(str(hub.find_tokenizer(path, cache_dir=hub_cache)))
        pipe = StableDiffusionImg2ImgPipeline.from_single_file(
            str(path),
            config=str(hub.CONFIG_DIR),
            tokenizer=tokenizer,
            local_files_only=True,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            **{_dtype_kwarg(): dtype},
        )
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, **_DPM_OVERRIDES)
    else:
        variants = hub.inspect_folder(path).variants

        def diffusers_part(cls: Any, name: str) -> Any:
            return cls.from_pretrained(
                path,
                subfolder=name,
                use_safetensors=True,
                variant=variants.get(name),
                local_files_only=True,
                **{_dtype_kwarg(): dtype},
            )

        unet = diffusers_part(UNet2DConditionModel, "unet")
        vae = diffusers_part(AutoencoderKL, "vae")
        text_encoder = CLIPTextModel.from_pretrained(
            path,
            subfolder="text_encoder",
            dtype=dtype,
            use_safetensors=True,
            variant=variants.get("text_encoder"),
            local_files_only=True,
        )
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
        if kind == "sd-img2img":
            config = DPMSolverMultistepScheduler.load_config(path, subfolder="scheduler")
            scheduler = DPMSolverMultistepScheduler.from_config(config, **_DPM_OVERRIDES)
            pipe = StableDiffusionImg2ImgPipeline(
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=tokenizer,
                unet=unet,
                scheduler=scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        else:
            scheduler = EulerDiscreteScheduler.from_pretrained(path, subfolder="scheduler")
            pipe = StableDiffusionLatentUpscalePipeline(
                vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
            )
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        try:
            pipe.fuse_qkv_projections()  # one QKV matmul per attention (SDPA processor, fused)
        except (AttributeError, NotImplementedError, RuntimeError, ValueError) as error:
            _log.info("fuse_qkv_projections skipped for %s: %s", kind, error)
    resident = _Resident(key=key, kind=kind, pipe=pipe, device=device, dtype=dtype)
    if compile_:
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs")
        pipe.vae.decoder = torch.compile(pipe.vae.decoder, mode="max-autotune-no-cudagraphs")
        resident.compiled = True
    return resident


# --- one job ----------------------------------------------------------------------------------


class _StageSums:
    """Stage records summed over tiles, in first-seen order."""

    def __init__(self) -> None:
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def add(
        self, name: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...], seconds: float, **detail: Any
    ) -> None:
        item = self.items.get(name)
        if item is None:
            self.items[name] = {"in": in_shape, "out": out_shape, "seconds": seconds, "detail": detail, "count": 1}
        else:
            item["seconds"] += seconds
            item["count"] += 1

    def records(self, **common: Any) -> list[StageRecord]:
        out = []
        for name, item in self.items.items():
            detail = dict(item["detail"])
            if item["count"] > 1:
                detail["tiles"] = item["count"]
                detail.update(common)
            out.append(StageRecord(name, tuple(item["in"]), tuple(item["out"]), item["seconds"], detail))
        return out


class _Job:
    """Shared machinery of one diffusion job: timing, progress, seeds, VAE, padding."""

    def __init__(
        self, resident: _Resident, params: dict[str, Any], progress: ProgressFn, k_steps: int, n_tiles: int
    ) -> None:
        import torch

        self.torch = torch
        self.resident = resident
        self.pipe = resident.pipe
        self.device = resident.device
        self.params = params
        self.progress = progress
        self.k_steps = k_steps
        self.n_tiles = n_tiles
        self.total = k_steps * n_tiles
        self.done = 0
        self.tile_index = 0
        self.sums = _StageSums()
        self.embeds: tuple[Any, ...] = ()

    # timing ---------------------------------------------------------------------
    def clock(self) -> float:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            self.torch.mps.synchronize()
        return time.perf_counter()

    def generator(self) -> Any:
        gen_device = self.device if self.device.type == "cuda" else "cpu"  # MPS: CPU generator, portable
        return self.torch.Generator(device=gen_device).manual_seed(int(self.params["seed"]) + self.tile_index)

    def step_done(self, i: int) -> None:
        self.done += 1
        text = f"denoising step {i + 1}/{self.k_steps}"
        if self.n_tiles > 1:
            text += f", tile {self.tile_index + 1}/{self.n_tiles}"
        self.progress(self.done, self.total, text)  # may raise JobCancelledError: stops within one step

    # prompt -----------------------------------------------------------------------
    def cached_embeddings(
        self, key: tuple[Any, ...], compute: Callable[[], tuple[Any, ...]]
    ) -> tuple[tuple[Any, ...], bool]:
        cache = self.resident.embeddings
        if key in cache:
            cache.move_to_end(key)
            return cache[key], True
        value = compute()
        cache[key] = value
        while len(cache) > 8:
            cache.popitem(last=False)
        return value, False

    # pixels <-> latents ------------------------------------------------------------------
    def pad(self, x: Any, multiple: int, minimum: int = 0) -> tuple[Any, int, int]:
        """Pad right/bottom (reflect) to a multiple of ``multiple`` and at least ``minimum``."""
        height, width = x.shape[-2:]
        pad_h = max((-height) % multiple, minimum - height)
        pad_w = max((-width) % multiple, minimum - width)
        pad_h += (-(height + pad_h)) % multiple
        pad_w += (-(width + pad_w)) % multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = self.torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return x, height, width

    def vae_encode(self, x01: Any, generator: Any, size: tuple[int, int] | None = None) -> Any:
        """(1,3,H,W) in [0,1] -> scaled latents (1,4,H/8,W/8), sampled with ``generator``.

        ``size`` is the (height, width) before padding, noted in the stage detail when it differs.
        """
        vae = self.pipe.vae
        started = self.clock()
        x = (x01 * 2 - 1).to(dtype=vae.dtype)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=self.torch.channels_last)
        latents = vae.encode(x).latent_dist.sample(generator=generator)
        if not bool(self.torch.isfinite(latents).all()) and vae.dtype != self.torch.float32:
            vae.to(dtype=self.torch.float32)  # fp16 overflow: upcast the VAE for good
            latents = vae.encode(x.float()).latent_dist.sample(generator=generator)
        latents = latents * vae.config.scaling_factor
        extra = {"padded_from": size} if size and tuple(size) != tuple(x.shape[-2:]) else {}
        self.sums.add(
            "VAE encoder",
            tuple(x.shape[1:]),
            tuple(latents.shape[1:]),
            self.clock() - started,
            dtype=str(vae.dtype).replace("torch.", ""),
            **extra,
        )
        return latents

    def vae_decode(self, latents: Any) -> Any:
        """Scaled latents -> (1,3,H,W) in [0,1], float32; VAE tiling for big decodes."""
        torch = self.torch
        vae = self.pipe.vae
        started = self.clock()
        z = latents / vae.config.scaling_factor
        pixels = z.shape[-1] * z.shape[-2] * self.resident.vae_scale**2
        tiled = pixels > VAE_TILING_ABOVE
        upcast = False
        if tiled:
            vae.enable_tiling()
        try:
            image = vae.decode(z.to(vae.dtype), return_dict=False)[0]
            if not bool(torch.isfinite(image).all()) and vae.dtype != torch.float32:
                vae.to(dtype=torch.float32)  # the fp16 decode overflowed: upcast the VAE for good
                image = vae.decode(z.float(), return_dict=False)[0]
                upcast = True
        finally:
            if tiled:
                vae.disable_tiling()
        image = ((image.float() + 1) / 2).clamp(0, 1)
        self.sums.add(
            "VAE decoder",
            tuple(z.shape[1:]),
            tuple(image.shape[1:]),
            self.clock() - started,
            dtype=str(vae.dtype).replace("torch.", ""),
            vae_tiling=tiled,
            upcast_fp32=upcast,
        )
        return image

    def first_unet_hook(self) -> tuple[Any, dict[str, Any]]:
        """A pre-forward hook on the UNet that notes when (and at which timestep) it first runs."""
        seen: dict[str, Any] = {}

        def hook(module: Any, args: tuple[Any, ...]) -> None:
            if "time" not in seen:
                seen["time"] = self.clock()
                if len(args) > 1:
                    seen["timestep"] = round(
                        float(args[1].flatten()[0]) if hasattr(args[1], "flatten") else float(args[1]), 4
                    )

        return self.pipe.unet.register_forward_pre_hook(hook), seen

    # whole pictures and tiles ------------------------------------------------------------
    def run_tensor(self, x01: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def run_array(self, piece: np.ndarray) -> np.ndarray:
        """tiled_apply's tile function: HxWx3 float32 [0,1] -> upscaled HxWx3 float32 [0,1]."""
        x = self.torch.from_numpy(np.ascontiguousarray(piece.transpose(2, 0, 1)))[None].to(self.device)
        y = self.run_tensor(x)
        self.tile_index += 1
        return y[0].permute(1, 2, 0).float().cpu().numpy()

    def run_image(self, image: Image.Image) -> Image.Image:
        """One pass over a whole picture, with the conversions on the device."""
        array = np.array(image.convert("RGB"))  # a writable copy for torch
        x = self.torch.from_numpy(array).to(self.device).permute(2, 0, 1)[None].float() / 255
        y = self.run_tensor(x)
        self.tile_index += 1
        out = (y[0] * 255).round().clamp(0, 255).to(self.torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(out, "RGB")


class _Img2ImgJob(_Job):
    def __init__(self, resident: _Resident, params: dict[str, Any], progress: ProgressFn, n_tiles: int) -> None:
        self.scheduler_steps, k = unet_steps(params["steps"], params["strength"])
        super().__init__(resident, params, progress, k, n_tiles)
        self.cfg = params["guidance"] > 1
        self.multiple = resident.vae_scale * resident.unet_down

    def encode_prompt(self) -> None:
        pipe, params = self.pipe, self.params
        started = self.clock()
        key = ("img2img", params["prompt"], params["negative_prompt"] if self.cfg else None)

        def compute() -> tuple[Any, ...]:
            return pipe.encode_prompt(
                params["prompt"], self.device, 1, self.cfg, params["negative_prompt"] if self.cfg else None
            )

        self.embeds, cached = self.cached_embeddings(key, compute)
        tokens = int(pipe.tokenizer.model_max_length)
        self.sums.add(
            "text encoder",
            (tokens,),
            tuple(self.embeds[0].shape[1:]),
            self.clock() - started,
            prompt=params["prompt"],
            negative_prompt=params["negative_prompt"] if self.cfg else None,
            passes=2 if self.cfg else 1,
            cached=cached,
        )

    def run_tensor(self, x01: Any) -> Any:
        pipe, params = self.pipe, self.params
        x, height, width = self.pad(x01, self.multiple)
        generator = self.generator()
        latents = self.vae_encode(x, generator, (height, width))
        handle, seen = self.first_unet_hook()
        started = self.clock()

        def on_step_end(pipeline: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            self.step_done(i)
            return {}

        try:
            out = pipe(
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
            )[0]
        finally:
            handle.remove()
        ended = self.clock()
        unet_started = seen.get("time", ended)
        shape = tuple(latents.shape[1:])
        scheduler = type(pipe.scheduler).__name__
        self.sums.add(
            "add noise",
            shape,
            shape,
            unet_started - started,
            strength=params["strength"],
            start_step=self.scheduler_steps - self.k_steps,
            scheduler_steps=self.scheduler_steps,
            timestep=seen.get("timestep"),
            scheduler=scheduler,
        )
        self.sums.add(
            f"UNet x{self.k_steps}" + (" with CFG" if self.cfg else ""),
            shape,
            tuple(out.shape[1:]),
            ended - unet_started,
            steps=self.k_steps,
            scheduler_steps=self.scheduler_steps,
            strength=params["strength"],
            guidance=params["guidance"],
            cfg=self.cfg,
            scheduler=scheduler,
            prompt=params["prompt"],
            compiled=self.resident.compiled,
        )
        image = self.vae_decode(out)
        return image[..., :height, :width]


class _LatentJob(_Job):
    def __init__(self, resident: _Resident, params: dict[str, Any], progress: ProgressFn, n_tiles: int) -> None:
        super().__init__(resident, params, progress, int(params["steps"]), n_tiles)
        self.cfg = params["guidance"] > 1
        # The UNet works at twice the input latent size: the input must fit half its stride, and
        # its coarsest level must stay at least 2 latents wide (its upsamplers reflect-pad).
        self.multiple = max(1, resident.vae_scale * resident.unet_down // 2)
        self.minimum = resident.vae_scale * resident.unet_down

    def encode_prompt(self) -> None:
        pipe, params = self.pipe, self.params
        started = self.clock()
        # At guidance 0 the pipeline ignores the prompt and encodes "" instead; so do we.
        prompt = "" if params["guidance"] == 0 else params["prompt"]
        negative = params["negative_prompt"] if self.cfg else None
        key = ("latent", prompt, negative)

        def compute() -> tuple[Any, ...]:
            return pipe.encode_prompt(prompt, self.device, self.cfg, negative)

        self.embeds, cached = self.cached_embeddings(key, compute)
        tokens = int(pipe.tokenizer.model_max_length)
        self.sums.add(
            "text encoder",
            (tokens,),
            tuple(self.embeds[0].shape[1:]),
            self.clock() - started,
            prompt=prompt,
            negative_prompt=negative,
            pooled=tuple(self.embeds[2].shape[1:]),
            passes=2 if self.cfg else 1,
            cached=cached,
            prompt_ignored=params["guidance"] == 0,
        )

    def run_tensor(self, x01: Any) -> Any:
        pipe, params = self.pipe, self.params
        x, height, width = self.pad(x01, self.multiple, self.minimum)
        generator = self.generator()
        latents = self.vae_encode(x, generator, (height, width))
        prompt_embeds, negative_embeds, pooled, negative_pooled = self.embeds
        handle, seen = self.first_unet_hook()
        started = self.clock()

        def on_step(i: int, t: Any, latents_now: Any) -> None:
            self.step_done(i)

        try:
            out = pipe(
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_embeds if self.cfg else None,
                pooled_prompt_embeds=pooled,
                negative_pooled_prompt_embeds=negative_pooled if self.cfg else None,
                image=latents.to(self.resident.dtype),
                num_inference_steps=self.k_steps,
                guidance_scale=params["guidance"],
                generator=generator,
                output_type="latent",
                return_dict=False,
                callback=on_step,
                callback_steps=1,
            )[0]
        finally:
            handle.remove()
        ended = self.clock()
        unet_started = seen.get("time", ended)
        scheduler = type(pipe.scheduler).__name__
        out_shape = tuple(out.shape[1:])
        self.sums.add(
            "noise",
            out_shape,
            out_shape,
            unet_started - started,
            start="pure noise at sigma_max",
            scheduler=scheduler,
            steps=self.k_steps,
            condition=f"low-res latents {tuple(latents.shape[1:])} upsampled x2 (nearest)",
        )
        unet_in = (out_shape[0] + latents.shape[1], *out_shape[1:])
        self.sums.add(
            f"UNet x{self.k_steps}" + (" with CFG" if self.cfg else ""),
            unet_in,
            out_shape,
            ended - unet_started,
            steps=self.k_steps,
            guidance=params["guidance"],
            cfg=self.cfg,
            scheduler=scheduler,
            prompt=params["prompt"] if params["guidance"] != 0 else "",
            compiled=self.resident.compiled,
        )
        image = self.vae_decode(out)
        return image[..., : 2 * height, : 2 * width]


# --- the engines ------------------------------------------------------------------------------


class _DiffusionEngine(Engine):
    family = "diffusion"
    scales = (2,)
    default_scale = 2
    device_need = "gpu"
    job_class: type[_Job] = _Job
    steps_text = ""

    # availability ---------------------------------------------------------------------
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
        eta = _minutes(estimate_cpu_seconds(512, 512, None, engine=self.id))
        return (
            f"{self.display_name} needs a CUDA or Apple GPU; to run slowly on the CPU (about {eta} for a 512 px "
            f"image at {self.steps_text}) pass --device cpu or set CNAPS_ALLOW_CPU_DIFFUSION=1."
        )

    # running ------------------------------------------------------------------------
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

    def make_job(self, resident: _Resident, params: dict[str, Any], progress: ProgressFn, n_tiles: int) -> _Job:
        return self.job_class(resident, params, progress, n_tiles)  # type: ignore[call-arg]

    def warm_up(self, resident: _Resident, params: dict[str, Any], tile: int) -> None:
        """With torch.compile: one untimed job at the default tile size, so users never wait for it."""
        if resident.warmed or not resident.compiled:
            return
        size = tile if self.id == "sd-img2img" else tile // 2
        job = self.make_job(
            resident,
            {**params, "steps": 4, "strength": 0.5} if self.id == "sd-img2img" else {**params, "steps": 2},
            no_progress,
            1,
        )
        job.encode_prompt()
        job.run_image(Image.new("RGB", (size, size), (128, 128, 128)))
        resident.warmed = True


class SDImg2ImgEngine(_DiffusionEngine):
    id = "sd-img2img"
    display_name = "Stable Diffusion img2img (DreamShaper 8)"
    summary = (
        "Enlarges 2x, then Stable Diffusion adds a little noise and removes it guided by a prompt, "
        "re-drawing crisp lines and detail."
    )
    credits = _CREDITS_SD
    job_class = _Img2ImgJob
    steps_text = f"{DEFAULT_STEPS} steps x {DEFAULT_STRENGTH} strength"

    def __init__(self, pre_upscalers: dict[str, Engine]) -> None:
        # The engines that may do the first 2x (passed in by the registry, never looked up here).
        self.pre_upscalers = dict(pre_upscalers)

    params = (
            ParamSpec(
                "model",
                "str",
                hub.PUBLISHED_MODELS["sd-img2img"],
                f"Hub id (default {hub.PUBLISHED_MODELS['sd-img2img']}, or CNAPS_SD_MODEL), a local diffusers "
                "folder, or a single SD 1.5 .safetensors file.",
                setting="sd_model",
            ),
            ParamSpec(
                "strength",
                "float",
                DEFAULT_STRENGTH,
                "How much to re-draw (default 0.3: keeps the drawing, sharpens detail). "
                "UNet steps = int(steps x strength), at least 1.",
                minimum=0.05,
                maximum=1.0,
            ),
            ParamSpec(
                "steps",
                "int",
                DEFAULT_STEPS,
                "DPM++ 2M scheduler steps (default 25); only steps x strength of them run (25 x 0.3 = 7).",
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
            ParamSpec(
                "prompt", "str", DEFAULT_PROMPT, f"What the picture should look like (default: {DEFAULT_PROMPT})."
            ),
            ParamSpec(
                "negative_prompt",
                "str",
                DEFAULT_NEGATIVE_PROMPT,
                f"What to steer away from (default: {DEFAULT_NEGATIVE_PROMPT}).",
            ),
            ParamSpec(
                "seed", "int", 0, "Random seed (default 0): same seed, same picture.", minimum=0, maximum=MAX_SEED
            ),
            ParamSpec(
                "pre_upscaler",
                "choice",
                "realcugan",
                "First 2x enlargement before diffusion (default realcugan; lanczos is faster and softer).",
                choices=("realcugan", "lanczos"),
            ),
    )

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        width, height = image.size
        device = torch_device(options.device, options.cpu_threads)
        tile, overlap = tiling_plan(options.tile)
        out_w, out_h = width * scale, height * scale
        n_tiles = count_tiles(out_w, out_h, tile, overlap)
        _, k = unet_steps(params["steps"], params["strength"])
        total = k * n_tiles
        options.progress(0, total, "loading Stable Diffusion")
        resident = _get_resident(self.id, params["model"], device, options)
        enlarged, pre_record = _pre_enlarge(image, self.pre_upscalers[params["pre_upscaler"]], options, total)
        import torch

        with resident.lock, torch.inference_mode():
            self.warm_up(resident, params, tile)
            job = self.make_job(resident, params, options.progress, n_tiles)
            job.encode_prompt()
            if n_tiles == 1:
                result = job.run_image(enlarged)
            else:
                array = np.asarray(enlarged, dtype=np.float32) / 255.0
                blended = tiled_apply(array, job.run_array, scale=1, tile=tile, overlap=overlap, context=TILE_CONTEXT)
                result = Image.fromarray((np.clip(blended, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
        common = {"tile": tile, "overlap": overlap, "context": TILE_CONTEXT}
        return EngineOutput(result, [pre_record, *job.sums.records(**common)])


class SDLatentX2Engine(_DiffusionEngine):
    id = "sd-latent-x2"
    display_name = "SD x2 latent upscaler"
    summary = (
        "Encodes the picture into Stable Diffusion's latent space and lets a diffusion model "
        "draw a latent twice the size, then decodes it."
    )
    credits = _CREDITS_LATENT
    job_class = _LatentJob
    steps_text = f"{LATENT_DEFAULT_STEPS} steps"

    params = (
            ParamSpec(
                "model",
                "str",
                hub.DEFAULT_LATENT_UPSCALER,
                f"Hub id (default {hub.DEFAULT_LATENT_UPSCALER}) or a local diffusers folder.",
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
            ParamSpec(
                "negative_prompt", "str", "", "Negative prompt (default empty); used only with guidance above 1."
            ),
            ParamSpec(
                "seed", "int", 0, "Random seed (default 0): same seed, same picture.", minimum=0, maximum=MAX_SEED
            ),
    )

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        width, height = image.size
        device = torch_device(options.device, options.cpu_threads)
        tile, overlap = tiling_plan(options.tile)
        in_tile, in_overlap = tile // 2, overlap // 2
        n_tiles = count_tiles(width, height, in_tile, in_overlap)
        total = int(params["steps"]) * n_tiles
        options.progress(0, total, "loading the latent upscaler")
        resident = _get_resident(self.id, params["model"], device, options)
        import torch

        with resident.lock, torch.inference_mode():
            self.warm_up(resident, params, tile)
            job = self.make_job(resident, params, options.progress, n_tiles)
            job.encode_prompt()
            rgb = image.convert("RGB")
            if n_tiles == 1:
                result = job.run_image(rgb)
            else:
                array = np.asarray(rgb, dtype=np.float32) / 255.0
                blended = tiled_apply(
                    array, job.run_array, scale=2, tile=in_tile, overlap=in_overlap, context=TILE_CONTEXT // 2
                )
                result = Image.fromarray((np.clip(blended, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
        common = {"tile": tile, "overlap": overlap, "context": TILE_CONTEXT}
        return EngineOutput(result, job.sums.records(**common))


def _pre_enlarge(image: Image.Image, engine: Engine, options: RunOptions, total: int) -> tuple[Image.Image, StageRecord]:
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

