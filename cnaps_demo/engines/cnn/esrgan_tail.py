"""Real-ESRGAN's x2 tail folded into one small convolution: the same picture without the 4x one.

The shipped ``realesr-animevideov3-x2`` is the x4 network cut short. Its last convolution makes
48 channels; a pixel shuffle spreads them over a picture 4x the input's size; the input enlarged
4x (nearest) is added; and a bicubic resize halves the sum. Everything after that convolution is
linear, and each output pixel depends only on the 3x3 input pixels around it. So the
convolution and the rest fold into one 5x5 convolution to 3 x 2 x 2 channels, plus a 3x3 one
from the input, and a pixel shuffle by 2. Measured at 600x600 on the 2-core AVX2 CPU, the tail
costs a third of what it did (it had made and resized a 2400x2400 picture).

The fold equals the graph except within 2 input pixels of the piece's border: there it pads with
zeros where the graph repeats its edge. The engine runs every piece with a 10-pixel margin that
it crops (``realesrgan._CONTEXT``), so no pixel it keeps changes beyond float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...ncnn.param import LayerSpec
from ...ncnn.param_ids import BinaryOp, Convolution, Interp, PixelShuffle

# The folded pieces must keep this many input pixels of margin (a 5x5 convolution's reach).
MARGIN = 2


@dataclass(frozen=True)
class FoldedTail:
    """``tail(body, image)``: the graph's output from the blob its last convolution reads."""

    body: str  # the blob the last convolution reads (ask the net for it)
    weight: Any  # (channels rounded up to 16, body channels, 5, 5) torch tensor
    bias: Any
    base_weight: Any  # (channels, 3, 3, 3): the enlarged input's share of each output pixel
    channels: int  # 3 * factor * factor
    factor: int  # output pixels per input pixel along each side

    def __call__(self, body, image):
        import torch.nn.functional as F

        dtype = body.dtype
        out = F.conv2d(body, self.weight.to(dtype), self.bias.to(dtype), padding=2)[:, : self.channels]
        out = out + F.conv2d(image.to(out.dtype), self.base_weight.to(out.dtype), padding=1)
        return F.pixel_shuffle(out, self.factor)


