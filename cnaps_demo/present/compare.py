"""Pure helpers for comparing upscalers: baseline, blurry-source simulation, crops, maps, PSNR.

Nothing here imports gradio or torch; every function takes and returns PIL images (or
plain numbers) and leaves its inputs untouched.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Box = tuple[int, int, int, int]  # left, top, right, bottom (PIL convention, right/bottom exclusive)

# Colour map for the "what the model added" map: black -> purple -> orange -> pale yellow
# (an inferno-like ramp that reads well on a projector and for most colour-blind viewers).
_MAP_STOPS = np.array(
    [
        (0.00, 0, 0, 4),
        (0.25, 87, 16, 110),
        (0.50, 188, 55, 84),
        (0.75, 249, 142, 9),
        (1.00, 252, 255, 164),
    ],
    dtype=np.float32,
)


def _rgb(image: Image.Image) -> Image.Image:
    """RGB view of an image; transparency is flattened onto white (how a viewer shows it)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def bicubic_baseline(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The classical answer: ``image`` resized to ``size`` with bicubic interpolation."""
    return image.resize(tuple(size), Image.Resampling.BICUBIC)


def simulate_blurry_source(
    image: Image.Image, factor: int = 2, blur_radius: float = 0.6, jpeg_quality: int = 60
) -> tuple[Image.Image, Image.Image]:
    """Recreate "a small, blurry, JPEG-compressed copy" of ``image``, keeping a ground truth.

    Returns ``(small, ground_truth)``: ``small`` is ``image`` shrunk ``factor`` times
    (area-averaging), softened with a slight Gaussian blur and saved as a JPEG of
    ``jpeg_quality``; ``ground_truth`` is ``image`` (RGB) cropped to an exact multiple of
    ``factor`` so that upscaling ``small`` by ``factor`` lands on its size.
    """
    if factor < 1:
        raise ValueError("factor must be >= 1")
    rgb = _rgb(image)
    width, height = (rgb.width // factor) * factor, (rgb.height // factor) * factor
    if width < factor or height < factor:
        raise ValueError(f"image of {rgb.width}x{rgb.height} is too small to shrink {factor}x")
    truth = rgb.crop((0, 0, width, height)) if (width, height) != rgb.size else rgb.copy()
    small = truth.resize((width // factor, height // factor), Image.Resampling.BOX)
    if blur_radius > 0:
        small = small.filter(ImageFilter.GaussianBlur(blur_radius))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=int(jpeg_quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        small = decoded.convert("RGB")
    return small, truth


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(_rgb(image).convert("L"), dtype=np.float32)


def edge_strength(image: Image.Image) -> np.ndarray:
    """Per-pixel gradient magnitude of the luminance (central differences), HxW float32."""
    y = _luma(image)
    gx = np.zeros_like(y)
    gy = np.zeros_like(y)
    gx[:, 1:-1] = y[:, 2:] - y[:, :-2]
    gy[1:-1, :] = y[2:, :] - y[:-2, :]
    return np.hypot(gx, gy)


def edge_richest_box(image: Image.Image, window: int | tuple[int, int]) -> Box:
    """The ``window``-sized square (or (w, h)) of ``image`` that holds the most edge energy.

    Uses an integral image, so every position is scored exactly; ties go to the first
    (top-left-most) window. The window is clipped to the image.
    """
    win_w, win_h = (window, window) if isinstance(window, int) else window
    width, height = image.size
    win_w, win_h = max(1, min(int(win_w), width)), max(1, min(int(win_h), height))
    energy = edge_strength(image).astype(np.float64)
    integral = np.zeros((height + 1, width + 1), dtype=np.float64)
    integral[1:, 1:] = energy.cumsum(0).cumsum(1)
    sums = integral[win_h:, win_w:] - integral[:-win_h, win_w:] - integral[win_h:, :-win_w] + integral[:-win_h, :-win_w]
    top, left = (int(v) for v in np.unravel_index(int(np.argmax(sums)), sums.shape))
    return left, top, left + win_w, top + win_h


def scale_box(box: Box, factor: float) -> Box:
    """Map a box from the input grid onto an image ``factor`` times larger."""
    return tuple(round(v * factor) for v in box)  # type: ignore[return-value]


def centered_box(center: tuple[float, float], window: int, size: tuple[int, int]) -> Box:
    """A ``window`` square centred on ``center`` and shifted to lie inside ``size``."""
    width, height = size
    w, h = min(window, width), min(window, height)
    left = round(center[0] - w / 2)
    top = round(center[1] - h / 2)
    left = max(0, min(left, width - w))
    top = max(0, min(top, height - h))
    return left, top, left + w, top + h


def crop_1to1(image: Image.Image, box: Box, zoom: int = 1) -> Image.Image:
    """The pixels inside ``box`` at 1:1; ``zoom`` > 1 repeats each pixel (nearest) for display."""
    region = _rgb(image).crop(box)
    if zoom > 1:
        region = region.resize((region.width * zoom, region.height * zoom), Image.Resampling.NEAREST)
    return region


def draw_box(
    image: Image.Image, box: Box, width: int = 3, colour: tuple[int, int, int] = (255, 64, 160)
) -> Image.Image:
    """A copy of ``image`` with ``box`` outlined (to show where the detail crops come from)."""
    out = _rgb(image).copy()
    draw = ImageDraw.Draw(out)
    left, top, right, bottom = box
    for i in range(width):
        draw.rectangle((left - i, top - i, right - 1 + i, bottom - 1 + i), outline=colour)
    return out


def difference(output: Image.Image, baseline: Image.Image) -> np.ndarray:
    """Mean absolute RGB difference per pixel, HxW float32 in 0..255."""
    a = np.asarray(_rgb(output), dtype=np.float32)
    b = np.asarray(_rgb(baseline), dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    return np.abs(a - b).mean(axis=2)


def colourise(values: np.ndarray) -> Image.Image:
    """Map values in [0, 1] onto the inferno-like ramp -> RGB image (256 levels: a look-up table,
    several times faster than interpolating every pixel of a large map)."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    levels = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(levels, _MAP_STOPS[:, 0], _MAP_STOPS[:, i]) for i in (1, 2, 3)], axis=1)
    index = (v * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(table.round().astype(np.uint8)[index], "RGB")


def added_detail_map(output: Image.Image, baseline: Image.Image, gain: float = 4.0) -> Image.Image:
    """What the model added: ``|output - baseline|`` amplified ``gain`` times and colour-mapped.

    Black means "same as bicubic"; bright means the model drew something bicubic did not.
    """
    diff = difference(output, baseline) * float(gain) / 255.0
    return colourise(diff)
