"""Recognising formats from their first bytes: the allowlist, and what to call refused files.

Pillow is only ever asked to decode the allowlisted formats; these byte tests exist so a
refusal can say what the file really is ("a GIF image", "an HTML web page", a damaged PNG)
and read a PNG/WebP header's size for a precise "too large" message.
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import InvalidImageError, UnsupportedFormatError

__all__ = ["PNG_SIGNATURE", "RESAVE_HINT", "SNIFF_BYTES", "SUPPORTED_FORMATS", "header_size", "sniff", "unreadable"]

SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP")

RESAVE_HINT = "Save it as PNG, JPEG or WebP and try again."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Enough bytes to recognise any format we name in errors (HTML may start after whitespace).
SNIFF_BYTES = 512


def header_size(head: bytes) -> tuple[int, int] | None:
    """Width/height from a PNG IHDR or WebP VP8X header, for a precise error message."""
    if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


# (test, description) for formats we can name when they are refused.
_KNOWN_FORMATS: tuple[tuple[Any, str], ...] = (
    (lambda h: h.startswith(PNG_SIGNATURE), "PNG"),
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


def sniff(head: bytes) -> str | None:
    for test, description in _KNOWN_FORMATS:
        if test(head):
            return description
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "HTML"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing"
    return None


def unreadable(head: bytes, subject: str) -> InvalidImageError:
    """The error for bytes that Pillow could not open under the allowlist."""
    kind = sniff(head)
    if kind in SUPPORTED_FORMATS:
        return InvalidImageError(
            f"{subject} starts like a {kind} image but its header is damaged, so it cannot be read.",
            hint="Re-export or re-download it, save it as PNG, JPEG or WebP and try again.",
        )
    if kind == "HTML":
        return UnsupportedFormatError(
            f"{subject} is an HTML web page, not an image.",
            hint="This happens when a download saves the page instead of the picture: "
            "download the image itself. " + RESAVE_HINT,
        )
    if kind is not None:
        return UnsupportedFormatError(
            f"{subject} is {kind}; only PNG, JPEG and WebP images are accepted.",
            hint=RESAVE_HINT,
        )
    return InvalidImageError(
        f"{subject} is not a PNG, JPEG or WebP image (its content is not a recognised image).",
        hint=RESAVE_HINT,
    )

