"""Real-ESRGAN animevideov3 (SRVGGNetCompact) opened up.

The graph, as shipped: a chain of 3x3 convolutions, each but the last followed by a PReLU, all at
the input's resolution; a pixel shuffle of the last convolution's 3 x r x r channels into a picture
r times larger; that picture added to the input enlarged r times (nearest); and, for x2 and x3, a
bicubic resize of the sum. The resize is linear, so the output is exactly the resized enlargement
("base") plus the resized network picture ("residual"): both are computed by the graph's own resize
layer (a blob override), so nothing is re-implemented.

For attribution the convolution chain runs without padding ("valid") on a crop: each layer keeps
only the pixels its zero padding cannot reach, so the window's pixels equal a whole-picture run's,
at a third of the cost of padded layers on the same crop.
"""

from __future__ import annotations

import numpy as np

from ...ncnn.param import LayerSpec
from ...ncnn.param_ids import BinaryOp, Convolution, PixelShuffle
from ..base import Box, Decomposition, LayerActivation, LocalForward, Look
from .anatomy import CnnAnatomy, input_span, pad_like_the_engine, reflect_pads
from .realesrgan import _CONTEXT

# Feature stages shown, spread evenly from the first to the last PReLU.
_SHOWN_STAGES = 5


class EsrganAnatomy(CnnAnatomy):
    def __init__(self, loaded, scale: int) -> None:
        super().__init__(loaded, scale)
        net = self.net
        self.chain = body_chain(net)
        self.pre_shuffle = self.chain[-1][0].outputs[0]
        final = net.producer(net.outputs[0])
        self.resize = final if final is not None and final.type == "Interp" else None
        add = net.producer(self.resize.inputs[0]) if self.resize else final
        if add is None or add.type != "BinaryOp" or int(add.get(BinaryOp.OP_TYPE, 0)) != BinaryOp.ADD:
            raise _unexpected(net, "its output is not an enlargement plus the network's picture")
        kinds = {blob: net.producer(blob) for blob in add.inputs}
        enlarged = [blob for blob, layer in kinds.items() if layer is not None and layer.type == "Interp"]
        drawn = [blob for blob, layer in kinds.items() if layer is not None and layer.type == "PixelShuffle"]
        if len(enlarged) != 1 or len(drawn) != 1:
            raise _unexpected(net, "the final sum is not a pixel shuffle plus an enlargement")
        self.sum_blob, self.base_blob, self.drawn_blob = add.outputs[0], enlarged[0], drawn[0]
        self.shuffle = int(net.producer(self.drawn_blob).get(PixelShuffle.UPSCALE_FACTOR, 1))
        features = [prelu.outputs[0] for _, prelu in self.chain if prelu is not None]
        picks = sorted({round(v) for v in np.linspace(0, len(features) - 1, min(_SHOWN_STAGES, len(features)))})
        self.shown = [(features[index], index + 1, len(features)) for index in picks]

    # -- one recorded run ------------------------------------------------------------------

    def look(self, rgb: np.ndarray, on_step=None) -> Look:
        height, width = rgb.shape[:2]
        context = _CONTEXT  # what the engine pads each piece with
        mode = "reflect" if min(height, width) > context else "edge"
        padded = np.pad(rgb, ((context, context), (context, context), (0, 0)), mode=mode)
        x = self.tensor(padded)
        wanted = [blob for blob, _, _ in self.shown] + [self.pre_shuffle, self.base_blob, self.drawn_blob]
        output_blob = self.net.outputs[0]
        blobs = self.run(x, wanted + [output_blob], on_step)
        base, drawn = blobs[self.base_blob], blobs[self.drawn_blob]
        if self.resize is not None:  # the graph's own resize, run on each addend
            base = self.run(x, [output_blob], overrides={self.sum_blob: base})[output_blob]
            drawn = self.run(x, [output_blob], overrides={self.sum_blob: drawn})[output_blob]
        network_input = (height + 2 * context, width + 2 * context)
        region = (context, context, context + width, context + height)
        layers = [
            LayerActivation(
                f"Layer {number} of {count}: 3x3 convolution + PReLU",
                self.over_region(blob, blobs[blob], network_input, region),
                _shape(blobs[blob]),
                self.reach[blob].step,
            )
            for blob, number, count in self.shown
        ]
        channels = int(blobs[self.pre_shuffle].shape[1])
        layers.append(
            LayerActivation(
                f"Last convolution: {channels} channels = {channels // (self.shuffle**2)} colours x "
                f"{self.shuffle}x{self.shuffle} sub-pixels, before the pixel shuffle",
                self.over_region(self.pre_shuffle, blobs[self.pre_shuffle], network_input, region),
                _shape(blobs[self.pre_shuffle]),
                self.reach[self.pre_shuffle].step,
            )
        )
        s = self.scale
        cut = (s * context, s * context, s * height, s * width)
        decomposition = Decomposition(
            base=self.output_part(base, *cut),
            residual=self.output_part(drawn, *cut),
            output=self.output_part(blobs[output_blob], *cut),
            base_label=f"plain enlargement (nearest x{self.shuffle}" + (", bicubic resize)" if self.resize else ")"),
            residual_label="what the network draws",
        )
        return Look(layers, decomposition)

    # -- attribution -------------------------------------------------------------------------

    def local(self, rgb: np.ndarray, output_box: Box) -> LocalForward:
        import torch.nn.functional as F

        s, depth = self.scale, len(self.chain)
        # The chain eats one pixel a side per layer; a final resize reads one input pixel further.
        margin = depth + (1 if self.resize is not None else 0)
        left, top, right, bottom = input_span(output_box, s)
        wanted = (left - margin, top - margin, right + margin, bottom + margin)
        real, pads = reflect_pads(wanted, (rgb.shape[1], rgb.shape[0]))
        module = self.net.module_of
        modules = [(module(conv.name), prelu and module(prelu.name)) for conv, prelu in self.chain]
        # The tail's first output pixel sits over input pixel wanted + depth (the chain ate `depth` a side).
        row0, col0 = output_box[1] - s * (wanted[1] + depth), output_box[0] - s * (wanted[0] + depth)
        rows, cols = output_box[3] - output_box[1], output_box[2] - output_box[0]
        output_blob, source = self.net.outputs[0], self.net.inputs[0]

        def forward(x):
            x = pad_like_the_engine(x.to(self.loaded.device), pads)
            body = x
            for conv, prelu in modules:
                body = F.conv2d(body, conv.weight, conv.bias)
                if prelu is not None:
                    body = F.prelu(body, prelu.weight)
            inner = x[:, :, depth:-depth, depth:-depth]
            out = self.net.run({source: inner}, outputs=[output_blob], overrides={self.pre_shuffle: body})[output_blob]
            return out[:, :, row0 : row0 + rows, col0 : col0 + cols]

        return LocalForward(real, forward, batch=10)


