"""How far each blob of a parsed ncnn graph looks into the input: its theoretical receptive field.

Pure arithmetic over the :class:`~.param.LayerSpec` list (no torch, no weights), in input
pixels, walked in graph order:

* a ``k`` x ``k`` convolution or pooling with dilation ``d`` and stride ``s`` widens the field by
  ``(k - 1) * d`` of its input's pixels and makes each of its pixels ``s`` times coarser;
* a deconvolution by ``s`` reads ``ceil(((k - 1) * d + 1) / s)`` input pixels per output pixel
  and makes its pixels ``s`` times finer;
* a pixel shuffle or a nearest enlargement only makes pixels finer; a bilinear or bicubic resize
  also reads 2 or 4 neighbouring pixels of its input;
* element-wise layers, crops and splits change nothing; a layer of several inputs looks as far
  as the farthest of them;
* a global pooling (an SE block's average over the whole picture), and anything it feeds, reaches
  every input pixel: ``Reach.whole_picture``.

Padding changes where a field sits, not its size, so it is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..errors import NcnnGraphError
from .param import LayerSpec
from .param_ids import Convolution, Interp, PixelShuffle, Pooling

# Types that keep each pixel where it is (element-wise, routing): the field passes through.
_PASS_THROUGH = frozenset({"Split", "Noop", "Crop", "PReLU", "ReLU", "Sigmoid", "TanH", "Clip"})
_JOINS = frozenset({"BinaryOp", "Eltwise", "Concat"})
_CONVOLUTIONS = frozenset({"Convolution", "ConvolutionDepthWise"})
_DECONVOLUTIONS = frozenset({"Deconvolution", "DeconvolutionDepthWise"})
# Input pixels a resize reads along each side, per resize type (nearest reads one).
_RESIZE_TAPS = {Interp.NEAREST: 1, Interp.BILINEAR: 2, Interp.BICUBIC: 4}


@dataclass(frozen=True)
class Reach:
    """One blob's field: ``size`` input pixels along a side, each of its pixels ``step`` input
    pixels apart; ``spatial`` False for a pooled vector; ``whole_picture`` when a global pooling
    feeds it (then ``size`` is the field of its local part only)."""

    size: float = 1.0
    step: float = 1.0
    spatial: bool = True
    whole_picture: bool = False

    @property
    def pixels(self) -> int:
        """The field's side in whole input pixels."""
        return math.ceil(self.size - 1e-9)


def _kernel(layer: LayerSpec) -> tuple[int, int, int]:
    """(kernel, dilation, stride) along the wider side (ncnn's ``_h`` ids default to ``_w``)."""
    p = layer.get
    kernel = max(int(p(Convolution.KERNEL_W, 1)), int(p(Convolution.KERNEL_H, p(Convolution.KERNEL_W, 1))))
    dilation = max(int(p(Convolution.DILATION_W, 1)), int(p(Convolution.DILATION_H, p(Convolution.DILATION_W, 1))))
    stride = max(int(p(Convolution.STRIDE_W, 1)), int(p(Convolution.STRIDE_H, p(Convolution.STRIDE_W, 1))))
    return kernel, dilation, stride


def _pooling(layer: LayerSpec, source: Reach) -> Reach:
    p = layer.get
    if int(p(Pooling.GLOBAL_POOLING, 0)) or int(p(Pooling.ADAPTIVE_POOLING, 0)):
        return Reach(source.size, source.step, spatial=False, whole_picture=True)
    kernel = max(int(p(Pooling.KERNEL_W, 1)), int(p(Pooling.KERNEL_H, p(Pooling.KERNEL_W, 1))))
    stride = max(int(p(Pooling.STRIDE_W, 1)), int(p(Pooling.STRIDE_H, p(Pooling.STRIDE_W, 1))))
    return Reach(source.size + (kernel - 1) * source.step, source.step * stride, True, source.whole_picture)


def _interp(layer: LayerSpec, source: Reach) -> Reach:
    kind = int(layer.get(Interp.RESIZE_TYPE, Interp.NEAREST))
    scale = float(layer.get(Interp.HEIGHT_SCALE, 1.0))
    if int(layer.get(Interp.OUTPUT_HEIGHT, 0)) or int(layer.get(Interp.DYNAMIC_TARGET_SIZE, 0)) or scale <= 0:
        raise NcnnGraphError(f"{layer.name}: a resize to a fixed or dynamic size has no fixed receptive field")
    taps = _RESIZE_TAPS.get(kind, 4)
    return Reach(source.size + (taps - 1) * source.step, source.step / scale, True, source.whole_picture)


def _one(layer: LayerSpec, sources: list[Reach]) -> Reach:
    """The field of ``layer``'s outputs from its inputs' fields."""
    if layer.type in _JOINS or layer.type in _PASS_THROUGH:
        spatial = [reach for reach in sources if reach.spatial] or sources
        whole = any(reach.whole_picture for reach in sources)
        if not any(reach.spatial for reach in sources):
            return Reach(max(r.size for r in sources), min(r.step for r in sources), False, whole)
        return Reach(max(r.size for r in spatial), min(r.step for r in spatial), True, whole)
    source = sources[0]
    if layer.type == "InnerProduct":
        return Reach(source.size, source.step, spatial=False, whole_picture=True)
    if layer.type in _CONVOLUTIONS:
        kernel, dilation, stride = _kernel(layer)
        size = source.size + (kernel - 1) * dilation * source.step
        return Reach(size, source.step * stride, True, source.whole_picture)
    if layer.type in _DECONVOLUTIONS:
        kernel, dilation, stride = _kernel(layer)
        reads = math.ceil(((kernel - 1) * dilation + 1) / stride)
        return Reach(source.size + (reads - 1) * source.step, source.step / stride, True, source.whole_picture)
    if layer.type == "Pooling":
        return _pooling(layer, source)
    if layer.type == "PixelShuffle":
        factor = int(layer.get(PixelShuffle.UPSCALE_FACTOR, 1))
        return Reach(source.size, source.step / factor, True, source.whole_picture)
    if layer.type == "Interp":
        return _interp(layer, source)
    raise NcnnGraphError(f"no receptive-field rule for layer type {layer.type} ({layer.name})")


def blob_reach(layers: Sequence[LayerSpec]) -> dict[str, Reach]:
    """Every blob's field, by blob name (the Input blobs: one pixel, one pixel apart)."""
    reach: dict[str, Reach] = {}
    for layer in layers:
        if layer.type == "Input":
            reach.update({blob: Reach() for blob in layer.outputs})
            continue
        missing = [blob for blob in layer.inputs if blob not in reach]
        if missing:
            raise NcnnGraphError(f"layer {layer.name} reads blob {missing[0]!r} before anything writes it")
        result = _one(layer, [reach[blob] for blob in layer.inputs])
        reach.update({blob: result for blob in layer.outputs})
    return reach


def receptive_field(layers: Sequence[LayerSpec], blob: str | None = None) -> Reach:
    """The field of ``blob`` (default: the graph's one output, the blob no layer reads)."""
    reach = blob_reach(layers)
    if blob is None:
        read = {name for layer in layers for name in layer.inputs}
        outputs = [name for layer in layers for name in layer.outputs if name not in read]
        if len(outputs) != 1:
            raise NcnnGraphError(f"the graph has {len(outputs)} outputs; name the blob")
        blob = outputs[0]
    if blob not in reach:
        raise NcnnGraphError(f"the graph has no blob {blob!r}")
    return reach[blob]
