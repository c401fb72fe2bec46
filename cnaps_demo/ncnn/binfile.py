"""The ncnn ``.bin`` weight format: read each weighted layer's arrays, in layer order, as float32.

The file is the weighted layers' data back to back, with no names or index: a layer's
parameters in the ``.param`` say how many values it holds. Weights come out named
``"<layer>.weight"``, ``"<layer>.bias"`` and ``"<layer>.slope"`` (NumPy only, no torch).
"""

from __future__ import annotations

import struct
from typing import Callable, Sequence

import numpy as np

from ..errors import NcnnGraphError
from .param import LayerSpec
from .param_ids import Convolution, InnerProduct, PReLU

# The 4-byte flag before a "tagged" array (ncnn ModelBin::load(w, type=0)).
FP16_TAG = 0x01306B47
INT8_TAG = 0x000D4B38
FP32_TAG = 0x0002C056

CONV_TYPES = ("Convolution", "Deconvolution", "ConvolutionDepthWise", "DeconvolutionDepthWise")

# Layers that keep weights in the .bin but that this reader cannot run: refuse them rather
# than read the rest of the file out of step.
_WEIGHTED_UNSUPPORTED = {"BatchNorm", "Scale", "Bias", "MemoryData", "Embed", "LayerNorm", "GroupNorm", "RNN", "LSTM"}


class _BinReader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def _take(self, size: int) -> memoryview:
        if self.offset + size > len(self.data):
            raise NcnnGraphError(
                f".bin file is truncated: needed {size} bytes at offset {self.offset}, file has {len(self.data)}"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def raw(self, count: int) -> np.ndarray:
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        """A 4-byte flag, then fp32 / fp16 / int8 / 8-bit-table data."""
        flag_bytes = bytes(self._take(4))
        (tag,) = struct.unpack("<I", flag_bytes)
        if tag == FP16_TAG:
            size = 2 * count
            data = np.frombuffer(self._take(size), dtype="<f2").astype(np.float32)
            self._take((4 - size % 4) % 4)  # padded to 4 bytes
            return data
        if tag == INT8_TAG:
            raise NcnnGraphError("int8-quantised ncnn weights are not supported")
        if tag == FP32_TAG:
            return self.raw(count)
        if sum(flag_bytes) != 0:  # 256-entry float table + uint8 indices
            table = np.frombuffer(self._take(256 * 4), dtype="<f4")
            indices = np.frombuffer(self._take(count), dtype=np.uint8)
            self._take((4 - count % 4) % 4)
            return table[indices].astype(np.float32)
        return self.raw(count)


def conv_weight_shape(layer: LayerSpec) -> tuple[int, int, int, int]:
    """``out x in_per_group x kh x kw`` for any of the four convolution types (ncnn's weight order)."""
    out_ch = int(layer.get(Convolution.NUM_OUTPUT, 0))
    kw = int(layer.get(Convolution.KERNEL_W, 0))
    kh = int(layer.get(Convolution.KERNEL_H, kw))
    size = int(layer.get(Convolution.WEIGHT_DATA_SIZE, 0))
    if kw * kh * out_ch == 0 or size % (kw * kh * out_ch):
        raise NcnnGraphError(f"{layer.type} {layer.name}: weight size {size} does not fit {out_ch}x?x{kh}x{kw}")
    return out_ch, size // (kw * kh * out_ch), kh, kw


def _read_conv(reader: _BinReader, layer: LayerSpec, weights: dict[str, np.ndarray]) -> None:
    if int(layer.get(Convolution.INT8_SCALE_TERM, 0)):
        raise NcnnGraphError(f"{layer.name}: int8 convolution weights are not supported")
    shape = conv_weight_shape(layer)
    weights[f"{layer.name}.weight"] = reader.tagged(int(np.prod(shape))).reshape(shape)
    if int(layer.get(Convolution.BIAS_TERM, 0)):
        weights[f"{layer.name}.bias"] = reader.raw(shape[0])


def _read_inner_product(reader: _BinReader, layer: LayerSpec, weights: dict[str, np.ndarray]) -> None:
    if int(layer.get(InnerProduct.INT8_SCALE_TERM, 0)):
        raise NcnnGraphError(f"{layer.name}: int8 InnerProduct weights are not supported")
    out_features = int(layer.get(InnerProduct.NUM_OUTPUT, 0))
    size = int(layer.get(InnerProduct.WEIGHT_DATA_SIZE, 0))
    if out_features == 0 or size % out_features:
        raise NcnnGraphError(f"{layer.name}: weight size {size} is not a multiple of {out_features}")
    weights[f"{layer.name}.weight"] = reader.tagged(size).reshape(out_features, size // out_features)
    if int(layer.get(InnerProduct.BIAS_TERM, 0)):
        weights[f"{layer.name}.bias"] = reader.raw(out_features)


def _read_prelu(reader: _BinReader, layer: LayerSpec, weights: dict[str, np.ndarray]) -> None:
    weights[f"{layer.name}.slope"] = reader.raw(int(layer.get(PReLU.NUM_SLOPE, 0)))


_Reader = Callable[[_BinReader, LayerSpec, "dict[str, np.ndarray]"], None]
_READERS: dict[str, _Reader] = {
    **{kind: _read_conv for kind in CONV_TYPES},
    "InnerProduct": _read_inner_product,
    "PReLU": _read_prelu,
}


def read_bin(layers: Sequence[LayerSpec], data: bytes) -> dict[str, np.ndarray]:
    """Read every layer's weights from an ncnn ``.bin`` in layer order; float32 arrays by name."""
    reader = _BinReader(data)
    weights: dict[str, np.ndarray] = {}
    for layer in layers:
        read = _READERS.get(layer.type)
        if read is not None:
            read(reader, layer, weights)
        elif layer.type in _WEIGHTED_UNSUPPORTED:
            raise NcnnGraphError(f"layer type {layer.type} ({layer.name}) is not supported by this reader")
    if reader.offset != len(reader.data):
        raise NcnnGraphError(
            f".bin file has {len(reader.data) - reader.offset} unread bytes: it does not match the .param file"
        )
    return weights


def expected_weight_names(layers: Sequence[LayerSpec]) -> set[str]:
    """The names :func:`read_bin` produces for these layers (used to validate a cache)."""
    names: set[str] = set()
    for layer in layers:
        if layer.type in CONV_TYPES or layer.type == "InnerProduct":
            names.add(f"{layer.name}.weight")
            bias_term = Convolution.BIAS_TERM if layer.type in CONV_TYPES else InnerProduct.BIAS_TERM
            if int(layer.get(bias_term, 0)):
                names.add(f"{layer.name}.bias")
        elif layer.type == "PReLU":
            names.add(f"{layer.name}.slope")
    return names
