"""Read an ncnn model (``.param`` text + ``.bin`` weights) and run it as a PyTorch module.

Two halves:

* :func:`parse_param` and :func:`read_bin` are plain Python/NumPy (no torch): they turn the
  files into a list of :class:`LayerSpec` and a dict of float32 weight arrays named
  ``"<layer>.weight"``, ``"<layer>.bias"``, ``"<layer>.slope"``. ``weights.py`` caches that
  dict as safetensors.
* :class:`NcnnNet` (built by :func:`build_module`) executes the layer DAG in PyTorch. Conv
  weights live in real ``nn.Conv2d`` / ``nn.ConvTranspose2d`` modules, so ``.to(memory_format=
  torch.channels_last)`` and bf16/fp16 work as usual.

Blobs are 4-D ``N x C x H x W`` tensors; an ncnn 1-D blob (a global-pooled vector or an
InnerProduct output) is kept as ``N x C x 1 x 1`` so that BinaryOp's "1-D vector times
C x H x W blob" broadcast is ordinary torch broadcasting.

:meth:`NcnnNet.run` works like an ncnn Extractor: ask for any blobs by name, and override
any blob with a fixed value (its producers are then skipped). Real-CUGAN's tiled runs use
this to feed whole-image SE vectors (``gap0``..``gap3``) to every tile.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import NcnnGraphError

MAGIC = 7767517
FP16_TAG = 0x01306B47
INT8_TAG = 0x000D4B38
FP32_TAG = 0x0002C056

ParamValue = Any  # int | float | list[int | float]


@dataclass
class LayerSpec:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, ParamValue] = field(default_factory=dict)

    def get(self, key: int, default: ParamValue = None) -> ParamValue:
        return self.params.get(key, default)


# --- .param ------------------------------------------------------------------


def _number(text: str) -> int | float:
    text = text.strip()
    if any(ch in text for ch in ".eE") and not text.lstrip("+-").isdigit():
        return float(text)
    return int(text)


def parse_param(text: str) -> list[LayerSpec]:
    """Parse the text of an ncnn ``.param`` file (magic 7767517)."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0] != str(MAGIC):
        raise NcnnGraphError(f"not an ncnn .param file (first line {lines[0] if lines else ''!r}, expected {MAGIC})")
    if len(lines) < 2:
        raise NcnnGraphError("ncnn .param file has no layer/blob count line")
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except ValueError:
        raise NcnnGraphError(f"bad layer/blob count line {lines[1]!r}") from None
    layers: list[LayerSpec] = []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) < 4:
            raise NcnnGraphError(f"line {number}: too few fields in {line!r}")
        layer_type, name = fields[0], fields[1]
        try:
            n_in, n_out = int(fields[2]), int(fields[3])
        except ValueError:
            raise NcnnGraphError(f"line {number}: bad input/output counts in {line!r}") from None
        rest = fields[4:]
        if len(rest) < n_in + n_out:
            raise NcnnGraphError(f"line {number}: expected {n_in + n_out} blob names in {line!r}")
        inputs, outputs = rest[:n_in], rest[n_in : n_in + n_out]
        params: dict[int, ParamValue] = {}
        for item in rest[n_in + n_out :]:
            key_text, sep, value_text = item.partition("=")
            if not sep:
                raise NcnnGraphError(f"line {number}: parameter {item!r} has no '='")
            try:
                key = int(key_text)
                if key <= -23300:  # array parameter: -233xx=n,v1,v2,...
                    values = value_text.split(",")
                    count = int(values[0])
                    items = [_number(v) for v in values[1:]]
                    if len(items) != count:
                        raise NcnnGraphError(f"line {number}: array {item!r} declares {count} values")
                    params[-key - 23300] = items
                else:
                    params[key] = _number(value_text)
            except ValueError:
                raise NcnnGraphError(f"line {number}: cannot parse parameter {item!r}") from None
        layers.append(LayerSpec(layer_type, name, inputs, outputs, params))
    if len(layers) != layer_count:
        raise NcnnGraphError(f".param declares {layer_count} layers but lists {len(layers)}")
    return layers