def fold_tail(net) -> FoldedTail | None:
    """The folded tail of an ncnn net (``cnaps_demo.ncnn.NcnnNet``) that ends as Real-ESRGAN x2's
    does, else None (the net is then run as it is)."""
    found = _match(net)
    if found is None:
        return None
    conv, shuffle, resize = found
    module = net.module_of(conv.name)
    if module is None or module.bias is None:
        return None
    factor = int(shuffle.get(PixelShuffle.UPSCALE_FACTOR, 1))
    taps = resize_taps(factor, float(resize.get(Interp.HEIGHT_SCALE, 1.0)))
    if taps is None:
        return None
    import torch

    weight = module.weight.detach().double().cpu().numpy()
    bias = module.bias.detach().double().cpu().numpy()
    tail, base = _tail_kernels(taps, factor)
    folded, folded_bias = _compose(tail, weight, bias)
    rounded = -(-folded.shape[0] // 16) * 16  # oneDNN runs 16 output channels faster than 12
    padded = np.zeros((rounded, *folded.shape[1:]))
    padded[: folded.shape[0]] = folded
    padded_bias = np.zeros(rounded)
    padded_bias[: folded.shape[0]] = folded_bias
    device = module.weight.device

    def tensor(array: np.ndarray):
        return torch.from_numpy(array.astype(np.float32)).to(device).contiguous(memory_format=torch.channels_last)

    return FoldedTail(
        body=conv.inputs[0],
        weight=tensor(padded),
        bias=torch.from_numpy(padded_bias.astype(np.float32)).to(device),
        base_weight=tensor(base),
        channels=folded.shape[0],
        factor=taps.shape[0],
    )


def _match(net) -> tuple[LayerSpec, LayerSpec, LayerSpec] | None:
    """(last convolution, pixel shuffle, bicubic resize) when the net ends in
    conv -> PixelShuffle(r) -> + nearest-r-enlarged input -> bicubic resize by a factor m/r."""
    if len(net.outputs) != 1 or len(net.inputs) != 1:
        return None
    resize = net.producer(net.outputs[0])
    if not _is_interp(resize, Interp.BICUBIC):
        return None
    scale = float(resize.get(Interp.HEIGHT_SCALE, 1.0))
    if scale != float(resize.get(Interp.WIDTH_SCALE, 1.0)):
        return None
    add = net.producer(resize.inputs[0])
    if add is None or add.type != "BinaryOp" or len(add.inputs) != 2:
        return None
    if int(add.get(BinaryOp.OP_TYPE, 0)) != BinaryOp.ADD or int(add.get(BinaryOp.WITH_SCALAR, 0)):
        return None
    first, second = (net.producer(blob) for blob in add.inputs)
    shuffle, enlarge = (first, second) if first is not None and first.type == "PixelShuffle" else (second, first)
    if shuffle is None or shuffle.type != "PixelShuffle" or int(shuffle.get(PixelShuffle.MODE, 0)) != 0:
        return None
    factor = int(shuffle.get(PixelShuffle.UPSCALE_FACTOR, 1))
    if not _is_interp(enlarge, Interp.NEAREST) or _source(net, enlarge.inputs[0]) != net.inputs[0]:
        return None
    if float(enlarge.get(Interp.HEIGHT_SCALE, 1.0)) != factor or float(enlarge.get(Interp.WIDTH_SCALE, 1.0)) != factor:
        return None
    conv = net.producer(shuffle.inputs[0])
    if conv is None or conv.type != "Convolution" or not _plain_3x3(conv, 3 * factor * factor):
        return None
    return conv, shuffle, resize


def _is_interp(layer: LayerSpec | None, kind: int) -> bool:
    return (
        layer is not None
        and layer.type == "Interp"
        and int(layer.get(Interp.RESIZE_TYPE, 0)) == kind
        and not int(layer.get(Interp.ALIGN_CORNER, 0))
        and not int(layer.get(Interp.OUTPUT_HEIGHT, 0))
        and not int(layer.get(Interp.OUTPUT_WIDTH, 0))
        and not int(layer.get(Interp.DYNAMIC_TARGET_SIZE, 0))
    )


def _source(net, blob: str) -> str:
    """The blob a chain of Split layers copies ``blob`` from."""
    layer = net.producer(blob)
    while layer is not None and layer.type == "Split":
        blob = layer.inputs[0]
        layer = net.producer(blob)
    return blob


def _plain_3x3(conv: LayerSpec, outputs: int) -> bool:
    """A 3x3, stride 1, dilation 1, pad 1 convolution with a bias and no activation."""
    p = conv.get
    kernel_w = int(p(Convolution.KERNEL_W, 0))
    stride_w, dilation_w, pad = int(p(Convolution.STRIDE_W, 1)), int(p(Convolution.DILATION_W, 1)), int(p(Convolution.PAD_LEFT, 0))
    return (
        int(p(Convolution.NUM_OUTPUT, 0)) == outputs
        and kernel_w == 3
        and int(p(Convolution.KERNEL_H, kernel_w)) == 3
        and stride_w == 1
        and int(p(Convolution.STRIDE_H, stride_w)) == 1
        and dilation_w == 1
        and int(p(Convolution.DILATION_H, dilation_w)) == 1
        and all(int(p(key, pad)) == 1 for key in (Convolution.PAD_LEFT, Convolution.PAD_RIGHT, Convolution.PAD_TOP, Convolution.PAD_BOTTOM))
        and int(p(Convolution.BIAS_TERM, 0)) == 1
        and int(p(Convolution.ACTIVATION_TYPE, 0)) == 0
    )


def resize_taps(factor: int, scale: float) -> np.ndarray | None:
    """``taps[a, d + 1, s]``: the weight of sub-pixel ``s`` of input pixel ``p + d`` in output pixel
    ``m * p + a`` of torch's bicubic resize by ``scale`` of a picture made of ``factor`` x ``factor``
    sub-pixels per input pixel (m = factor * scale). Read off torch itself, as the graph runs it, so
    the fold follows its exact weights. None when m is not a whole number or an output pixel reaches
    beyond the neighbouring input pixels."""
    import torch
    import torch.nn.functional as F

    outputs = factor * scale
    if outputs < 1 or outputs != int(outputs):
        return None
    m, pixels = int(outputs), 9
    length = pixels * factor
    identity = torch.eye(length, dtype=torch.float64).reshape(length, 1, 1, length)
    resized = F.interpolate(identity, size=(1, pixels * m), mode="bicubic", align_corners=False)
    weights = resized.reshape(length, pixels * m).numpy()  # [input sub-pixel, output pixel]
    middle = pixels // 2
    taps = np.zeros((m, 3, factor))
    for a in range(m):
        column = weights[:, m * middle + a]
        near = slice(factor * (middle - 1), factor * (middle + 2))
        if np.abs(np.delete(column, np.r_[near])).max() > 1e-12:
            return None
        taps[a] = column[near].reshape(3, factor)
    return taps


def _tail_kernels(taps: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The shuffle + resize as a 3x3 convolution from the 3*factor^2 shuffled channels to 3*m^2
    channels (torch's pixel-shuffle order: colour, row, column), and the enlarged input's share as a
    3x3 convolution from the 3 input colours."""
    m = taps.shape[0]
    # [ay, ax, dy, dx, sy, sx]: separable along rows and columns.
    both = np.einsum("ays,bxt->abyxst", taps, taps)
    tail = np.zeros((3, m, m, 3, factor, factor, 3, 3))
    base = np.zeros((3, m, m, 3, 3, 3))
    sums = taps.sum(axis=2)  # nearest enlargement: all sub-pixels of a pixel are the pixel
    for colour in range(3):
        tail[colour, :, :, colour] = both.transpose(0, 1, 4, 5, 2, 3)
        base[colour, :, :, colour] = np.einsum("ay,bx->abyx", sums, sums)
    return tail.reshape(3 * m * m, 3 * factor * factor, 3, 3), base.reshape(3 * m * m, 3, 3, 3)


def _compose(tail: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One 5x5 convolution doing ``weight`` (3x3, with ``bias``) then ``tail`` (3x3), as torch's
    cross-correlation does: offsets add, so tail tap k and weight tap u land on tap k + u."""
    composed = np.zeros((tail.shape[0], weight.shape[1], 5, 5))
    for ky in range(3):
        for kx in range(3):
            composed[:, :, ky : ky + 3, kx : kx + 3] += np.einsum("oj,jiuv->oiuv", tail[:, :, ky, kx], weight)
    return composed, tail.sum(axis=(2, 3)) @ bias
