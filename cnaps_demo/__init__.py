"""cnaps-demo: show, step by step, how AI models upscale anime and cartoon illustrations 2x.

Public face: ``upscale()``, its ``UpscaleResult``, and the engine registry. Importing
this package loads no model and does not import torch or gradio.
"""

from .api import UpscaleResult, upscale
from .engines import all_engines, engine_ids, get_engine
from .errors import CnapsError
from .version import __version__

__all__ = ["CnapsError", "UpscaleResult", "__version__", "all_engines", "engine_ids", "get_engine", "upscale"]
