"""What every engine is: id, name, scales, device needs, parameters, availability, run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from PIL import Image

from ..errors import InvalidParameterError
from ..stages import ProgressFn, StageRecord, no_progress


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

    def check(self, value: Any) -> Any:
        """Return ``value`` converted to the right type, or raise a message naming the range."""
        if value is None:
            return self.default
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.kind == "float":
                value = float(value)
            elif self.kind == "bool":
                value = value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
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


@dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what to compute."""

    device: str = "auto"  # auto | cpu | cuda | mps
    tile: int = 0  # 0 = the engine's default
    progress: ProgressFn = no_progress


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

    @abstractmethod
    def available(self, device: str | None = None, params: dict[str, Any] | None = None) -> Availability:
        """Can this engine run here, on ``device`` with ``params`` (e.g. a model folder)?

        Must not load weights or touch the network. ``None`` means the defaults.
        """

    @abstractmethod
    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        """Upscale an RGB image by ``scale``; ``params`` are already checked."""

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and validate; unknown names are an error that lists the known ones."""
        known = {spec.name: spec for spec in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise InvalidParameterError(
                f"Engine {self.id!r} has no parameter {', '.join(unknown)}.", hint=f"Its parameters are: {allowed}."
            )
        return {name: spec.check(params.get(name)) for name, spec in known.items()}

    def check_scale(self, scale: int | None) -> int:
        if scale is None:
            return self.default_scale
        if scale not in self.scales:
            raise InvalidParameterError(
                f"scale={scale} is not supported by {self.id!r}.",
                hint=f"Use one of: {', '.join(map(str, self.scales))}.",
            )
        return int(scale)

    def describe(self) -> dict[str, Any]:
        ok, reason = self.available()
        return {
            "id": self.id,
            "name": self.display_name,
            "family": self.family,
            "scales": list(self.scales),
            "device": self.device_need,
            "available": ok,
            "reason": reason,
        }


def param_names(specs: Sequence[ParamSpec]) -> list[str]:
    return [spec.name for spec in specs]
