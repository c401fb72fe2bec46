"""``degrade()``: the damaged small half of a 2x training pair, made the way Real-ESRGAN made them.

Real-ESRGAN (Wang et al. 2021, arXiv 2107.10833), and the anime models trained the same way,
learned from pairs: a clean picture, and a copy damaged by a *second-order degradation*: blur,
resize, noise and JPEG, all of it twice, then a ringing ("sinc") filter and the final size. The
network was shown the damaged copy and asked for the clean picture, millions of times.
``degrade(image, seed=...)`` runs that recipe on any picture, deterministically for a seed, and
returns every step with the values it drew, so the page can show what the model learned from.

The ranges and probabilities below are those of Real-ESRGAN's published training settings
(``options/train_realesrgan_x2plus.yml``, the same numbers as ``x4plus``; the kernel draws in
``realesrgan/data/realesrgan_dataset.py``, the order of the steps in
``realesrgan/models/realesrgan_model.py``; the kernel shapes in basicsr's ``degradations.py``),
restated here as our own constants. Left out: the recipe starts from an unsharp-masked copy of
the original (which is also what its losses compare with); here the chain starts from the
picture as given, so every step shown is damage.

Knobs (``None``: drawn like everything else):

- ``blur``: sigma in pixels, 0 to 3 (the first round's published range is 0.2 to 3). The first
  blur becomes a round Gaussian of that sigma, the second (when drawn, 80% of pairs) one of half
  of it (the second round's range is half the first's); the kernel grows to hold +-3 sigma (at
  most 21 px). 0: no blur in either round.
- ``noise``: Gaussian noise sigma in 0..255 steps, 0 to 30 (the first round's published range is
  1 to 30): the first round gets that sigma, the second 25/30 of it (its range is 1 to 25); gray
  or colour noise is still drawn. 0: no noise in either round.
- ``jpeg_quality``: 10 to 100, for both JPEG steps (training saw 30 to 95).

Each step draws from its own random stream (``seed``, round, step), so moving one knob leaves
every other drawn value as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from . import degradation_ops as ops
from .errors import InvalidImageError, InvalidParameterError
from .frequency import rgb_array

# --- the published settings (Real-ESRGAN, train_realesrgan_x2plus.yml / realesrgan_dataset.py) ---
KERNEL_SIZES = tuple(range(7, 22, 2))  # odd sizes 7..21, drawn uniformly
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
KERNEL_PROBABILITIES = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
SINC_BLUR_PROBABILITY = 0.1  # a blur step uses a sinc kernel instead, in either round
SINC_CUTOFF_SMALL = (math.pi / 3, math.pi)  # radians/px, for kernels under 13 px
SINC_CUTOFF_LARGE = (math.pi / 5, math.pi)  # radians/px, for kernels of 13 px and more
BLUR_SIGMA = {1: (0.2, 3.0), 2: (0.2, 1.5)}  # px, per round; sigma_x and sigma_y alike
ROTATION = (-math.pi, math.pi)
BETA_GENERALIZED = (0.5, 4.0)  # half the draws below 1, half above
BETA_PLATEAU = (1.0, 2.0)
SECOND_BLUR_PROBABILITY = 0.8
RESIZE_DIRECTIONS = ("up", "down", "keep")
RESIZE_PROBABILITIES = {1: (0.2, 0.7, 0.1), 2: (0.3, 0.4, 0.3)}
RESIZE_RANGE = {1: (0.15, 1.5), 2: (0.3, 1.2)}  # round 1: of the picture; round 2: of the final size
RESIZE_MODES = ("area", "bilinear", "bicubic")  # drawn uniformly, for every resize
GAUSSIAN_NOISE_PROBABILITY = 0.5  # else Poisson noise
NOISE_SIGMA = {1: (1.0, 30.0), 2: (1.0, 25.0)}  # Gaussian, in 0..255 steps
POISSON_SCALE = {1: (0.05, 3.0), 2: (0.05, 2.5)}
GRAY_NOISE_PROBABILITY = 0.4
JPEG_QUALITY = (30, 95)  # both rounds
FINAL_SINC_PROBABILITY = 0.8
FINAL_SINC_CUTOFF = (math.pi / 3, math.pi)
JPEG_BEFORE_FINAL_RESIZE_PROBABILITY = 0.5  # else resize back + sinc first, then JPEG
FACTOR = 2  # the small half of a 2x pair

# --- the knobs' ranges ---
KNOB_RANGES = {"blur": (0.0, 3.0), "noise": (0.0, 30.0), "jpeg_quality": (10, 100)}
MIN_SIDE = 16  # px: smaller pictures leave nothing to shrink and blur


@dataclass(frozen=True)
class Step:
    name: str  # blur | resize | noise | jpeg | sinc
    round: int  # 1 or 2
    params: dict[str, Any]  # the values drawn (see ``degrade``)
    image: Image.Image  # the picture after this step (RGB)

    @property
    def caption(self) -> str:
        """The step in a few plain words, e.g. ``blur: Gaussian, sigma 1.42 px``."""
        return _caption(self.name, self.round, self.params)


@dataclass(frozen=True)
class Degradation:
    image: Image.Image  # the damaged small copy, exactly half of ``truth``
    truth: Image.Image  # the picture given, RGB, cropped to even sides: the clean half of the pair
    steps: tuple[Step, ...]
    seed: int
    knobs: dict[str, Any] = field(default_factory=dict)  # the knobs given (not drawn)
    skipped: tuple[str, ...] = ()  # the steps this draw left out, in plain words


def _number(name: str, value: Any, low: float, high: float, *, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"{name}={value!r} is not a number.", hint=f"Give a number from {low:g} to {high:g}.")
    if not (math.isfinite(float(value)) and low <= float(value) <= high) or (whole and float(value) != int(value)):
        kind = "a whole number" if whole else "a number"
        raise InvalidParameterError(f"{name}={value!r} is outside its range.", hint=f"Give {kind} from {low:g} to {high:g}.")
    return float(value)


def check_knobs(seed: Any, blur: Any, noise: Any, jpeg_quality: Any) -> dict[str, Any]:
    """The knobs given (``None`` left out), checked; ``InvalidParameterError`` names the bad one."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed={seed!r} is not allowed.", hint="Give a whole number of 0 or more.")
    knobs: dict[str, Any] = {}
    for name, value in (("blur", blur), ("noise", noise), ("jpeg_quality", jpeg_quality)):
        if value is not None:
            low, high = KNOB_RANGES[name]
            number = _number(name, value, low, high, whole=name == "jpeg_quality")
            knobs[name] = int(number) if name == "jpeg_quality" else number
    return knobs


