"""PNG output and PNG text: encode pixels-only PNGs, save them atomically, read their text chunks.

``encode_png`` writes a fresh PNG from the pixel bytes, so no EXIF/GPS/ICC/XMP or other
metadata of the input can leak into a result; ``read_png_metadata`` reads tEXt/zTXt/iTXt
without decoding any pixels.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..errors import InvalidImageError, InvalidParameterError
from ..files import atomic_write
from .sniff import PNG_SIGNATURE, RESAVE_HINT
from .modes import normalise

__all__ = ["encode_png", "read_png_metadata", "save_png"]

# Cap on one decompressed PNG text chunk, so a zTXt "zip bomb" cannot exhaust memory.
_MAX_TEXT_BYTES = 1 << 20


def encode_png(image: Image.Image, metadata: Mapping[str, str], compress_level: int = 6) -> bytes:
    """Lossless PNG of the pixels only, plus one tEXt (or iTXt if non-Latin-1) per item.

    A fresh image is built from the pixel bytes, so no EXIF/GPS/ICC/XMP of the source can
    leak into the file. ``compress_level`` 1 is several times faster (pictures only shown on a page).
    """
    if image.mode not in ("RGB", "RGBA"):
        image = normalise(image, [])
    fresh = Image.frombytes(image.mode, image.size, image.tobytes())
    info = PngInfo()
    for key, value in metadata.items():
        _check_text_item(key, value)
        info.add_text(key, str(value))  # Pillow falls back to iTXt when not Latin-1
    buffer = io.BytesIO()
    fresh.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
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


def save_png(
    image: Image.Image, path: str | os.PathLike[str], metadata: Mapping[str, str], compress_level: int = 6
) -> Path:
    """Write ``encode_png`` output to ``path`` (parents created, written atomically)."""
    data = encode_png(image, metadata, compress_level)  # a bad key fails before anything is created on disk
    # Atomic, so a crash never leaves a half-written PNG; normal (umask) permissions.
    return atomic_write(path, data)


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
    if fp.read(8) != PNG_SIGNATURE:
        return {}
    text: dict[str, str] = {}
    while True:
        header = fp.read(8)
        if len(header) == 0:
            break  # missing IEND: keep what was read
        if len(header) < 8:
            raise InvalidImageError("The PNG file is truncated.", hint=RESAVE_HINT)
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            fp.seek(length + 4, io.SEEK_CUR)  # skip data and CRC without reading pixels
            continue
        body = fp.read(length)
        crc = fp.read(4)
        if len(body) < length or len(crc) < 4:
            raise InvalidImageError("The PNG file is truncated.", hint=RESAVE_HINT)
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
