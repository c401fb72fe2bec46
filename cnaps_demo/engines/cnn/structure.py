"""A loaded CNN's structure in a few plain blocks, read from its ncnn graph, for the pipeline diagram.

Family-neutral: the blocks come from the layer list and each blob's resolution (``ncnn.reach``),
not from the engine's name.

* A cascade of U-Nets (an up-sampling deconvolution, kernel wider than its stride, ends the first
  one; the sum that adds that first U-Net's output back, through a crop, ends the second) is drawn
  as one block per U-Net, each with one line per level: a run of convolutions at one resolution,
  with its channels and whether a squeeze-and-excitation block pools it over the whole picture.
* Everything else is walked in graph order: runs of identical convolutions fold into one line
  ("16 x (3x3 conv + PReLU), 64 ch"), then pixel shuffles, resizes and sums (a sum
  names what it adds: the input enlarged, or the first U-Net's draft).

``network_structure(net)`` is computed once per loaded network and kept (pure arithmetic over the
layer list: no weights, no run). Each block is a dict of plain values (JSON-safe, like all stage
details): ``label``, ``kind`` ("stack", "unet", "shuffle", "resize", "add"), ``convolutions`` (the
convolution and deconvolution layers it holds), ``levels`` (lines under the label: a U-Net's levels, what
a sum means) and, for a U-Net, ``se_blocks``.
"""

from __future__ import annotations

import weakref
from fractions import Fraction
from typing import Any, Sequence

from ...errors import NcnnGraphError
from ...ncnn.param import LayerSpec
from ...ncnn.param_ids import BinaryOp, Convolution, Interp, PixelShuffle, Pooling
from ...ncnn.reach import Reach, blob_reach, receptive_field

_CONVS = ("Convolution", "Deconvolution")
_ACTIVATIONS = {"PReLU": "PReLU", "ReLU": "ReLU", "Sigmoid": "sigmoid", "TanH": "tanh"}
# ncnn's fused activation (Convolution param 9): 1 ReLU, 2 leaky ReLU, 3 clip, 4 sigmoid.
_FUSED = {1: "ReLU", 2: "leaky ReLU", 3: "clip", 4: "sigmoid", 5: "mish", 6: "hardswish"}
_RESIZES = {Interp.NEAREST: "nearest", Interp.BILINEAR: "bilinear", Interp.BICUBIC: "bicubic"}
TIMES = "\u00d7"

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def network_structure(net: Any) -> dict[str, Any]:
    """``{"blocks": [...], "looks_at": "..."}`` for a loaded ncnn net (``net.layers``), kept per net."""
    if net not in _cache:
        _cache[net] = describe(net.layers)
    return _cache[net]


def describe(layers: Sequence[LayerSpec]) -> dict[str, Any]:
    """The blocks and the receptive-field sentence of a parsed graph."""
    graph = _Graph(layers)
    boundary = graph.first_upsampling_deconvolution()
    if boundary is None:
        blocks = graph.walk(0, len(layers))
    else:
        end = graph.draft_sum(boundary)
        blocks = [graph.unet(0, boundary + 1, "U-Net 1 (draft)"), graph.unet(boundary + 1, end, "U-Net 2 (correction)")]
        blocks += graph.walk(end, len(layers))
    return {"blocks": blocks, "looks_at": _looks_at(receptive_field(layers))}


def _looks_at(field: Reach) -> str:
    side = f"{field.pixels}{TIMES}{field.pixels}"
    if field.whole_picture:
        return f"the whole picture (SE), mostly {side} px"
    return f"{side} input pixels per output pixel"


def _size_words(step: float) -> str:
    """A resolution relative to the network's input: "input size", "1/2 size", "3/4 size", "2x size"."""
    ratio = Fraction(1 / step).limit_denominator(16)
    if ratio == 1:
        return "input size"
    if ratio.denominator == 1:
        return f"{ratio.numerator}{TIMES} size"
    if ratio < 1:
        return f"{ratio.numerator}/{ratio.denominator} size"
    return f"{float(ratio):g}{TIMES} size"


