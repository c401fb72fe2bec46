"""The tile ControlNet that ``sd-img2img`` runs beside the UNet: which one, and its weights on disk.

A ControlNet is a trainable copy of the UNet's encoder that reads a condition picture and adds
its features to the UNet's skip connections at every step. The *tile* ControlNet of SD 1.5
(``lllyasviel/control_v11f1e_sd15_tile``) was trained with blurred, shrunken copies of the
picture as the condition: given the pre-enlarged picture, it holds the composition and colours
in place while the UNet re-draws the detail, which is why SD upscalers (A1111's SD upscale
with ControlNet, Ultimate SD Upscale) pair it with denoising strengths of 0.35-0.5.

A ControlNet reference is ``none`` (switched off), a Hub id (looked up in the local cache only,
like the models: ``hub``), or a local folder holding ``config.json`` and
``diffusion_pytorch_model[.fp16].safetensors``. Safetensors only. torch is never imported here.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import IncompleteSnapshotError, UnsafeWeightsError, WeightsNotFoundError
from ...files import path_kind
from ..base import Availability
from . import hub
from .descriptor import Traits

DEFAULT_CONTROLNET = "lllyasviel/control_v11f1e_sd15_tile"
OFF_WORDS = frozenset({"", "none", "off", "no"})
APPROX_GB = 0.7  # the default ControlNet's download (fp16)
APPROX_SIZE = f"about {APPROX_GB:g} GB"
DEFAULT_SCALE = 1.0  # the ControlNet's usual weight (A1111 and diffusers default)


def is_off(ref: str | None) -> bool:
    """``none`` (or empty): plain img2img, no ControlNet."""
    return ref is None or str(ref).strip().lower() in OFF_WORDS


def download_hint(engine: Traits, ref: str) -> str:
    """The command that fetches ControlNet ``ref`` for ``engine`` (one that takes a ControlNet)."""
    return f"python -m cnaps_demo download {engine.id} --controlnet {ref}"


def weights_variant(folder: Path) -> tuple[str | None, list[str], bool]:
    """(variant to load, pickle files, found safetensors?) of a ControlNet folder (weights at its root)."""
    variant, found, pickles = hub._safetensors_variant(folder)
    return variant, pickles, found


def check_folder(folder: Path, ref: str, *, engine: Traits, from_hub: bool) -> Path:
    """``folder`` if it holds a loadable ControlNet; else a typed error saying what to do (the fix
    names ``engine``, the one that runs it)."""
    fix = (
        f"Run: {download_hint(engine, ref)}, or pass controlnet=none for plain img2img."
        if from_hub
        else "Point controlnet at a folder with config.json and diffusion_pytorch_model.safetensors, "
        "or pass controlnet=none."
    )
    if not (folder / "config.json").is_file():
        raise IncompleteSnapshotError(f"The ControlNet {ref} ({folder}) has no config.json.", hint=fix)
    _, pickles, found = weights_variant(folder)
    if not found:
        if pickles:
            raise UnsafeWeightsError(
                f"The ControlNet {ref} has only pickle-based weights ({', '.join(pickles)}); cnaps-demo loads "
                ".safetensors only, because pickle files can run code when loaded.",
                hint=fix,
            )
        raise IncompleteSnapshotError(
            f"The ControlNet {ref} ({folder}) has no diffusion_pytorch_model.safetensors.", hint=fix
        )
    return folder


def resolve_controlnet(ref: str, *, engine: Traits, cache_dir: Path | None) -> Path | None:
    """The local folder of ControlNet ``ref`` for ``engine`` (None when switched off); never touches the network."""
    if is_off(ref):
        return None
    ref = ref.strip()
    local = Path(ref).expanduser()
    kind = path_kind(local)
    if kind == "folder":
        return check_folder(local, ref, engine=engine, from_hub=False)
    if kind != "missing" or not hub.is_hub_id(ref):
        raise WeightsNotFoundError(
            f"controlnet={ref[:80]!r} is neither a ControlNet folder nor a Hub id (owner/name).",
            hint=f"Pass {DEFAULT_CONTROLNET}, a folder with config.json and .safetensors weights, or none.",
        )
    found = hub.snapshot_path(ref, cache_dir=cache_dir)
    if found is None:
        size = f" ({APPROX_SIZE})" if ref == DEFAULT_CONTROLNET else ""
        raise WeightsNotFoundError(
            f"The ControlNet {ref} is not in the Hugging Face cache ({hub.cache_folder(cache_dir)}).",
            hint=f"Run: {download_hint(engine, ref)}{size}, or pass controlnet=none for plain img2img.",
        )
    return check_folder(found, ref, engine=engine, from_hub=True)


def check_available(engine: Traits, ref: str, *, cache_dir: Path | None) -> Availability:
    try:
        resolve_controlnet(ref, engine=engine, cache_dir=cache_dir)
    except (WeightsNotFoundError, IncompleteSnapshotError, UnsafeWeightsError) as error:
        return Availability(False, str(error))
    return Availability(True)
