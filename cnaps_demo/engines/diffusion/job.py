"""One diffusion job, shared by both engines: timing, seeds, progress, prompt, VAE, tiles, stage sums.

A job runs on a resident pipeline (its lock held, under ``torch.inference_mode``) and sums
one stage record per stage over all its tiles. The engines' jobs (``img2img.Img2ImgJob``,
``latent_x2.LatentJob``) supply only what differs: how many UNet steps, how the prompt is
encoded, the denoising call and its stage records.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ...stages import ProgressFn, StageRecord
from .filmstrip import Filmstrip, scheduler_estimate, step_sigma
from .pipelines import Resident

VAE_TILING_ABOVE = 1536 * 1536  # decoded pixels; a default 1024 tile (+ context) decodes whole
EMBEDDINGS_KEPT = 8  # prompt embeddings cached per resident pipeline


class StageSums:
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
        """One record per stage; a stage run on several tiles notes ``tiles`` and ``common``."""
        out = []
        for name, item in self.items.items():
            detail = dict(item["detail"])
            if item["count"] > 1:
                detail["tiles"] = item["count"]
                detail.update(common)
            out.append(StageRecord(name, tuple(item["in"]), tuple(item["out"]), item["seconds"], detail))
        return out


def tensor_to_uint8(values: Any) -> Any:
    """``image.to_uint8``'s rule on a torch tensor, on its device: floor(v * 255 + 0.5), clamped; NaN -> 0."""
    import torch

    scaled = (values * 255 + 0.5).clamp(0, 255)
    return torch.nan_to_num(scaled, nan=0.0).floor().to(torch.uint8)


class Job:
    """Shared machinery of one diffusion job. Subclasses set ``model_scale``, ``multiple`` and
    ``minimum`` and supply the prompt encoding and the denoising (see the abstract methods)."""

    model_scale = 1  # output pixels per input pixel of the denoising model (the latent upscaler: 2)

    def __init__(
        self, resident: Resident, params: dict[str, Any], progress: ProgressFn, k_steps: int, n_tiles: int
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
        self.sums = StageSums()
        self.embeds: tuple[Any, ...] = ()
        self.cfg = params["guidance"] > 1  # classifier-free guidance: two UNet passes per step
        self.multiple = resident.vae_scale * resident.unet_down  # input sides are padded to this
        self.minimum = 0  # ... and to at least this
        self.filmstrip: Filmstrip | None = None  # set by the engine when frames are asked for
        self.condition: Any = None  # the padded (1,3,H,W) input of the current tile (ControlNet's condition)

    # what each engine supplies --------------------------------------------------------------
    def prompt_key(self) -> tuple[Any, ...]:  # pragma: no cover - overridden
        """What the prompt embeddings depend on (the cache key)."""
        raise NotImplementedError

    def compute_embeddings(self) -> tuple[Any, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def prompt_detail(self, cached: bool) -> dict[str, Any]:  # pragma: no cover - overridden
        """The text encoder's stage detail."""
        raise NotImplementedError

    def denoise(self, latents: Any, generator: Any) -> Any:  # pragma: no cover - overridden
        """Scaled latents -> denoised latents (the pipeline call, ``step_done`` after each step)."""
        raise NotImplementedError

    def record_denoising(
        self, latents: Any, out: Any, before_unet: float, unet: float, timestep: float | None
    ) -> None:  # pragma: no cover - overridden
        """Stage records for one denoising: seconds before the first UNet pass, and of the UNet."""
        raise NotImplementedError

    # timing, seeds, progress -----------------------------------------------------------------
    def clock(self) -> float:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            self.torch.mps.synchronize()
        return time.perf_counter()

    def generator(self) -> Any:
        """This tile's generator: seed + tile index."""
        gen_device = self.device if self.device.type == "cuda" else "cpu"  # MPS: CPU generator, portable
        return self.torch.Generator(device=gen_device).manual_seed(int(self.params["seed"]) + self.tile_index)

    def step_done(self, i: int) -> None:
        self.done += 1
        text = f"denoising step {i + 1}/{self.k_steps}"
        if self.n_tiles > 1:
            text += f", tile {self.tile_index + 1}/{self.n_tiles}"
        self.progress(self.done, self.total, text)  # may raise JobCancelledError: stops within one step

    def unet_stage_name(self) -> str:
        return f"UNet x{self.k_steps}" + (" with CFG" if self.cfg else "")

    # prompt -------------------------------------------------------------------------------------
    def encode_prompt(self) -> None:
        """Prompt embeddings into ``self.embeds`` (cached per resident pipeline), and their record."""
        started = self.clock()
        self.embeds, cached = self._cached_embeddings(self.prompt_key(), self.compute_embeddings)
        tokens = int(self.pipe.tokenizer.model_max_length)
        self.sums.add(
            "text encoder",
            (tokens,),
            tuple(self.embeds[0].shape[1:]),
            self.clock() - started,
            **self.prompt_detail(cached),
        )

    def _cached_embeddings(
        self, key: tuple[Any, ...], compute: Callable[[], tuple[Any, ...]]
    ) -> tuple[tuple[Any, ...], bool]:
        cache = self.resident.embeddings
        if key in cache:
            cache.move_to_end(key)
            return cache[key], True
        value = compute()
        cache[key] = value
        while len(cache) > EMBEDDINGS_KEPT:
            cache.popitem(last=False)
        return value, False

    # pixels <-> latents --------------------------------------------------------------------------
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

    def _first_unet_hook(self) -> tuple[Any, dict[str, Any]]:
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

    def _watch_scheduler(self, size: tuple[int, int]) -> Callable[[], None]:
        """Wrap this pipeline's ``scheduler.step`` so each step hands its clean estimate to the
        filmstrip; returns the undo. Only with a filmstrip: without one nothing is wrapped."""
        filmstrip, scheduler = self.filmstrip, self.pipe.scheduler
        if filmstrip is None:
            return lambda: None
        original, counter = scheduler.step, [0]
        factor = self.resident.vae_scale

        def step(model_output: Any, timestep: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(model_output, timestep, sample, *args, **kwargs)
            estimate = scheduler_estimate(scheduler, out)
            filmstrip.step(self.tile_index, counter[0], float(timestep), step_sigma(scheduler), estimate, size, factor)
            counter[0] += 1
            return out

        scheduler.step = step  # an instance attribute, shadowing the method until the undo

        def undo() -> None:
            scheduler.__dict__.pop("step", None)

        return undo

    # whole pictures and tiles ---------------------------------------------------------------------
    def run_tensor(self, x01: Any) -> Any:
        """(1,3,H,W) in [0,1] on the device -> (1,3,H x model_scale,W x model_scale) in [0,1]."""
        x, height, width = self.pad(x01, self.multiple, self.minimum)
        self.condition = x
        generator = self.generator()
        latents = self.vae_encode(x, generator, (height, width))
        handle, seen = self._first_unet_hook()
        unwatch = self._watch_scheduler((self.model_scale * height, self.model_scale * width))
        started = self.clock()
        try:
            out = self.denoise(latents, generator)
        finally:
            handle.remove()
            unwatch()
        ended = self.clock()
        unet_started = seen.get("time", ended)
        self.record_denoising(latents, out, unet_started - started, ended - unet_started, seen.get("timestep"))
        image = self.vae_decode(out)[..., : self.model_scale * height, : self.model_scale * width]
        if self.filmstrip is not None:
            self.filmstrip.decoded(self.tile_index, tensor_to_uint8(image[0]).permute(1, 2, 0).cpu().numpy())
        return image

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
        out = tensor_to_uint8(y[0]).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(out, "RGB")