def body_chain(net) -> list[tuple[LayerSpec, LayerSpec | None]]:
    """(convolution, the PReLU after it or None) from the input onwards, while the graph is a plain
    chain of 3x3 stride-1 padding-1 convolutions: SRVGGNetCompact's body."""
    readers: dict[str, list[LayerSpec]] = {}
    for layer in net.layers:
        for blob in layer.inputs:
            readers.setdefault(blob, []).append(layer)

    def consumers(blob: str) -> list[LayerSpec]:
        """The layers reading ``blob`` or a Split copy of it."""
        found = []
        for layer in readers.get(blob, []):
            if layer.type == "Split":
                found.extend(reader for out in layer.outputs for reader in consumers(out))
            else:
                found.append(layer)
        return found

    chain: list[tuple[LayerSpec, LayerSpec | None]] = []
    blob = net.inputs[0]
    while True:
        convs = [layer for layer in consumers(blob) if layer.type == "Convolution"]
        if len(convs) != 1 or not _same_size_3x3(convs[0]):
            break
        after = consumers(convs[0].outputs[0])
        prelu = after[0] if len(after) == 1 and after[0].type == "PReLU" else None
        chain.append((convs[0], prelu))
        if prelu is None:
            break
        blob = prelu.outputs[0]
    if len(chain) < 2 or chain[-1][1] is not None:
        raise _unexpected(net, "its body is not a chain of 3x3 convolutions")
    return chain


def _same_size_3x3(layer: LayerSpec) -> bool:
    p = layer.get
    return (
        layer.type == "Convolution"
        and int(p(Convolution.KERNEL_W, 0)) == 3
        and int(p(Convolution.KERNEL_H, 3)) == 3
        and int(p(Convolution.STRIDE_W, 1)) == 1
        and int(p(Convolution.DILATION_W, 1)) == 1
        and int(p(Convolution.PAD_LEFT, 0)) == 1
        and int(p(Convolution.PAD_TOP, 1)) == 1
        and int(p(Convolution.ACTIVATION_TYPE, 0)) == 0
    )


def _shape(value) -> tuple[int, int, int]:
    return int(value.shape[1]), int(value.shape[2]), int(value.shape[3])


def _unexpected(net, what: str):
    from ...errors import NcnnGraphError

    return NcnnGraphError(f"the Real-ESRGAN graph is not the SRVGGNetCompact this view knows: {what}")
