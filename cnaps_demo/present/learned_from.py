""""What it learned from", on the visitor's picture: damage it the way the training pairs were
damaged, let the model restore it, and score the restoration against the picture itself.

``restoration_trial(image, engine_id, seed=..., blur=..., noise=..., jpeg_quality=...)``:

1. the picture (RGB; transparency flattened onto white) is cropped to even sides, and a larger
   one to a ``window`` x ``window`` crop where its outlines are densest (``Trial.box`` says
   where), so the trial stays quick: this crop is the ground truth;
2. ``degrade`` makes the damaged half-size copy (Real-ESRGAN's second-order degradation);
3. the engine enlarges that copy 2x through ``cnaps_demo.api`` (colour fix as the engine's
   default), and so does bicubic;
4. both are scored against the ground truth: PSNR and SSIM (``cnaps_demo.fidelity``).

No gradio: the page calls this from a worker thread and shows the pictures, the steps
(``trial.degradation.steps``, each with ``.caption``) and the sentence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..engines import INSIDE_ENGINE_ID
from .. import fidelity
from ..api import UpscaleResult, upscale
from ..engines import get_engine
from ..errors import InvalidImageError, InvalidParameterError
from ..settings import Settings
from ..stages import ProgressFn, no_progress
from ..training_pairs import Degradation, degrade
from .compare import Box, edge_richest_box

WINDOW = 512  # px: a larger picture is tried on its busiest 512x512 crop (a CNN needs ~1 s for that on 2 cores)


@dataclass(frozen=True)
class Trial:
    degradation: Degradation  # .steps: the damage, step by step, with the values drawn
    truth: Image.Image  # the picture (or its crop), even-sized: the ground truth
    small: Image.Image  # the damaged half-size copy the engine was given
    restored: Image.Image  # the engine's 2x of ``small``
    bicubic: Image.Image  # bicubic's 2x of ``small``
    engine_id: str
    engine_name: str
    scores: dict[str, dict[str, float]]  # {"engine": {"psnr", "ssim"}, "bicubic": {...}}, against ``truth``
    sentence: str  # what the engine learned from, in one plain sentence
    seconds: float  # the engine's run
    box: Box | None  # where ``truth`` was cut from the picture (None: the whole picture)
    cropped: bool  # the picture lost a row or column to even sides, or was cut to ``box``
    result: UpscaleResult  # the engine's full result (stages, colour fix, fidelity)

    @property
    def scores_line(self) -> str:
        """e.g. ``Against your picture: Real-ESRGAN 31.20 dB PSNR, SSIM 0.9612 · bicubic 26.02 dB, SSIM 0.8817``."""
        ours, plain = self.scores["engine"], self.scores["bicubic"]
        return (
            f"Against your picture: {self.engine_name} {fidelity.format_figure('psnr', ours['psnr'])} PSNR, "
            f"SSIM {ours['ssim']:.4f} \u00b7 bicubic {fidelity.format_figure('psnr', plain['psnr'])}, SSIM {plain['ssim']:.4f}"
        )


def trained_on_sentence(engine_id: str) -> str:
    """One plain sentence: what ``engine_id`` learned from (and so what it can undo)."""
    engine = get_engine(engine_id)
    return engine.learned_from


def _ground_truth(image: Any, window: int | None) -> tuple[Image.Image, Box | None, bool]:
    """(the picture as RGB, cut to even sides and to ``window``, the box cut from, whether anything was cut)."""
    if not isinstance(image, Image.Image):
        raise InvalidImageError(
            "restoration_trial() needs a picture.", hint="Give a PIL image (decode uploads with cnaps_demo.image.load_image)."
        )
    rgb = Image.fromarray(fidelity.rgb_array(image).round().clip(0, 255).astype("uint8"), "RGB")
    box: Box | None = None
    if window is not None and (rgb.width > window or rgb.height > window):
        box = edge_richest_box(rgb, (min(window, rgb.width), min(window, rgb.height)))
        rgb = rgb.crop(box)
    even = (rgb.width // 2 * 2, rgb.height // 2 * 2)
    cropped = box is not None or even != rgb.size
    if even != rgb.size:
        rgb = rgb.crop((0, 0, *even))
        if box is not None:
            box = (box[0], box[1], box[0] + even[0], box[1] + even[1])
    return rgb, box, cropped


def restoration_trial(
    image: Image.Image,
    engine_id: str = INSIDE_ENGINE_ID,
    *,
    seed: int = 0,
    blur: float | None = None,
    noise: float | None = None,
    jpeg_quality: int | None = None,
    window: int | None = WINDOW,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
    device: str = "auto",
    engine_params: dict[str, Any] | None = None,
    **params: Any,
) -> Trial:
    """Damage ``image`` as the training pairs were damaged (``degrade``: ``seed`` and the knobs), let
    ``engine_id`` restore the half-size copy 2x, and score it and bicubic against the picture.

    ``image``: a PIL picture of at least 32x32 pixels; odd sides lose their last row or column,
    and one larger than ``window`` (None: never) is tried on its busiest ``window`` crop.
    ``progress(done, total, text)`` may raise ``JobCancelledError`` to stop; ``settings`` and
    ``device`` go to ``cnaps_demo.api.upscale``, with the engine's own parameters: ``engine_params``
    (e.g. ``result.params``; the one way for a parameter named like ours, such as a diffusion
    engine's ``seed``) and any other keywords. Bad knobs raise ``InvalidParameterError``.
    """
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 32):
        raise InvalidParameterError(
            f"window={window!r} is not allowed.", hint="Give a whole number of pixels, 32 or more, or None."
        )
    report = progress or no_progress
    truth, box, cropped = _ground_truth(image, window)
    report(0, 3, "damaging the picture the way the training pairs were damaged")
    damaged = degrade(truth, seed=seed, blur=blur, noise=noise, jpeg_quality=jpeg_quality)
    report(1, 3, f"restoring it with {engine_id}")
    started = time.perf_counter()
    own = {**params, **(engine_params or {})}
    result = upscale(
        damaged.image, engine_id, scale=2, progress=report, settings=settings, device=device, truth=truth, **own
    )
    seconds = time.perf_counter() - started
    report(2, 3, "scoring against your picture")
    restored = result.image.convert("RGB")
    plain = damaged.image.resize(truth.size, Image.Resampling.BICUBIC)
    expected, shown = fidelity.rgb_array(truth), fidelity.rgb_array(restored)
    baseline = fidelity.rgb_array(plain)
    scores = {
        "engine": {"psnr": fidelity.psnr_db(shown, expected), "ssim": fidelity.ssim(shown, expected)},
        "bicubic": {"psnr": fidelity.psnr_db(baseline, expected), "ssim": fidelity.ssim(baseline, expected)},
    }
    report(3, 3, "done")
    return Trial(
        damaged, truth, damaged.image, restored, plain, result.engine_id, result.engine_name,
        scores, trained_on_sentence(result.engine_id), seconds, box, cropped, result,
    )
