"""Pillow mode normalisation: any mode -> 8-bit "RGB" or "RGBA".

Its own module because decoding, alpha splitting, PNG encoding and float conversion all
need it, and none of them should depend on the others for it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["normalise", "u16_to_u8"]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def normalise(image: Image.Image, notices: list[str]) -> Image.Image:
    """Any Pillow mode -> "RGB" or "RGBA" (alpha dropped when fully opaque).

    May return ``image`` itself when it is already fine. Appends to ``notices`` what the user
    should know (e.g. a CMYK conversion).
    """
    mode = image.mode
    transparency = image.info.get("transparency")
    if mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert("L") clips 16-bit values at 255 (a washed-out white image);
        # scale 0..65535 down to 0..255 instead.
        values = np.asarray(image)
        grey = u16_to_u8(values)
        if isinstance(transparency, int):  # tRNS grey key of a 16-bit PNG
            alpha = np.where(values == transparency, 0, 255).astype(np.uint8)
            out = Image.fromarray(np.dstack([grey, grey, grey, alpha]))
        else:
            out = Image.fromarray(grey).convert("RGB")
    elif mode == "F":
        # Pillow's convention for "F" is the 0..255 range (as convert("L") uses); round it.
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        grey = np.rint(np.clip(values, 0, 255)).astype(np.uint8)
        out = Image.fromarray(grey).convert("RGB")
    elif mode == "La":  # premultiplied grey + alpha; Pillow cannot convert it directly
        values = np.asarray(image).astype(np.float32)
        alpha = values[..., 1]
        grey = np.where(alpha > 0, values[..., 0] * 255 / np.maximum(alpha, 1), 0)
        grey = np.rint(np.clip(grey, 0, 255)).astype(np.uint8)
        out = Image.fromarray(np.dstack([grey, grey, grey, alpha.astype(np.uint8)]))
    elif mode == "CMYK":
        out = image.convert("RGB")
        notices.append("CMYK image converted to RGB; colours may differ slightly from the print preview.")
    elif mode in ("1", "L", "P", "RGB"):
        has_alpha = transparency is not None or (
            mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
        )
        # convert("RGBA") turns palette/colour-key transparency into a real alpha channel.
        out = image.convert("RGBA") if has_alpha else image if mode == "RGB" else image.convert("RGB")
    elif mode == "RGBA":
        out = image
    else:  # LA, PA, RGBa, RGBX, YCbCr, LAB, HSV, ...
        bands = image.getbands()
        out = image.convert("RGBA" if ("A" in bands or "a" in bands) else "RGB")

    if out.mode == "RGBA" and out.getchannel("A").getextrema() == (255, 255):
        out = out.convert("RGB")  # fully opaque alpha carries no information
    return out


def u16_to_u8(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (value / 257), clipping out-of-range ints."""
    wide = np.clip(values.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)
