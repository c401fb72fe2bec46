"""ncnn's fused activations (``activation_type`` / ``activation_params`` of the weighted layers)."""

from __future__ import annotations

from typing import Callable, Sequence

from ...errors import NcnnGraphError
from ..param_ids import Activation


def fused_activation(kind: int, params: Sequence[float]) -> Callable | None:
    """The activation as a callable, or None for none.

    Callers apply it to the layer's own freshly computed output, so it works in place (one
    pass over memory and no new allocation) unless autograd needs the input.
    """
    import torch
    import torch.nn.functional as F

    if kind == Activation.NONE:
        return None
    if kind == Activation.RELU:
        fn, fn_ = F.relu, torch.relu_
    elif kind == Activation.LEAKY_RELU:
        slope = float(params[0]) if params else 0.0
        fn, fn_ = (lambda x: F.leaky_relu(x, slope)), (lambda x: F.leaky_relu_(x, slope))
    elif kind == Activation.CLIP:
        low, high = float(params[0]), float(params[1])
        fn, fn_ = (lambda x: x.clamp(low, high)), (lambda x: x.clamp_(low, high))
    elif kind == Activation.SIGMOID:
        fn, fn_ = torch.sigmoid, torch.sigmoid_
    elif kind == Activation.MISH:
        fn, fn_ = F.mish, (lambda x: F.mish(x, inplace=True))
    elif kind == Activation.HARDSWISH:
        alpha, beta = (float(params[0]), float(params[1])) if params else (0.2, 0.5)
        return lambda x: x * (x * alpha + beta).clamp(0.0, 1.0)
    else:
        raise NcnnGraphError(f"activation type {kind} is not supported")

    def act(x):
        if x.requires_grad and torch.is_grad_enabled():
            return fn(x)
        return fn_(x)

    return act
