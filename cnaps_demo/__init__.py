"""cnaps-demo: show, step by step, how AI models upscale anime and cartoon illustrations 2x.

Public face: ``upscale()`` and its ``UpscaleResult``; ``plan()``/``prepare()`` for checking a
run before it starts; ``availability()``; the engine registry; and ``degrade()``, the
training-pair damage the anime CNNs learned to undo (``Degradation``); ``inside()`` and
``attribution()``, a look into the anime CNNs on a picture (``Inside``, ``Attribution``).
Importing this package loads no model and does not import torch or gradio.
"""

from .api import Plan, Request, UpscaleResult, availability, plan, prepare, upscale
from .engines import all_engines, engine_ids, get_engine
from .errors import CnapsError
from .probe import Attribution, Inside, attribution, inside
from .training_pairs import Degradation, degrade
from .version import __version__

__all__ = [
    "Attribution",
    "CnapsError",
    "Degradation",
    "Inside",
    "Plan",
    "Request",
    "UpscaleResult",
    "__version__",
    "all_engines",
    "attribution",
    "availability",
    "degrade",
    "engine_ids",
    "get_engine",
    "inside",
    "plan",
    "prepare",
    "upscale",
]
