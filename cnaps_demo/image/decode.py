"""Decoding: turn any input (path, bytes, file object, PIL image, numpy array) into 8-bit RGB/RGBA.

``load_image`` checks the format against an allowlist and the size against the caller's pixel
limit *before* decoding, applies EXIF orientation, and returns pixels only (no metadata). Every
refusal is an ``InvalidImageError`` (or a subclass) whose message says what to do.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    InvalidParameterError,
    UnsupportedFormatError,
)
from ..files import path_kind
from .modes import normalise, u16_to_u8
from .sniff import RESAVE_HINT, SNIFF_BYTES, SUPPORTED_FORMATS, header_size, unreadable

__all__ = ["MIN_SIDE", "SUPPORTED_FORMATS", "LoadedImage", "PixelLimit", "load_image"]

# Smallest width/height an engine can work on.
MIN_SIDE = 4


@dataclass(frozen=True)
class LoadedImage:
    """A decoded input: 8-bit ``RGB`` or ``RGBA`` pixels, orientation applied."""

    image: Image.Image
    format: str  # "PNG" | "JPEG" | "WEBP" ("PNG" for in-memory pixels)
    original_mode: str  # mode before normalisation, e.g. "P", "I;16", "CMYK"
    notices: tuple[str, ...] = ()


class PixelLimit(int):
    """A pixel count that knows which setting raises it (named in "too large" messages)."""

    setting: str

    def __new__(cls, pixels: int, setting: str = "CNAPS_MAX_PIXELS") -> PixelLimit:
        value = super().__new__(cls, pixels)
        value.setting = setting
        return value


def load_image(
    source: Any,
    *,
    max_pixels: int,
    limit_setting: str = "CNAPS_MAX_PIXELS",
    name: str | None = None,
) -> LoadedImage:
    """Load ``source`` (path, bytes, file object, PIL image or numpy array) as RGB/RGBA.

    ``max_pixels`` is the caller's pixel limit (this module reads no settings); ``limit_setting``
    is the environment variable that sets it, named in "too large" messages. ``name`` is how
    messages call the input (default: its path), so a server can keep its own paths out of
    what users see. Raises ``InvalidImageError`` or a subclass with a message saying what to do.
    """
    if max_pixels is None:  # the old "use the settings" default is gone: say so plainly
        raise TypeError("load_image() needs max_pixels, the caller's pixel limit")
    raw_limit = int(max_pixels)
    if raw_limit < 1:
        raise InvalidParameterError(
            f"max_pixels={max_pixels} is not a valid pixel limit.", hint="Use a whole number >= 1."
        )
    limit = PixelLimit(raw_limit, limit_setting)

    if isinstance(source, Image.Image):
        return _load_pil(source, limit)
    if isinstance(source, np.ndarray):
        return _load_array(source, limit)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load_stream(io.BytesIO(bytes(source)), limit, "The file")
    if isinstance(source, (str, os.PathLike)):
        return _load_path(Path(os.fspath(source)), limit, name)
    if hasattr(source, "read"):
        fp = source
        seekable = getattr(fp, "seekable", None)
        if not (callable(seekable) and seekable()):
            # Sniffing and Pillow both need to seek; a pipe or socket is read whole.
            fp = io.BytesIO(fp.read())
        return _load_stream(fp, limit, "The file")
    raise InvalidImageError(
        f"Cannot read an image from a {type(source).__name__}.",
        hint="Pass a file path, bytes, a binary file object, a PIL image or a numpy array.",
    )


def _load_path(path: Path, limit: int, name: str | None) -> LoadedImage:
    """Open a file by path; messages call it ``name`` (default: the path itself)."""
    shown = name or str(path)
    subject = f"The file '{shown}'"
    kind = path_kind(path)
    if kind == "invalid":
        raise InvalidImageError(
            f"'{shown[:120]}' is not a usable file name (too long, or it holds a NUL character).",
            hint="Check the path and try again.",
        )
    if kind == "missing":
        raise InvalidImageError(f"There is no file at '{shown}'.", hint="Check the path and try again.")
    if kind != "file":
        raise InvalidImageError(
            f"'{shown}' is not a file (it may be a folder).",
            hint="Pass the path of a PNG, JPEG or WebP file.",
        )
    try:
        with open(path, "rb") as fp:
            return _load_stream(fp, limit, subject)
    except OSError as exc:  # permission denied, I/O error
        raise InvalidImageError(
            f"{subject} could not be read ({exc.strerror or exc}).",
            hint="Check that the file is readable and try again.",
        ) from exc


def _load_stream(fp: IO[bytes], limit: int, subject: str) -> LoadedImage:
    """Open an encoded image from a seekable binary stream (the caller owns ``fp``)."""
    fp.seek(0)
    head = fp.read(SNIFF_BYTES)
    fp.seek(0)
    if not head:
        raise InvalidImageError(f"{subject} is empty (0 bytes).", hint=RESAVE_HINT)
    try:
        # Explicit allowlist: no other decoder ever sees untrusted bytes. Image.open only
        # parses the header here; pixels are decoded later by load().
        image = Image.open(fp, formats=list(SUPPORTED_FORMATS))
    except Image.DecompressionBombError as exc:
        raise _too_large_from_bomb(exc, head, limit) from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        IndexError,
        TypeError,
    ) as exc:
        raise unreadable(head, subject) from exc
    with image:  # does not close a caller's file object, only what Pillow opened itself
        return _finish(image, limit, subject)


def _load_pil(image: Image.Image, limit: int) -> LoadedImage:
    """Accept a PIL image; a lazily opened one is size-checked before it is decoded."""
    fmt = image.format
    if fmt == "MPO":  # multi-picture JPEG from cameras; frame 0 is the ordinary JPEG
        fmt = "JPEG"
    if fmt is not None and fmt not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(
            f"The image is a {fmt} image; only PNG, JPEG and WebP images are accepted.",
            hint=RESAVE_HINT,
        )
    position = image.tell() if getattr(image, "n_frames", 1) > 1 else 0
    try:
        return _finish(image, limit, "The image", fmt or "PNG")
    finally:
        if position:
            image.seek(position)  # leave the caller's animation where it was


def _finish(image: Image.Image, limit: int, subject: str, fmt: str | None = None) -> LoadedImage:
    """Size checks, first frame, decode, orientation and mode normalisation."""
    fmt = fmt or ("JPEG" if image.format == "MPO" else image.format) or "PNG"
    width, height = image.size
    _check_size(width, height, limit)

    notices: list[str] = []
    n_frames = getattr(image, "n_frames", 1)
    if n_frames > 1:
        image.seek(0)
        if image.format != "MPO":  # MPO extra frames are previews/depth maps, not animation
            notices.append(f"Animated image: only the first frame of {n_frames} was used.")
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise _too_large_from_bomb(exc, b"", limit) from None
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure on untrusted data means "damaged"
        raise InvalidImageError(
            f"{subject} is damaged or incomplete: its {fmt} data could not be decoded ({exc}).",
            hint="Re-export or re-download it, save it as PNG, JPEG or WebP and try again.",
        ) from exc

    original_mode = image.mode
    oriented = _apply_orientation(image, notices)
    normalised = normalise(oriented, notices)
    if normalised is image:  # never hand back (or later mutate) the caller's object
        normalised = image.copy()
    normalised.info = {}  # pixels only: nothing of the source's metadata travels on
    return LoadedImage(normalised, fmt, original_mode, tuple(notices))


def _check_size(width: int, height: int, limit: int) -> None:
    error = _size_error(width, height, limit)
    if error is not None:
        raise error


def _size_error(width: int, height: int, limit: int) -> InvalidImageError | None:
    """The error for a width x height outside the limits, or None when it is fine."""
    pixels = width * height
    if pixels > limit:
        return ImageTooLargeError(
            f"The image is {width} x {height} = {pixels:,} pixels, over the limit of {limit:,} pixels.",
            hint=f"Shrink it to about {_fit(width, height, limit)} or less, or raise the limit "
            f"with the environment variable {_setting(limit)}.",
        )
    # Pillow's own decompression-bomb limit: it only warns between 1x and 2x of it, and
    # raises above 2x before we see the image; both become the same error here.
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and pixels > pillow_limit:
        return ImageTooLargeError(
            f"The image is {width} x {height} = {pixels:,} pixels, over Pillow's "
            f"decompression-bomb safety limit of {pillow_limit:,} pixels.",
            hint=f"Shrink it to about {_fit(width, height, pillow_limit)} or less and try again.",
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        return ImageTooSmallError(
            f"The image is only {width} x {height} pixels; at least {MIN_SIDE} x {MIN_SIDE} is needed.",
            hint="Use a larger image.",
        )
    return None


def _setting(limit: int) -> str:
    return getattr(limit, "setting", "CNAPS_MAX_PIXELS")


def _fit(width: int, height: int, limit: int) -> str:
    """Largest same-aspect size within ``limit`` pixels, as "W x H"."""
    scale = math.sqrt(limit / (width * height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    return f"{w} x {h}"


def _too_large_from_bomb(exc: Exception, head: bytes, limit: int) -> ImageTooLargeError:
    """Turn Pillow's DecompressionBombError (raised before our own check could run)."""
    size = header_size(head)
    if size is not None:
        error = _size_error(*size, limit)
        if isinstance(error, ImageTooLargeError):
            return error
    match = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(match.group(1)) if match else None
    if pixels is not None and pixels > limit:
        return ImageTooLargeError(
            f"The image has {pixels:,} pixels, over the limit of {limit:,} pixels.",
            hint=f"Shrink it or raise the limit with the environment variable {_setting(limit)}.",
        )
    return ImageTooLargeError(
        f"The image is larger than Pillow's decompression-bomb safety limit ({Image.MAX_IMAGE_PIXELS:,} pixels).",
        hint="Shrink it and try again.",
    )


