"""What every engine is: id, name, scales, device needs, parameters, availability, run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from PIL import Image

from ..errors import InvalidParameterError
from ..settings import parse_bool
from ..stages import ProgressFn, StageRecord, no_progress

if TYPE_CHECKING:
    from ..settings import Settings


@dataclass(frozen=True)
class Availability:
    """``ok`` plus, when not ok, a reason that says how to fix it. Unpacks as ``(ok, reason)``."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ok, self.reason))


@dataclass(frozen=True)
class Credit:
    """Who made a model or algorithm the app runs (shown under "engines and licences")."""

    name: str
    url: str
    licence: str
    note: str = ""


@dataclass(frozen=True)
class ParamSpec:
    """One engine parameter: kind is "choice", "int", "float", "str" or "bool"."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    # A ``Settings`` field whose value replaces ``default`` (e.g. "sd_model" for CNAPS_SD_MODEL).
    setting: str | None = None

    def default_for(self, settings: Settings | None) -> Any:
        return getattr(settings, self.setting) if settings is not None and self.setting else self.default

    def check(self, value: Any, default: Any = None) -> Any:
        """Return ``value`` converted to the right type, or raise a message naming the range.

        ``None`` means "not given": ``default`` (``self.default`` unless told).
        """
        if value is None:
            return self.default if default is None else default
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.kind == "float":
                value = float(value)
            elif self.kind == "bool":
                value = value if isinstance(value, bool) else parse_bool(str(value))
            elif self.kind == "str":
                value = str(value)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"{self.name}={value!r} is not a valid {self.kind}.", hint=f"{self.help} {self.range_text()}".strip()
            ) from None
        if self.kind == "choice":
            matches = [c for c in self.choices if str(c) == str(value)]
            if not matches:
                raise InvalidParameterError(
                    f"{self.name}={value!r} is not allowed.", hint=f"Choose one of: {', '.join(map(str, self.choices))}."
                )
            return matches[0]
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            raise InvalidParameterError(f"{self.name}={value!r} is out of range.", hint=self.range_text())
        return value

    def range_text(self) -> str:
        if self.kind == "choice":
            return f"Choose one of: {', '.join(map(str, self.choices))}."
        if self.minimum is not None and self.maximum is not None:
            return f"Expected {self.minimum} to {self.maximum}."
        if self.minimum is not None:
            return f"Expected at least {self.minimum}."
        return ""


@dataclass
class EngineOutput:
    image: Image.Image  # RGB, exactly scale x the input size
    stages: list[StageRecord] = field(default_factory=list)
    png_text: dict[str, str] = field(default_factory=dict)  # extra PNG text chunks (e.g. A1111 "parameters")


@dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what to compute: resolved once by ``api.prepare`` from ``Settings``.

    Engines read these and nothing else (no environment, no ``get_settings``).
    """

    device: str = "cpu"  # cpu | cuda | mps: already checked to be present
    tile: int = 0  # 0 = the engine's default
    progress: ProgressFn = no_progress
    cpu_threads: int = 0  # 0 = every available core
    cpu_bf16: bool = True  # bf16 autocast for the CNNs where the CPU has native bf16
    cpu_conv: str = "auto"  # fp32 CPU 3x3 convolutions: auto | winograd (NNPACK, in bands) | direct (oneDNN)
    torch_compile: bool = False  # compile the diffusion UNet/VAE on CUDA
    weights_cache: Path | None = None  # converted ncnn weights; None: convert in memory at each load
    hub_cache: Path | None = None  # the Hugging Face cache; None: huggingface_hub's own default
    # Called with each denoising frame (diffusion.filmstrip.Frame) as it is made; None: no previews, no cost.
    frames: Callable[[Any], None] | None = None


# A ZeroGPU call for a run that is not priced by its engine: a web-sized picture, model loading included.
DEFAULT_GPU_SECONDS = 60

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), PIL's convention


@dataclass(frozen=True)
class LayerActivation:
    """One stage of a network's run worth showing: its activation over the region it ran on."""

    name: str  # plain words, e.g. "Layer 5 of 17: 3x3 convolution + PReLU"
    activation: Any  # float32 numpy (channels, height, width): the part over the region (margins cut away)
    shape: tuple[int, int, int]  # (channels, height, width) of the activation as the network computed it
    step: float  # input pixels per activation pixel (0.5: twice the input's resolution)