def _stream(seed: int, round_: int, slot: int) -> np.random.Generator:
    return np.random.default_rng([seed, round_, slot])


def _draw_kernel(rng: np.random.Generator, round_: int) -> dict[str, Any]:
    """A blur kernel's parameters, as round ``round_`` of the recipe draws them (all values drawn)."""
    size = int(rng.choice(KERNEL_SIZES))
    sinc = rng.uniform() < SINC_BLUR_PROBABILITY
    cutoff = rng.uniform(*(SINC_CUTOFF_SMALL if size < 13 else SINC_CUTOFF_LARGE))
    kind = str(rng.choice(KERNEL_TYPES, p=KERNEL_PROBABILITIES))
    sigma_x, sigma_y = rng.uniform(*BLUR_SIGMA[round_]), rng.uniform(*BLUR_SIGMA[round_])
    rotation = rng.uniform(*ROTATION)
    beta_range = BETA_PLATEAU if kind.startswith("plateau") else BETA_GENERALIZED
    # half the draws from [low, 1], half from [1, high] (for the plateau, whose low is 1: beta = 1)
    beta = rng.uniform(beta_range[0], 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, beta_range[1])
    if sinc:
        return {"kernel": "sinc", "kernel_size": size, "cutoff": cutoff / (2 * math.pi)}
    params: dict[str, Any] = {"kernel": kind, "kernel_size": size}
    if kind.endswith("iso") and not kind.endswith("aniso"):
        params["sigma"] = sigma_x
    else:
        params.update(sigma_x=sigma_x, sigma_y=sigma_y, rotation=math.degrees(rotation))
    if kind != "iso" and kind != "aniso":
        params["beta"] = beta
    return params


