"""Fetching the diffusion engines' weights from the Hugging Face Hub (``python -m cnaps_demo download``).

The only module of the package that touches the network. It fetches exactly the files an SD
engine loads (fp16 safetensors where published, never pickle files) at the pinned revision,
then checks the result with ``hub``. torch and diffusers are never imported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import CnapsError, UnsafeWeightsError, WeightsNotFoundError
from .hub import (
    PICKLE_SUFFIXES,
    PUBLISHED_MODELS,
    TOKENIZER_FILES,
    cache_folder,
    check_engine,
    download_hint,
    inspect_folder,
    is_hub_id,
    pinned_revision,
    raise_for_report,
    resolve_model,
)

# Model components fetched with their weights (the safety checker and feature extractor never are).
MODEL_COMPONENTS = ("unet", "vae", "text_encoder")
_TOKENIZER_EXTRA = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "added_tokens.json")


def _component_weights(files: Iterable[str], component: str) -> tuple[list[str], list[str]]:
    """(safetensors files to fetch for ``component``, its pickle files) from a repo listing."""
    inside = [f for f in files if f.startswith(component + "/") and f.count("/") == 1]
    names = [f.split("/", 1)[1] for f in inside]
    fp16 = [n for n in names if ".fp16." in n and (n.endswith(".safetensors") or ".safetensors.index" in n)]
    plain = [
        n
        for n in names
        if (n.endswith(".safetensors") and (n.count(".") == 1 or re.search(r"-\d{5}-of-\d{5}\.safetensors$", n)))
        or n.endswith(".safetensors.index.json")
    ]
    plain = [n for n in plain if ".fp16." not in n]
    chosen = fp16 if any(n.endswith(".safetensors") for n in fp16) else plain
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    return [f"{component}/{n}" for n in chosen], pickles


def allow_patterns_for(files: Iterable[str]) -> list[str]:
    """The exact files an SD engine needs from a repo listing (fp16 weights where published).

    Raises UnsafeWeightsError if a model component publishes pickle weights only.
    """
    files = list(files)
    patterns = ["model_index.json", "scheduler/scheduler_config.json"]
    patterns += [f"tokenizer/{name}" for name in (*TOKENIZER_FILES, *_TOKENIZER_EXTRA)]
    unsafe: dict[str, list[str]] = {}
    for component in MODEL_COMPONENTS:
        patterns.append(f"{component}/config.json")
        weights, pickles = _component_weights(files, component)
        if weights:
            patterns += weights
        elif pickles:
            unsafe[component] = pickles
    if unsafe:
        listing = "; ".join(f"{c}: {', '.join(f)}" for c, f in unsafe.items())
        raise UnsafeWeightsError(
            f"The repository publishes only pickle-based weights for {listing}; cnaps-demo loads .safetensors only.",
            hint="Pick a model that publishes .safetensors weights, or convert it yourself and pass the folder.",
        )
    return [p for p in patterns if p in files]


def _quiet_tqdm() -> type:
    """A tqdm class that never draws (download(progress=False))."""
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm


def download(
    engine_id: str,
    model_ref: str,
    progress: bool = True,
    *,
    revision: str | None = None,
    cache_dir: Path | None,
    offline: bool = False,
) -> Path:
    """Fetch only the files ``engine_id`` needs for ``model_ref`` into the Hub cache; return the folder.

    Pinned revision per known model (``hub.PINNED_REVISIONS``), ``main`` otherwise; fp16
    safetensors where the repository publishes them, full-precision safetensors otherwise; never
    pickle files. ``offline`` (``Settings.hub_offline``, HF_HUB_OFFLINE=1): raises unless
    everything is already cached.
    """
    check_engine(engine_id)
    model_ref = model_ref.strip()
    if not is_hub_id(model_ref):  # a local path: nothing to fetch, just check it
        return resolve_model(model_ref, kind=engine_id, cache_dir=cache_dir)
    if offline:
        try:
            return resolve_model(model_ref, kind=engine_id, cache_dir=cache_dir)
        except CnapsError:
            pass
        raise WeightsNotFoundError(
            f"Cannot download {model_ref}: HF_HUB_OFFLINE=1 is set, so the Hugging Face Hub may not be contacted.",
            hint=f"Unset HF_HUB_OFFLINE (or set it to 0) and run: {download_hint(engine_id, model_ref)}; "
            "or copy a diffusers folder here and pass --model PATH.",
        )
    path = _fetch(engine_id, model_ref, revision or pinned_revision(model_ref), cache_folder(cache_dir), progress)
    raise_for_report(inspect_folder(path), model_ref, engine_id, from_hub=True)
    return path


def _http_failures() -> tuple[type[BaseException], ...]:
    """What a failed fetch raises: huggingface_hub's HTTP error, disk errors, and the HTTP client's own."""
    from huggingface_hub.errors import HfHubHTTPError

    failures: tuple[type[BaseException], ...] = (HfHubHTTPError, OSError, ValueError)
    for client in ("httpx2", "httpx", "requests"):  # whichever HTTP client this huggingface_hub uses
        try:
            module = __import__(client)
        except ImportError:
            continue
        error_class = getattr(module, "HTTPError", None) or getattr(module, "RequestException", None)
        if isinstance(error_class, type) and issubclass(error_class, BaseException):
            failures += (error_class,)
    return failures


def _fetch(engine_id: str, model_ref: str, revision: str, cache: Path, progress: bool) -> Path:
    """List the repository, then download the files it needs; Hub errors become typed errors with the fix."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    failures = _http_failures()
    try:
        files = HfApi().list_repo_files(model_ref, revision=revision)
        patterns = allow_patterns_for(files)
        tqdm_class = None if progress else _quiet_tqdm()
        folder = snapshot_download(
            model_ref,
            revision=revision,
            cache_dir=cache,
            allow_patterns=patterns,
            tqdm_class=tqdm_class,  # type: ignore[arg-type]
        )
    except GatedRepoError as error:
        raise WeightsNotFoundError(
            f"{model_ref} is gated on the Hub: {error}",
            hint="Accept its licence on the model page, then `hf auth login`.",
        ) from None
    except RevisionNotFoundError:
        raise WeightsNotFoundError(
            f"Revision {revision} of {model_ref} does not exist on the Hub.",
            hint="Update PINNED_REVISIONS in cnaps_demo/engines/diffusion/hub.py, or pass revision='main'.",
        ) from None
    except RepositoryNotFoundError:
        raise WeightsNotFoundError(
            f"There is no model {model_ref} on the Hugging Face Hub (or it is private).",
            hint="Check the id, e.g. " + PUBLISHED_MODELS[engine_id] + ".",
        ) from None
    except OfflineModeIsEnabled:
        raise WeightsNotFoundError(
            f"Cannot download {model_ref}: huggingface_hub is in offline mode (HF_HUB_OFFLINE=1 when it was imported).",
            hint=f"Start a new shell without HF_HUB_OFFLINE and run: {download_hint(engine_id, model_ref)}",
        ) from None
    except CnapsError:
        raise
    except failures as error:  # HTTP errors, connection errors (httpx's are not OSErrors), disk errors
        raise WeightsNotFoundError(
            f"Downloading {model_ref} failed: {type(error).__name__}: {error}",
            hint=f"Check the network and disk space ({cache}), then run again: {download_hint(engine_id, model_ref)}",
        ) from None
    return Path(folder)