@dataclass(frozen=True)
class Decomposition:
    """The sum the architecture really computes: ``output = base + residual`` (float32 HxWx3, 0-1)."""

    base: Any
    residual: Any  # signed
    output: Any
    base_label: str  # e.g. "plain enlargement"
    residual_label: str  # e.g. "what the network draws"


@dataclass(frozen=True)
class Look:
    """A run on a region with its stages recorded."""

    layers: list[LayerActivation]
    decomposition: Decomposition


@dataclass(frozen=True)
class LocalForward:
    """A differentiable forward on a crop: ``forward(x)`` maps a float32 tensor (N, 3, h, w) of the
    input pixels inside ``input_box`` to the output pixels inside the output box it was made for
    (N, 3, H, W). ``batch``: how many inputs one call should carry for speed."""

    input_box: Box  # input pixels, clipped to the picture
    forward: Callable[[Any], Any]
    batch: int = 8


class Anatomy(ABC):
    """What an engine that can be looked into offers (``Engine.anatomy``): its layers on a region,
    the sum its output is, and a local differentiable forward for attribution."""

    scale: int
    receptive_field: int  # input pixels along a side, theoretical, from the graph (its local part)
    whole_picture_note: str = ""  # "" when local; else why every input pixel reaches every output pixel

    @abstractmethod
    def look(self, rgb: Any, on_step: Callable[[float], None] | None = None) -> Look:
        """Run once on ``rgb`` (float32 HxWx3, 0-1) as the engine runs a picture, recording the stages."""

    @abstractmethod
    def local(self, rgb: Any, output_box: Box) -> LocalForward:
        """The forward from the input pixels that decide ``output_box`` (output pixels) of ``rgb``."""


