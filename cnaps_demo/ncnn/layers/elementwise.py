"""Builders for the element-wise layers: activations (PReLU, ReLU, Sigmoid, TanH, Clip), BinaryOp, Eltwise."""

from __future__ import annotations

from ...errors import NcnnGraphError
from ..param import LayerSpec
from ..param_ids import BinaryOp, Clip, Eltwise, ReLU
from .base import Built, Weights, weight_tensor

_FLT_MAX = 3.4e38  # Clip's default bounds are +-FLT_MAX


def build_prelu(layer: LayerSpec, weights: Weights) -> Built:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    slope = weight_tensor(weights, f"{layer.name}.slope")
    prelu = nn.PReLU(num_parameters=slope.numel())
    with torch.no_grad():
        prelu.weight.copy_(slope)

    def post(x):
        # One fused kernel (torch.where(x >= 0, x, x * w) took three passes and two
        # temporaries: about 4x slower on large CPU feature maps).
        return F.prelu(x, prelu.weight.to(x.dtype))

    def run(xs):
        # Not in place: a 3-pass in-place form (clamp, clamp_min_, addcmul_) made the whole of
        # Real-ESRGAN 18% slower (600x600, 2-core AVX2), once freed maps are reused (memory.py).
        return [post(xs[0])]

    return Built(run, module=prelu, as_post=post)


def build_relu(layer: LayerSpec, weights: Weights) -> Built:
    import torch.nn.functional as F

    slope = float(layer.get(ReLU.SLOPE, 0.0))
    return Built(lambda xs: [F.leaky_relu(xs[0], slope) if slope else F.relu(xs[0])])


def build_sigmoid(layer: LayerSpec, weights: Weights) -> Built:
    import torch

    return Built(lambda xs: [torch.sigmoid(xs[0])])


def build_tanh(layer: LayerSpec, weights: Weights) -> Built:
    import torch

    return Built(lambda xs: [torch.tanh(xs[0])])


def build_clip(layer: LayerSpec, weights: Weights) -> Built:
    low, high = float(layer.get(Clip.MIN, -_FLT_MAX)), float(layer.get(Clip.MAX, _FLT_MAX))
    return Built(lambda xs: [xs[0].clamp(low, high)])


def _same_layout(a, b):
    """Two same-shape maps, one channels-inner (channels_last) and one not (NCHW, as the fast
    CPU convolutions write): the first to NCHW. An element-wise op over mixed layouts walks one
    of them against its grain, several times slower than converting it first."""
    if a.dim() != 4 or a.shape != b.shape or a.shape[1] == 1:
        return a, b
    a_inner, b_inner = a.stride(1) == 1, b.stride(1) == 1
    if a_inner == b_inner:
        return a, b
    from .fast_conv import to_nchw

    return (to_nchw(a), b) if a_inner else (a, to_nchw(b))


def build_binary_op(layer: LayerSpec, weights: Weights) -> Built:
    """Two blobs (broadcasting an ``N x C x 1 x 1`` vector like ncnn does), or a blob and a scalar."""
    import torch

    p = layer.get
    op = int(p(BinaryOp.OP_TYPE, 0))
    with_scalar = int(p(BinaryOp.WITH_SCALAR, 0))
    scalar = float(p(BinaryOp.B, 0.0))
    ops = {
        BinaryOp.ADD: torch.add,
        BinaryOp.SUB: torch.sub,
        BinaryOp.MUL: torch.mul,
        BinaryOp.DIV: torch.div,
        BinaryOp.MAX: torch.maximum,
        BinaryOp.MIN: torch.minimum,
        BinaryOp.POW: torch.pow,
        BinaryOp.RSUB: lambda a, b: torch.sub(b, a),
        BinaryOp.RDIV: lambda a, b: torch.div(b, a),
        BinaryOp.RPOW: lambda a, b: torch.pow(b, a),
        BinaryOp.ATAN2: torch.atan2,
        BinaryOp.RATAN2: lambda a, b: torch.atan2(b, a),
    }
    if op not in ops:
        raise NcnnGraphError(f"BinaryOp op {op} ({layer.name}) is not supported")
    fn = ops[op]
    if not with_scalar:
        return Built(lambda xs: [fn(*_same_layout(xs[0], xs[1]))])
    # These take no Python number for the second operand: give them a tensor full of it.
    if op in (BinaryOp.MAX, BinaryOp.MIN, BinaryOp.POW, BinaryOp.RPOW, BinaryOp.ATAN2, BinaryOp.RATAN2):
        return Built(lambda xs: [fn(xs[0], torch.full_like(xs[0], scalar))])
    return Built(lambda xs: [fn(xs[0], scalar)])


def build_eltwise(layer: LayerSpec, weights: Weights) -> Built:
    """Product, (optionally weighted) sum, or maximum of all the input blobs."""
    import torch

    op = int(layer.get(Eltwise.OP_TYPE, Eltwise.SUM))
    coeffs = [float(c) for c in (layer.get(Eltwise.COEFFS, []) or [])]
    if op not in (Eltwise.PROD, Eltwise.SUM, Eltwise.MAX):
        raise NcnnGraphError(f"Eltwise op {op} ({layer.name}) is not supported")

    def run(xs):
        if op == Eltwise.PROD:
            out = xs[0]
            for x in xs[1:]:
                out = out * x
            return [out]
        if op == Eltwise.MAX:
            out = xs[0]
            for x in xs[1:]:
                out = torch.maximum(out, x)
            return [out]
        if coeffs:
            out = xs[0] * coeffs[0]
            for c, x in zip(coeffs[1:], xs[1:]):
                out = out + x * c
            return [out]
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return [out]

    return Built(run)


BUILDERS = {
    "PReLU": build_prelu,
    "ReLU": build_relu,
    "Sigmoid": build_sigmoid,
    "TanH": build_tanh,
    "Clip": build_clip,
    "BinaryOp": build_binary_op,
    "Eltwise": build_eltwise,
}
