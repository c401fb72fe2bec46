"""The torch module that runs a parsed ncnn graph: wiring, activation fusion and execution.

Blobs are 4-D ``N x C x H x W`` tensors; an ncnn 1-D blob (a global-pooled vector or an
InnerProduct output) is kept as ``N x C x 1 x 1`` so that BinaryOp's "1-D vector times
C x H x W blob" broadcast is ordinary torch broadcasting.

:meth:`NcnnNet.run` works like an ncnn Extractor: ask for any blobs by name, and override
any blob with a fixed value (its producers are then skipped). Real-CUGAN's tiled runs use
this to feed whole-image SE vectors (``gap0``..``gap3``) to every tile.

Imported only when a model is built (it imports torch).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..errors import NcnnGraphError
from .layers import BUILDERS, Built, fast_conv
from .layers.base import LayerFn, Weights
from .costs import layer_costs
from .param import LayerSpec, global_pool_blobs


class _Op:
    """One layer as executed: its spec, its callable, and the activation it may take over."""

    __slots__ = ("layer", "fn", "fuse_next")

    def __init__(self, layer: LayerSpec, fn: LayerFn | None) -> None:
        self.layer = layer
        self.fn = fn
        # (index of the activation layer that alone reads this output, its run_fused, its post):
        # set by _plan_fusion; used when the output blob is not one the caller gives or wants.
        self.fuse_next: tuple[int, Callable, Callable] | None = None


class NcnnNet(nn.Module):
    """An ncnn layer DAG as a ``torch.nn.Module``; the weights live in ``self.mods``."""

    def __init__(self, layers: Sequence[LayerSpec], weights: Weights) -> None:
        super().__init__()
        self.layers = list(layers)
        self.mods = nn.ModuleDict()
        self.inputs: list[str] = []  # the Input layers' blobs, in graph order
        self._ops: list[_Op] = []
        self._producer: dict[str, int] = {}  # blob -> index of the layer that writes it
        self._module_keys: dict[str, str] = {}  # layer name -> its key in self.mods
        built = self._build(weights)
        self._plan_fusion(built)
        consumed = {blob for layer in self.layers for blob in layer.inputs}
        self.outputs = [blob for blob in self._producer if blob not in consumed and blob not in self.inputs]
        self.pool_blobs = global_pool_blobs(self.layers)
        self._plans: dict[tuple, tuple] = {}
        self._costs = layer_costs(self.layers)
        # How fp32 3x3 convolutions run on the CPU: "direct" (oneDNN) or "winograd" (fast_conv).
        self.cpu_conv = "direct"

    # -- construction ---------------------------------------------------------

    def _build(self, weights: Weights) -> list[Built]:
        """Check the wiring and compile every layer, in graph order."""
        built: list[Built] = []
        for index, layer in enumerate(self.layers):
            builder = BUILDERS.get(layer.type)
            if builder is None:
                raise NcnnGraphError(f"layer type {layer.type} ({layer.name}) is not supported by this reader")
            for blob in layer.inputs:
                if blob not in self._producer:
                    raise NcnnGraphError(f"layer {layer.name} reads blob {blob!r} before anything writes it")
            for blob in layer.outputs:
                self._producer[blob] = index
            if layer.type == "Input":
                self.inputs.extend(layer.outputs)
            result = builder(layer, weights)
            if result.module is not None:
                key = self._key(layer)
                self.mods[key] = result.module
                self._module_keys[layer.name] = key
            self._ops.append(_Op(layer, result.run))
            built.append(result)
        return built

    def _key(self, layer: LayerSpec) -> str:
        """A ModuleDict key for the layer's weights (no dots, unique)."""
        key = layer.name.replace(".", "_")
        while key in self.mods:
            key += "_"
        return key

    def _plan_fusion(self, built: list[Built]) -> None:
        """Let a convolution apply the activation layer that alone reads its output (PReLU after
        each convolution in Real-ESRGAN), so that the fast CPU path does it band by band, in cache."""
        readers: dict[str, list[int]] = {}
        for index, layer in enumerate(self.layers):
            for blob in layer.inputs:
                readers.setdefault(blob, []).append(index)
        for index, (op, result) in enumerate(zip(self._ops, built)):
            if result.run_fused is None or len(op.layer.outputs) != 1:
                continue
            after = readers.get(op.layer.outputs[0], [])
            if len(after) == 1 and built[after[0]].as_post is not None and len(self.layers[after[0]].inputs) == 1:
                op.fuse_next = (after[0], result.run_fused, built[after[0]].as_post)

    def producer(self, blob: str) -> LayerSpec | None:
        """The layer that writes ``blob`` (None for a name the graph does not have)."""
        index = self._producer.get(blob)
        return None if index is None else self.layers[index]

    def module_of(self, layer_name: str) -> nn.Module | None:
        """The torch module holding a layer's weights (None for a layer without weights)."""
        key = self._module_keys.get(layer_name)
        return None if key is None else self.mods[key]

    def fused_layers(self) -> list[tuple[str, str]]:
        """(producer, activation) name pairs that may run as one layer."""
        return [(op.layer.name, self.layers[op.fuse_next[0]].name) for op in self._ops if op.fuse_next]

    # -- execution ------------------------------------------------------------

    def _plan(self, wanted: tuple[str, ...], fixed: frozenset[str]) -> tuple[list[int], dict[str, int]]:
        """(indices of the layers to run, in order; blob -> step of its last read), cached per request."""
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
            if blob not in self._producer:
                raise NcnnGraphError(f"the graph has no blob {blob!r}")
            index = self._producer[blob]
            if index in needed_layers:
                continue
            needed_layers.add(index)
            stack.extend(b for b in self._ops[index].layer.inputs if b not in fixed)
        order = sorted(needed_layers)
        last_use: dict[str, int] = {}
        for step, index in enumerate(order):
            for blob in self._ops[index].layer.inputs:
                last_use[blob] = step
        plan = (order, last_use)
        self._plans[key] = plan
        return plan

    def run(
        self,
        inputs: torch.Tensor | Mapping[str, torch.Tensor],
        outputs: Iterable[str] | None = None,
        overrides: Mapping[str, torch.Tensor] | None = None,
        on_step: Callable[[float], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute the blobs named in ``outputs`` (default: the graph outputs).

        ``inputs`` is a tensor for the single Input blob, or a name -> tensor dict.
        ``overrides`` fixes blobs to given values; layers that only feed them are skipped.
        Blobs given or asked for are kept to the end. ``on_step(fraction)`` is
        called after each layer with the estimated share of the run's work done so far (it may
        raise to abandon the run: that is how a job is stopped mid-tile).
        """
        if not isinstance(inputs, Mapping):
            if len(self.inputs) != 1:
                raise NcnnGraphError(f"the graph has inputs {self.inputs}; pass a dict")
            inputs = {self.inputs[0]: inputs}
        wanted = tuple(outputs) if outputs is not None else tuple(self.outputs)
        blobs: dict[str, torch.Tensor] = dict(overrides or {})
        blobs.update(inputs)
        order, last_use = self._plan(wanted, frozenset(blobs))
        token = fast_conv.current_algorithm.set(self.cpu_conv)
        try:
            self._execute(order, last_use, blobs, set(wanted) | set(blobs), on_step)
        finally:
            fast_conv.current_algorithm.reset(token)
        return {name: blobs[name] for name in wanted}

    def _execute(self, order, last_use, blobs, keep, on_step) -> None:
        costs = [self._costs[index] for index in order]
        total, done = float(sum(costs)) or 1.0, 0.0
        # Fusing pays only on the band-by-band path; elsewhere the activation is its own layer.
        planned, fused = (set(order) if self.cpu_conv == "winograd" else set()), set()
        for step, index in enumerate(order):
            op = self._ops[index]
            layer = op.layer
            if index in fused:  # its producer already applied it
                pass
            elif op.fn is None:
                self._pass_through(layer, blobs)
            else:
                args = [blobs[b] for b in layer.inputs]
                outputs, nxt = layer.outputs, op.fuse_next
                if nxt is not None and nxt[0] in planned and layer.outputs[0] not in keep:
                    fused.add(nxt[0])
                    outputs, results = self.layers[nxt[0]].outputs, nxt[1](args, nxt[2])
                else:
                    results = op.fn(args)
                for blob in layer.inputs:  # free what no later step reads
                    if last_use.get(blob) == step and blob not in keep:
                        blobs.pop(blob, None)
                for blob, value in zip(outputs, results):
                    blobs[blob] = value
            done += costs[step]
            if on_step is not None and costs[step]:
                on_step(done / total)

    @staticmethod
    def _pass_through(layer: LayerSpec, blobs: dict[str, torch.Tensor]) -> None:
        """Input: check the caller gave it. Noop: the outputs are the inputs."""
        if layer.type == "Input":
            missing = [b for b in layer.outputs if b not in blobs]
            if missing:
                raise NcnnGraphError(f"input blob {missing[0]!r} was not given")
            return
        for src, dst in zip(layer.inputs, layer.outputs):
            blobs[dst] = blobs[src]

    def forward(
        self,
        x: torch.Tensor,
        overrides: Mapping[str, torch.Tensor] | None = None,
        on_step: Callable[[float], None] | None = None,
    ) -> torch.Tensor:
        result = self.run(x, overrides=overrides, on_step=on_step)
        if len(result) != 1:
            raise NcnnGraphError(f"the graph has {len(result)} outputs; use run()")
        return next(iter(result.values()))

