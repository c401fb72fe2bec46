"""Pipelines: assemble one from its parts, load one from disk, keep it resident on its device.

:func:`assemble_pipeline` is the one place a pipeline is put together from a UNet, VAE, text
encoder, tokenizer and scheduler (the loader, the GPU benchmark and the tests' tiny models
all use it). Each pipeline is loaded once per (model, device, dtype, compile) and kept
resident, one per engine, guarded by a lock that jobs hold while they run. Which diffusers
pipeline and scheduler an engine runs is its own declaration (``descriptor.DiffusionTraits``).
torch, diffusers and transformers are imported on first use only.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InvalidParameterError
from ..base import RunOptions
from . import hub
from .controlnet import resolve_controlnet, weights_variant
from .descriptor import Traits

_log = logging.getLogger(__name__)
_NO_SAFETY_CHECKER = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


@dataclass
class Resident:
    """A loaded pipeline kept in memory, with what every job needs to know about it."""

    key: tuple[Any, ...]
    kind: str  # the engine's id
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


_RESIDENT: dict[tuple[Any, ...], Resident] = {}
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


def dtype_kwarg() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); the name this one takes."""
    try:
        from diffusers.utils.deprecation_utils import _TORCH_DTYPE_DEPRECATION_MESSAGE  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def assemble_pipeline(
    engine: Traits,
    *,
    unet: Any,
    vae: Any,
    text_encoder: Any,
    tokenizer: Any,
    scheduler: Any,
    controlnet: Any = None,
) -> Any:
    """The diffusers pipeline of the diffusion ``engine`` (or its class) built from its parts (never a
    safety checker): its ``pipeline`` class, or its ``controlnet_pipeline`` with a ``controlnet``."""
    import diffusers

    parts = {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "unet": unet, "scheduler": scheduler}
    if controlnet is not None:
        if not engine.takes_controlnet():
            raise InvalidParameterError(f"{engine.id} runs no ControlNet.", hint="Pass controlnet=None.")
        parts["controlnet"] = controlnet
    name = engine.controlnet_pipeline if controlnet is not None else engine.pipeline
    extra = _NO_SAFETY_CHECKER if engine.safety_checker_slot else {}
    return getattr(diffusers, name)(**parts, **extra)


def resident_pipeline(
    engine: Traits, model_ref: str, device: Any, options: RunOptions, controlnet_ref: str | None = None
) -> Resident:
    """The resident pipeline of the diffusion ``engine`` for ``model_ref`` (and ``controlnet_ref``,
    for engines that take one) on ``device``, loaded if need be.

    Finds the weights on disk only (no network; raises with the fix). Loading a new one drops
    the engine's previous pipeline first.
    """
    kind = engine.id
    path = hub.resolve_model(model_ref, engine=engine, cache_dir=options.hub_cache)
    control = (
        None
        if controlnet_ref is None
        else resolve_controlnet(controlnet_ref, engine=engine, cache_dir=options.hub_cache)
    )
    dtype = _dtype_for(device)
    compile_ = bool(options.torch_compile and device.type == "cuda")
    key = (kind, str(path), str(control), str(device), str(dtype), compile_)
    with _RESIDENT_LOCK:
        resident = _RESIDENT.get(key)
        if resident is None:
            for other in [k for k in _RESIDENT if k[0] == kind]:  # one resident pipeline per engine
                del _RESIDENT[other]
            if device.type == "cuda":
                import torch

                torch.cuda.empty_cache()
            pipe = load_pipeline(engine, path, dtype, options.hub_cache, control)
            resident = _place(pipe, kind, key, device, dtype, compile_)
            _RESIDENT[key] = resident
    return resident


def _dtype_for(device: Any) -> Any:
    import torch

    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def load_pipeline(
    engine: Traits, path: Path, dtype: Any, hub_cache: Path | None, controlnet: Path | None = None
) -> Any:
    """The diffusion ``engine``'s pipeline from a resolved model path (a diffusers folder or a single
    file), offline; with ``controlnet`` (a resolved ControlNet folder) its ControlNet pipeline."""
    if path.is_file():
        pipe = _load_single_file(engine, path, dtype, hub_cache)
    else:
        pipe = _load_folder(engine, path, dtype)
    if controlnet is None:
        return pipe
    from diffusers import ControlNetModel

    variant, _, _ = weights_variant(controlnet)
    model = ControlNetModel.from_pretrained(
        controlnet, use_safetensors=True, variant=variant, local_files_only=True, **{dtype_kwarg(): dtype}
    )
    parts = {name: getattr(pipe, name) for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")}
    return assemble_pipeline(engine, controlnet=model, **parts)


def _load_single_file(described: Traits, path: Path, dtype: Any, hub_cache: Path | None) -> Any:
    """A single-file SD 1.5 checkpoint, offline, with our configs (engines with ``single_file``)."""
    import diffusers
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(hub.find_tokenizer(path, engine=described, cache_dir=hub_cache)))
    extra = _NO_SAFETY_CHECKER if described.safety_checker_slot else {}
    pipe = getattr(diffusers, described.pipeline).from_single_file(
        str(path),
        config=str(hub.CONFIG_DIR),
        tokenizer=tokenizer,
        local_files_only=True,
        **extra,
        **{dtype_kwarg(): dtype},
    )
    pipe.scheduler = _scheduler(described, pipe.scheduler.config)
    return pipe


def _scheduler(described: Traits, config: Any) -> Any:
    """The engine's scheduler class on the model's own config (betas, prediction type), with its overrides."""
    import diffusers

    return getattr(diffusers, described.scheduler).from_config(config, **described.scheduler_overrides)


def _load_folder(described: Traits, path: Path, dtype: Any) -> Any:
    """A diffusers folder (safetensors only, fp16 variants where the folder has them)."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    variants = hub.inspect_folder(path, described.weight_parts).variants

    def diffusers_part(cls: Any, name: str) -> Any:
        return cls.from_pretrained(
            path,
            subfolder=name,
            use_safetensors=True,
            variant=variants.get(name),
            local_files_only=True,
            **{dtype_kwarg(): dtype},
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
    config = getattr(diffusers, described.scheduler).load_config(path, subfolder="scheduler")
    scheduler = _scheduler(described, config)
    return assemble_pipeline(
        described, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
    )


def _place(pipe: Any, kind: str, key: tuple[Any, ...], device: Any, dtype: Any, compile_: bool) -> Resident:
    """Move ``pipe`` to ``device`` and tune it there (CUDA: TF32, channels-last, fused QKV, compile)."""
    import torch

    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        pipe.unet.to(memory_format=torch.channels_last)
        if getattr(pipe, "controlnet", None) is not None:
            pipe.controlnet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        try:
            pipe.fuse_qkv_projections()  # one QKV matmul per attention (SDPA processor, fused)
        except (AttributeError, NotImplementedError, RuntimeError, ValueError) as error:
            _log.info("fuse_qkv_projections skipped for %s: %s", kind, error)
    resident = Resident(key=key, kind=kind, pipe=pipe, device=device, dtype=dtype)
    if compile_:
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs")
        pipe.vae.decoder = torch.compile(pipe.vae.decoder, mode="max-autotune-no-cudagraphs")
        if getattr(pipe, "controlnet", None) is not None:
            pipe.controlnet = torch.compile(pipe.controlnet, mode="max-autotune-no-cudagraphs")
        resident.compiled = True
    return resident
