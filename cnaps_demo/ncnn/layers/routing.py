"""Builders for the layers that only route or cut blobs: Input, Noop, Split, Concat, Crop.

Blobs are ``N x C x H x W``; ncnn's axes count from C (axis 0 = C, 1 = H, 2 = W).
"""

from __future__ import annotations

from ..param import LayerSpec
from ..param_ids import Concat, Crop
from .base import Built, Weights


def build_input(layer: LayerSpec, weights: Weights) -> Built:
    return Built(None)  # the net checks the caller gave the blob


def build_noop(layer: LayerSpec, weights: Weights) -> Built:
    return Built(None)  # the net aliases output to input


def build_split(layer: LayerSpec, weights: Weights) -> Built:
    count = len(layer.outputs)
    return Built(lambda xs: [xs[0]] * count)


def build_concat(layer: LayerSpec, weights: Weights) -> Built:
    import torch

    dim = (int(layer.get(Concat.AXIS, 0)) % 3) + 1
    return Built(lambda xs: [torch.cat(xs, dim=dim)])


def build_crop(layer: LayerSpec, weights: Weights) -> Built:
    """A numpy-style slice (starts/ends/axes) if given, else offsets and sizes (or a reference blob)."""
    starts = layer.get(Crop.STARTS)
    ends = layer.get(Crop.ENDS)
    if starts is not None or ends is not None:
        return _crop_slices(layer, list(starts or []), list(ends or []))
    return _crop_offsets(layer)


def _resolve_slice(start: int, end: int, size: int) -> tuple[int, int]:
    if start < 0:
        start += size
    if end == Crop.END_OF_AXIS or end >= 2**30:
        end = size
    elif end <= 0:
        end += size
    start = max(0, min(start, size))
    end = max(start, min(end, size))
    return start, end


def _crop_slices(layer: LayerSpec, starts: list, ends: list) -> Built:
    axes = layer.get(Crop.AXES)
    axes = list(axes) if axes else list(range(len(starts)))

    def crop(xs):
        x = xs[0]
        index: list[slice] = [slice(None)] * x.dim()
        for axis, start, end in zip(axes, starts, ends):
            dim = (int(axis) % 3) + 1
            s, e = _resolve_slice(int(start), int(end), x.shape[dim])
            index[dim] = slice(s, e)
        return [x[tuple(index)]]

    return Built(crop)


def _crop_offsets(layer: LayerSpec) -> Built:
    p = layer.get
    woff, hoff, coff = int(p(Crop.WOFFSET, 0)), int(p(Crop.HOFFSET, 0)), int(p(Crop.COFFSET, 0))
    outw, outh, outc = int(p(Crop.OUTW, 0)), int(p(Crop.OUTH, 0)), int(p(Crop.OUTC, 0))
    woff2, hoff2, coff2 = int(p(Crop.WOFFSET2, 0)), int(p(Crop.HOFFSET2, 0)), int(p(Crop.COFFSET2, 0))

    def crop(xs):
        x = xs[0]
        if len(xs) > 1:  # crop to the reference blob's size
            ref = xs[1]
            return [x[:, coff : coff + ref.shape[1], hoff : hoff + ref.shape[2], woff : woff + ref.shape[3]]]
        _, c, h, w = x.shape
        # A size > 0 is absolute, < 0 is relative to the input, 0 means "up to the tail offset".
        ow = outw if outw > 0 else (w + outw if outw < 0 else w - woff - woff2)
        oh = outh if outh > 0 else (h + outh if outh < 0 else h - hoff - hoff2)
        oc = outc if outc > 0 else (c + outc if outc < 0 else c - coff - coff2)
        return [x[:, coff : coff + oc, hoff : hoff + oh, woff : woff + ow]]

    return Built(crop)


BUILDERS = {
    "Input": build_input,
    "Noop": build_noop,
    "Split": build_split,
    "Concat": build_concat,
    "Crop": build_crop,
}
