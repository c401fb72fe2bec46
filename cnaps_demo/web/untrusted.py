"""What may arrive over the network, decided in one place.

An image value from a web client may only be

* a file this server received as an upload (Gradio's ``/upload`` route records each one), or a
  bundled example that Gradio copied into its cache for the Examples gallery, named by the exact
  path the server handed out; or
* a pasted image as a ``data:`` URL, decoded in memory (it never becomes a file), and only when it is
  no larger than an upload may be (its size is read from its length, before anything is decoded).

Everything else — a bare ``{"path": ...}`` naming a server file, ``..``, a symlink, an http URL, a
plain string — gets one and the same answer, so the reply never tells whether a server file
exists. A field that names weights may only name what the operator offers for that field: ``model``
the engine's default, the published models, ``CNAPS_SD_MODEL`` and ``CNAPS_WEB_MODELS``;
``controlnet`` its default, ``CNAPS_SD_CONTROLNET`` and ``none``. It is compared as text, so nothing
on disk is probed for it.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..engines import Engine
from ..errors import ImageTooLargeError, InvalidImageError, InvalidParameterError, NoImageError
from .words import too_large_message

NO_IMAGE_MESSAGE = (
    "There is no image to upscale yet. Upload a PNG, JPEG or WebP illustration (drag it in, "
    "paste it, or click the upload area), or pick one of the examples."
)
NOT_UPLOADED_MESSAGE = "This image was not uploaded to this server, so it cannot be used."
NOT_UPLOADED_HINT = (
    "Upload the file first: drag it into the page, or from gradio_client pass handle_file('picture.png')."
)


@dataclass(frozen=True)
class Admitted:
    """An input the server may open: a path it received, or bytes decoded in memory."""

    data: str | bytes | Image.Image
    name: str  # the name the user knows it by (never a server path)


class UploadGuard:
    """Admits an image value from a web client only if it is an upload or a bundled example.

    ``known_files`` returns the collections of paths the server handed out (Gradio's upload set,
    the example copies); they are read on each call, since uploads arrive all the time.
    """

    def __init__(self, known_files: Callable[[], Iterable[Collection[str]]], max_bytes: int | None = None) -> None:
        self._known_files = known_files
        self._max_bytes = max_bytes  # a pasted picture may be no larger than an upload (None: any size)

    def admit(self, value: Any) -> Admitted:
        return _admit(value, self._known_path, accept_objects=False, max_bytes=self._max_bytes)

    def _known_path(self, path: str) -> str:
        # Exact text the server handed out, then a plain regular file (no symlink swapped in).
        if "\x00" in path or not any(path in files for files in self._known_files()):
            raise InvalidImageError(NOT_UPLOADED_MESSAGE, hint=NOT_UPLOADED_HINT)
        try:
            mode = os.lstat(path).st_mode
        except (OSError, ValueError):
            mode = 0
        if not stat.S_ISREG(mode):
            raise InvalidImageError(NOT_UPLOADED_MESSAGE, hint=NOT_UPLOADED_HINT)
        return path


class LocalFiles:
    """The policy for in-process callers (tests, scripts): any local path, bytes or PIL image."""

    def admit(self, value: Any) -> Admitted:
        return _admit(value, str, accept_objects=True)


def _admit(value: Any, check_path: Callable[[str], str], *, accept_objects: bool, max_bytes: int | None = None) -> Admitted:
    """The payload forms both policies read; ``check_path`` decides about any path in it."""
    if value is None or value == "" or value == {}:
        raise NoImageError(NO_IMAGE_MESSAGE)
    if accept_objects and isinstance(value, (Image.Image, bytes, bytearray)):
        return Admitted(value if isinstance(value, Image.Image) else bytes(value), "image")
    if hasattr(value, "model_dump"):  # gradio FileData / ImageData
        value = value.model_dump()
    if isinstance(value, dict):
        path, url = value.get("path"), value.get("url") or ""
        name = _display_name(value.get("orig_name"), path)
        if path:
            return Admitted(check_path(str(path)), name)
        if isinstance(url, str) and url.startswith("data:"):
            return Admitted(_decode_data_url(url, max_bytes), name)
        if not url:
            raise NoImageError(NO_IMAGE_MESSAGE)
    elif isinstance(value, str) or (accept_objects and isinstance(value, os.PathLike)):
        return Admitted(check_path(str(value)), _display_name(None, str(value)))
    raise InvalidImageError(NOT_UPLOADED_MESSAGE, hint=NOT_UPLOADED_HINT)


def _display_name(orig_name: Any, path: Any) -> str:
    raw = orig_name if isinstance(orig_name, str) and orig_name else str(path or "image")
    return Path(raw.replace("\\", "/")).name[:120] or "image"


def _decode_data_url(url: str, max_bytes: int | None = None) -> bytes:
    payload = url.partition(",")[2]
    if max_bytes is not None and len(payload) * 3 // 4 > max_bytes:  # its size, before decoding it
        raise ImageTooLargeError(too_large_message(max_bytes))
    try:
        return base64.b64decode(url.split(",", 1)[1], validate=False)
    except (IndexError, binascii.Error, ValueError):
        raise InvalidImageError(
            "The pasted image could not be decoded.", hint="Save it as PNG, JPEG or WebP and upload the file."
        ) from None


# --- model fields ------------------------------------------------------------------


# Parameters that name weights to load (a Hub id or a folder): a visitor may only pick what is offered.
MODEL_FIELDS = ("model", "controlnet")
NO_MODEL = "none"  # ``controlnet=none``: switch it off, always allowed
# A text setting (a prompt) from the web: Stable Diffusion reads 77 tokens of it; more is only work.
MAX_TEXT_CHARS = 1000


def offered_models(engine: Engine, extra: Iterable[str] = (), field: str = "model") -> tuple[str, ...]:
    """The values of ``field`` a web visitor may pick for ``engine``: its default, then the operator's."""
    defaults = [spec.default for spec in engine.params if spec.name == field]
    published = list(engine.offered_values(field))
    switched_off = [NO_MODEL] if field != "model" else []
    return tuple(dict.fromkeys([*defaults, *published, *switched_off, *(m for m in extra if m)]))


