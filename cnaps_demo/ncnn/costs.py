"""A rough cost per layer, from the ``.param`` text alone, so progress can move inside one run.

Cost = multiply-adds per input pixel of the network: a convolution's weight count times its
output's area relative to the input's; element-wise layers a small constant times their area.
Only the ratios matter (the share of a run done after each layer), and only roughly.
"""

from __future__ import annotations

from typing import Sequence

from .param import LayerSpec
from .param_ids import Convolution, Interp, PixelShuffle, Pooling

_ELEMENTWISE_COST = 256.0  # about a 3x3 convolution of 4 x 8 channels: small next to a real layer
_WEIGHTED = {"Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise"}


def _area_factor(layer: LayerSpec) -> float:
    """Output area / input area."""
    p = layer.get
    if layer.type in _WEIGHTED:
        sw = int(p(Convolution.STRIDE_W, 1))
        sh = int(p(Convolution.STRIDE_H, sw))
        return float(sw * sh) if layer.type.startswith("Deconvolution") else 1.0 / (sw * sh)
    if layer.type == "Pooling":
        if int(p(Pooling.GLOBAL_POOLING, 0)):
            return 0.0
        sw = int(p(Pooling.STRIDE_W, 1))
        return 1.0 / (sw * int(p(Pooling.STRIDE_H, sw)))
    if layer.type == "PixelShuffle":
        return float(int(p(PixelShuffle.UPSCALE_FACTOR, 1)) ** 2)
    if layer.type == "Interp" and not (p(Interp.OUTPUT_HEIGHT, 0) or p(Interp.OUTPUT_WIDTH, 0)):
        return float(p(Interp.HEIGHT_SCALE, 1.0)) * float(p(Interp.WIDTH_SCALE, 1.0))
    return 1.0


def layer_costs(layers: Sequence[LayerSpec]) -> list[float]:
    """One cost per layer, in graph order (0 for Input, Split, Noop and InnerProduct)."""
    area: dict[str, float] = {}
    costs: list[float] = []
    for layer in layers:
        before = max((area.get(blob, 1.0) for blob in layer.inputs), default=1.0)
        after = before * _area_factor(layer)
        for blob in layer.outputs:
            area[blob] = after
        if layer.type in _WEIGHTED:
            # A convolution does its weights once per output pixel, a deconvolution once per input pixel.
            per_pixel = before if layer.type.startswith("Deconvolution") else after
            cost = float(layer.get(Convolution.WEIGHT_DATA_SIZE, 0)) * per_pixel
        elif layer.type in ("Input", "Split", "Noop", "InnerProduct"):  # InnerProduct: one vector
            cost = 0.0
        else:
            cost = _ELEMENTWISE_COST * after
        costs.append(cost)
    return costs
