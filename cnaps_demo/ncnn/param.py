"""The ncnn ``.param`` text format: parse it into a list of :class:`LayerSpec` (stdlib only).

A file is the magic number, a ``layer_count blob_count`` line, then one line per layer::

    Type name n_inputs n_outputs input_blobs... output_blobs... id=value id=v1,v2 -23301=2,v1,v2

Parameter ids are layer-specific (see :mod:`.param_ids`); values are ints or floats, and an
array parameter ``k`` is written with the key ``-23300 - k`` and its length first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import NcnnGraphError
from .param_ids import Pooling

MAGIC = 7767517
ARRAY_KEY_BASE = -23300  # key -233xx holds array parameter xx

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


def parse_number(text: str) -> int | float:
    """An ncnn parameter value: a float if it has a point or an exponent, else an int."""
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
    layers = [_parse_layer(number, line) for number, line in enumerate(lines[2:], start=3)]
    if len(layers) != layer_count:
        raise NcnnGraphError(f".param declares {layer_count} layers but lists {len(layers)}")
    return layers


def _parse_layer(number: int, line: str) -> LayerSpec:
    """One layer line; ``number`` is its line number for error messages."""
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
        key, value = _parse_item(number, item)
        params[key] = value
    return LayerSpec(layer_type, name, inputs, outputs, params)


def _parse_item(number: int, item: str) -> tuple[int, ParamValue]:
    """One ``id=value`` (or ``-233xx=n,v1,...,vn`` array) item, as (parameter id, value)."""
    key_text, sep, value_text = item.partition("=")
    if not sep:
        raise NcnnGraphError(f"line {number}: parameter {item!r} has no '='")
    try:
        key = int(key_text)
        if key > ARRAY_KEY_BASE:
            return key, parse_number(value_text)
        values = value_text.split(",")
        count = int(values[0])
        items = [parse_number(v) for v in values[1:]]
        if len(items) != count:
            raise ValueError(f"array declares {count} values")  # reported as unparsable, like a bad value
    except ValueError:
        raise NcnnGraphError(f"line {number}: cannot parse parameter {item!r}") from None
    return ARRAY_KEY_BASE - key, items


def global_pool_blobs(layers: Sequence[LayerSpec]) -> list[str]:
    """Outputs of global-pooling layers, in graph order (Real-CUGAN's SE vectors)."""
    return [
        layer.outputs[0] for layer in layers if layer.type == "Pooling" and int(layer.get(Pooling.GLOBAL_POOLING, 0))
    ]
