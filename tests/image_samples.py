"""Image builders shared by the tests of ``cnaps_demo.image``. Every image is generated here."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RESAVE = "Save it as PNG, JPEG or WebP and try again."
# load_image has no default limit any more; tests pass the one the settings default to.
LIMIT = 4096 * 4096


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    rows: bytes | None = None,
    extra: tuple[bytes, ...] = (),
) -> bytes:
    """A PNG written by hand (valid CRCs), for headers Pillow would never write."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    data = PNG_SIGNATURE + chunk(b"IHDR", ihdr) + b"".join(extra)
    if rows is not None:
        data += chunk(b"IDAT", zlib.compress(rows))
    return data + chunk(b"IEND", b"")


def chunk_types(png: bytes) -> list[bytes]:
    assert png.startswith(PNG_SIGNATURE)
    types, pos = [], 8
    while pos < len(png):
        length = struct.unpack(">I", png[pos : pos + 4])[0]
        types.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def gradient_rgb(width: int = 16, height: int = 8) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.dstack([x, y, 255 - x]))
