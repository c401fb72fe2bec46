"""Fetching the diffusion engines' weights from the Hugging Face Hub (``python -m cnaps_demo download``).

The only module of the package that touches the network. It fetches exactly the files an SD
engine loads (fp16 safetensors where published, never pickle files) at the pinned revision,
then checks the result with ``hub``. torch and diffusers are never imported here.

``progress`` is True (terminal bars), False (quiet), or a callable ``(bytes done, bytes total,
description)`` that a page can show as a progress bar; ``endpoint`` is the Hub's address
(``Settings.hub_endpoint``, HF_ENDPOINT; None: huggingface.co). Whether a web visitor may cause
a download at all is ``provision``'s decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ...errors import CnapsError, UnsafeWeightsError, WeightsNotFoundError
from . import controlnet as cn
from .descriptor import DiffusionTraits, Traits
from .hub import (
    PICKLE_SUFFIXES,
    TOKENIZER_FILES,
    cache_folder,
    download_hint,
    inspect_folder,
    is_hub_id,
    raise_for_report,
    resolve_model,
)

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


def allow_patterns_for(files: Iterable[str], weight_parts: tuple[str, ...] = DiffusionTraits.weight_parts) -> list[str]:
    """The exact files an SD engine needs from a repo listing: the weights of its ``weight_parts``
    (fp16 where published), its tokenizer and scheduler config (never a safety checker).

    Raises UnsafeWeightsError if a model component publishes pickle weights only.
    """
    files = list(files)
    patterns = ["model_index.json", "scheduler/scheduler_config.json"]
    patterns += [f"tokenizer/{name}" for name in (*TOKENIZER_FILES, *_TOKENIZER_EXTRA)]
    unsafe: dict[str, list[str]] = {}
    for component in weight_parts:
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


ByteProgress = Callable[[int, int, str], None]  # (bytes done, bytes total, description)


def _quiet_tqdm(report: ByteProgress | None = None, description: str = "") -> type:
    """A tqdm class that never draws (download(progress=False)); with ``report``, it hands on the
    byte counts of huggingface_hub's byte bars instead."""
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._bytes = kwargs.get("unit") == "B"
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0  # a disabled tqdm counts nothing itself
            if report is not None and self._bytes:
                report(int(self.n), int(self.total or 0), description)
            return None

    return QuietTqdm


def controlnet_patterns(files: Iterable[str]) -> list[str]:
    """The files of a ControlNet repository to fetch: config.json and its safetensors weights
    (fp16 where published). Raises UnsafeWeightsError if it publishes pickle weights only."""
    files = list(files)
    root = [f for f in files if "/" not in f]
    fp16 = [f for f in root if f.startswith("diffusion_pytorch_model.fp16") and ".safetensors" in f]
    plain = [
        f
        for f in root
        if f.startswith("diffusion_pytorch_model") and ".safetensors" in f and ".fp16." not in f
        and (f.count(".") == 1 or re.search(r"-\d{5}-of-\d{5}\.safetensors$", f) or f.endswith(".index.json"))
    ]
    weights = fp16 if any(f.endswith(".safetensors") for f in fp16) else plain
    if not any(f.endswith(".safetensors") for f in weights):
        pickles = [f for f in root if f.endswith(PICKLE_SUFFIXES)]
        raise UnsafeWeightsError(
            f"The ControlNet repository publishes no .safetensors weights ({', '.join(pickles) or 'none'}); "
            "cnaps-demo loads .safetensors only.",
            hint="Pick a ControlNet that publishes .safetensors weights, or pass controlnet=none.",
        )
    return [f for f in ["config.json", *weights] if f in files]


def download(
    engine: Traits,
    model_ref: str,
    progress: bool | ByteProgress = True,
    *,
    revision: str | None = None,
    cache_dir: Path | None,
    offline: bool = False,
    endpoint: str | None = None,
) -> Path:
    """Fetch only the files the diffusion ``engine`` needs for ``model_ref`` into the Hub cache; return the folder.

    The engine's pinned revision for its published model (``DiffusionTraits.published_revision``),
    ``main`` otherwise; fp16 safetensors where the repository publishes them, full-precision
    safetensors otherwise; never pickle files. ``offline`` (``Settings.hub_offline``,
    HF_HUB_OFFLINE=1): raises unless everything is already cached.
    """
    model_ref = model_ref.strip()
    if not is_hub_id(model_ref):  # a local path: nothing to fetch, just check it
        return resolve_model(model_ref, engine=engine, cache_dir=cache_dir)
    if offline:
        try:
            return resolve_model(model_ref, engine=engine, cache_dir=cache_dir)
        except CnapsError:
            pass
        raise WeightsNotFoundError(
            f"Cannot download {model_ref}: HF_HUB_OFFLINE=1 is set, so the Hugging Face Hub may not be contacted.",
            hint=f"Unset HF_HUB_OFFLINE (or set it to 0) and run: {download_hint(engine, model_ref)}; "
            "or copy a diffusers folder here and pass --model PATH.",
        )
    where = (revision or engine.pinned_revision(model_ref), cache_folder(cache_dir), endpoint)
    hints = (engine.published_model, download_hint(engine, model_ref))
    path = _fetch(model_ref, where, progress, lambda files: allow_patterns_for(files, engine.weight_parts), hints)
    raise_for_report(inspect_folder(path, engine.weight_parts), model_ref, engine, from_hub=True)
    return path