# --- .bin --------------------------------------------------------------------


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
        """ncnn ModelBin::load(w, type=0): a 4-byte flag, then fp32 / fp16 / int8 / 8-bit table data."""
        flag_bytes = bytes(self._take(4))
        (tag,) = struct.unpack("<I", flag_bytes)
        if tag == FP16_TAG:
            size = 2 * count
            data = np.frombuffer(self._take(size), dtype="<f2").astype(np.float32)
            self._take((4 - size % 4) % 4)
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


def _conv_weight_shape(layer: LayerSpec, transposed: bool) -> tuple[int, int, int, int]:
    out_ch = int(layer.get(0, 0))
    kw = int(layer.get(1, 0))
    kh = int(layer.get(11, kw))
    size = int(layer.get(6, 0))
    groups = int(layer.get(7, 1)) if layer.type.endswith("DepthWise") else 1
    if kw * kh * out_ch == 0 or size % (kw * kh * out_ch):
        raise NcnnGraphError(f"{layer.type} {layer.name}: weight size {size} does not fit {out_ch}x?x{kh}x{kw}")
    in_per_group = size // (kw * kh * out_ch)
    del transposed, groups
    return out_ch, in_per_group, kh, kw


def read_bin(layers: Sequence[LayerSpec], data: bytes) -> dict[str, np.ndarray]:
    """Read every layer's weights from an ncnn ``.bin`` in layer order; float32 arrays by name."""
    reader = _BinReader(data)
    weights: dict[str, np.ndarray] = {}
    for layer in layers:
        if layer.type in ("Convolution", "Deconvolution", "ConvolutionDepthWise", "DeconvolutionDepthWise"):
            if int(layer.get(8, 0)):
                raise NcnnGraphError(f"{layer.name}: int8 convolution weights are not supported")
            shape = _conv_weight_shape(layer, layer.type.startswith("Deconv"))
            weights[f"{layer.name}.weight"] = reader.tagged(int(np.prod(shape))).reshape(shape)
            if int(layer.get(5, 0)):
                weights[f"{layer.name}.bias"] = reader.raw(shape[0])
        elif layer.type == "InnerProduct":
            if int(layer.get(8, 0)):
                raise NcnnGraphError(f"{layer.name}: int8 InnerProduct weights are not supported")
            out_features = int(layer.get(0, 0))
            size = int(layer.get(2, 0))
            if out_features == 0 or size % out_features:
                raise NcnnGraphError(f"{layer.name}: weight size {size} is not a multiple of {out_features}")
            weights[f"{layer.name}.weight"] = reader.tagged(size).reshape(out_features, size // out_features)
            if int(layer.get(1, 0)):
                weights[f"{layer.name}.bias"] = reader.raw(out_features)
        elif layer.type == "PReLU":
            weights[f"{layer.name}.slope"] = reader.raw(int(layer.get(0, 0)))
        elif layer.type in _WEIGHTED_UNSUPPORTED:
            raise NcnnGraphError(f"layer type {layer.type} ({layer.name}) is not supported by this reader")
    if reader.offset != len(reader.data):
        raise NcnnGraphError(
            f".bin file has {len(reader.data) - reader.offset} unread bytes: it does not match the .param file"
        )
    return weights


_WEIGHTED_UNSUPPORTED = {"BatchNorm", "Scale", "Bias", "MemoryData", "Embed", "LayerNorm", "GroupNorm", "RNN", "LSTM"}


def expected_weight_names(layers: Sequence[LayerSpec]) -> set[str]:
    """The names :func:`read_bin` produces for these layers (used to validate a cache)."""
    names: set[str] = set()
    for layer in layers:
        if layer.type in ("Convolution", "Deconvolution", "ConvolutionDepthWise", "DeconvolutionDepthWise"):
            names.add(f"{layer.name}.weight")
            if int(layer.get(5, 0)):
                names.add(f"{layer.name}.bias")
        elif layer.type == "InnerProduct":
            names.add(f"{layer.name}.weight")
            if int(layer.get(1, 0)):
                names.add(f"{layer.name}.bias")
        elif layer.type == "PReLU":
            names.add(f"{layer.name}.slope")
    return names


def global_pool_blobs(layers: Sequence[LayerSpec]) -> list[str]:
    """Outputs of global-pooling layers, in graph order (Real-CUGAN's SE vectors)."""
    return [layer.outputs[0] for layer in layers if layer.type == "Pooling" and int(layer.get(4, 0))]


# --- torch execution ---------------------------------------------------------

SUPPORTED_LAYERS = frozenset(
    {
        "Input",
        "Convolution",
        "ConvolutionDepthWise",
        "Deconvolution",
        "DeconvolutionDepthWise",
        "InnerProduct",
        "Pooling",
        "BinaryOp",
        "Eltwise",
        "Crop",
        "Split",
        "Concat",
        "Interp",
        "PReLU",
        "PixelShuffle",
        "ReLU",
        "Sigmoid",
        "Clip",
        "TanH",
        "Noop",
    }
)


def build_module(layers: Sequence[LayerSpec], weights: Mapping[str, Any]):
    """Return an :class:`NcnnNet` (a ``torch.nn.Module``) for the parsed graph and weights."""
    return NcnnNet(layers, weights)


def _torch():
    import torch

    return torch


def _activation(kind: int, params: Sequence[float]):
    """ncnn fused activation (param 9 / 10) as a callable, or None.

    The callers apply it to the layer's own freshly computed output, so it works in place
    (one pass over memory and no new allocation) unless autograd needs the input.
    """
    import torch.nn.functional as F

    torch = _torch()
    if kind == 0:
        return None
    if kind == 1:
        fn, fn_ = F.relu, torch.relu_
    elif kind == 2:
        slope = float(params[0]) if params else 0.0
        fn, fn_ = (lambda x: F.leaky_relu(x, slope)), (lambda x: F.leaky_relu_(x, slope))
    elif kind == 3:
        low, high = float(params[0]), float(params[1])
        fn, fn_ = (lambda x: x.clamp(low, high)), (lambda x: x.clamp_(low, high))
    elif kind == 4:
        fn, fn_ = torch.sigmoid, torch.sigmoid_
    elif kind == 5:
        fn, fn_ = F.mish, (lambda x: F.mish(x, inplace=True))
    elif kind == 6:
        alpha, beta = (float(params[0]), float(params[1])) if params else (0.2, 0.5)
        return lambda x: x * (x * alpha + beta).clamp(0.0, 1.0)
    else:
        raise NcnnGraphError(f"activation type {kind} is not supported")

    def act(x):
        if x.requires_grad and torch.is_grad_enabled():
            return fn(x)
        return fn_(x)

    return act


def _resolve_slice(start: int, end: int, size: int) -> tuple[int, int]:
    if start < 0:
        start += size
    if end == -233 or end >= 2**30:
        end = size
    elif end <= 0:
        end += size
    start = max(0, min(start, size))
    end = max(start, min(end, size))
    return start, end


class _Op:
    """One executable layer: inputs -> outputs, with a call taking a list of tensors."""

    __slots__ = ("layer", "fn", "inplace")

    def __init__(self, layer: LayerSpec, fn) -> None:
        self.layer = layer
        self.fn = fn
        # fn(xs, scratch) that may overwrite xs[0]; set where the graph allows it (see below).
        self.inplace = None


def _make_net_class():
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class _NcnnNet(nn.Module):
        def __init__(self, layers: Sequence[LayerSpec], weights: Mapping[str, Any]) -> None:
            super().__init__()
            self.layers = list(layers)
            self.mods = nn.ModuleDict()
            self.ops: list[_Op] = []
            self.inputs: list[str] = []
            produced: dict[str, int] = {}
            consumed: set[str] = set()
            for index, layer in enumerate(self.layers):
                if layer.type not in SUPPORTED_LAYERS:
                    raise NcnnGraphError(f"layer type {layer.type} ({layer.name}) is not supported by this reader")
                for blob in layer.inputs:
                    if blob not in produced:
                        raise NcnnGraphError(f"layer {layer.name} reads blob {blob!r} before anything writes it")
                    consumed.add(blob)
                for blob in layer.outputs:
                    produced[blob] = index
                if layer.type == "Input":
                    self.inputs.extend(layer.outputs)
                self.ops.append(_Op(layer, self._compile(layer, weights)))
            self.producer = produced
            # An op may overwrite its input when that blob is a fresh result of a weighted
            # layer (never an alias made by Split/Noop/Crop) read by nobody else. run() also
            # checks the blob is not one the caller gave or asked for.
            readers: dict[str, int] = {}
            for layer in self.layers:
                for blob in layer.inputs:
                    readers[blob] = readers.get(blob, 0) + 1
            fresh = {"Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise"}
            for op in self.ops:
                inplace = getattr(op.fn, "inplace", None)
                if inplace is not None and len(op.layer.inputs) == 1:
                    blob = op.layer.inputs[0]
                    if self.layers[produced[blob]].type in fresh and readers[blob] == 1:
                        op.inplace = inplace
            self.outputs = [blob for blob in produced if blob not in consumed and blob not in self.inputs]
            self.pool_blobs = global_pool_blobs(self.layers)
            self._plans: dict[tuple, tuple] = {}

        # -- layer compilation ------------------------------------------------

        def _key(self, layer: LayerSpec) -> str:
            key = layer.name.replace(".", "_")
            while key in self.mods:
                key += "_"
            return key

        def _install(self, layer: LayerSpec, module, weight, weights: Mapping[str, Any]):
            """Load a weighted layer's weight (and bias), register it; return (key, fused activation)."""
            with torch.no_grad():
                module.weight.copy_(weight)
                if module.bias is not None:
                    module.bias.copy_(self._tensor(weights, f"{layer.name}.bias"))
            key = self._key(layer)
            self.mods[key] = module
            # ncnn's weighted layers all keep the fused activation in params 9 (type) and 10 (its params).
            return key, _activation(int(layer.get(9, 0)), layer.get(10, []) or [])

        def _tensor(self, weights: Mapping[str, Any], name: str):
            if name not in weights:
                raise NcnnGraphError(f"weights for {name!r} are missing")
            value = weights[name]
            return value.detach().clone().float() if isinstance(value, torch.Tensor) else torch.from_numpy(
                np.ascontiguousarray(value, dtype=np.float32)
            )

        def _compile(self, layer: LayerSpec, weights: Mapping[str, Any]):
            kind = layer.type
            p = layer.get
            if kind in ("Input", "Noop"):
                return None
            if kind == "Split":
                return lambda xs: [xs[0]] * len(layer.outputs)
            if kind in ("Convolution", "ConvolutionDepthWise"):
                return self._conv(layer, weights, depthwise=kind.endswith("DepthWise"))
            if kind in ("Deconvolution", "DeconvolutionDepthWise"):
                return self._deconv(layer, weights, depthwise=kind.endswith("DepthWise"))
            if kind == "InnerProduct":
                weight = self._tensor(weights, f"{layer.name}.weight")
                linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bool(p(1, 0)))
                key, act = self._install(layer, linear, weight, weights)

                def inner(xs, key=key, act=act):
                    x = xs[0]
                    y = self.mods[key](x.flatten(1).to(self.mods[key].weight.dtype))
                    if act is not None:
                        y = act(y)
                    return [y[:, :, None, None]]

                return inner
            if kind == "Pooling":
                return self._pooling(layer)
            if kind == "BinaryOp":
                return self._binary(layer)
            if kind == "Eltwise":
                op = int(p(0, 1))
                coeffs = [float(c) for c in (p(1, []) or [])]

                def eltwise(xs, op=op, coeffs=coeffs):
                    if op == 0:
                        out = xs[0]
                        for x in xs[1:]:
                            out = out * x
                        return [out]
                    if op == 2:
                        out = xs[0]
                        for x in xs[1:]:
                            out = torch.maximum(out, x)
                        return [out]
                    if coeffs:
                        out = xs[0] * coeffs[0]
                        for c, x in zip(coeffs[1:], xs[1:]):
                            out = out + x * c
                        return [out]
                    out = xs[0]
                    for x in xs[1:]:
                        out = out + x
                    return [out]

                if op not in (0, 1, 2):
                    raise NcnnGraphError(f"Eltwise op {op} ({layer.name}) is not supported")
                return eltwise
            if kind == "Crop":
                return self._crop(layer)
            if kind == "Concat":
                axis = int(p(0, 0))

                def concat(xs, axis=axis):
                    dim = (axis % 3) + 1
                    return [torch.cat(xs, dim=dim)]

                return concat
            if kind == "Interp":
                return self._interp(layer)
            if kind == "PReLU":
                slope = self._tensor(weights, f"{layer.name}.slope")
                prelu = nn.PReLU(num_parameters=slope.numel())
                with torch.no_grad():
                    prelu.weight.copy_(slope)
                key = self._key(layer)
                self.mods[key] = prelu

                def prelu_fn(xs, key=key):
                    # One fused kernel (torch.where(x >= 0, x, x * w) took three passes and two
                    # temporaries: about 4x slower on large CPU feature maps).
                    x = xs[0]
                    return [F.prelu(x, self.mods[key].weight.to(x.dtype))]

                # In place where the graph allows it (see __init__): PReLU(x) = max(x, 0) + w * min(x, 0),
                # with min(x, 0) in a scratch buffer reused for the whole run. Large CPU tensors then
                # need no new allocation, whose page faults were most of PReLU's time at 512x512.
                def prelu_inplace(xs, scratch, key=key):
                    x = xs[0]
                    if x.requires_grad and torch.is_grad_enabled():
                        return prelu_fn(xs)
                    weight = self.mods[key].weight.to(x.dtype)
                    if weight.numel() > 1:
                        weight = weight.view(1, -1, *([1] * (x.dim() - 2)))
                    slot = (tuple(x.shape), x.stride(), x.dtype, x.device)
                    negative = scratch.get(slot)
                    if negative is None:
                        negative = scratch[slot] = torch.empty_strided(
                            x.shape, x.stride(), dtype=x.dtype, device=x.device
                        )
                    torch.clamp(x, max=0, out=negative)
                    x.clamp_min_(0)
                    return [x.addcmul_(negative, weight)]

                prelu_fn.inplace = prelu_inplace
                return prelu_fn
            if kind == "PixelShuffle":
                factor = int(p(0, 1))
                mode = int(p(1, 0))

                def shuffle(xs, factor=factor, mode=mode):
                    x = xs[0]
                    if mode == 0:
                        return [F.pixel_shuffle(x, factor)]
                    n, c, h, w = x.shape
                    oc = c // (factor * factor)
                    x = x.reshape(n, factor, factor, oc, h, w).permute(0, 3, 4, 1, 5, 2)
                    return [x.reshape(n, oc, h * factor, w * factor)]

                return shuffle
            if kind == "ReLU":
                slope = float(p(0, 0.0))
                return lambda xs: [F.leaky_relu(xs[0], slope) if slope else F.relu(xs[0])]
            if kind == "Sigmoid":
                return lambda xs: [torch.sigmoid(xs[0])]
            if kind == "TanH":
                return lambda xs: [torch.tanh(xs[0])]
            if kind == "Clip":
                low, high = float(p(0, -3.4e38)), float(p(1, 3.4e38))
                return lambda xs: [xs[0].clamp(low, high)]
            raise NcnnGraphError(f"layer type {kind} is not supported")  # pragma: no cover

        def _pads(self, layer: LayerSpec) -> tuple[int, int, int, int]:
            p = layer.get
            left = int(p(4, 0))
            top = int(p(14, left))
            right = int(p(15, left))
            bottom = int(p(16, top))
            if min(left, top, right, bottom) < 0:
                raise NcnnGraphError(f"{layer.type} {layer.name}: 'same' auto-padding ({left}) is not supported")
            return left, right, top, bottom

        def _conv(self, layer: LayerSpec, weights, depthwise: bool):
            p = layer.get
            weight = self._tensor(weights, f"{layer.name}.weight")
            out_ch, in_per_group, kh, kw = weight.shape
            groups = int(p(7, 1)) if depthwise else 1
            stride = (int(p(13, p(3, 1))), int(p(3, 1)))
            dilation = (int(p(12, p(2, 1))), int(p(2, 1)))
            left, right, top, bottom = self._pads(layer)
            if float(p(18, 0.0)) != 0.0:
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
                bias=bool(p(5, 0)),
            )
            key, act = self._install(layer, conv, weight, weights)
            pad = None if symmetric else (left, right, top, bottom)

            def run(xs, key=key, act=act, pad=pad):
                x = xs[0]
                if pad is not None:
                    x = F.pad(x, pad)
                y = self.mods[key](x)
                if act is not None:
                    y = act(y)
                return [y]

            return run

        def _deconv(self, layer: LayerSpec, weights, depthwise: bool):
            p = layer.get
            weight = self._tensor(weights, f"{layer.name}.weight")  # ncnn: out x in x kh x kw
            out_ch, in_per_group, kh, kw = weight.shape
            groups = int(p(7, 1)) if depthwise else 1
            stride = (int(p(13, p(3, 1))), int(p(3, 1)))
            dilation = (int(p(12, p(2, 1))), int(p(2, 1)))
            left, right, top, bottom = self._pads(layer)
            out_pad_right = int(p(18, 0))
            out_pad_bottom = int(p(19, out_pad_right))
            if int(p(20, 0)) or int(p(21, 0)):
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
                bias=bool(p(5, 0)),
            )
            key, act = self._install(layer, deconv, tw, weights)
            fix = None if native else (left, right, top, bottom, out_pad_right, out_pad_bottom)

            def run(xs, key=key, act=act, fix=fix):
                module = self.mods[key]
                if fix is None:
                    y = module(xs[0])
                else:
                    l_, r_, t_, b_, opr, opb = fix
                    y = F.conv_transpose2d(
                        xs[0], module.weight, None, module.stride, 0, 0, module.groups, module.dilation
                    )
                    if opr or opb:
                        y = F.pad(y, (0, opr, 0, opb))
                    y = y[:, :, t_ : y.shape[2] - b_, l_ : y.shape[3] - r_]
                    if module.bias is not None:
                        y = y + module.bias.to(y.dtype).view(1, -1, 1, 1)
                if act is not None:
                    y = act(y)
                return [y]

            return run

        def _pooling(self, layer: LayerSpec):
            def global_mean(xs):
                x = xs[0]
                n, c, h, w = x.shape
                if x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.permute(0, 2, 3, 1).is_contiguous():
                    # bf16 channels_last on the CPU: a ones-vector product (oneDNN accumulates in
                    # fp32) instead of upcasting the whole map, ~10x faster for Real-CUGAN's SE maps.
                    flat = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
                    total = torch.bmm(torch.ones(n, 1, h * w, dtype=x.dtype), flat)
                    return [(total.float() / (h * w)).view(n, c, 1, 1).to(x.dtype)]
                return [x.float().mean(dim=(2, 3), keepdim=True).to(x.dtype)]

            p = layer.get
            kind = int(p(0, 0))
            if int(p(4, 0)):
                if kind == 1:
                    return global_mean
                return lambda xs: [xs[0].amax(dim=(2, 3), keepdim=True)]
            if int(p(7, 0)):
                raise NcnnGraphError(f"{layer.name}: adaptive pooling is not supported")
            kw = int(p(1, 0))
            kh = int(p(11, kw))
            sw = int(p(2, 1))
            sh = int(p(12, sw))
            left = int(p(3, 0))
            right, top = int(p(14, left)), int(p(13, left))
            bottom = int(p(15, top))
            if int(p(5, 0)) != 1 and (left or right or top or bottom):
                raise NcnnGraphError(f"{layer.name}: pooling pad_mode {p(5, 0)} is not supported")

            def pool(xs):
                x = F.pad(xs[0], (left, right, top, bottom))
                if kind == 0:
                    return [F.max_pool2d(x, (kh, kw), (sh, sw))]
                return [F.avg_pool2d(x, (kh, kw), (sh, sw))]

            return pool

        def _binary(self, layer: LayerSpec):
            p = layer.get
            op = int(p(0, 0))
            with_scalar = int(p(1, 0))
            scalar = float(p(2, 0.0))
            ops = {
                0: torch.add,
                1: torch.sub,
                2: torch.mul,
                3: torch.div,
                4: torch.maximum,
                5: torch.minimum,
                6: torch.pow,
                7: lambda a, b: torch.sub(b, a),
                8: lambda a, b: torch.div(b, a),
                9: lambda a, b: torch.pow(b, a),
                10: torch.atan2,
                11: lambda a, b: torch.atan2(b, a),
            }
            if op not in ops:
                raise NcnnGraphError(f"BinaryOp op {op} ({layer.name}) is not supported")
            fn = ops[op]
            if with_scalar:
                if op in (4, 5, 6, 9, 10, 11):
                    return lambda xs: [fn(xs[0], torch.full_like(xs[0], scalar))]
                return lambda xs: [fn(xs[0], scalar)]
            return lambda xs: [fn(xs[0], xs[1])]

        def _crop(self, layer: LayerSpec):
            p = layer.get
            starts = p(9)
            ends = p(10)
            axes = p(11)
            if starts is not None or ends is not None:
                starts = list(starts or [])
                ends = list(ends or [])
                axes = list(axes) if axes else list(range(len(starts)))

                def crop(xs):
                    x = xs[0]
                    index: list[slice] = [slice(None)] * x.dim()
                    for axis, start, end in zip(axes, starts, ends):
                        dim = (int(axis) % 3) + 1
                        s, e = _resolve_slice(int(start), int(end), x.shape[dim])
                        index[dim] = slice(s, e)
                    return [x[tuple(index)]]

                return crop
            woff, hoff, coff = int(p(0, 0)), int(p(1, 0)), int(p(2, 0))
            outw, outh, outc = int(p(3, 0)), int(p(4, 0)), int(p(5, 0))
            woff2, hoff2, coff2 = int(p(6, 0)), int(p(7, 0)), int(p(8, 0))

            def crop_offsets(xs):
                x = xs[0]
                if len(xs) > 1:  # crop to the reference blob's size
                    ref = xs[1]
                    return [x[:, coff : coff + ref.shape[1], hoff : hoff + ref.shape[2], woff : woff + ref.shape[3]]]
                _, c, h, w = x.shape
                ow = outw if outw > 0 else (w + outw if outw < 0 else w - woff - woff2)
                oh = outh if outh > 0 else (h + outh if outh < 0 else h - hoff - hoff2)
                oc = outc if outc > 0 else (c + outc if outc < 0 else c - coff - coff2)
                return [x[:, coff : coff + oc, hoff : hoff + oh, woff : woff + ow]]

            return crop_offsets

        def _interp(self, layer: LayerSpec):
            p = layer.get
            kind = int(p(0, 0))
            h_scale, w_scale = float(p(1, 1.0)), float(p(2, 1.0))
            out_h, out_w = int(p(3, 0)), int(p(4, 0))
            align = bool(int(p(6, 0)))
            if int(p(5, 0)):
                raise NcnnGraphError(f"{layer.name}: dynamic Interp target size is not supported")
            modes = {1: "nearest", 2: "bilinear", 3: "bicubic"}
            if kind not in modes:
                raise NcnnGraphError(f"Interp resize type {kind} ({layer.name}) is not supported")
            mode = modes[kind]

            def interp(xs):
                x = xs[0]
                h, w = x.shape[2], x.shape[3]
                size = (out_h or int(h * h_scale), out_w or int(w * w_scale))
                if mode == "nearest":
                    if size[0] % h == 0 and size[1] % w == 0:
                        fh, fw = size[0] // h, size[1] // w
                        n, c = x.shape[:2]
                        y = x[:, :, :, None, :, None].expand(n, c, h, fh, w, fw)
                        return [y.reshape(n, c, size[0], size[1])]
                    return [F.interpolate(x, size=size, mode="nearest")]
                dtype = x.dtype
                y = F.interpolate(x.float(), size=size, mode=mode, align_corners=align)
                return [y.to(dtype)]

            return interp

        # -- execution ------------------------------------------------------------

        def _plan(self, wanted: tuple[str, ...], fixed: frozenset[str]):
            key = (wanted, fixed)
            plan = self._plans.get(key)
            if plan is not None:
                return plan
            needed_layers: set[int] = set()
            stack = [blob for blob in wanted if blob not in fixed]
            seen: set[str] = set()
            while stack:
                blob = stack.pop()
                if blob in seen:
                    continue
                seen.add(blob)
                if blob not in self.producer:
                    raise NcnnGraphError(f"the graph has no blob {blob!r}")
                index = self.producer[blob]
                if index in needed_layers:
                    continue
                needed_layers.add(index)
                stack.extend(b for b in self.ops[index].layer.inputs if b not in fixed)
            order = sorted(needed_layers)
            last_use: dict[str, int] = {}
            for step, index in enumerate(order):
                for blob in self.ops[index].layer.inputs:
                    last_use[blob] = step
            plan = (order, last_use)
            self._plans[key] = plan
            return plan

        def run(
            self,
            inputs: "torch.Tensor | Mapping[str, torch.Tensor]",
            outputs: Iterable[str] | None = None,
            overrides: Mapping[str, "torch.Tensor"] | None = None,
        ) -> dict[str, "torch.Tensor"]:
            """Compute the blobs named in ``outputs`` (default: the graph outputs).

            ``inputs`` is a tensor for the single Input blob, or a name -> tensor dict.
            ``overrides`` fixes blobs to given values; layers that only feed them are skipped.
            """
            if not isinstance(inputs, Mapping):
                if len(self.inputs) != 1:
                    raise NcnnGraphError(f"the graph has inputs {self.inputs}; pass a dict")
                inputs = {self.inputs[0]: inputs}
            wanted = tuple(outputs) if outputs is not None else tuple(self.outputs)
            fixed = dict(overrides or {})
            blobs: dict[str, torch.Tensor] = dict(fixed)
            blobs.update(inputs)
            order, last_use = self._plan(wanted, frozenset(blobs))
            keep = set(wanted) | set(blobs)
            scratch: dict[tuple, torch.Tensor] = {}  # reusable buffers, for this run only
            for step, index in enumerate(order):
                op = self.ops[index]
                layer = op.layer
                if op.fn is None:
                    if layer.type == "Input":
                        missing = [b for b in layer.outputs if b not in blobs]
                        if missing:
                            raise NcnnGraphError(f"input blob {missing[0]!r} was not given")
                    else:
                        for src, dst in zip(layer.inputs, layer.outputs):
                            blobs[dst] = blobs[src]
                    continue
                args = [blobs[b] for b in layer.inputs]
                if op.inplace is not None and layer.inputs[0] not in keep:
                    results = op.inplace(args, scratch)
                else:
                    results = op.fn(args)
                for blob in layer.inputs:
                    if last_use.get(blob) == step and blob not in keep:
                        blobs.pop(blob, None)
                for blob, value in zip(layer.outputs, results):
                    blobs[blob] = value
            return {name: blobs[name] for name in wanted}

        def forward(self, x: "torch.Tensor", overrides: Mapping[str, "torch.Tensor"] | None = None) -> "torch.Tensor":
            result = self.run(x, overrides=overrides)
            if len(result) != 1:
                raise NcnnGraphError(f"the graph has {len(result)} outputs; use run()")
            return next(iter(result.values()))

    return _NcnnNet


_NET_CLASS = None


def NcnnNet(layers: Sequence[LayerSpec], weights: Mapping[str, Any]):  # noqa: N802 - behaves like a class
    """Construct the torch module (the class is created on first use so importing stays torch-free)."""
    global _NET_CLASS
    if _NET_CLASS is None:
        _NET_CLASS = _make_net_class()
    return _NET_CLASS(layers, weights)


def load_files(param_path, bin_path) -> tuple[list[LayerSpec], dict[str, np.ndarray]]:
    """Parse a ``.param`` and read its ``.bin`` (no caching; see ``weights.py`` for that)."""
    from pathlib import Path

    layers = parse_param(Path(param_path).read_text(encoding="utf-8"))
    return layers, read_bin(layers, Path(bin_path).read_bytes())
