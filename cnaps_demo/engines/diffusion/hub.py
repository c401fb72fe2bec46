"""Model weights for the diffusion engines on disk: find them, check them, say what is missing.

Three kinds of ``model`` reference are accepted everywhere:

* a Hugging Face Hub id (``Lykon/dreamshaper-8``): looked up in the local Hub cache only
  (``snapshot_download(..., local_files_only=True)``), at the revision the engine pins its
  published model to (``DiffusionTraits.published_revision``; other models: ``main``), falling
  back to whatever ``main`` points at in the cache;
* a local diffusers folder (``model_index.json`` plus ``unet/``, ``vae/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/``);
* a single ``.safetensors`` checkpoint (original SD 1.5 layout), loaded with
  ``from_single_file`` and the architecture configs kept in ``configs/sd15`` next to this module.

Nothing here touches the network (fetching is ``download.py``'s job). We load safetensors
only: a folder or file with nothing but pickle weights (``.bin``, ``.ckpt``, ``.pt``, ``.pth``)
is refused with :class:`UnsafeWeightsError`. torch and diffusers are never imported here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import (
    CnapsError,
    IncompleteSnapshotError,
    InvalidParameterError,
    UnsafeWeightsError,
    WeightsNotFoundError,
)
from ...files import path_kind
from ..base import Availability
from .descriptor import SD15_CONFIGS, DiffusionTraits, Traits

CONFIG_DIR = SD15_CONFIGS
"""Hand-written SD 1.5 architecture configs (UNet, VAE, CLIP text encoder, scheduler)."""

# Besides its weight parts (``DiffusionTraits.weight_parts``) every engine loads these (the
# safety checker and feature extractor never are).
TEXT_PARTS = ("tokenizer", "scheduler")
# Where single-file checkpoints find the SD 1.5 CLIP tokenizer, after the engine's published model.
TOKENIZER_REPOS = (
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"),
    ("runwayml/stable-diffusion-v1-5", "tokenizer"),
    ("openai/clip-vit-large-patch14", ""),
)

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TOKENIZER_FILES = ("vocab.json", "merges.txt")


# --- small helpers -----------------------------------------------------------------


def download_hint(engine: Traits, model_ref: str) -> str:
    return f"python -m cnaps_demo download {engine.id} --model {model_ref}"


def cache_folder(cache_dir: Path | None) -> Path:
    """The Hub cache to use: ``cache_dir`` (``Settings.hub_cache``), else huggingface_hub's own."""
    if cache_dir is not None:
        return Path(cache_dir)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_hub_id(model_ref: str) -> bool:
    """``owner/name`` that is not an existing local path."""
    if path_kind(Path(model_ref).expanduser()) not in ("missing", "invalid"):
        return False
    return bool(_HUB_ID.match(model_ref)) and not model_ref.startswith((".", "~"))


def _size_note(engine: Traits, model_ref: str) -> str:
    """`` (about 2 GB)`` for the engine's published model, else nothing."""
    if model_ref == engine.published_model and engine.published_gb:
        return f" ({engine.published_size()})"
    return ""


# --- folder inspection ---------------------------------------------------------------


@dataclass
class FolderReport:
    """What a diffusers folder holds for the components an SD engine loads."""

    path: Path
    missing: list[str] = field(default_factory=list)  # relative paths, human readable
    pickle_only: dict[str, list[str]] = field(default_factory=dict)  # component -> pickle files
    variants: dict[str, str | None] = field(default_factory=dict)  # component -> "fp16" or None

    @property
    def complete(self) -> bool:
        return not self.missing and not self.pickle_only


