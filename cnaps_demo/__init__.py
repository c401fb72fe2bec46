"""cnaps-demo: show, step by step, how AI models upscale anime and cartoon illustrations 2x.

Public face: ``upscale()`` and its ``UpscaleResult``; ``plan()``/``prepare()`` for checking a
run before it starts; ``availability()``; and the engine registry. Importing this package loads
no model and does not import torch or gradio.
"""

from .api import Plan, Request, UpscaleResult, availability, plan, prepare, upscale
from .engines import all_engines, engine_ids, get_engine
from .errors import CnapsError
from .version import __version__

__all__ = [
    "CnapsError",
    "Plan",
    "Request",
    "UpscaleResult",
    "__version__",
    "all_engines",
    "availability",
    "engine_ids",
    "get_engine",
    "plan",
    "prepare",
    "upscale",
]
