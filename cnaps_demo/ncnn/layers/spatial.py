"""Builders for the layers that change the spatial size: Pooling, Interp, PixelShuffle."""

from __future__ import annotations

from ...errors import NcnnGraphError
from ..param import LayerSpec
from ..param_ids import Interp, PixelShuffle, Pooling
from .base import Built, Weights


def build_pooling(layer: LayerSpec, weights: Weights) -> Built:
    import torch.nn.functional as F

    p = layer.get
    kind = int(p(Pooling.POOLING_TYPE, Pooling.MAX))
    if int(p(Pooling.GLOBAL_POOLING, 0)):
        if kind == Pooling.AVG:
            return Built(_global_mean)
        return Built(lambda xs: [xs[0].amax(dim=(2, 3), keepdim=True)])
    if int(p(Pooling.ADAPTIVE_POOLING, 0)):
        raise NcnnGraphError(f"{layer.name}: adaptive pooling is not supported")
    kw = int(p(Pooling.KERNEL_W, 0))
    kh = int(p(Pooling.KERNEL_H, kw))
    sw = int(p(Pooling.STRIDE_W, 1))
    sh = int(p(Pooling.STRIDE_H, sw))
    left = int(p(Pooling.PAD_LEFT, 0))
    right, top = int(p(Pooling.PAD_RIGHT, left)), int(p(Pooling.PAD_TOP, left))
    bottom = int(p(Pooling.PAD_BOTTOM, top))
    if int(p(Pooling.PAD_MODE, 0)) != Pooling.PAD_VALID and (left or right or top or bottom):
        raise NcnnGraphError(f"{layer.name}: pooling pad_mode {p(Pooling.PAD_MODE, 0)} is not supported")

    def pool(xs):
        x = F.pad(xs[0], (left, right, top, bottom))
        if kind == Pooling.MAX:
            return [F.max_pool2d(x, (kh, kw), (sh, sw))]
        return [F.avg_pool2d(x, (kh, kw), (sh, sw))]

    return Built(pool)


def _global_mean(xs):
    """Global average pooling, accumulated in fp32 whatever the blob's dtype."""
    import torch

    x = xs[0]
    n, c, h, w = x.shape
    if x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.permute(0, 2, 3, 1).is_contiguous():
        # bf16 channels_last on the CPU: a ones-vector product (oneDNN accumulates in
        # fp32) instead of upcasting the whole map, ~10x faster for Real-CUGAN's SE maps.
        flat = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        total = torch.bmm(torch.ones(n, 1, h * w, dtype=x.dtype), flat)
        return [(total.float() / (h * w)).view(n, c, 1, 1).to(x.dtype)]
    return [x.float().mean(dim=(2, 3), keepdim=True).to(x.dtype)]


_INTERP_MODES = {Interp.NEAREST: "nearest", Interp.BILINEAR: "bilinear", Interp.BICUBIC: "bicubic"}


def build_interp(layer: LayerSpec, weights: Weights) -> Built:
    import torch.nn.functional as F

    p = layer.get
    kind = int(p(Interp.RESIZE_TYPE, 0))
    h_scale, w_scale = float(p(Interp.HEIGHT_SCALE, 1.0)), float(p(Interp.WIDTH_SCALE, 1.0))
    out_h, out_w = int(p(Interp.OUTPUT_HEIGHT, 0)), int(p(Interp.OUTPUT_WIDTH, 0))
    align = bool(int(p(Interp.ALIGN_CORNER, 0)))
    if int(p(Interp.DYNAMIC_TARGET_SIZE, 0)):
        raise NcnnGraphError(f"{layer.name}: dynamic Interp target size is not supported")
    if kind not in _INTERP_MODES:
        raise NcnnGraphError(f"Interp resize type {kind} ({layer.name}) is not supported")
    mode = _INTERP_MODES[kind]

    def interp(xs):
        x = xs[0]
        h, w = x.shape[2], x.shape[3]
        size = (out_h or int(h * h_scale), out_w or int(w * w_scale))
        if mode == "nearest":
            if size[0] % h == 0 and size[1] % w == 0:
                # Whole-number factors: a broadcast copy, exact and faster than interpolate.
                fh, fw = size[0] // h, size[1] // w
                n, c = x.shape[:2]
                y = x[:, :, :, None, :, None].expand(n, c, h, fh, w, fw)
                return [y.reshape(n, c, size[0], size[1])]
            return [F.interpolate(x, size=size, mode="nearest")]
        dtype = x.dtype
        y = F.interpolate(x.float(), size=size, mode=mode, align_corners=align)
        return [y.to(dtype)]

    return Built(interp)


def build_pixel_shuffle(layer: LayerSpec, weights: Weights) -> Built:
    """Mode 0 is torch's channel order (c, fy, fx); mode 1 is (fy, fx, c)."""
    import torch.nn.functional as F

    factor = int(layer.get(PixelShuffle.UPSCALE_FACTOR, 1))
    mode = int(layer.get(PixelShuffle.MODE, 0))

    def shuffle(xs):
        x = xs[0]
        if mode == 0:
            return [F.pixel_shuffle(x, factor)]
        n, c, h, w = x.shape
        oc = c // (factor * factor)
        x = x.reshape(n, factor, factor, oc, h, w).permute(0, 3, 4, 1, 5, 2)
        return [x.reshape(n, oc, h * factor, w * factor)]

    return Built(shuffle)


BUILDERS = {
    "Pooling": build_pooling,
    "Interp": build_interp,
    "PixelShuffle": build_pixel_shuffle,
}
