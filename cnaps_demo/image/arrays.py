"""Float arrays: 8-bit images <-> float32 arrays in [0, 1], and the one float -> uint8 rule.

Engines work on floats in [0, 1]; ``to_uint8`` is how every float result becomes 8-bit
pixels, so all engines round the same way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InvalidImageError
from .modes import normalise

__all__ = ["from_float_array", "to_float_array", "to_uint8"]


def to_uint8(values: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """Floats in [0, 1] -> uint8 of the same shape: floor(v * 255 + 0.5), clipped to 0..255.

    Round half up, as the C++ reference engine does (v * 255 + 0.5, clipped, truncated; after
    the clip truncation is floor). NaN gives 0, +inf 255, -inf 0. The arithmetic runs in the
    array's own precision (float16 is widened to float32), so float32 input gives the same
    bytes as that engine. ``overwrite=True`` lets ``values`` be used as scratch space (its
    contents are then lost), which saves one float copy of a large result.
    """
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"to_uint8 needs a float array, got dtype {array.dtype}")
    if array.dtype.itemsize < 4:
        array, overwrite = array.astype(np.float32), True  # a fresh copy: free to reuse
    if overwrite and array.flags.writeable:
        work = np.multiply(array, 255, out=array)
    else:
        work = array * 255
    work += 0.5
    np.clip(work, 0, 255, out=work)
    np.nan_to_num(work, copy=False, nan=0.0)  # clip keeps NaN; the uint8 cast of NaN is undefined
    return work.astype(np.uint8)


def to_float_array(image: Image.Image) -> np.ndarray:
    """RGB -> HxWx3 float32 in [0, 1] (RGBA -> HxWx4; other modes are made RGB first)."""
    if image.mode not in ("RGB", "RGBA"):
        image = normalise(image, [])
    return np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255.0)


def from_float_array(array: np.ndarray) -> Image.Image:
    """HxWx3 (RGB) or HxWx4 (RGBA) floats in [0, 1] -> 8-bit image; clipped and rounded.

    HxW and HxWx1 give a grey RGB image; NaN becomes 0. Rounding (``to_uint8``, not
    truncation) keeps a to_float_array/from_float_array round trip exact.
    """
    values = np.asarray(array)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    if values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"The array has shape {values.shape}; expected HxW, HxWx3 or HxWx4.",
            hint="Pass an image array in height x width x channels order.",
        )
    if values.dtype == np.uint8:
        data = values
    elif np.issubdtype(values.dtype, np.floating):
        # float32 whatever the input's precision, as before; astype copies, so it may be reused.
        data = to_uint8(values.astype(np.float32), overwrite=True)
    else:
        raise InvalidImageError(
            f"Arrays of dtype {values.dtype} are not supported here.",
            hint="Pass floats in [0, 1] (or uint8).",
        )
    if data.ndim == 2:
        data = np.dstack([data, data, data])
    return Image.fromarray(np.ascontiguousarray(data))