def _kernel(params: dict[str, Any]) -> np.ndarray:
    size = params["kernel_size"]
    if params["kernel"] == "sinc":
        return ops.sinc_kernel(size, params["cutoff"] * 2 * math.pi)
    shape = {"iso": "gaussian", "aniso": "gaussian", "generalized": "generalized", "plateau": "plateau"}[params["kernel"].split("_")[0]]
    sigma_x = params.get("sigma", params.get("sigma_x"))
    sigma_y = params.get("sigma", params.get("sigma_y"))
    rotation = math.radians(params.get("rotation", 0.0))
    return ops.gaussian_family_kernel(size, sigma_x, sigma_y, rotation, shape=shape, beta=params.get("beta", 1.0))


def _blur_params(rng: np.random.Generator, round_: int, knob: float | None) -> dict[str, Any] | None:
    """The blur of round ``round_`` (None: no blur this time)."""
    drawn = _draw_kernel(rng, round_)
    applies = round_ == 1 or rng.uniform() < SECOND_BLUR_PROBABILITY
    if not applies or knob == 0:
        return None
    if knob is None:
        return drawn
    sigma = knob if round_ == 1 else knob * BLUR_SIGMA[2][1] / BLUR_SIGMA[1][1]
    size = min(max(KERNEL_SIZES), max(drawn["kernel_size"], 2 * math.ceil(3 * sigma) + 1))
    return {"kernel": "iso", "kernel_size": size, "sigma": sigma}


def _resize_params(rng: np.random.Generator, round_: int, size: tuple[int, int], final: tuple[int, int]) -> dict[str, Any]:
    direction = str(rng.choice(RESIZE_DIRECTIONS, p=RESIZE_PROBABILITIES[round_]))
    low, high = RESIZE_RANGE[round_]
    scale = {"up": rng.uniform(1.0, high), "down": rng.uniform(low, 1.0), "keep": 1.0}[direction]
    mode = str(rng.choice(RESIZE_MODES))
    base = size if round_ == 1 else final  # round 2 scales the final size, as the recipe does
    target = (max(1, int(base[0] * scale)), max(1, int(base[1] * scale)))
    return {"direction": direction, "scale": float(scale), "mode": mode, "size": target}


def _noise_params(rng: np.random.Generator, round_: int, knob: float | None) -> dict[str, Any] | None:
    gaussian = rng.uniform() < GAUSSIAN_NOISE_PROBABILITY
    sigma, scale = rng.uniform(*NOISE_SIGMA[round_]), rng.uniform(*POISSON_SCALE[round_])
    gray = bool(rng.uniform() < GRAY_NOISE_PROBABILITY)
    if knob == 0:
        return None
    if knob is not None:
        sigma = knob if round_ == 1 else knob * NOISE_SIGMA[2][1] / NOISE_SIGMA[1][1]
        gaussian = True
    return {"kind": "gaussian" if gaussian else "poisson", "gray": gray, "noise": float(sigma if gaussian else scale)}