def _safetensors_variant(folder: Path) -> tuple[str | None, bool, list[str]]:
    """(variant to load, found safetensors?, pickle files) for one model component folder."""
    if not folder.is_dir():
        return None, False, []
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    safetensors = [n for n in names if n.endswith(".safetensors")]
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    plain = [n for n in safetensors if n.count(".") == 1 or re.search(r"-\d{5}-of-\d{5}\.safetensors$", n)]
    fp16 = [n for n in safetensors if ".fp16." in n]
    # Sharded weights: every shard the index names must be there.
    for index_name in [n for n in names if n.endswith(".safetensors.index.json") or ".safetensors.index." in n]:
        try:
            shards = set(json.loads((folder / index_name).read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError):
            continue
        if any(not (folder / shard).is_file() for shard in shards):
            if ".fp16." in index_name:
                fp16 = []
            else:
                plain = []
    if fp16:
        return "fp16", True, pickles
    if plain:
        return None, True, pickles
    return None, False, pickles


def inspect_folder(path: Path, weight_parts: tuple[str, ...] = DiffusionTraits.weight_parts) -> FolderReport:
    """Check a diffusers folder for everything an SD engine loads (its ``weight_parts``, tokenizer
    and scheduler); never raises for content."""
    report = FolderReport(path)
    index_file = path / "model_index.json"
    if not index_file.is_file():
        report.missing.append("model_index.json")
        index: dict[str, Any] = {}
    else:
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report.missing.append("model_index.json (unreadable)")
            index = {}
    for component in (*weight_parts, *TEXT_PARTS):
        entry = index.get(component)
        if index and (not isinstance(entry, list) or entry[0] is None):
            report.missing.append(f"{component} (not listed in model_index.json)")
            continue
        folder = path / component
        if component == "scheduler":
            if not (folder / "scheduler_config.json").is_file():
                report.missing.append("scheduler/scheduler_config.json")
        elif component == "tokenizer":
            if not (folder / "tokenizer.json").is_file():
                report.missing.extend(f"tokenizer/{name}" for name in TOKENIZER_FILES if not (folder / name).is_file())
        else:
            if not (folder / "config.json").is_file():
                report.missing.append(f"{component}/config.json")
            variant, found, pickles = _safetensors_variant(folder)
            report.variants[component] = variant
            if not found:
                if pickles:
                    report.pickle_only[component] = pickles
                else:
                    weights = "diffusion_pytorch_model" if component != "text_encoder" else "model"
                    report.missing.append(f"{component}/{weights}.safetensors (or {weights}.fp16.safetensors)")
    return report


def raise_for_report(report: FolderReport, model_ref: str, engine: Traits, *, from_hub: bool) -> None:
    if report.missing:
        what = "cached snapshot" if from_hub else "folder"
        hint = (
            f"Run: {download_hint(engine, model_ref)} to fetch the missing files."
            if from_hub
            else "Copy the missing files into the folder, or point --model at a complete diffusers folder, "
            "a .safetensors checkpoint, or a Hub id."
        )
        raise IncompleteSnapshotError(
            f"The {what} of {model_ref} ({report.path}) is incomplete: missing {', '.join(report.missing)}.",
            hint=hint,
        )
    if report.pickle_only:
        listing = "; ".join(f"{c}: {', '.join(files)}" for c, files in report.pickle_only.items())
        hint = (
            f"Run: {download_hint(engine, model_ref)} (it fetches .safetensors only)"
            if from_hub
            else "Convert it once with diffusers (`pipe.save_pretrained(folder, safe_serialization=True)`) "
            "or download the .safetensors version"
        )
        raise UnsafeWeightsError(
            f"{model_ref} has only pickle-based weights ({listing}); cnaps-demo loads .safetensors only, "
            "because pickle files can run code when loaded.",
            hint=hint + ".",
        )


# --- resolving a model reference --------------------------------------------------


def _cached_snapshot(model_ref: str, revision: str, cache_dir: Path) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        from huggingface_hub.errors import IncompleteSnapshotError as HubIncomplete
    except ImportError:  # older huggingface_hub
        HubIncomplete = LocalEntryNotFoundError  # type: ignore[misc,assignment]

    try:
        return Path(snapshot_download(model_ref, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except HubIncomplete as error:  # the snapshot folder exists; our own check names the files
        snapshot = getattr(error, "snapshot_path", None)
        return Path(snapshot) if snapshot else None
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def snapshot_path(model_ref: str, *, cache_dir: Path | None, revision: str = "main") -> Path | None:
    """The cached snapshot folder of a Hub id (``revision`` first, then ``main``), or None."""
    cache = cache_folder(cache_dir)
    for each in dict.fromkeys((revision, "main")):
        found = _cached_snapshot(model_ref, each, cache)
        if found is not None and found.is_dir():
            return found
    # A snapshot folder without a ref (e.g. an interrupted first download of a pinned commit).
    repo_dir = cache / f"models--{model_ref.replace('/', '--')}" / "snapshots"
    if repo_dir.is_dir():
        candidates = sorted((p for p in repo_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        if candidates:
            return candidates[-1]
    return None


def resolve_model(model_ref: str, *, engine: Traits, cache_dir: Path | None) -> Path:
    """Local path of ``model_ref`` for the diffusion ``engine``; never touches the network.

    Returns a diffusers folder (Hub snapshot or local folder) or a single ``.safetensors`` file.
    Raises WeightsNotFoundError, IncompleteSnapshotError or UnsafeWeightsError with the fix.
    """
    model_ref = model_ref.strip()
    local = Path(model_ref).expanduser()
    kind_of_path = path_kind(local)
    if kind_of_path == "invalid":
        raise WeightsNotFoundError(
            f"model={model_ref[:80]!r}... is not a usable path (too long, or it holds a NUL character).",
            hint=f"Pass a Hub id such as {engine.published_model}, "
            "a local diffusers folder, or a .safetensors file.",
        )
    if kind_of_path != "missing":
        if kind_of_path == "file":
            return _check_single_file(local, engine, cache_dir)
        report = inspect_folder(local, engine.weight_parts)
        if "model_index.json" in report.missing and not any(local.glob("*/config.json")):
            singles = sorted(local.glob("*.safetensors"))
            hint = (
                f"Pass the checkpoint file itself: --model {singles[0]}"
                if singles
                else "Pass a diffusers folder (with model_index.json), a .safetensors file, or a Hub id."
            )
            raise WeightsNotFoundError(f"{local} is not a diffusers model folder (no model_index.json).", hint=hint)
        raise_for_report(report, model_ref, engine, from_hub=False)
        return local
    if not is_hub_id(model_ref):
        raise WeightsNotFoundError(
            f"model={model_ref!r} is neither an existing file or folder nor a Hub id (owner/name).",
            hint=f"Check the path, or pass a Hub id such as {engine.published_model}.",
        )
    found = snapshot_path(model_ref, cache_dir=cache_dir, revision=engine.pinned_revision(model_ref))
    if found is None:
        raise WeightsNotFoundError(
            f"The weights of {model_ref} are not in the Hugging Face cache ({cache_folder(cache_dir)}).",
            hint=f"Run: {download_hint(engine, model_ref)}{_size_note(engine, model_ref)}, "
            "or pass --model with a local diffusers folder or .safetensors file.",
        )
    raise_for_report(inspect_folder(found, engine.weight_parts), model_ref, engine, from_hub=True)
    return found


def _check_single_file(path: Path, engine: Traits, cache_dir: Path | None) -> Path:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeWeightsError(
            f"{path.name} is a pickle-based checkpoint; cnaps-demo loads .safetensors only, "
            "because pickle files can run code when loaded.",
            hint="Use the .safetensors release of the model, or a diffusers folder with .safetensors weights.",
        )
    if path.suffix.lower() != ".safetensors":
        raise WeightsNotFoundError(
            f"{path} is not a .safetensors checkpoint.",
            hint="Pass a .safetensors file, a diffusers folder, or a Hub id.",
        )
    if not engine.single_file:
        raise InvalidParameterError(
            f"Engine {engine.id} cannot load a single-file checkpoint ({path.name}).",
            hint=f"Pass a diffusers folder or a Hub id such as {engine.published_model}.",
        )
    find_tokenizer(path, engine=engine, cache_dir=cache_dir)  # raises with the fix if no CLIP vocabulary is on disk
    return path


def find_tokenizer(checkpoint: Path | None = None, *, engine: Traits, cache_dir: Path | None) -> Path:
    """A folder holding the SD 1.5 CLIP tokenizer files, for single-file checkpoints.

    Looks next to the checkpoint (``tokenizer/``), then in cached Hub snapshots of the engine's
    published model, of stable-diffusion-v1-5 and of openai/clip-vit-large-patch14. Never downloads.
    """
    candidates: list[Path] = []
    if checkpoint is not None:
        candidates += [checkpoint.parent / "tokenizer", checkpoint.parent]
    published = ((engine.published_model, "tokenizer"),) if engine.published_model else ()
    for repo, sub in (*published, *TOKENIZER_REPOS):
        if not is_hub_id(repo):
            continue
        revision = engine.pinned_revision(repo)
        folder = _cached_file_folder(repo, f"{sub}/vocab.json" if sub else "vocab.json", cache_dir, revision)
        if folder is not None:
            candidates.append(folder)
    for folder in candidates:
        if all((folder / name).is_file() for name in TOKENIZER_FILES):
            return folder
    raise WeightsNotFoundError(
        "A single-file checkpoint needs the SD 1.5 CLIP tokenizer (vocab.json, merges.txt), and none is on disk.",
        hint="Put a tokenizer/ folder next to the checkpoint, or fetch it once with: "
        "hf download openai/clip-vit-large-patch14 vocab.json merges.txt tokenizer_config.json "
        "special_tokens_map.json",
    )


def _cached_file_folder(repo: str, filename: str, cache_dir: Path | None, revision: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for each in dict.fromkeys((revision, None)):
        try:
            found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir, revision=each)
        except (OSError, ValueError):  # malformed cache entries must not break availability checks
            found = None
        if isinstance(found, str):
            return Path(found).parent
    return None


def check_available(engine: Traits, model_ref: str, *, cache_dir: Path | None) -> Availability:
    """Are the weights of ``model_ref`` on disk for the diffusion ``engine``? Never touches the network."""
    try:
        resolve_model(model_ref, engine=engine, cache_dir=cache_dir)
    except CnapsError as error:
        return Availability(False, str(error))
    return Availability(True)
