"""What a diffusion engine says about itself, as data: the family's helpers read this, never an id.

Each engine class (``img2img``, ``latent_x2``) fills in these class attributes: the Hub model
it was made for and its download size, the diffusers pipeline and scheduler it runs, A1111's
name for that scheduler, whether it loads single-file checkpoints, and its CPU time model. The
helpers (``hub``, ``download``, ``provision``, ``pipelines``, ``cost``, ``a1111``, ``explore``)
look an engine up with :func:`describe` and read these, so adding a diffusion engine is one
new module (its class) plus its line in the registry (``cnaps_demo/engines/__init__.py``).

Defining a subclass with an ``id`` registers it here (``__init_subclass__``), so the helpers'
public functions still accept an engine id, as the page and the command line pass them.
This module imports nothing else of the family (everything else may import it). No torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import InvalidParameterError

_DESCRIBED: dict[str, type[DiffusionTraits]] = {}


class DiffusionTraits:
    """The data a diffusion engine declares (class attributes) and the class methods the helpers call."""

    id: str
    published_model: str = ""  # the Hub id it was made for: the default model, named in hints
    published_gb: float = 0.0  # that model's download (fp16 where published), for messages
    pipeline: str = ""  # the diffusers pipeline class it runs
    controlnet_pipeline: str = ""  # the pipeline class with a ControlNet beside the UNet ("": runs none)
    safety_checker_slot: bool = False  # the pipeline takes a safety checker (always left out here)
    scheduler: str = ""  # the diffusers scheduler class a loaded model runs with
    scheduler_overrides: Mapping[str, Any] = {}  # set on top of the model's own scheduler config
    sampler: str = ""  # A1111's name for that scheduler (the PNG ``parameters`` text)
    single_file: bool = False  # also loads a single SD 1.5 .safetensors checkpoint
    prompt_needs_guidance: bool = False  # at guidance 0 the prompt is ignored (and left out of the A1111 text)
    time_model_reference: bool = False  # the engine the time model was measured on (estimates' default)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "id" in cls.__dict__:
            if cls.id in _DESCRIBED and _DESCRIBED[cls.id] is not cls:
                raise RuntimeError(f"two diffusion engines have the id {cls.id!r}")
            _DESCRIBED[cls.id] = cls

    @classmethod
    def takes_controlnet(cls) -> bool:
        return bool(cls.controlnet_pipeline)

    @classmethod
    def published_size(cls) -> str:
        """``"about 2 GB"`` for the published model ("" when unknown)."""
        return f"about {cls.published_gb:g} GB" if cls.published_gb else ""

    @classmethod
    def cpu_work(
        cls, width: int, height: int, params: dict[str, Any], n_tiles: int, per_tile: float
    ) -> tuple[float, float, float]:
        """(UNet, VAE encode, work before the model) seconds on the time model's reference CPU for a
        ``width`` x ``height`` input in ``n_tiles`` tiles of ``per_tile`` output pixels (``cost``)."""
        raise NotImplementedError(f"{cls.__name__} has no CPU time model")

    @classmethod
    def a1111_fields(cls, params: dict[str, Any]) -> dict[str, Any]:
        """This engine's own A1111 fields: ``Steps`` as its scheduler counted them, then any extras."""
        return {"Steps": int(params["steps"])}


def described_ids() -> tuple[str, ...]:
    """The ids of the diffusion engines defined so far, in definition order."""
    return tuple(_DESCRIBED)


def describe(engine: Any = None) -> type[DiffusionTraits]:
    """The traits of ``engine``: an id, an engine, or an engine class; None: the time model's reference.

    Raises InvalidParameterError for an engine of another family.
    """
    if engine is None:
        return next(cls for cls in _DESCRIBED.values() if cls.time_model_reference)
    if isinstance(engine, type) and issubclass(engine, DiffusionTraits):
        return engine
    if isinstance(engine, DiffusionTraits):
        return type(engine)
    engine_id = str(getattr(engine, "id", engine))
    found = _DESCRIBED.get(engine_id)
    if found is None:
        raise InvalidParameterError(
            f"{engine_id!r} is not a diffusion engine.", hint=f"The diffusion engines: {', '.join(_DESCRIBED)}."
        )
    return found


class PublishedModels(Mapping[str, str]):
    """Engine id -> the Hub model it was made for, read from each engine's ``published_model`` when
    asked (so engines defined later are in it too)."""

    def __getitem__(self, engine_id: str) -> str:
        if engine_id not in _DESCRIBED:
            raise KeyError(engine_id)
        return _DESCRIBED[engine_id].published_model

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_DESCRIBED))

    def __len__(self) -> int:
        return len(_DESCRIBED)
