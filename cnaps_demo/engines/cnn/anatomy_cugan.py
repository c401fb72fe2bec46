"""Real-CUGAN opened up: a cascade of two U-Nets.

The first U-Net drafts the picture at the output's size; the second reads that draft and
computes a correction, which the graph adds to (a crop of) the draft: ``out = correction +
draft`` is the graph's last layer for x2 and x3. The x4 model ends in a pixel shuffle instead and
the engine adds the input enlarged 4x (nearest): there the sum is enlargement + network output.

Both are found in the parsed graph, not by blob name: the first U-Net ends at its up-sampling
deconvolution (kernel wider than its stride; the U-Nets' inner deconvolutions have kernel ==
stride), and the draft is the addend that comes through a Crop. The levels shown are the runs of
activated layers at one resolution, in graph order, each shown by its last activation (after the
SE block where one ends the level).

Every convolution is unpadded, so a crop that starts on the model's stride grid and carries
``PREPADDING`` real neighbours gives the whole picture's pixels, exactly, once the SE blocks'
whole-picture averages are held fixed: that is the attribution's local forward.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from ...errors import NcnnGraphError
from ...ncnn.param import LayerSpec
from ...ncnn.param_ids import BinaryOp, Convolution
from ..base import Box, Decomposition, LayerActivation, LocalForward, Look
from .anatomy import CnnAnatomy, input_span, pad_like_the_engine, reflect_pads
from .realcugan import ALIGN, PREPADDING, aligned_input, se_statistics

# The whole-picture SE averages for attribution are taken on a copy of at most this many pixels
# (the engine's own tiled runs take them on a downscaled copy too): 0.2-0.7 s on 2 CPU cores.
_SE_PIXELS = 256 * 256
_SE_CACHE_SIZE = 4
_se_cache: OrderedDict = OrderedDict()
_se_lock = threading.Lock()
_SIZE_WORDS = {
    0.25: "4x the input's size",
    0.5: "2x the input's size",
    1.0: "the input's size",
    2.0: "1/2 size",
    4.0: "1/4 size",
}


class CuganAnatomy(CnnAnatomy):
    def __init__(self, loaded, scale: int) -> None:
        super().__init__(loaded, scale)
        self.prepad, self.align = PREPADDING[self.scale], ALIGN[self.scale]
        net = self.net
        boundary = _first_unet_end(net.layers)
        self.levels = _levels(net.layers, self.reach, boundary)
        final = net.producer(net.outputs[0])
        self.draft_blob = self.correction_blob = None
        if final is not None and final.type == "BinaryOp" and int(final.get(BinaryOp.OP_TYPE, 0)) == BinaryOp.ADD:
            cropped = [blob for blob in final.inputs if (net.producer(blob) or final).type == "Crop"]
            if len(cropped) != 1:
                raise NcnnGraphError("the Real-CUGAN graph's last sum has no cropped draft")
            self.draft_blob = cropped[0]
            self.correction_blob = next(blob for blob in final.inputs if blob != self.draft_blob)

    # -- one recorded run ------------------------------------------------------------------

    def look(self, rgb: np.ndarray, on_step=None) -> Look:
        height, width = rgb.shape[:2]
        padded = aligned_input(rgb, self.prepad, self.align)  # as the engine pads a whole picture
        x = self.tensor(padded)
        output_blob = self.net.outputs[0]
        wanted = [blob for blob, _ in self.levels] + [output_blob]
        if self.draft_blob is not None:
            wanted += [self.draft_blob, self.correction_blob]
        blobs = self.run(x, wanted, on_step)
        region = (self.prepad, self.prepad, self.prepad + width, self.prepad + height)
        layers = [
            LayerActivation(
                name,
                self.over_region(blob, blobs[blob], padded.shape[:2], region),
                (int(blobs[blob].shape[1]), int(blobs[blob].shape[2]), int(blobs[blob].shape[3])),
                self.reach[blob].step,
            )
            for blob, name in self.levels
        ]
        s = self.scale
        cut = (0, 0, s * height, s * width)
        if self.draft_blob is not None:
            output = self.output_part(blobs[output_blob], *cut)
            base = self.output_part(blobs[self.draft_blob], *cut)
            residual = self.output_part(blobs[self.correction_blob], *cut)
            # Trained together, the draft need not look like a picture (for the shipped models it sits
            # about half the range darker): the labels say what each addend is, not what it looks like.
            labels = ("the first U-Net's output (its draft)", "the second U-Net's output (its correction)")
        else:  # x4: the engine adds the input enlarged by nearest neighbour to the network's output
            residual = self.output_part(blobs[output_blob], *cut)
            base = np.repeat(np.repeat(np.ascontiguousarray(rgb, dtype=np.float32), s, axis=0), s, axis=1)
            output = residual + base
            labels = (f"plain enlargement (nearest x{s})", "what the two U-Nets draw")
        return Look(layers, Decomposition(base, residual, output, *labels))

    # -- attribution -------------------------------------------------------------------------

    def local(self, rgb: np.ndarray, output_box: Box) -> LocalForward:
        s, prepad, align = self.scale, self.prepad, self.align
        left, top, right, bottom = input_span(output_box, s)
        # Start on the whole picture's stride grid (its network input starts at -prepad), end aligned.
        left, top = left - left % align, top - top % align
        right, bottom = left + -(-(right - left) // align) * align, top + -(-(bottom - top) // align) * align
        wanted = (left - prepad, top - prepad, right + prepad, bottom + prepad)
        real, pads = reflect_pads(wanted, (rgb.shape[1], rgb.shape[0]))
        fixed = self.whole_picture_averages(rgb) if self.net.pool_blobs else None
        row0, col0 = output_box[1] - s * top, output_box[0] - s * left
        rows, cols = output_box[3] - output_box[1], output_box[2] - output_box[0]
        output_blob = self.net.outputs[0]

        def forward(x):
            x = pad_like_the_engine(x.to(self.loaded.device), pads)
            out = self.net.run(x, outputs=[output_blob], overrides=fixed)[output_blob]
            if self.draft_blob is None:  # x4: plus the nearest enlargement, as the engine adds it
                inner = x[:, :, prepad:-prepad, prepad:-prepad]
                out = out + inner.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
            return out[:, :, row0 : row0 + rows, col0 : col0 + cols]

        return LocalForward(real, forward, batch=25)

    def whole_picture_averages(self, rgb: np.ndarray) -> dict:
        """The SE blocks' pooled vectors for the whole picture (kept for the last few pictures)."""
        import torch

        digest = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).hexdigest()
        key = (self.loaded.name, str(self.loaded.device), rgb.shape, digest)
        with _se_lock:
            if key in _se_cache:
                _se_cache.move_to_end(key)
                return _se_cache[key]
        with torch.no_grad():
            pooled, _ = se_statistics(self.loaded, np.ascontiguousarray(rgb, dtype=np.float32), self.scale, _SE_PIXELS)
        with _se_lock:
            _se_cache[key] = pooled
            while len(_se_cache) > _SE_CACHE_SIZE:
                _se_cache.popitem(last=False)
        return pooled


