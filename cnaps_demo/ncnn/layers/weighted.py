"""Builders for the layers with learned weights and a fused activation: the convolutions and InnerProduct.

Weights live in real ``nn.Conv2d`` / ``nn.ConvTranspose2d`` / ``nn.Linear`` modules, so
``.to(memory_format=torch.channels_last)`` and bf16/fp16 work as usual.
"""

from __future__ import annotations

from ...errors import NcnnGraphError
from ..param import LayerSpec
from ..param_ids import Convolution, Deconvolution, InnerProduct
from . import fast_conv
from .activation import fused_activation
from .base import Built, Weights, weight_tensor


def _pads(layer: LayerSpec) -> tuple[int, int, int, int]:
    """(left, right, top, bottom); the ids are the same in all four convolution types."""
    p = layer.get
    left = int(p(Convolution.PAD_LEFT, 0))
    top = int(p(Convolution.PAD_TOP, left))
    right = int(p(Convolution.PAD_RIGHT, left))
    bottom = int(p(Convolution.PAD_BOTTOM, top))
    if min(left, top, right, bottom) < 0:
        raise NcnnGraphError(f"{layer.type} {layer.name}: 'same' auto-padding ({left}) is not supported")
    return left, right, top, bottom


def _stride_dilation(layer: LayerSpec) -> tuple[tuple[int, int], tuple[int, int]]:
    """((stride_h, stride_w), (dilation_h, dilation_w)); _h defaults to _w."""
    p = layer.get
    stride = (int(p(Convolution.STRIDE_H, p(Convolution.STRIDE_W, 1))), int(p(Convolution.STRIDE_W, 1)))
    dilation = (int(p(Convolution.DILATION_H, p(Convolution.DILATION_W, 1))), int(p(Convolution.DILATION_W, 1)))
    return stride, dilation


def _load(layer: LayerSpec, module, weight, weights: Weights, activation_ids: tuple[int, int]):
    """Copy the weight (and bias) into ``module``; return the layer's fused activation."""
    import torch

    with torch.no_grad():
        module.weight.copy_(weight)
        if module.bias is not None:
            module.bias.copy_(weight_tensor(weights, f"{layer.name}.bias"))
    kind_id, params_id = activation_ids
    return fused_activation(int(layer.get(kind_id, 0)), layer.get(params_id, []) or [])


_CONV_ACTIVATION = (Convolution.ACTIVATION_TYPE, Convolution.ACTIVATION_PARAMS)


def _convolution(layer: LayerSpec, weights: Weights, depthwise: bool) -> Built:
    import torch.nn as nn
    import torch.nn.functional as F

    p = layer.get
    weight = weight_tensor(weights, f"{layer.name}.weight")
    out_ch, in_per_group, kh, kw = weight.shape
    groups = int(p(Convolution.GROUP, 1)) if depthwise else 1
    stride, dilation = _stride_dilation(layer)
    left, right, top, bottom = _pads(layer)
    if float(p(Convolution.PAD_VALUE, 0.0)) != 0.0:
        raise NcnnGraphError(f"{layer.name}: non-zero pad_value is not supported")
    symmetric = left == right and top == bottom
    conv = nn.Conv2d(
        in_per_group * groups,
        out_ch,
        (kh, kw),
        stride=stride,
        padding=(top, left) if symmetric else 0,
        dilation=dilation,
        groups=groups,
        bias=bool(p(Convolution.BIAS_TERM, 0)),
    )
    act = _load(layer, conv, weight, weights, _CONV_ACTIVATION)
    pad = None if symmetric else (left, right, top, bottom)
    winograd = fast_conv.eligible(tuple(weight.shape), stride, dilation, groups)
    nchw_weight: dict = {}  # the weight in NCHW order for NNPACK, made once per device/dtype

    def run(xs, post=None):
        x = xs[0]
        if winograd and fast_conv.use_winograd(x) and conv.weight.dtype == x.dtype:
            key = (conv.weight.data_ptr(), conv.weight.dtype, conv.weight._version)  # redone if changed
            if key not in nchw_weight:
                nchw_weight.clear()
                nchw_weight[key] = conv.weight.contiguous()
            band_act = act if post is None else (post if act is None else (lambda y: post(act(y))))
            pads = (left, right, top, bottom)
            return [fast_conv.winograd_conv3x3(x, nchw_weight[key], conv.bias, pads, band_act)]
        if pad is not None:
            x = F.pad(x, pad)
        y = conv(x)
        if act is not None:
            y = act(y)
        return [y if post is None else post(y)]

    # Only the Winograd-eligible layers gain from taking the next activation band by band.
    return Built(run, module=conv, run_fused=run if winograd else None)


