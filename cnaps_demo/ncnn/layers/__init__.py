"""The layer registry: ncnn layer type name -> the builder that compiles it to a torch callable.

Importing this package does not import torch (the builders do, when called), so
``SUPPORTED_LAYERS`` is available to code that never runs a model.
"""

from __future__ import annotations

from . import elementwise, routing, spatial, weighted
from .base import Builder, Built

BUILDERS: dict[str, Builder] = {
    **routing.BUILDERS,
    **weighted.BUILDERS,
    **spatial.BUILDERS,
    **elementwise.BUILDERS,
}

SUPPORTED_LAYERS = frozenset(BUILDERS)

__all__ = ["BUILDERS", "SUPPORTED_LAYERS", "Builder", "Built"]
