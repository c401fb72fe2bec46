#!/usr/bin/env python
"""Build the folder a lent GPU machine needs for ``scripts/gpu-check.sh`` (run here, on any CPU).

The GPU machine reaches no network. Its Python (3.12) has torch with CUDA, transformers,
huggingface_hub, safetensors, numpy and Pillow, but no diffusers and no ncnn wheels. This puts
into one git-ignored folder (``.gpu-carry/`` by default):

* ``wheels/``: diffusers, pinned as ``requirements.txt`` pins it, and importlib_metadata, the one
  of its needs that image lacks (its other needs are there at versions it accepts);
* ``ncnn-models/``: a models-only copy of the two ncnn packages: the ``.param`` / ``.bin`` of the
  models the CUDA benchmark runs and each package's real METADATA and licence, without the
  compiled engines (``cnaps_demo.engines.cnn.weights`` finds a package by ``find_spec`` and checks
  its cache against the ``.bin``'s hash and the package version, so those files must travel);
* ``cache/weights/``: those models already converted to safetensors (the cache that
  ``CNAPS_CACHE_DIR=<folder>/cache`` points the engines at), checked to load as a cache hit
  from the models-only copy.

It checks the folder holds at most 48 MiB (the tree travels beside it within 64 MiB) and prints
the folder to carry, relative to the repository root, as its last line. Safe to run again.

Usage::

    bash scripts/gpu-prepare.sh                 # downloads the wheels from PyPI
    bash scripts/gpu-prepare.sh --no-wheels     # the CNN part only (no network)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `cnaps_demo` importable from the checkout

from cnaps_demo.errors import CnapsError, WeightCacheError  # noqa: E402

DEFAULT_DEST = ROOT / ".gpu-carry"
LIMIT_MIB = 48
GPU_PYTHON = "3.12"  # the device machine's python3 (3.12.3, /work/.library/device/KINDS.md)
GPU_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# diffusers and the one of its needs the GPU image lacks; everything else it needs is there.
CARRIED_WHEELS = ("diffusers", "importlib_metadata")
STANDIN_INIT = '''"""Models-only copy made by scripts/gpu-prepare.sh: the model files, not the C++ engine."""

raise ImportError(
    "This is a models-only copy of {dist} (scripts/gpu-prepare.sh) for the GPU check; "
    "for its C++ engine run: pip install {dist}"
)
'''


class CarryTooLargeError(CnapsError):
    """The folder to carry to the GPU machine is over its size limit."""


def pinned_version(name: str) -> str:
    """The version requirements.txt pins (``name==X``), else the one installed here."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(name)}==([^\s#]+)", text, re.MULTILINE | re.IGNORECASE)
    return found.group(1) if found else importlib.metadata.version(name)


def _wheel_key(path: Path) -> tuple[str, str]:
    """(normalised name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return re.sub(r"[-_.]+", "_", name).lower(), version


def wanted_wheels() -> dict[str, str]:
    """Normalised name -> version of each carried wheel."""
    return {re.sub(r"[-_.]+", "_", name).lower(): pinned_version(name) for name in CARRIED_WHEELS}


def download_wheels(folder: Path, python_version: str = GPU_PYTHON) -> list[Path]:
    """The carried wheels for the GPU's Python (pip skips files already here); stale versions removed."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = wanted_wheels()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--python-version", python_version, "--implementation", "cp", "--dest", str(folder)]
    for platform in GPU_PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command + [f"{name}=={version}" for name, version in wanted.items()], check=True)
    return keep_only(folder, wanted)


def keep_only(folder: Path, wanted: dict[str, str]) -> list[Path]:
    """Delete the wheels in ``folder`` that are not the wanted version of a wanted package; the rest.

    Two versions of one package stop the whole offline install there.
    """
    kept = []
    for wheel in sorted(folder.glob("*.whl")):
        name, version = _wheel_key(wheel)
        if wanted.get(name) == version:
            kept.append(wheel)
        else:
            wheel.unlink()
    return kept


def cnn_models() -> list[tuple[str, str]]:
    """(package module, model name) of each CNN model the CUDA benchmark runs: the engines' x2 defaults."""
    from cnaps_demo.engines.cnn import RealCuganEngine, RealEsrganAnimeEngine

    models = []
    for engine in (RealCuganEngine(), RealEsrganAnimeEngine()):
        defaults = {spec.name: spec.default for spec in engine.params}
        models.append((engine.module, engine.model_name(2, defaults)))
    return models


