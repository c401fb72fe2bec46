"""The example pictures that ship inside the package (``cnaps_demo/examples``, CC0), found from
the package itself so that a wheel install has them too."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

EXAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# Captions under the example thumbnails.
EXAMPLE_LABELS = {
    "chibi_face.png": "Chibi face",
    "starry_night.png": "Starry night",
    "cat_sticker.png": "Cat sticker (transparent)",
}


def examples_dir() -> Path:
    return Path(str(files("cnaps_demo") / "examples"))


def bundled_examples(directory: Path | None = None) -> list[Path]:
    """The example pictures (sorted by name)."""
    directory = directory or examples_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in EXAMPLE_SUFFIXES)


def example_label(path: Path) -> str:
    return EXAMPLE_LABELS.get(path.name, path.stem)
