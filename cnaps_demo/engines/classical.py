"""Classical resampling: the "blurry" baseline every AI engine is compared with."""

from __future__ import annotations

from typing import Any

from PIL import Image

from ..stages import StageRecorder
from .base import Availability, Credit, Engine, EngineOutput, RunOptions

_PILLOW = Credit("Pillow resampling filters", "https://github.com/python-pillow/Pillow", "MIT-CMU (HPND)")


class ClassicalEngine(Engine):
    family = "classical"
    kind_words = "classical"
    is_baseline = True
    learned_from = "It learned nothing: it only interpolates between the damaged pixels, so the damage stays."
    scales = (2, 3, 4)
    device_need = "cpu"
    uses_torch = False
    credits = (_PILLOW,)

    def __init__(
        self, engine_id: str, display_name: str, resample: Image.Resampling, summary: str, picker_name: str = ""
    ) -> None:
        self.id = engine_id
        self.display_name = display_name
        self.resample = resample
        self.summary = summary
        self.picker_name = picker_name

    def available(self, params: dict[str, Any], options: RunOptions) -> Availability:
        return Availability(True)

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        recorder = StageRecorder()
        width, height = image.size
        with recorder.stage(f"{self.display_name} resample x{scale}", (3, height, width), filter=self.id) as stage:
            result = image.resize((width * scale, height * scale), self.resample)
            stage.shape = (3, result.height, result.width)
        options.progress(1, 1, self.display_name)
        return EngineOutput(result, recorder.records)


_FILTERS = (
    (
        "nearest",
        "Nearest neighbour",
        Image.Resampling.NEAREST,
        "Copies each pixel into a 2x2 block: blocky, adds nothing.",
        "Nearest",  # "Nearest neighbour" is too long for a phone-wide picker
    ),
    ("bicubic", "Bicubic", Image.Resampling.BICUBIC, "Fits smooth cubic curves through neighbouring pixels: soft edges."),
    (
        "lanczos",
        "Lanczos",
        Image.Resampling.LANCZOS,
        "A windowed-sinc filter: the sharpest classical resampler, with slight ringing.",
    ),
)


def classical_engines() -> tuple[ClassicalEngine, ...]:
    return tuple(ClassicalEngine(*row) for row in _FILTERS)