def copy_models(folder: Path) -> Path:
    """The models-only copy of the ncnn packages under ``folder`` (rebuilt each time); returns it."""
    from cnaps_demo.engines.cnn import weights

    if folder.exists():
        shutil.rmtree(folder)
    for module, name in cnn_models():
        files = weights.model_files(module, name)  # from the installed wheel (a clear error if absent)
        target = folder / module / weights.PACKAGES[module][1] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        for source in (files.param, files.bin):
            shutil.copyfile(source, target.parent / source.name)
        dist_name = weights.PACKAGES[module][0]
        (folder / module / "__init__.py").write_text(STANDIN_INIT.format(dist=dist_name), encoding="utf-8")
        _copy_metadata(dist_name, folder / f"{module}-{files.version}.dist-info")
    return folder


def _copy_metadata(dist_name: str, target: Path) -> None:
    """The package's own METADATA (so its version reads the same there) and licence files."""
    dist = importlib.metadata.distribution(dist_name)
    target.mkdir(parents=True, exist_ok=True)
    for entry in dist.files or []:
        text = str(entry)
        if ".dist-info/" in text and (text.endswith("/METADATA") or "/licenses/" in text or "LICENSE" in text):
            destination = target / text.split(".dist-info/", 1)[1]
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.locate_file(entry), destination)


def convert_cache(cache_dir: Path) -> list[str]:
    """Each model converted to ``cache_dir`` (a valid cache is kept); the sources ("cache" or "converted")."""
    from cnaps_demo.engines.cnn import weights

    return [weights.load_converted(weights.model_files(module, name), cache_dir).source for module, name in cnn_models()]


CHECK_CACHE = """
import json, sys
from benchmarks.gpu_prepare import cnn_models
from cnaps_demo.engines.cnn import weights
found = []
for module, name in cnn_models():
    files = weights.model_files(module, name)
    found.append({"module": module, "param": str(files.param), "version": files.version,
                  "source": weights.load_converted(files, sys.argv[1]).source})
print(json.dumps(found))
"""


def check_carried_cache(models: Path, cache_dir: Path) -> list[dict]:
    """Load every model as the GPU machine will (models-only copy first on the path): each must be a cache hit."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(models), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", CHECK_CACHE, str(cache_dir)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    wrong = [f for f in found if f["source"] != "cache" or not Path(f["param"]).resolve().is_relative_to(models.resolve())]
    if wrong:
        raise WeightCacheError(
            f"The carried CNN weights do not load from {models} as a cache hit: {wrong}.",
            hint="Delete the folder and run scripts/gpu-prepare.sh again.",
        )
    return found


def folder_size(folder: Path) -> int:
    """Bytes of every file below ``folder``."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def check_size(folder: Path, limit_mib: float = LIMIT_MIB) -> int:
    """The folder's size in bytes, or CarryTooLargeError when it is over ``limit_mib``."""
    size = folder_size(folder)
    if size > limit_mib * 2**20:
        biggest = sorted((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)[-3:]
        raise CarryTooLargeError(
            f"{folder} holds {size / 2**20:.1f} MiB, over the {limit_mib:g} MiB that may travel beside the tree "
            f"(largest: {', '.join(f'{p.name} {p.stat().st_size / 2**20:.1f} MiB' for p in reversed(biggest))}).",
            hint="Carry fewer or smaller wheels (CARRIED_WHEELS in benchmarks/gpu_prepare.py), then run it again.",
        )
    return size


def relative_to_root(folder: Path) -> str:
    folder = folder.resolve()
    return str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="the folder to build (default .gpu-carry)")
    parser.add_argument("--no-wheels", action="store_true", help="skip the wheel download (no network needed)")
    parser.add_argument("--python-version", default=GPU_PYTHON, help=f"the GPU machine's Python (default {GPU_PYTHON})")
    parser.add_argument("--limit-mib", type=float, default=LIMIT_MIB, help=f"size limit (default {LIMIT_MIB})")
    args = parser.parse_args(argv)
    dest = args.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if not args.no_wheels:
        wheels = download_wheels(dest / "wheels", args.python_version)
        print("wheels: " + ", ".join(f"{w.name} ({w.stat().st_size / 2**20:.1f} MiB)" for w in wheels))
    models = copy_models(dest / "ncnn-models")
    sources = convert_cache(dest / "cache" / "weights")
    found = check_carried_cache(models, dest / "cache" / "weights")
    print(f"CNN weights: {', '.join(f['param'].split('/models/')[-1] for f in found)} "
          f"(converted cache: {', '.join(sources)}; loads from the copy as a cache hit)")
    size = check_size(dest, args.limit_mib)
    print(f"size: {size / 2**20:.1f} MiB of at most {args.limit_mib:g} MiB "
          f"(wheels {folder_size(dest / 'wheels') / 2**20:.1f}, models {folder_size(models) / 2**20:.1f}, "
          f"cache {folder_size(dest / 'cache') / 2**20:.1f})")
    print(relative_to_root(dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
