"""Read ncnn models (``.param`` text + ``.bin`` weights) and run them as PyTorch modules.

* :func:`parse_param` (:mod:`.param`) turns the ``.param`` text into a list of :class:`LayerSpec`;
* :func:`read_bin` (:mod:`.binfile`) reads the ``.bin`` into float32 NumPy arrays named
  ``"<layer>.weight"``, ``"<layer>.bias"``, ``"<layer>.slope"``;
* :func:`build_module` (:mod:`.net`, one builder per layer type in :mod:`.layers`) returns
  the ``torch.nn.Module`` that runs the graph.

Importing this package does not import torch; :func:`build_module` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..errors import NcnnGraphError
from .binfile import expected_weight_names, read_bin
from .layers import SUPPORTED_LAYERS
from .layers.base import Weights
from .param import MAGIC, LayerSpec, global_pool_blobs, parse_param

if TYPE_CHECKING:
    from .net import NcnnNet


def build_module(layers: Sequence[LayerSpec], weights: Weights) -> NcnnNet:
    """The ``torch.nn.Module`` (an :class:`~.net.NcnnNet`) for the parsed graph and its weights."""
    from .net import NcnnNet

    return NcnnNet(layers, weights)


__all__ = [
    "MAGIC",
    "SUPPORTED_LAYERS",
    "LayerSpec",
    "NcnnGraphError",
    "build_module",
    "expected_weight_names",
    "global_pool_blobs",
    "parse_param",
    "read_bin",
]
