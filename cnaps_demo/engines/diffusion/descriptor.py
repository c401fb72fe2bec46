"""What a diffusion engine says about itself, as data: the family's helpers read this, never an id.

Each engine class (``img2img``, ``latent_x2``) fills in these class attributes: the Hub model
it was made for, its pinned revision and download size, the weights a download fetches, the
diffusers pipeline and scheduler it runs, A1111's name for that scheduler, whether it loads
single-file checkpoints, and its CPU time model. The helpers (``hub``, ``download``,
``provision``, ``pipelines``, ``cost``, ``a1111``, ``explore``) take the engine itself (or its
class) and read these, so adding a diffusion engine is one new module (its class) plus its
line in the registry (``cnaps_demo/engines/__init__.py``). Nothing here finds an engine by id.

This module imports nothing else of the family (everything else may import it). No torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parent / "configs"
"""Hand-written architecture configs (UNet, VAE, CLIP text encoder, scheduler) kept in the repo."""
SD15_CONFIGS = CONFIGS / "sd15"


class DiffusionTraits:
    """The data a diffusion engine declares (class attributes) and the class methods the helpers call."""

    id: str
    display_name: str
    published_model: str = ""  # the Hub id it was made for: the default model, named in hints
    published_revision: str = "main"  # the commit downloads of that model are pinned to
    published_gb: float = 0.0  # that model's download (fp16 where published), for messages
    # The model parts whose weights a download fetches and a load reads (beside tokenizer and scheduler).
    weight_parts: tuple[str, ...] = ("unet", "vae", "text_encoder")
    unet_configs: Path = SD15_CONFIGS  # its UNet's and scheduler's configs (VAE, CLIP: SD 1.5's), for benchmarks
    pipeline: str = ""  # the diffusers pipeline class it runs
    controlnet_pipeline: str = ""  # the pipeline class with a ControlNet beside the UNet ("": runs none)
    safety_checker_slot: bool = False  # the pipeline takes a safety checker (always left out here)
    scheduler: str = ""  # the diffusers scheduler class a loaded model runs with
    scheduler_overrides: Mapping[str, Any] = {}  # set on top of the model's own scheduler config
    sampler: str = ""  # A1111's name for that scheduler (the PNG ``parameters`` text)
    single_file: bool = False  # also loads a single SD 1.5 .safetensors checkpoint
    prompt_needs_guidance: bool = False  # at guidance 0 the prompt is ignored (and left out of the A1111 text)

    @classmethod
    def takes_controlnet(cls) -> bool:
        return bool(cls.controlnet_pipeline)

    @classmethod
    def published_size(cls) -> str:
        """``"about 2 GB"`` for the published model ("" when unknown)."""
        return f"about {cls.published_gb:g} GB" if cls.published_gb else ""

    @classmethod
    def pinned_revision(cls, model_ref: str) -> str:
        """The revision to fetch ``model_ref`` at: the pinned commit of the published model, else ``main``."""
        return cls.published_revision if model_ref.strip() == cls.published_model else "main"

    @classmethod
    def cpu_work(
        cls, width: int, height: int, params: dict[str, Any], n_tiles: int, per_tile: float
    ) -> tuple[float, float, float]:
        """(UNet, VAE encode, work before the model) seconds on the time model's reference CPU for a
        ``width`` x ``height`` input in ``n_tiles`` tiles of ``per_tile`` output pixels (``cost``)."""
        raise NotImplementedError(f"{cls.__name__} has no CPU time model")

    @classmethod
    def a1111_fields(cls, params: dict[str, Any]) -> dict[str, Any]:
        """This engine's own A1111 fields: ``Steps`` as its scheduler counted them, then any extras."""
        return {"Steps": int(params["steps"])}


Traits = DiffusionTraits | type[DiffusionTraits]
"""What the helpers take: a diffusion engine, or its class (class attributes only are read)."""