class Engine(ABC):
    id: str
    display_name: str
    family: str  # "classical" | "cnn" | "diffusion"
    scales: tuple[int, ...] = (2,)
    default_scale: int = 2
    device_need: str = "cpu"  # "cpu": fine anywhere; "gpu": a GPU strongly recommended
    summary: str = ""  # one sentence: how it works, for the picker
    params: tuple[ParamSpec, ...] = ()
    credits: tuple[Credit, ...] = ()
    uses_torch = True  # False: runs without a device (no torch import, ``device`` ignored)
    # One plain sentence: what it learned from, and so what it can undo (the "what it learned from" view).
    learned_from = ""
    looks_inside = False  # True: ``anatomy`` shows its layers, its sum and where a pixel comes from
    # What the page and the helpers may ask of it, declared here so nobody infers it from ``family``
    # or the id (spandrel's descriptor is the model); the engine contract test checks each is true.
    makes_frames = False  # True: ``RunOptions.frames`` gets one denoising frame per step (a filmstrip)
    explorations: tuple[str, ...] = ()  # what ``explore`` runs: "sweep" (strengths), "seeds" (where it guesses)
    fetches_weights = False  # True: weights missing here may be fetched on first use (``fetch_weights``)
    # The colour fix's default (``colour.resolve``): on where the model drifts in colour. Measured in the
    # README's "Colour fix": the CNNs' colour shift 1.2-2.3/255 -> about 0.4/255; a formula does not drift.
    colour_fix_by_default = False
    # How the page names and sorts it (so that no surface keeps a table keyed by id or family):
    kind_words = ""  # what kind of upscaler, in a visitor's words: "anime CNN", "diffusion", "classical"
    picker_name = ""  # a name short enough for a phone-wide picker ("" : the display name before " (")
    is_baseline = False  # True: a plain enlargement (no learned model), the "blurry" side of a comparison

    @property
    def short_name(self) -> str:
        return self.picker_name or self.display_name.split(" (")[0]

    def offered_values(self, field: str) -> tuple[str, ...]:
        """Values of a weight-naming parameter (``model``, ``controlnet``) published for visitors to pick,
        besides its default; each field has its own list (the page adds only the operator's own)."""
        return ()

    def warm(self, options: RunOptions) -> float | None:
        """Pay the one-time costs of a first run (load, first call of every layer); the seconds spent,
        or None when there is nothing to warm or it cannot run here. Safe to call again."""
        return None

    @abstractmethod
    def available(self, params: dict[str, Any], options: RunOptions) -> Availability:
        """Are this engine's packages and weights here for ``params`` (e.g. a model folder)?

        The device is not this method's business (``devices.choose_device`` decides it). Must
        not load weights or touch the network.
        """

    @abstractmethod
    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        """Upscale an RGB image by ``scale``; scale, ``params`` and size are already checked."""

    def anatomy(self, scale: int, params: dict[str, Any], options: RunOptions) -> Anatomy:
        """The engine's network opened up (only where ``looks_inside``); scale and params already checked."""
        raise InvalidParameterError(
            f"{self.display_name} ({self.id}) cannot be looked into.", hint="Use an engine with looks_inside = True."
        )

    def explore(self, what: str, image: Image.Image, params: dict[str, Any], options: RunOptions) -> Any:
        """Run one of ``explorations`` on ``image`` (params checked); the engine's own result type."""
        raise InvalidParameterError(
            f"{self.display_name} ({self.id}) has no {what!r} exploration.",
            hint=f"Its explorations: {', '.join(self.explorations) or 'none'}.",
        )

    def gpu_seconds(self, width: int, height: int, params: dict[str, Any], tile: int = 0) -> int:
        """Seconds of GPU to ask a ZeroGPU Space for, to run a ``width`` x ``height`` input (checked params)."""
        return DEFAULT_GPU_SECONDS

    def download_size(self, params: dict[str, Any]) -> str:
        """``"about 2.7 GB"``: what fetching the weights ``params`` name would download ("" when unknown)."""
        return ""

    def may_fetch_weights(self, params: dict[str, Any], *, settings: Settings, device: str) -> Availability:
        """Would ``fetch_weights`` fetch what ``params`` lack here (ok when nothing is missing)? No network."""
        return Availability(False, f"{self.display_name} fetches no weights: they come with the package.")

    def fetch_weights(
        self,
        params: dict[str, Any],
        *,
        settings: Settings,
        device: str,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[Path]:
        """Fetch the missing weights of ``params`` where ``may_fetch_weights`` allows; the folders fetched."""
        return []

    def download_weights(
        self, params: dict[str, Any], *, settings: Settings, progress: bool | Callable[[int, int, str], None] = True
    ) -> list[tuple[str, Path]]:
        """The operator's own fetch (``python -m cnaps_demo download``): every weight checked ``params``
        name, whatever a visitor may fetch; (what was fetched, its folder) pairs. ``progress``: True
        draws terminal bars, False none, a callable gets (bytes done, bytes total, description)."""
        return []

    def check_params(self, params: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
        """Fill defaults (``settings`` may replace some) and validate; unknown names list the known ones."""
        known = {spec.name: spec for spec in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise InvalidParameterError(
                f"Engine {self.id!r} has no parameter {', '.join(unknown)}.", hint=f"Its parameters are: {allowed}."
            )
        return {name: spec.check(params.get(name), spec.default_for(settings)) for name, spec in known.items()}

    def check_combination(self, scale: int, params: dict[str, Any]) -> None:
        """Raise when checked values are each fine but do not go together (override where that happens)."""

    def choice_limits(self, scale: int, params: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        """Choice parameters whose allowed values depend on the others (name -> allowed values).

        The page offers only these, so a combination ``check_combination`` refuses cannot be picked.
        """
        return {}

    def check_size(self, width: int, height: int) -> None:
        """Raise ``ImageTooLargeError``/``ImageTooSmallError`` for sizes this engine refuses (default: none)."""

    def cpu_refusal(self) -> str:
        """Why ``device=auto`` does not fall back to the CPU, for engines with ``device_need == "gpu"``."""
        return f"{self.display_name} needs a GPU."

    def check_scale(self, scale: int | None) -> int:
        if scale is None:
            return self.default_scale
        if scale not in self.scales:
            raise InvalidParameterError(
                f"scale={scale} is not supported by {self.id!r}.",
                hint=f"Use one of: {', '.join(map(str, self.scales))}.",
            )
        return int(scale)