def _noisy(array: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    if params["kind"] == "gaussian":
        noise = ops.gaussian_noise(array.shape, params["noise"], params["gray"], rng)
    else:
        noise = ops.poisson_noise(array, params["noise"], params["gray"], rng)
    return np.clip(array + noise, 0, 255)  # the recipe clips after adding noise


class _Chain:
    """The picture as it goes through the steps, and the record of each."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.steps: list[Step] = []
        self.skipped: list[str] = []

    def record(self, name: str, round_: int, params: dict[str, Any], array: np.ndarray) -> None:
        self.array = array
        self.steps.append(Step(name, round_, params, ops.to_image(array)))

    def blur(self, round_: int, params: dict[str, Any] | None) -> None:
        if params is None:
            self.skipped.append(f"round {round_}: no blur this time")
            return
        self.record("blur", round_, params, ops.filter2d(self.array, _kernel(params)))

    def resize(self, round_: int, params: dict[str, Any]) -> None:
        """Resize to ``params["size"]``; a resize to the size the picture has is no step (listed as skipped)."""
        if tuple(params["size"]) == (self.array.shape[1], self.array.shape[0]):
            self.skipped.append(f"round {round_}: the size stays {params['size'][0]}x{params['size'][1]}")
            return
        self.record("resize", round_, params, ops.resize(self.array, params["size"], params["mode"]))

    def noise(self, round_: int, params: dict[str, Any] | None, rng: np.random.Generator) -> None:
        if params is None:
            self.skipped.append(f"round {round_}: no noise (noise=0)")
            return
        self.record("noise", round_, params, _noisy(self.array, params, rng))

    def jpeg(self, round_: int, quality: int) -> None:
        self.record("jpeg", round_, {"quality": quality}, ops.jpeg(self.array, quality))


def _quality(rng: np.random.Generator, knob: int | None) -> int:
    drawn = int(round(rng.uniform(*JPEG_QUALITY)))
    return drawn if knob is None else knob


def _round(chain: _Chain, seed: int, round_: int, knobs: dict[str, Any], final: tuple[int, int]) -> None:
    """Blur, resize, noise, and (round 1 only; round 2's comes with the final resize) JPEG."""
    chain.blur(round_, _blur_params(_stream(seed, round_, 0), round_, knobs.get("blur")))
    size = (chain.array.shape[1], chain.array.shape[0])
    chain.resize(round_, _resize_params(_stream(seed, round_, 1), round_, size, final))
    noise_rng = _stream(seed, round_, 2)
    chain.noise(round_, _noise_params(noise_rng, round_, knobs.get("noise")), noise_rng)
    if round_ == 1:
        chain.jpeg(1, _quality(_stream(seed, 1, 3), knobs.get("jpeg_quality")))


def _finish(chain: _Chain, seed: int, knobs: dict[str, Any], final: tuple[int, int]) -> None:
    """Round 2's end: [resize back + sinc] and JPEG, in an order drawn 50/50."""
    rng = _stream(seed, 2, 3)
    quality = _quality(rng, knobs.get("jpeg_quality"))
    jpeg_first = rng.uniform() < JPEG_BEFORE_FINAL_RESIZE_PROBABILITY
    mode = str(rng.choice(RESIZE_MODES))
    sinc = rng.uniform() < FINAL_SINC_PROBABILITY
    sinc_params = {"kernel_size": int(rng.choice(KERNEL_SIZES)), "cutoff": rng.uniform(*FINAL_SINC_CUTOFF) / (2 * math.pi)}
    if jpeg_first:
        chain.jpeg(2, quality)
    scale = final[0] / chain.array.shape[1]
    chain.resize(2, {"direction": "back", "scale": float(scale), "mode": mode, "size": final})
    if sinc:
        kernel = ops.sinc_kernel(sinc_params["kernel_size"], sinc_params["cutoff"] * 2 * math.pi)
        chain.record("sinc", 2, sinc_params, ops.filter2d(chain.array, kernel))
    else:
        chain.skipped.append("round 2: no ringing (sinc) filter this time")
    if not jpeg_first:
        chain.jpeg(2, quality)


def degrade(
    image: Any, *, seed: int = 0, blur: float | None = None, noise: float | None = None, jpeg_quality: int | None = None
) -> Degradation:
    """Damage ``image`` (PIL picture or HxW(x3) array, 0..255; transparency flattened onto white)
    the way Real-ESRGAN made its training inputs, for a 2x pair; deterministic for ``seed``.

    Returns a ``Degradation``: ``.image`` the damaged copy at exactly half of ``.truth`` (the
    picture cropped to even sides), ``.steps`` in order, each with ``.name`` (blur, resize, noise,
    jpeg, sinc), ``.round`` (1, 2), ``.image`` and ``.params``: blur ``kernel`` (iso, aniso,
    generalized_iso/aniso, plateau_iso/aniso, sinc), ``kernel_size`` (px), ``sigma`` or ``sigma_x``,
    ``sigma_y`` (px) and ``rotation`` (degrees), ``beta``, or ``cutoff`` (cycles/px); resize
    ``direction`` (up, down, keep, back), ``scale``, ``mode`` (area, bilinear, bicubic), ``size``;
    noise ``kind`` (gaussian, poisson), ``gray`` (False: colour noise), ``noise`` (Gaussian sigma
    in 0..255 steps, or the Poisson scale); jpeg ``quality``; sinc ``kernel_size``, ``cutoff``.
    Knobs: see the module docstring. ``InvalidParameterError`` names a bad knob and its range.
    """
    knobs = check_knobs(seed, blur, noise, jpeg_quality)
    rgb = rgb_array(image) if isinstance(image, (Image.Image, np.ndarray)) else None
    if rgb is None or rgb.ndim != 3:
        raise InvalidImageError("degrade() needs a picture.", hint="Give a PIL image or an HxW or HxWx3 array of 0..255.")
    height, width = (rgb.shape[0] // FACTOR) * FACTOR, (rgb.shape[1] // FACTOR) * FACTOR
    if min(height, width) < MIN_SIDE:
        raise InvalidImageError(
            f"The picture is {rgb.shape[1]}x{rgb.shape[0]}; degrade() needs at least {MIN_SIDE}x{MIN_SIDE} pixels.",
            hint="Give a larger picture.",
        )
    truth = np.clip(rgb[:height, :width], 0, 255).astype(np.float64)
    final = (width // FACTOR, height // FACTOR)
    chain = _Chain(truth)
    _round(chain, int(seed), 1, knobs, final)
    _round(chain, int(seed), 2, knobs, final)
    _finish(chain, int(seed), knobs, final)
    return Degradation(ops.to_image(chain.array), ops.to_image(truth), tuple(chain.steps), int(seed), knobs, tuple(chain.skipped))


_KERNEL_WORDS = {
    "iso": "Gaussian",
    "aniso": "stretched Gaussian",
    "generalized_iso": "generalized Gaussian",
    "generalized_aniso": "stretched generalized Gaussian",
    "plateau_iso": "plateau",
    "plateau_aniso": "stretched plateau",
}


def _blur_caption(params: dict[str, Any]) -> str:
    if params["kernel"] == "sinc":
        return f"ringing low-pass, cut-off {params['cutoff']:.2f} cycles/px"
    words = _KERNEL_WORDS[params["kernel"]]
    if "sigma" in params:
        text = f"{words}, sigma {params['sigma']:.2f} px"
    else:
        text = f"{words}, sigma {params['sigma_x']:.2f} x {params['sigma_y']:.2f} px, turned {params['rotation']:.0f}\u00b0"
    return text + (f", beta {params['beta']:.2f}" if "beta" in params else "")


def _resize_caption(round_: int, params: dict[str, Any]) -> str:
    width, height = params["size"]
    if params["direction"] == "back":
        return f"resize to the final size, {width}x{height} ({params['mode']})"
    if round_ == 2:  # round 2 scales the final size, not the picture it gets
        return f"resize to {params['scale']:.2f}x the final size, {width}x{height} ({params['mode']})"
    if params["direction"] == "keep":
        return f"keep the size, {width}x{height}"
    verb = "enlarge" if params["direction"] == "up" else "shrink"
    return f"{verb} {params['scale']:.2f}x, to {width}x{height} ({params['mode']})"


def _caption(name: str, round_: int, params: dict[str, Any]) -> str:
    if name == "blur":
        return f"blur: {_blur_caption(params)}"
    if name == "resize":
        return _resize_caption(round_, params)
    if name == "noise":
        tone = "gray" if params["gray"] else "colour"
        if params["kind"] == "gaussian":
            return f"noise: Gaussian, sigma {params['noise']:.1f}/255, {tone}"
        return f"noise: Poisson (grain), scale {params['noise']:.2f}, {tone}"
    if name == "jpeg":
        return f"JPEG at quality {params['quality']}"
    return f"ringing (sinc) filter, cut-off {params['cutoff']:.2f} cycles/px"