class _Graph:
    def __init__(self, layers: Sequence[LayerSpec]) -> None:
        self.layers = list(layers)
        self.reach = blob_reach(self.layers)
        self.producer = {blob: layer for layer in self.layers for blob in layer.outputs}
        self.readers: dict[str, list[LayerSpec]] = {}
        for layer in self.layers:
            for blob in layer.inputs:
                self.readers.setdefault(blob, []).append(layer)
        self.inputs = [blob for layer in self.layers if layer.type == "Input" for blob in layer.outputs]
        self.draft = ""

    def source(self, blob: str) -> str:
        """``blob`` followed back through splits and crops (which move no values)."""
        while (layer := self.producer.get(blob)) is not None and layer.type in ("Split", "Crop"):
            blob = layer.inputs[0]
        return blob

    def first_upsampling_deconvolution(self) -> int | None:
        for index, layer in enumerate(self.layers):
            if layer.type == "Deconvolution":
                if int(layer.get(Convolution.KERNEL_W, 1)) != int(layer.get(Convolution.STRIDE_W, 1)):
                    return index
        return None

    def draft_sum(self, boundary: int) -> int:
        """Index of the sum that adds the first U-Net's output back: where the second one ends."""
        self.draft = self.layers[boundary].outputs[0]
        for index in range(boundary + 1, len(self.layers)):
            layer = self.layers[index]
            if _is_add(layer) and any(self.source(blob) == self.draft for blob in layer.inputs):
                return index
        raise NcnnGraphError("the U-Net cascade has no sum that adds the first U-Net's output back")

    def unet(self, start: int, stop: int, label: str) -> dict[str, Any]:
        """One U-Net: a line per level (a run of convolutions at one resolution)."""
        levels: list[dict[str, Any]] = []
        for layer in self.layers[start:stop]:
            if layer.type == "Pooling" and int(layer.get(Pooling.GLOBAL_POOLING, 0)) and levels:
                levels[-1]["se"] += 1
            if layer.type not in _CONVS:
                continue
            step = self.reach[layer.outputs[0]].step
            if not levels or levels[-1]["step"] != step:
                levels.append({"step": step, "convs": 0, "channels": 0, "se": 0})
            levels[-1]["convs"] += 1
            levels[-1]["channels"] = max(levels[-1]["channels"], int(layer.get(Convolution.NUM_OUTPUT, 0)))
        lines = []
        for number, level in enumerate(levels):
            arrow = "" if number == 0 else ("\u2193 " if level["step"] > levels[number - 1]["step"] else "\u2191 ")
            text = f"{arrow}{_size_words(level['step'])}: {level['convs']} conv, {level['channels']} ch"
            lines.append(text + (" + SE pooling" if level["se"] else ""))
        return {
            "label": label,
            "kind": "unet",
            "convolutions": sum(level["convs"] for level in levels),
            "se_blocks": sum(level["se"] for level in levels),
            "levels": lines,
        }

    def walk(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Blocks for a plain stretch of the graph, in graph order."""
        blocks: list[dict[str, Any]] = []
        for layer in self.layers[start:stop]:
            if layer.type in _CONVS:
                self._convolution(layer, blocks)
            elif layer.type == "PixelShuffle":
                factor = int(layer.get(PixelShuffle.UPSCALE_FACTOR, 1))
                channels = self._channels(layer.inputs[0])
                text = f"pixel shuffle: {channels} ch \u2192 {channels // factor**2} ch at {factor}{TIMES} size"
                blocks.append({"label": text, "kind": "shuffle", "convolutions": 0})
            elif layer.type == "Interp" and not self._feeds_a_sum_only(layer):
                blocks.append({"label": f"resize {self._resize_words(layer)}", "kind": "resize", "convolutions": 0})
            elif _is_add(layer):
                label, why = self._sum_words(layer)
                blocks.append({"label": label, "kind": "add", "convolutions": 0, "levels": [why] if why else []})
        return blocks

    def _convolution(self, layer: LayerSpec, blocks: list[dict[str, Any]]) -> None:
        kernel, channels = int(layer.get(Convolution.KERNEL_W, 1)), int(layer.get(Convolution.NUM_OUTPUT, 0))
        kind = "deconv" if layer.type == "Deconvolution" else "conv"
        activation = _FUSED.get(int(layer.get(Convolution.ACTIVATION_TYPE, 0)))
        after = self.readers.get(layer.outputs[0], [])
        if activation is None and len(after) == 1:
            activation = _ACTIVATIONS.get(after[0].type)
        what = f"{kernel}{TIMES}{kernel} {kind}" + (f" + {activation}" if activation else "")
        last = blocks[-1] if blocks else None
        if last is not None and last.get("unit") == what and last.get("channels") == channels:
            last["convolutions"] += 1
            last["label"] = f"{last['convolutions']} {TIMES} ({what}), {channels} ch"
            return
        blocks.append({"label": f"{what}, {channels} ch", "kind": "stack", "convolutions": 1,
                       "unit": what, "channels": channels})

    def _channels(self, blob: str) -> int:
        layer = self.producer.get(self.source(blob))
        return int(layer.get(Convolution.NUM_OUTPUT, 0)) if layer is not None and layer.type in _CONVS else 0

    def _feeds_a_sum_only(self, layer: LayerSpec) -> bool:
        readers = self.readers.get(layer.outputs[0], [])
        return bool(readers) and all(_is_add(reader) for reader in readers)

    def _resize_words(self, layer: LayerSpec) -> str:
        kind = _RESIZES.get(int(layer.get(Interp.RESIZE_TYPE, Interp.NEAREST)), "resize")
        return f"{TIMES}{float(layer.get(Interp.HEIGHT_SCALE, 1.0)):g} ({kind})"

    def _sum_words(self, layer: LayerSpec) -> tuple[str, str]:
        """What a sum adds to the network's picture: the input enlarged, or the first U-Net's draft."""
        for blob in layer.inputs:
            origin = self.source(blob)
            if origin == self.draft:
                return "+ U-Net 1's draft", "U-Net 2 draws only a correction"
            maker = self.producer.get(origin)
            if maker is not None and maker.type == "Interp" and self.source(maker.inputs[0]) in self.inputs:
                return f"+ the input enlarged {self._resize_words(maker)}", "the network draws only the difference"
        return "+ a skip connection", ""


def _is_add(layer: LayerSpec) -> bool:
    return layer.type == "BinaryOp" and int(layer.get(BinaryOp.OP_TYPE, 0)) == BinaryOp.ADD and len(layer.inputs) == 2