def _deconvolution(layer: LayerSpec, weights: Weights, depthwise: bool) -> Built:
    import torch.nn as nn

    p = layer.get
    weight = weight_tensor(weights, f"{layer.name}.weight")  # ncnn: out x in x kh x kw
    out_ch, in_per_group, kh, kw = weight.shape
    groups = int(p(Deconvolution.GROUP, 1)) if depthwise else 1
    stride, dilation = _stride_dilation(layer)
    left, right, top, bottom = _pads(layer)
    out_pad_right = int(p(Deconvolution.OUTPUT_PAD_RIGHT, 0))
    out_pad_bottom = int(p(Deconvolution.OUTPUT_PAD_BOTTOM, out_pad_right))
    if int(p(Deconvolution.OUTPUT_W, 0)) or int(p(Deconvolution.OUTPUT_H, 0)):
        raise NcnnGraphError(f"{layer.name}: fixed Deconvolution output size is not supported")
    # Native torch semantics when they match ncnn's (symmetric crop, small output pad).
    native = (
        left == right
        and top == bottom
        and out_pad_right < max(stride[1], dilation[1])
        and out_pad_bottom < max(stride[0], dilation[0])
    )
    # torch ConvTranspose2d weight: in x (out/groups) x kh x kw.
    out_per_group = out_ch // groups
    tw = weight.reshape(groups, out_per_group, in_per_group, kh, kw).permute(0, 2, 1, 3, 4)
    tw = tw.reshape(groups * in_per_group, out_per_group, kh, kw)
    deconv = nn.ConvTranspose2d(
        in_per_group * groups,
        out_ch,
        (kh, kw),
        stride=stride,
        padding=(top, left) if native else 0,
        output_padding=(out_pad_bottom, out_pad_right) if native else 0,
        dilation=dilation,
        groups=groups,
        bias=bool(p(Deconvolution.BIAS_TERM, 0)),
    )
    act = _load(layer, deconv, tw, weights, (Deconvolution.ACTIVATION_TYPE, Deconvolution.ACTIVATION_PARAMS))
    fix = None if native else (left, right, top, bottom, out_pad_right, out_pad_bottom)

    def run(xs):
        y = deconv(xs[0]) if fix is None else _deconv_by_hand(deconv, xs[0], fix)
        if act is not None:
            y = act(y)
        return [y]

    return Built(run, module=deconv)


def _deconv_by_hand(module, x, fix):
    """ncnn's deconvolution where torch's padding semantics differ: full output, pad, crop, bias."""
    import torch.nn.functional as F

    left, right, top, bottom, out_pad_right, out_pad_bottom = fix
    y = F.conv_transpose2d(x, module.weight, None, module.stride, 0, 0, module.groups, module.dilation)
    if out_pad_right or out_pad_bottom:
        y = F.pad(y, (0, out_pad_right, 0, out_pad_bottom))
    y = y[:, :, top : y.shape[2] - bottom, left : y.shape[3] - right]
    if module.bias is not None:
        y = y + module.bias.to(y.dtype).view(1, -1, 1, 1)
    return y


def build_convolution(layer: LayerSpec, weights: Weights) -> Built:
    return _convolution(layer, weights, depthwise=False)


def build_convolution_depthwise(layer: LayerSpec, weights: Weights) -> Built:
    return _convolution(layer, weights, depthwise=True)


def build_deconvolution(layer: LayerSpec, weights: Weights) -> Built:
    return _deconvolution(layer, weights, depthwise=False)


def build_deconvolution_depthwise(layer: LayerSpec, weights: Weights) -> Built:
    return _deconvolution(layer, weights, depthwise=True)


def build_inner_product(layer: LayerSpec, weights: Weights) -> Built:
    """A fully connected layer; the output is an ``N x C x 1 x 1`` blob, like every 1-D blob here."""
    import torch.nn as nn

    weight = weight_tensor(weights, f"{layer.name}.weight")
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bool(layer.get(InnerProduct.BIAS_TERM, 0)))
    act = _load(layer, linear, weight, weights, (InnerProduct.ACTIVATION_TYPE, InnerProduct.ACTIVATION_PARAMS))

    def run(xs):
        y = linear(xs[0].flatten(1).to(linear.weight.dtype))
        if act is not None:
            y = act(y)
        return [y[:, :, None, None]]

    return Built(run, module=linear)


BUILDERS = {
    "Convolution": build_convolution,
    "ConvolutionDepthWise": build_convolution_depthwise,
    "Deconvolution": build_deconvolution,
    "DeconvolutionDepthWise": build_deconvolution_depthwise,
    "InnerProduct": build_inner_product,
}