def _apply_orientation(image: Image.Image, notices: list[str]) -> Image.Image:
    """Rotate/flip by the EXIF Orientation tag; a broken EXIF block is not fatal."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        # Malformed EXIF from some editors: the pixels are still fine.
        notices.append("The EXIF orientation could not be read; the image is used as stored.")
    return image


def _load_array(array: np.ndarray, limit: int) -> LoadedImage:
    """Validate a numpy image (HxW, HxWx1..4; uint8, uint16 or float in [0, 1])."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] > 4:
        raise InvalidImageError(
            f"The array has shape {array.shape}, which looks channels-first (CxHxW).",
            hint="Transpose it to HxWxC, e.g. array.transpose(1, 2, 0).",
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise InvalidImageError(
            f"The array has shape {array.shape}; an image must be HxW, HxWx3 or HxWx4.",
            hint="Pass a greyscale (HxW), RGB (HxWx3) or RGBA (HxWx4) array.",
        )
    height, width = array.shape[:2]
    _check_size(width, height, limit)

    kind = array.dtype  # compared by kind/size so big-endian arrays are accepted too
    if kind.kind == "u" and kind.itemsize == 1:
        data = array
        depth = ""
    elif kind.kind == "u" and kind.itemsize == 2:
        data = u16_to_u8(array)
        depth = ";16"
    elif kind.kind == "f":
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise InvalidImageError(
                "The float array contains NaN or infinite values.",
                hint="Replace them (e.g. np.nan_to_num) before passing the array.",
            )
        low, high = float(values.min()), float(values.max())
        if low < -1e-3 or high > 1 + 1e-3:  # tolerate float rounding noise only
            raise InvalidImageError(
                f"Float arrays must hold values in [0, 1]; this one spans [{low:g}, {high:g}].",
                hint="Divide 0-255 values by 255 (or pass a uint8 array).",
            )
        data = np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)
        depth = ";F"
    else:
        raise InvalidImageError(
            f"Arrays of dtype {kind} are not supported.",
            hint="Use uint8 (0-255), uint16 (0-65535) or float in [0, 1].",
        )

    channels = 1 if data.ndim == 2 else data.shape[2]
    if data.ndim == 3 and channels == 1:
        data = data[..., 0]
    if channels == 1:
        rgb = np.dstack([data, data, data])
    elif channels == 2:  # grey + alpha
        rgb = np.dstack([data[..., 0]] * 3 + [data[..., 1]])
    else:
        rgb = data
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    return LoadedImage(image, "PNG", mode + depth, ())
