"""Look inside the CNN engines on the visitor's own picture (issue 21).

* ``inside(image, engine, region=...)``: one run of the engine's real graph on a region, its layers'
  most active channels with a caption each, and the sum its output is (base + residual = output);
* ``attribution(image, engine, point, window=16)``: which input pixels decided an output window
  (LAM-style integrated gradients along a progressive-blur path), with the receptive field read
  from the graph and how far the contributions spread;
* ``write_inside(...)``: both as PNG files (the CLI's ``inside`` command).

Importing this package does not import torch.
"""

from .files import write_inside
from .lam import integrated_gradients
from .looking import Inside, InsideLayer, inside
from .tracing import Attribution, Spread, attribution

__all__ = [
    "Attribution",
    "Inside",
    "InsideLayer",
    "Spread",
    "attribution",
    "inside",
    "integrated_gradients",
    "write_inside",
]
