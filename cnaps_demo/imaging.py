"""The one image contract: load, normalise, split/merge alpha, encode PNG.

Every input (path, bytes, file object, PIL image, numpy array) goes through
``load_image``, which checks the format against an allowlist and the size against the
pixel limit *before* decoding, applies EXIF orientation, and returns 8-bit RGB or RGBA.
Every output goes through ``encode_png``, which writes a fresh PNG from pixels only, so no
EXIF/GPS or other metadata of the input can leak into a result.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from .errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    InvalidParameterError,
    UnsupportedFormatError,
)
from .paths import path_kind
from .settings import get_settings

__all__ = [
    "MIN_SIDE",
    "SUPPORTED_FORMATS",
    "LoadedImage",
    "PixelLimit",
    "encode_png",
    "from_float_array",
    "load_image",
    "merge_alpha",
    "read_png_metadata",
    "save_png",
    "split_alpha",
    "to_float_array",
]

SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP")

# Smallest width/height an engine can work on.
MIN_SIDE = 4

# Below this alpha a pixel's own colour is progressively replaced by bled colour; above it
# the colour is kept exactly (anti-aliased edges carry real line colour).
BLEED_ALPHA = 32

_RESAVE_HINT = "Save it as PNG, JPEG or WebP and try again."
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Enough bytes to recognise any format we name in errors (HTML may start after whitespace).
_SNIFF_BYTES = 512
# Cap on one decompressed PNG text chunk, so a zTXt "zip bomb" cannot exhaust memory.
_MAX_TEXT_BYTES = 1 << 20


@dataclass(frozen=True)
class LoadedImage:
    """A decoded input: 8-bit ``RGB`` or ``RGBA`` pixels, orientation applied."""

    image: Image.Image
    format: str  # "PNG" | "JPEG" | "WEBP" ("PNG" for in-memory pixels)
    original_mode: str  # mode before normalisation, e.g. "P", "I;16", "CMYK"
    notices: tuple[str, ...] = ()


# --- loading ---------------------------------------------------------------


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
    max_pixels: int | None = None,
    limit_setting: str = "CNAPS_MAX_PIXELS",
    name: str | None = None,
) -> LoadedImage:
    """Load ``source`` (path, bytes, file object, PIL image or numpy array) as RGB/RGBA.

    ``max_pixels`` defaults to ``get_settings().max_input_pixels``; ``limit_setting`` is the
    environment variable that sets it (named in the message). ``name`` is how messages call the
    input (default: its path), so a server can keep its own paths out of what users see.
    Raises ``InvalidImageError`` or one of its subclasses with a message saying what to do.
    """
    raw_limit = get_settings().max_input_pixels if max_pixels is None else int(max_pixels)
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
        path = Path(os.fspath(source))
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


def _load_stream(fp: IO[bytes], limit: int, subject: str) -> LoadedImage:
    """Open an encoded image from a seekable binary stream (the caller owns ``fp``)."""
    fp.seek(0)
    head = fp.read(_SNIFF_BYTES)
    fp.seek(0)
    if not head:
        raise InvalidImageError(f"{subject} is empty (0 bytes).", hint=_RESAVE_HINT)
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
        raise _unreadable(head, subject) from exc
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
            hint=_RESAVE_HINT,
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
    normalised = _normalise(oriented, notices)
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
    size = _header_size(head)
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


def _header_size(head: bytes) -> tuple[int, int] | None:
    """Width/height from a PNG IHDR or WebP VP8X header, for a precise error message."""
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


# (test, description) for formats we can name when they are refused.
_KNOWN_FORMATS: tuple[tuple[Any, str], ...] = (
    (lambda h: h.startswith(_PNG_SIGNATURE), "PNG"),
    (lambda h: h.startswith(b"\xff\xd8\xff"), "JPEG"),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", "WEBP"),
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), "a GIF image"),
    (lambda h: h[:2] == b"BM", "a BMP image"),
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "a TIFF image"),
    (lambda h: h[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00"), "an ICO/CUR icon"),
    (lambda h: h[:4] == b"8BPS", "a Photoshop (PSD) file"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"avif", b"avis"), "an AVIF image"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"heic", b"heix", b"hevc", b"mif1", b"msf1"), "a HEIC/HEIF image"),
    (lambda h: h[:2] == b"\xff\x0a" or h[4:8] == b"JXL ", "a JPEG XL image"),
    (lambda h: h[4:8] == b"jP  " or h[:4] == b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (lambda h: h[:4] == b"qoif", "a QOI image"),
    (lambda h: h[:5] == b"%PDF-", "a PDF document"),
    (lambda h: h[:4] == b"PK\x03\x04", "a ZIP archive"),
)


def _sniff(head: bytes) -> str | None:
    for test, description in _KNOWN_FORMATS:
        if test(head):
            return description
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "HTML"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing"
    return None


def _unreadable(head: bytes, subject: str) -> InvalidImageError:
    """The error for bytes that Pillow could not open under the allowlist."""
    kind = _sniff(head)
    if kind in SUPPORTED_FORMATS:
        return InvalidImageError(
            f"{subject} starts like a {kind} image but its header is damaged, so it cannot be read.",
            hint="Re-export or re-download it, save it as PNG, JPEG or WebP and try again.",
        )
    if kind == "HTML":
        return UnsupportedFormatError(
            f"{subject} is an HTML web page, not an image.",
            hint="This happens when a download saves the page instead of the picture: "
            "download the image itself. " + _RESAVE_HINT,
        )
    if kind is not None:
        return UnsupportedFormatError(
            f"{subject} is {kind}; only PNG, JPEG and WebP images are accepted.",
            hint=_RESAVE_HINT,
        )
    return InvalidImageError(
        f"{subject} is not a PNG, JPEG or WebP image (its content is not a recognised image).",
        hint=_RESAVE_HINT,
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


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _normalise(image: Image.Image, notices: list[str]) -> Image.Image:
    """Any Pillow mode -> "RGB" or "RGBA" (alpha dropped when fully opaque)."""
    mode = image.mode
    transparency = image.info.get("transparency")
    if mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert("L") clips 16-bit values at 255 (a washed-out white image);
        # scale 0..65535 down to 0..255 instead.
        values = np.asarray(image)
        grey = _u16_to_u8(values)
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


def _u16_to_u8(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (value / 257), clipping out-of-range ints."""
    wide = np.clip(values.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


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
        data = _u16_to_u8(array)
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


# --- alpha -----------------------------------------------------------------


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Return (RGB, alpha "L" or None); transparent pixels get colours bled from opaque ones.

    Upscalers see only the RGB part, so the colour under transparent pixels (often black
    or garbage) would be dragged into edges; filling it from nearby opaque colours fixes that.
    """
    if image.mode not in ("RGB", "RGBA"):
        image = _normalise(image, [])
    if image.mode == "RGB":
        return image, None
    pixels = np.asarray(image)
    alpha = np.ascontiguousarray(pixels[..., 3])
    if alpha.min() == 255:
        return image.convert("RGB"), None
    rgb = np.ascontiguousarray(pixels[..., :3])
    if alpha.min() < BLEED_ALPHA:
        rgb = _bleed(rgb, alpha)
    return Image.fromarray(rgb), Image.fromarray(alpha)


def merge_alpha(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """Attach ``alpha`` (resized bicubically to ``rgb``'s size if needed) -> RGBA."""
    if alpha is None:
        return rgb if rgb.mode in ("RGB", "RGBA") else rgb.convert("RGB")
    if alpha.mode != "L":
        alpha = alpha.convert("L")
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.BICUBIC)
    out = rgb.convert("RGB")  # always a new image: the caller's rgb is not modified
    out.putalpha(alpha)
    return out


def _bleed(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Replace colours of (nearly) transparent pixels by a push-pull fill from opaque ones.

    Full-resolution work is done in bands of rows, so a 4096 x 4096 image needs a few
    hundred MB rather than several GB of float temporaries.
    """
    if not alpha.any():
        return rgb  # nothing opaque to bleed from
    height, width = alpha.shape

    # Push the full-resolution level straight from uint8, one 2x2 phase at a time.
    p_sum = np.zeros(((height + 1) // 2, (width + 1) // 2, 3), np.float32)
    w_sum = np.zeros(p_sum.shape[:2], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            a = alpha[dy::2, dx::2].astype(np.float32) / 255.0
            w_sum[: a.shape[0], : a.shape[1]] += a
            p_sum[: a.shape[0], : a.shape[1]] += rgb[dy::2, dx::2] * a[..., None]
    coarse = _push_pull(*_clamp(p_sum, w_sum))

    out = rgb.copy()
    band = max(1, (1 << 20) // width)  # ~1 Mpixel of float work per band
    for top in range(0, height, band):
        rows = slice(top, min(height, top + band))
        a_band = alpha[rows]
        if a_band.min() >= BLEED_ALPHA:
            continue  # every pixel here keeps its own colour
        weight = a_band.astype(np.float32)[..., None] / 255.0
        colour = rgb[rows].astype(np.float32)
        up = _upsample(coarse, rows, width)
        fill = colour * weight + (1.0 - weight) * up
        keep = np.clip(a_band.astype(np.float32) / BLEED_ALPHA, 0.0, 1.0)[..., None]
        out[rows] = np.rint(np.clip(colour * keep + fill * (1.0 - keep), 0, 255))
    return out


def _clamp(p_sum: np.ndarray, w_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clamp summed weights to 1 (rescaling the premultiplied colour to match).

    The clamp is what makes the fill prefer the nearest colour: a single opaque pixel
    fully defines its coarse cell instead of being averaged away by larger regions.
    """
    weight = np.minimum(w_sum, 1.0)
    scale = np.divide(weight, w_sum, out=np.zeros_like(weight), where=w_sum > 0)
    return p_sum * scale[..., None], weight


def _push_pull(premultiplied: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Pyramid fill (Gortler et al. push-pull): every pixel gets the nearest-weighted colour.

    Push: 2x2 sums of premultiplied colour and weight, clamped (``_clamp``). Pull:
    composite each level over the bilinearly upsampled coarser fill. O(pixels), and no
    holes whatever the size of the transparent area.
    """
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    p, w = premultiplied, weight
    while p.shape[0] > 1 or p.shape[1] > 1:
        levels.append((p, w))
        p, w = _clamp(_sum2x2(p), _sum2x2(w))
    fill = np.divide(p, w[..., None], out=np.zeros_like(p), where=w[..., None] > 0)
    for p, w in reversed(levels):
        up = _upsample(fill, slice(0, p.shape[0]), p.shape[1])
        fill = p + (1.0 - w)[..., None] * up
    return fill


def _sum2x2(x: np.ndarray) -> np.ndarray:
    """Sum over 2x2 blocks; a missing odd edge counts as zero (zero weight = no information)."""
    h, w = x.shape[:2]
    out = np.zeros(((h + 1) // 2, (w + 1) // 2) + x.shape[2:], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            part = x[dy::2, dx::2]
            out[: part.shape[0], : part.shape[1]] += part
    return out


def _upsample(x: np.ndarray, rows: slice, width: int) -> np.ndarray:
    """Bilinear 2x upsample of a pyramid level, for output ``rows`` and ``width`` columns.

    Only the coarse rows the band needs (plus one each side) are upsampled.
    """
    lo = max(0, rows.start // 2 - 1)
    hi = min(x.shape[0], (rows.stop - 1) // 2 + 2)
    doubled = _double(_double(x[lo:hi], 0), 1)
    start = rows.start - 2 * lo
    return doubled[start : start + rows.stop - rows.start, :width]


def _double(x: np.ndarray, axis: int) -> np.ndarray:
    """2x linear upsample along ``axis`` with pixel centres aligned (edges repeated).

    Output 2k sits at k - 1/4 and 2k+1 at k + 1/4 in input coordinates, so each is
    3/4 of its own input sample plus 1/4 of the neighbour on that side.
    """
    x = np.moveaxis(x, axis, 0)
    out = np.empty((2 * x.shape[0],) + x.shape[1:], np.float32)
    np.multiply(x, 0.75, out=out[0::2])
    np.multiply(x, 0.75, out=out[1::2])
    out[2::2] += 0.25 * x[:-1]
    out[0] += 0.25 * x[0]
    out[1:-1:2] += 0.25 * x[1:]
    out[-1] += 0.25 * x[-1]
    return np.moveaxis(out, 0, axis)


# --- PNG output --------------------------------------------------------------


def encode_png(image: Image.Image, metadata: Mapping[str, str]) -> bytes:
    """Lossless PNG of the pixels only, plus one tEXt (or iTXt if non-Latin-1) per item.

    A fresh image is built from the pixel bytes, so no EXIF/GPS/ICC/XMP of the source can
    leak into the file.
    """
    if image.mode not in ("RGB", "RGBA"):
        image = _normalise(image, [])
    fresh = Image.frombytes(image.mode, image.size, image.tobytes())
    info = PngInfo()
    for key, value in metadata.items():
        _check_text_item(key, value)
        info.add_text(key, str(value))  # Pillow falls back to iTXt when not Latin-1
    buffer = io.BytesIO()
    fresh.save(buffer, format="PNG", pnginfo=info, compress_level=6)
    return buffer.getvalue()


def _check_text_item(key: Any, value: Any) -> None:
    """PNG keywords are 1-79 printable Latin-1 characters without edge/double spaces."""
    ok = isinstance(key, str) and 1 <= len(key) <= 79 and key == key.strip() and "  " not in key
    if ok:
        try:
            ok = all(32 <= b <= 126 or b >= 161 for b in key.encode("latin-1"))
        except UnicodeEncodeError:
            ok = False
    if not ok:
        raise InvalidParameterError(
            f"PNG metadata key {key!r} is not valid.",
            hint="Use 1-79 printable Latin-1 characters, no leading, trailing or double spaces.",
        )
    if "\x00" in str(value):
        raise InvalidParameterError(
            f"PNG metadata value for {key!r} contains a NUL character.",
            hint="Remove NUL characters from the value.",
        )


def save_png(image: Image.Image, path: str | os.PathLike[str], metadata: Mapping[str, str]) -> Path:
    """Write ``encode_png`` output to ``path`` (parents created, written atomically)."""
    target = Path(path)
    data = encode_png(image, metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file and rename, so a crash never leaves a half-written PNG.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_png_metadata(data_or_path: Any) -> dict[str, str]:
    """Text chunks (tEXt, zTXt, iTXt) of a PNG, read without decoding any pixels.

    Accepts bytes, a path or a binary file object. Input that is not a PNG has no PNG
    text and gives ``{}``; a missing file or a damaged chunk stream raises InvalidImageError.
    """
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        return _read_text_chunks(io.BytesIO(bytes(data_or_path)))
    if isinstance(data_or_path, (str, os.PathLike)):
        path = Path(os.fspath(data_or_path))
        if not path.is_file():
            raise InvalidImageError(f"There is no file at '{path}'.", hint="Check the path and try again.")
        with open(path, "rb") as fp:
            return _read_text_chunks(fp)
    if hasattr(data_or_path, "read"):
        return _read_text_chunks(data_or_path)
    raise InvalidImageError(
        f"Cannot read PNG metadata from a {type(data_or_path).__name__}.",
        hint="Pass bytes, a path or a binary file object.",
    )


def _read_text_chunks(fp: IO[bytes]) -> dict[str, str]:
    if fp.read(8) != _PNG_SIGNATURE:
        return {}
    text: dict[str, str] = {}
    while True:
        header = fp.read(8)
        if len(header) == 0:
            break  # missing IEND: keep what was read
        if len(header) < 8:
            raise InvalidImageError("The PNG file is truncated.", hint=_RESAVE_HINT)
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            fp.seek(length + 4, io.SEEK_CUR)  # skip data and CRC without reading pixels
            continue
        body = fp.read(length)
        crc = fp.read(4)
        if len(body) < length or len(crc) < 4:
            raise InvalidImageError("The PNG file is truncated.", hint=_RESAVE_HINT)
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            continue  # a corrupt text chunk is skipped, like Pillow does
        item = _parse_text_chunk(kind, body)
        if item is not None:
            text[item[0]] = item[1]
    return text


def _parse_text_chunk(kind: bytes, body: bytes) -> tuple[str, str] | None:
    key, sep, rest = body.partition(b"\x00")
    if not sep:
        return None
    try:
        if kind == b"tEXt":
            return key.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return key.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
        # iTXt: compression flag, method, language tag\0, translated keyword\0, UTF-8 text
        compressed = rest[:1] == b"\x01"
        _language, _, rest = rest[2:].partition(b"\x00")
        _translated, _, value = rest.partition(b"\x00")
        if compressed:
            value = _inflate(value)
        return key.decode("latin-1"), value.decode("utf-8")
    except (zlib.error, UnicodeDecodeError, ValueError):
        return None


def _inflate(data: bytes) -> bytes:
    decompressor = zlib.decompressobj()
    out = decompressor.decompress(data, _MAX_TEXT_BYTES)
    if decompressor.unconsumed_tail:
        raise ValueError("PNG text chunk too large")
    return out


# --- float arrays ------------------------------------------------------------


def to_float_array(image: Image.Image) -> np.ndarray:
    """RGB -> HxWx3 float32 in [0, 1] (RGBA -> HxWx4; other modes are made RGB first)."""
    if image.mode not in ("RGB", "RGBA"):
        image = _normalise(image, [])
    return np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255.0)


def from_float_array(array: np.ndarray) -> Image.Image:
    """HxWx3 (RGB) or HxWx4 (RGBA) floats in [0, 1] -> 8-bit image; clipped and rounded.

    HxW and HxWx1 give a grey RGB image; NaN becomes 0. Rounding (not truncation) keeps
    a to_float_array/from_float_array round trip exact.
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
        clean = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        data = np.rint(np.clip(clean, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise InvalidImageError(
            f"Arrays of dtype {values.dtype} are not supported here.",
            hint="Pass floats in [0, 1] (or uint8).",
        )
    if data.ndim == 2:
        data = np.dstack([data, data, data])
    return Image.fromarray(np.ascontiguousarray(data))
