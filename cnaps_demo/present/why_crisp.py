""""Why crisp, not averaged", computed from the visitor's picture.

Many sharp pictures shrink to the same small picture. ``crisp_candidates`` makes a few of them
from the model's own answer: each is the result moved by one pixel of the result (half a pixel
of the small picture) in a direction drawn from ``seed``, then re-fitted to the small picture:
every 2x2 block (``scale`` x ``scale``) gets the one correction that makes its average equal
the small picture's pixel again (the exact back-projection for the box shrink that LR-PSNR
uses; repeated ``REFITS`` times, as the pixels are kept within 0..255). So every candidate
agrees with the small picture (its LR-PSNR is high), yet its outlines sit in a slightly
different place. Their pixel average agrees just as well, and is soft: an average of
differently placed steps is a ramp. That is the answer a network trained only to minimise the
pixel error learns to give; ``STORY`` tells the rest.

Everything runs on a crop (the page's detail window, 48 px of the small picture by default), so
it takes milliseconds. No gradio, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .. import fidelity
from ..errors import InvalidParameterError
from .compare import Box, edge_richest_box

WINDOW = 48  # px of the small picture: the page's detail window
REFITS = 10  # the pixels are kept within 0..255, so one correction falls short where they clip
# One result pixel in each of the 8 directions: half a pixel of the small picture, for 2x.
SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))
STORY = (
    "Many sharp pictures shrink to the same small picture: the ones above all do, as their LR-PSNR shows, "
    "yet their outlines sit in slightly different places. A network trained only to make the pixel error "
    "small cannot know which one was the original, so the safest answer, the one with the smallest error "
    "on average, is the pixel average of all of them, and an average of sharp edges in different places "
    "is a soft ramp: that is the blur of classical and early AI upscalers. Real-ESRGAN was also trained "
    "with a perceptual loss (compare what a picture-recognition network sees, not single pixels) and an "
    "adversarial loss (a second network learns to tell real pictures from produced ones, and the upscaler "
    "learns to fool it). Both punish the soft average, because no real drawing looks like one, and reward "
    "committing to one crisp, plausible answer. That is why the result looks drawn rather than averaged, "
    "and also why it can invent: the crisp answer it commits to is a plausible one, not necessarily yours."
)


@dataclass(frozen=True)
class Candidate:
    image: Image.Image  # the crop of a crisp picture consistent with the small picture
    shift: tuple[int, int]  # (dx, dy) in result pixels before the re-fit ((0, 0): the model's own answer)
    lr_psnr: float  # dB: shrunk back (box), against the small picture's crop
    edge_energy: float  # mean squared brightness step, as a multiple of bicubic's (the page's sharpness)


@dataclass(frozen=True)
class Candidates:
    candidates: tuple[Candidate, ...]
    average: Image.Image  # their pixel average: what a pixel loss picks
    average_lr_psnr: float
    average_edge_energy: float
    small: Image.Image  # the small picture's crop they were fitted to
    box: Box  # the crop, in the small picture's pixels (left, top, right, bottom)
    scale: int
    story: str = STORY


def _box_shrink(array: np.ndarray, scale: int) -> np.ndarray:
    height, width = array.shape[0] // scale, array.shape[1] // scale
    return array.reshape(height, scale, width, scale, -1).mean(axis=(1, 3))


def _refit(array: np.ndarray, small: np.ndarray, scale: int) -> np.ndarray:
    """Back-project onto "shrinks to ``small``": each block gets its own constant correction."""
    for _ in range(REFITS):
        correction = small - _box_shrink(array, scale)
        array = np.clip(array + np.repeat(np.repeat(correction, scale, axis=0), scale, axis=1), 0, 255)
    return array


def _shifted(array: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``array`` moved by (dx, dy) pixels; the border pixels repeat into the gap."""
    pad = max(abs(dx), abs(dy))
    padded = np.pad(array, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    height, width = array.shape[:2]
    return padded[pad - dy : pad - dy + height, pad - dx : pad - dx + width]


def _energy(array: np.ndarray) -> float:
    luma = array @ fidelity.LUMA_WEIGHTS.astype(np.float64)
    return float(np.mean(np.diff(luma, axis=0) ** 2) + np.mean(np.diff(luma, axis=1) ** 2))


def _picture(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), "RGB")


def _check(result: Image.Image, small: Image.Image, count: int) -> int:
    if not isinstance(result, Image.Image) or not isinstance(small, Image.Image):
        raise InvalidParameterError(
            "crisp_candidates() needs the result and the small picture as PIL images.", hint="Pass result.image and result.input_image."
        )
    scale = result.width // small.width if small.width else 0
    if scale < 2 or result.size != (small.width * scale, small.height * scale):
        raise InvalidParameterError(
            f"The result ({result.width}x{result.height}) is not a whole multiple (2x or more) "
            f"of the small picture ({small.width}x{small.height}).",
            hint="Pass the result and the picture it was enlarged from.",
        )
    if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= len(SHIFTS) + 1:
        raise InvalidParameterError(f"count={count!r} is not allowed.", hint=f"Give a whole number from 2 to {len(SHIFTS) + 1}.")
    return scale


def crisp_candidates(
    result: Image.Image, small: Image.Image, *, count: int = 4, seed: int = 0, box: Box | None = None
) -> Candidates:
    """``count`` crisp pictures that all shrink to ``small`` (inside ``box``, default: the
    ``WINDOW`` square of ``small`` with the most outlines), made from ``result`` (``small``
    enlarged by a whole factor): the model's own answer re-fitted, then ``count - 1`` copies moved
    one result pixel in directions drawn from ``seed`` and re-fitted; and their pixel average."""
    scale = _check(result, small, count)
    box = box or edge_richest_box(small.convert("RGB"), (min(WINDOW, small.width), min(WINDOW, small.height)))
    left, top, right, bottom = box
    if not (0 <= left < right <= small.width and 0 <= top < bottom <= small.height):
        raise InvalidParameterError(
            f"box={box!r} is not inside the {small.width}x{small.height} small picture.", hint="Give (left, top, right, bottom) inside it."
        )
    low = fidelity.rgb_array(small.crop(box)).astype(np.float64)
    high = fidelity.rgb_array(result.crop(tuple(v * scale for v in box))).astype(np.float64)
    bicubic = small.crop(box).convert("RGB").resize(high.shape[1::-1], Image.Resampling.BICUBIC)
    base = _energy(fidelity.rgb_array(bicubic).astype(np.float64))
    order = np.random.default_rng(seed).permutation(len(SHIFTS))[: count - 1]
    shifts = [(0, 0), *(SHIFTS[i] for i in order)]
    fitted = [_refit(_shifted(high, dx, dy), low, scale) for dx, dy in shifts]
    mean = np.mean(fitted, axis=0)

    def relative(array: np.ndarray) -> float:
        return _energy(array) / base if base > 0 else float("inf")

    candidates = tuple(
        Candidate(_picture(a), shift, fidelity.psnr_db(_box_shrink(np.round(a), scale), low), relative(np.round(a)))
        for a, shift in zip(fitted, shifts)
    )
    shown = np.round(mean)
    return Candidates(
        candidates, _picture(mean), fidelity.psnr_db(_box_shrink(shown, scale), low), relative(shown), _picture(low), box, scale
    )
