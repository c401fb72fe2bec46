"""The CNN engines opened up (``Engine.anatomy``): their real graph and weights, run in fp32 on a
region with the stages worth showing kept, the sum the graph really computes, and a local
differentiable forward for attribution. Family-specific parts live in ``anatomy_esrgan`` and
``anatomy_cugan``; this module holds what both share and picks one for an engine.

Nothing here imports torch at import time.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...devices import torch_device
from ...ncnn.reach import blob_reach, receptive_field
from ..base import Anatomy, Box, Credit, RunOptions
from .models import LoadedModel, load_model

LAM_CREDIT = Credit(
    "LAM: Local Attribution Maps, by Jinjin Gu and Chao Dong (CVPR 2021)",
    "https://arxiv.org/abs/2011.11036",
    "paper (the method; our own code)",
    "The 'where does this pixel come from?' map: integrated gradients along a progressive-blur path "
    "(arXiv 2011.11036).",
)


class CnnAnatomy(Anatomy):
    """What both CNN anatomies share: the fp32 model, each blob's receptive field from the graph."""

    def __init__(self, loaded: LoadedModel, scale: int) -> None:
        self.loaded, self.net, self.scale = loaded, loaded.net, int(scale)
        self.reach = blob_reach(self.net.layers)
        field = receptive_field(self.net.layers)
        self.receptive_field = field.pixels
        self.whole_picture_note = _whole_picture_note(len(self.net.pool_blobs)) if field.whole_picture else ""

    def tensor(self, array: np.ndarray):
        """HxWx3 float32 -> 1x3xHxW fp32 tensor on the model's device."""
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        return tensor.to(device=self.loaded.device, dtype=torch.float32)

    def run(self, x, outputs: list[str], on_step: Callable[[float], None] | None = None, overrides=None) -> dict:
        import torch

        with torch.no_grad():
            return self.net.run(x, outputs=outputs, overrides=overrides, on_step=on_step)

    def over_region(self, blob: str, value, network_input: tuple[int, int], region: Box) -> np.ndarray:
        """The part of ``blob``'s activation (1, C, H, W) that lies over ``region`` (left, top, right,
        bottom in the network input's pixels), as float32 (C, h, w). A blob's margin is taken as
        even on both sides: within half an activation pixel for the graphs we load."""
        step = self.reach[blob].step
        height, width = int(value.shape[2]), int(value.shape[3])
        rows = _span(network_input[0], height, step, region[1], region[3])
        cols = _span(network_input[1], width, step, region[0], region[2])
        part = value[0, :, rows[0] : rows[1], cols[0] : cols[1]]
        return part.float().cpu().numpy()

    def output_part(self, value, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Rows/columns of a (1, 3, H, W) output tensor as float32 (height, width, 3)."""
        return value[0, :, top : top + height, left : left + width].permute(1, 2, 0).float().cpu().numpy()


def _span(network: int, blob: int, step: float, start: int, end: int) -> tuple[int, int]:
    """Activation rows (or columns) over input pixels [start, end) of a network input ``network`` long."""
    margin = (network - blob * step) / 2
    first = round((start - margin) / step)
    count = max(1, round((end - start) / step))
    first = min(max(0, first), max(0, blob - count))
    return first, min(blob, first + count)


def _whole_picture_note(pools: int) -> str:
    return (
        f"Its {pools} squeeze-and-excitation blocks each average a feature map over the whole picture, so every "
        "input pixel has a small say in every output pixel; here those averages are held fixed (taken once "
        "from the whole picture) and the map shows the local part."
    )


def reflect_pads(box: Box, size: tuple[int, int]) -> tuple[Box, tuple[int, int, int, int]]:
    """(``box`` clipped to a picture of ``size`` (width, height), the (left, right, top, bottom)
    padding that brings the clipped box back to ``box``)."""
    width, height = size
    left, top = max(0, box[0]), max(0, box[1])
    right, bottom = min(width, box[2]), min(height, box[3])
    return (left, top, right, bottom), (left - box[0], box[2] - right, top - box[1], box[3] - bottom)


def pad_like_the_engine(x, pads: tuple[int, int, int, int]):
    """Reflect ``x`` (N, C, h, w) out by ``pads`` (left, right, top, bottom) as the engines pad a
    picture (edge where the crop is too small to reflect); differentiable, so a gradient that lands
    on a reflected pixel is added back to the pixel it copies."""
    import torch.nn.functional as F

    if not any(pads):
        return x
    mode = "reflect" if min(x.shape[2], x.shape[3]) > max(pads) else "replicate"
    return F.pad(x, pads, mode=mode)


def input_span(output_box: Box, scale: int) -> Box:
    """The input pixels under ``output_box`` (output pixels), rounded outwards."""
    left, top, right, bottom = output_box
    return left // scale, top // scale, -(-right // scale), -(-bottom // scale)


def build_anatomy(engine: Any, scale: int, params: dict[str, Any], options: RunOptions) -> CnnAnatomy:
    """The anatomy of ``engine`` (a ``CnnEngine``): its model loaded in fp32 on the plan's device."""
    from .anatomy_cugan import CuganAnatomy
    from .anatomy_esrgan import EsrganAnatomy
    from .realcugan import REALCUGAN
    from .realesrgan import REALESRGAN

    device = torch_device(options.device, options.cpu_threads)
    # fp32 and oneDNN's direct convolutions: the autograd-safe path, and exact sums.
    loaded = load_model(
        engine.module,
        engine.model_name(scale, params),
        device,
        cpu_bf16=False,
        weights_cache=options.weights_cache,
        cpu_conv="direct",
        float32=True,
    )
    family = {REALESRGAN: EsrganAnatomy, REALCUGAN: CuganAnatomy}[engine.module]
    return family(loaded, scale)
