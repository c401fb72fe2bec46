"""What a layer builder returns (:class:`Built`), and the weight lookup the builders share.

Builders import torch inside their bodies: the registry (and so ``SUPPORTED_LAYERS``) must
be importable without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ...errors import NcnnGraphError
from ..param import LayerSpec

if TYPE_CHECKING:
    import torch

# xs (the layer's input tensors, in order) -> its output tensors, in order.
LayerFn = Callable[[list], list]
Weights = Mapping[str, Any]  # name -> numpy array or torch tensor, as read_bin names them


@dataclass
class Built:
    """One compiled layer."""

    # None for Input and Noop, which the net handles itself (checks inputs / aliases blobs).
    run: LayerFn | None
    # The layer's weights, for the net to register so that .to(device, dtype) moves them.
    module: Any = None  # torch.nn.Module | None
    # (xs, post) -> outputs with ``post`` (a per-channel element-wise function) applied to the
    # result: a convolution that can apply the next layer's activation band by band, in cache.
    run_fused: Callable[[list, Callable], list] | None = None
    # This layer as such a ``post`` function (PReLU), for the net to fuse into its producer.
    as_post: Callable | None = None


Builder = Callable[[LayerSpec, Weights], Built]


def weight_tensor(weights: Weights, name: str) -> "torch.Tensor":
    """The named weight as a float32 tensor (a NumPy array's memory may be shared, not copied)."""
    import torch

    if name not in weights:
        raise NcnnGraphError(f"weights for {name!r} are missing")
    value = weights[name]
    if isinstance(value, torch.Tensor):
        return value.detach().clone().float()
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