def check_web_params(
    engine: Engine, params: dict[str, Any], extra_models: Iterable[str] | Mapping[str, Iterable[str]] = ()
) -> dict[str, Any]:
    """``params`` with every field that names weights (``model``, ``controlnet``) checked against what the
    operator offers for that field: a visitor must not make the server load an arbitrary folder or Hub
    repository, nor one field's weights in the other. ``extra_models``: more values per field (a plain
    list: more ``model`` values)."""
    extras = dict(extra_models) if isinstance(extra_models, Mapping) else {"model": tuple(extra_models)}
    for name, value in params.items():  # one plain value each, of a size a page field can hold
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise InvalidParameterError(f"{name} takes one value (text, a number or true/false), not a list.")
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS and name not in MODEL_FIELDS:  # those: below
            raise InvalidParameterError(
                f"{name} is {len(value)} characters long; this page takes at most {MAX_TEXT_CHARS}.", hint="Shorten it."
            )
    checked = dict(params)
    for field in (spec.name for spec in engine.params if spec.name in MODEL_FIELDS):
        value = params.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            checked[field] = None
            continue
        offered = offered_models(engine, extras.get(field, ()), field)
        text = str(value).strip()
        if text not in offered:
            more = "CNAPS_WEB_MODELS" if field == "model" else "CNAPS_SD_CONTROLNET"
            raise InvalidParameterError(
                f"{field}={text[:80]!r} is not offered on this page.",
                hint=f"Choose one of: {', '.join(offered)}. (Whoever runs this server can offer more with {more}.)",
            )
        checked[field] = text
    return checked