def _first_unet_end(layers: list[LayerSpec]) -> int:
    """Index of the first U-Net's last layer: its up-sampling deconvolution (kernel wider than stride)."""
    for index, layer in enumerate(layers):
        if layer.type == "Deconvolution":
            kernel, stride = int(layer.get(Convolution.KERNEL_W, 1)), int(layer.get(Convolution.STRIDE_W, 1))
            if kernel != stride:
                return index
    raise NcnnGraphError("the Real-CUGAN graph has no up-sampling deconvolution ending its first U-Net")


def _is_feature(layer: LayerSpec) -> bool:
    """An activated convolution, or an SE block's product: what a level of a U-Net shows."""
    if layer.type in ("Convolution", "Deconvolution"):
        return int(layer.get(Convolution.ACTIVATION_TYPE, 0)) != 0
    return layer.type == "BinaryOp" and int(layer.get(BinaryOp.OP_TYPE, 0)) == BinaryOp.MUL


def _levels(layers: list[LayerSpec], reach: dict, boundary: int) -> list[tuple[str, str]]:
    """(blob, plain name) of each U-Net level: a run of feature layers at one resolution."""
    runs: list[tuple[int, float, LayerSpec]] = []  # (U-Net, step, the run's last feature layer)
    for index, layer in enumerate(layers):
        if not _is_feature(layer):
            continue
        unet, step = (1 if index <= boundary else 2), reach[layer.outputs[0]].step
        if runs and runs[-1][0] == unet and runs[-1][1] == step:
            runs[-1] = (unet, step, layer)
        else:
            runs.append((unet, step, layer))
    named = []
    for number, (unet, step, layer) in enumerate(runs):
        before = runs[number - 1] if number and runs[number - 1][0] == unet else None
        where = "first layers" if before is None else ("going down" if step > before[1] else "coming back up")
        size = _SIZE_WORDS.get(step, f"1/{step:g} of the input's size")
        role = "Draft U-Net" if unet == 1 else "Correction U-Net"
        after_se = " (after its SE block)" if layer.type == "BinaryOp" else ""
        named.append((layer.outputs[0], f"{role}, {where}: {size}{after_se}"))
    return named
