"""The denoising filmstrip: the model's estimate of the clean picture after every UNet step.

At each step the scheduler predicts the clean latents (its "predicted original sample", not
the noisy latents it carries on with). Decoding those with the VAE at every step would cost as
much as the run itself, so each preview is made with the published linear map of SD 1.5
latents to RGB (four latent channels -> R, G, B, then ``(v + 1) / 2``), upsampled to the
output size on the device. The frame of a tile's last step is the exact VAE decode, and the
very last frame is the result itself.

Tiled runs show the whole picture: a canvas that starts as the model's input (the
pre-enlarged picture) and gets each tile's preview pasted where that tile goes, so the
audience watches the drawing sweep across the picture.

With no frame callback (``RunOptions.frames is None``) none of this runs: the scheduler is
not wrapped and nothing is converted. torch is imported on first use only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from ...frames import Frame, FrameFn, filmstrip_bytes, save_filmstrip, write_frames

__all__ = ["Filmstrip", "Frame", "FrameFn", "filmstrip_bytes", "save_filmstrip", "write_frames"]

# SD 1.5 latent channel -> (R, G, B) weights (the approximation A1111 and ComfyUI use for previews).
SD15_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)




def latents_to_rgb(latents: Any) -> Any:
    """(B,4,h,w) scaled SD 1.5 latents -> (B,3,h,w) float in [0,1], on their device (the linear map)."""
    import torch

    weights = torch.tensor(SD15_LATENT_RGB, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("bchw,cr->brhw", latents[:, :4].float(), weights)
    return ((rgb + 1) / 2).clamp(0, 1)


def tile_regions(
    height: int, width: int, tile: int, overlap: int, scale: int
) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) in output pixels of each tile, in ``tiled_apply``'s order (rows, then columns)."""
    from ...image import tile_spans

    ys, xs = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    return [(y0 * scale, y1 * scale, x0 * scale, x1 * scale) for y0, y1 in ys for x0, x1 in xs]


class Filmstrip:
    """Collects one frame per UNet step of a job and hands each to ``sink`` as it is made.

    ``background``: the output-sized picture shown where no tile has been drawn yet;
    ``regions``: each tile's place in the output (one region: no tiling); ``context``: output
    pixels of neighbours around each tile piece, cropped before pasting.
    """

    def __init__(
        self,
        sink: FrameFn,
        background: Image.Image,
        regions: Sequence[tuple[int, int, int, int]],
        context: int,
        steps_per_tile: int,
    ) -> None:
        self.sink = sink
        self.canvas = np.array(background.convert("RGB"))
        self.regions = list(regions)
        self.context = context if len(self.regions) > 1 else 0
        self.steps_per_tile = steps_per_tile
        self.total = steps_per_tile * len(self.regions)
        self.count = 0
        self.pending: tuple[int, float, float, int] | None = None  # a tile's last step, waiting for its decode

    def _paste(self, tile_index: int, pixels: np.ndarray) -> None:
        """Paste a tile's output (HxWx3 uint8, context included when tiled) into the canvas."""
        y0, y1, x0, x1 = self.regions[tile_index]
        c = self.context
        self.canvas[y0:y1, x0:x1] = pixels[c : c + y1 - y0, c : c + x1 - x0]

    def _emit(self, tile_index: int, timestep: float, sigma: float, image: Image.Image, exact: bool) -> None:
        self.count += 1
        tiles = len(self.regions)
        self.sink(Frame(self.count, self.total, image, timestep, sigma, tile_index + 1, tiles, exact))

    def step(
        self,
        tile_index: int,
        step_in_tile: int,
        timestep: float,
        sigma: float,
        x0: Any,
        size: tuple[int, int],
        factor: int,
    ) -> None:
        """After UNet step ``step_in_tile`` (0-based): preview ``x0`` (scaled latents, ``factor`` output
        pixels per latent); ``size`` is the tile piece's unpadded output (height, width)."""
        if step_in_tile + 1 >= self.steps_per_tile:
            self.pending = (tile_index, timestep, sigma, self.count)  # the exact decode follows
            return
        import torch

        rgb = latents_to_rgb(x0[:1])
        latent_h, latent_w = x0.shape[-2:]
        # Bilinear up to the (padded) output size, then crop the padding off.
        rgb = torch.nn.functional.interpolate(
            rgb, size=(latent_h * factor, latent_w * factor), mode="bilinear", align_corners=False
        )
        pixels = (rgb[0, :, : size[0], : size[1]] * 255 + 0.5).clamp(0, 255).to(torch.uint8)
        self._paste(tile_index, pixels.permute(1, 2, 0).cpu().numpy())
        self._emit(tile_index, timestep, sigma, Image.fromarray(self.canvas.copy(), "RGB"), False)

    def decoded(self, tile_index: int, pixels: np.ndarray) -> None:
        """A tile's exact VAE decode (HxWx3 uint8): the frame of its last step (kept back for the last tile)."""
        self._paste(tile_index, pixels)
        if self.pending is None or tile_index + 1 >= len(self.regions):
            return
        index, timestep, sigma, _ = self.pending
        self.pending = None
        self._emit(index, timestep, sigma, Image.fromarray(self.canvas.copy(), "RGB"), True)

    def finish(self, result: Image.Image) -> None:
        """The last frame: the result itself (the exact decode, tiles blended)."""
        if self.pending is None:
            return
        index, timestep, sigma, _ = self.pending
        self.pending = None
        self._emit(index, timestep, sigma, result.convert("RGB"), True)


def scheduler_estimate(scheduler: Any, output: Any) -> Any:
    """The clean-latent estimate a scheduler made in the step that returned ``output``.

    Euler-type schedulers return it (``pred_original_sample``); DPM-Solver++ keeps it as its
    latest converted model output (a data prediction, i.e. x0).
    """
    estimate = getattr(output, "pred_original_sample", None)
    if estimate is None and isinstance(output, tuple) and len(output) > 1:
        estimate = output[1]  # return_dict=False: (prev_sample, pred_original_sample)
    if estimate is None and getattr(scheduler, "model_outputs", None):
        estimate = scheduler.model_outputs[-1]
    if estimate is None:
        estimate = output.prev_sample if hasattr(output, "prev_sample") else output[0]
    return estimate


def step_sigma(scheduler: Any) -> float:
    """The noise level the step just taken started from (read after ``step``)."""
    sigmas = getattr(scheduler, "sigmas", None)
    index = getattr(scheduler, "step_index", None)
    if sigmas is None or index is None:
        return float("nan")
    return float(sigmas[max(0, int(index) - 1)])


# --- animated strips ------------------------------------------------------------------------
