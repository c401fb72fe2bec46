"""The diffusion engines (Stable Diffusion img2img with DreamShaper 8, and the SD x2 latent upscaler)."""

from .monolith import SDImg2ImgEngine, SDLatentX2Engine

__all__ = ["SDImg2ImgEngine", "SDLatentX2Engine"]
