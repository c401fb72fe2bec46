"""The image contract: decode inputs, split/merge alpha, convert to/from floats, tile, write PNGs.

Every input goes through ``load_image`` (allowlisted formats, the caller's pixel limit checked
before decoding, EXIF orientation applied, 8-bit RGB/RGBA out); every output goes through
``encode_png``/``save_png``, which write pixels only, so no metadata of an input can leak.
Nothing here reads settings or imports torch or gradio.

Modules, one job each: ``decode`` (loading), ``sniff`` (format recognition), ``modes``
(mode normalisation), ``alpha``, ``arrays`` (floats and ``to_uint8``), ``png`` (output and
text chunks), ``tiling``.
"""

from __future__ import annotations

from .alpha import BLEED_ALPHA, merge_alpha, split_alpha
from .arrays import from_float_array, to_float_array, to_uint8
from .decode import MIN_SIDE, LoadedImage, PixelLimit, load_image
from .png import encode_png, read_png_metadata, save_png
from .sniff import SUPPORTED_FORMATS
from .tiling import TileFn, check_tiling, count_tiles, tile_spans, tiled_apply

__all__ = [
    "BLEED_ALPHA",
    "MIN_SIDE",
    "SUPPORTED_FORMATS",
    "LoadedImage",
    "PixelLimit",
    "TileFn",
    "check_tiling",
    "count_tiles",
    "encode_png",
    "from_float_array",
    "load_image",
    "merge_alpha",
    "read_png_metadata",
    "save_png",
    "split_alpha",
    "tile_spans",
    "tiled_apply",
    "to_float_array",
    "to_uint8",
]
