"""Weights on first use: what a web server may fetch for a visitor, and fetching it with progress.

On a machine with a usable GPU (a GPU Space, ZeroGPU, a workstation) the first visitor who picks
an SD engine should get it without the operator running a command: the missing weights are
fetched once, with a progress bar on the page, into the Hub cache. What may be fetched is the
operator's decision, never the visitor's:

* only Hub ids the operator allows: the pinned defaults (the engine's published model, the
  tile ControlNet where it takes one), the operator's own ``CNAPS_SD_MODEL`` / ``CNAPS_SD_CONTROLNET``, and the
  Hub ids in ``CNAPS_WEB_MODELS`` (the same list that decides what the page offers);
* safetensors only (``download``'s rule), at the pinned revisions;
* never on a CPU-only server (unless the operator opted in to CPU diffusion,
  ``CNAPS_ALLOW_CPU_DIFFUSION=1``): there the engine cannot run, so nothing is fetched;
* never when ``CNAPS_ALLOW_DOWNLOADS=0`` or ``HF_HUB_OFFLINE=1``: preload the weights instead
  (README: ``preload_from_hub``).

Each function takes the diffusion engine itself (``DiffusionTraits``) and the caller's
``Settings`` (read once by the caller; nothing here reads the environment). No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import CnapsError, WeightsNotFoundError
from ..base import Availability
from . import controlnet as cn
from . import hub
from .descriptor import Traits
from .download import ByteProgress, download, download_controlnet

if TYPE_CHECKING:
    from ...settings import Settings


@dataclass(frozen=True)
class Missing:
    """One set of weights a job needs that is not on disk."""

    kind: str  # "model" or "controlnet"
    ref: str  # the Hub id (or the path that is missing)
    reason: str  # what resolving it said

    @property
    def hub_id(self) -> bool:
        return hub.is_hub_id(self.ref)


def allowed_downloads(engine: Traits, settings: Settings) -> tuple[str, ...]:
    """The Hub ids this server may fetch for a visitor of ``engine``: its published model (and the
    tile ControlNet, where it takes one), the operator's models, CNAPS_WEB_MODELS."""
    pinned = [engine.published_model, cn.DEFAULT_CONTROLNET if engine.takes_controlnet() else ""]
    own = [settings.sd_model, getattr(settings, "sd_controlnet", cn.DEFAULT_CONTROLNET), *settings.web_models]
    return tuple(dict.fromkeys(ref.strip() for ref in [*pinned, *own] if ref and hub.is_hub_id(ref.strip())))


def missing_weights(engine: Traits, params: dict[str, Any], *, cache_dir: Path | None) -> list[Missing]:
    """The model and (engines that take one) ControlNet of ``params`` that are not on disk; [] when all are."""
    missing = []
    try:
        hub.resolve_model(params["model"], engine=engine, cache_dir=cache_dir)
    except CnapsError as error:
        missing.append(Missing("model", str(params["model"]).strip(), str(error)))
    if engine.takes_controlnet() and not cn.is_off(params.get("controlnet")):
        try:
            cn.resolve_controlnet(params["controlnet"], engine=engine, cache_dir=cache_dir)
        except CnapsError as error:
            missing.append(Missing("controlnet", str(params["controlnet"]).strip(), str(error)))
    return missing


def may_download(engine: Traits, params: dict[str, Any], *, settings: Settings, device: str) -> Availability:
    """Would :func:`ensure_weights` fetch what is missing here? ``ok`` (nothing missing counts as ok);
    otherwise the reason, saying what the operator can do. Never touches the network."""
    missing = missing_weights(engine, params, cache_dir=settings.hub_cache)
    if not missing:
        return Availability(True)
    names = ", ".join(item.ref for item in missing)
    preload = "Preload them (README: preload_from_hub) or run: " + hub.download_hint(engine, str(params["model"]))
    if not settings.allow_downloads:
        return Availability(
            False, f"{names} not downloaded, and this server does not download (CNAPS_ALLOW_DOWNLOADS=0). {preload}"
        )
    if settings.hub_offline:
        return Availability(False, f"{names} not downloaded, and HF_HUB_OFFLINE=1 is set. {preload}")
    if device == "cpu" and not settings.allow_cpu_diffusion:
        return Availability(
            False,
            f"{names} not downloaded; this server has no GPU, so they are not fetched (they would be too slow here).",
        )
    allowed = allowed_downloads(engine, settings)
    for item in missing:
        if not item.hub_id:
            return Availability(False, item.reason)  # a local path that is not there: nothing to fetch
        if item.ref not in allowed:
            return Availability(
                False,
                f"{item.ref} is not downloaded, and this server fetches only the models its operator allows "
                f"({', '.join(allowed)}; more with CNAPS_WEB_MODELS).",
            )
    return Availability(True)


def ensure_weights(
    engine: Traits,
    params: dict[str, Any],
    *,
    settings: Settings,
    device: str,
    progress: ByteProgress | None = None,
) -> list[Path]:
    """Fetch the missing weights of ``params`` if this server may (``may_download``); the folders fetched.

    ``progress(bytes done, bytes total, description)`` follows each download (a page's progress
    bar). Raises WeightsNotFoundError (with what to do) when a download is not allowed or fails.
    """
    ok, reason = may_download(engine, params, settings=settings, device=device)
    if not ok:
        raise WeightsNotFoundError(f"{engine.id} cannot fetch its weights here.", hint=reason)
    fetched = []
    where = {"cache_dir": settings.hub_cache, "offline": settings.hub_offline, "endpoint": settings.hub_endpoint}
    for item in missing_weights(engine, params, cache_dir=settings.hub_cache):
        report = progress if progress is not None else False
        if item.kind == "model":
            fetched.append(download(engine, item.ref, report, **where))
        else:
            folder = download_controlnet(engine, item.ref, report, **where)
            if folder is not None:
                fetched.append(folder)
    return fetched
