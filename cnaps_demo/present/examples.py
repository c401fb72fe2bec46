"""The example pictures that ship inside the package (``cnaps_demo/examples``, CC0), found from
the package itself so that a wheel install has them too.

Two of them are degraded on purpose (``DEGRADED_EXAMPLES``: shrunk, blurred, JPEG-damaged by
``assets/make_examples.py``): the soft low-resolution pictures people really upload, where the
learned upscalers visibly beat bicubic. They come first.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

EXAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# Captions under the example thumbnails.
EXAMPLE_LABELS = {
    "chibi_face_blurry.png": "Blurry chibi (256 px)",
    "starry_night_jpeg.png": "Starry night, old JPEG (320 px)",
    "chibi_face.png": "Chibi face",
    "starry_night.png": "Starry night",
    "cat_sticker.png": "Cat sticker (transparent)",
}
# Pictures that are not clean drawings: a flat-colour check does not apply to them.
DEGRADED_EXAMPLES = frozenset({"chibi_face_blurry.png", "starry_night_jpeg.png"})


def examples_dir() -> Path:
    return Path(str(files("cnaps_demo") / "examples"))


def bundled_examples(directory: Path | None = None) -> list[Path]:
    """The example pictures: the degraded ones first (they show the difference best), then by name."""
    directory = directory or examples_dir()
    if not directory.is_dir():
        return []
    pictures = [p for p in directory.iterdir() if p.suffix.lower() in EXAMPLE_SUFFIXES]
    return sorted(pictures, key=lambda p: (not is_degraded(p), p.name))


def is_degraded(path: Path) -> bool:
    return Path(path).name in DEGRADED_EXAMPLES


def example_label(path: Path) -> str:
    return EXAMPLE_LABELS.get(path.name, path.stem)