def download_controlnet(
    engine: Traits,
    ref: str,
    progress: bool | ByteProgress = True,
    *,
    revision: str | None = None,
    cache_dir: Path | None,
    offline: bool = False,
    endpoint: str | None = None,
) -> Path | None:
    """Fetch ControlNet ``ref`` for ``engine`` (config.json and safetensors weights) into the Hub cache;
    None when off. Fetched at ``revision``, else ``main``."""
    if cn.is_off(ref):
        return None
    ref = ref.strip()
    if not is_hub_id(ref) or offline:
        try:
            return cn.resolve_controlnet(ref, engine=engine, cache_dir=cache_dir)
        except CnapsError:
            if not offline:
                raise
        raise WeightsNotFoundError(
            f"Cannot download the ControlNet {ref}: HF_HUB_OFFLINE=1 is set, so the Hub may not be contacted.",
            hint=f"Unset HF_HUB_OFFLINE and run: {cn.download_hint(engine, ref)}; or pass controlnet=none.",
        )
    where = (revision or "main", cache_folder(cache_dir), endpoint)
    path = _fetch(ref, where, progress, controlnet_patterns, (cn.DEFAULT_CONTROLNET, cn.download_hint(engine, ref)))
    return cn.check_folder(path, ref, engine=engine, from_hub=True)


def _tqdm_for(progress: bool | ByteProgress, model_ref: str) -> type | None:
    """The bars of a download: terminal bars (True), none (False), or byte counts handed to a callable."""
    if callable(progress):
        return _quiet_tqdm(progress, f"downloading {model_ref}")
    return None if progress else _quiet_tqdm()


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


def _fetch(
    model_ref: str,
    where: tuple[str, Path, str | None],
    progress: bool | ByteProgress,
    patterns_for: Callable[[list[str]], list[str]],
    hints: tuple[str, str],
) -> Path:
    """List the repository, then download the files ``patterns_for`` picks from its listing
    (``where``: revision, cache, endpoint); Hub errors become typed errors with the fix
    (``hints``: a Hub id that exists, and the command that fetches ``model_ref``)."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    (revision, cache, endpoint), (example, command) = where, hints
    failures = _http_failures()
    extra = {"endpoint": endpoint} if endpoint else {}
    try:
        files = HfApi(**extra).list_repo_files(model_ref, revision=revision)
        patterns = patterns_for(list(files))
        folder = snapshot_download(
            model_ref,
            revision=revision,
            cache_dir=cache,
            allow_patterns=patterns,
            tqdm_class=_tqdm_for(progress, model_ref),  # type: ignore[arg-type]
            **extra,
        )
    except GatedRepoError as error:
        raise WeightsNotFoundError(
            f"{model_ref} is gated on the Hub: {error}",
            hint="Accept its licence on the model page, then `hf auth login`.",
        ) from None
    except RevisionNotFoundError:
        raise WeightsNotFoundError(
            f"Revision {revision} of {model_ref} does not exist on the Hub.",
            hint="Update the engine's published_revision (cnaps_demo/engines/diffusion/), or pass revision='main'.",
        ) from None
    except RepositoryNotFoundError:
        raise WeightsNotFoundError(
            f"There is no model {model_ref} on the Hugging Face Hub (or it is private).",
            hint=f"Check the id, e.g. {example}.",
        ) from None
    except OfflineModeIsEnabled:
        raise WeightsNotFoundError(
            f"Cannot download {model_ref}: huggingface_hub is in offline mode (HF_HUB_OFFLINE=1 when it was imported).",
            hint=f"Start a new shell without HF_HUB_OFFLINE and run: {command}",
        ) from None
    except CnapsError:
        raise
    except failures as error:  # HTTP errors, connection errors (httpx's are not OSErrors), disk errors
        raise WeightsNotFoundError(
            f"Downloading {model_ref} failed: {type(error).__name__}: {error}",
            hint=f"Check the network and disk space ({cache}), then run again: {command}",
        ) from None
    return Path(folder)
