"""User paths (cnaps_demo.files): what a path names, and atomic writes with normal permissions."""

from __future__ import annotations

import os
import stat

import pytest
from image_samples import gradient_rgb

from cnaps_demo import files
from cnaps_demo.files import atomic_write, path_kind
from cnaps_demo.image import save_png

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits and umask")


@pytest.fixture
def umask():
    """Set the process umask for one test (and put the old one back)."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- path_kind -----------------------------------------------------------------------


def test_path_kind(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    assert path_kind(tmp_path / "a.png") == "file"
    assert path_kind(str(tmp_path / "a.png")) == "file"
    assert path_kind(tmp_path) == "folder"
    assert path_kind(tmp_path / "nope.png") == "missing"
    assert path_kind(tmp_path / "a.png" / "under-a-file.png") == "missing"  # ENOTDIR
    assert path_kind(tmp_path / ("x" * 5000)) == "invalid"  # ENAMETOOLONG
    assert path_kind("bad\x00name.png") == "invalid"


@posix_only
def test_path_kind_other(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert path_kind(fifo) == "other"


# --- atomic_write ----------------------------------------------------------------------


def test_atomic_write_creates_parents_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    result = atomic_write(target, b"hello")
    assert result == target
    assert target.read_bytes() == b"hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]
    assert atomic_write(str(target), bytearray(b"again")) == target  # str paths, bytes-like data
    assert target.read_bytes() == b"again"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_atomic_write_failure_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_handles_names_near_the_length_limit(tmp_path):
    target = tmp_path / ("n" * 250 + ".png")  # a valid name; a ".<name>.<random>.tmp" would not be
    assert atomic_write(target, b"x").read_bytes() == b"x"


@posix_only
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_atomic_write_gives_normal_permissions(tmp_path, umask, mask, expected):
    # The reported bug: files came out -rw------- (tempfile.mkstemp's 0600), whatever the umask.
    umask(mask)
    new = atomic_write(tmp_path / "new.bin", b"x")
    assert mode_of(new) == expected
    replaced = tmp_path / "old.bin"
    replaced.write_bytes(b"old")
    os.chmod(replaced, 0o600)
    atomic_write(replaced, b"new")  # a rewrite is a new file: the umask decides, as for a fresh one
    assert mode_of(replaced) == expected


@posix_only
def test_saved_pngs_get_normal_permissions(tmp_path, umask):
    umask(0o022)
    target = save_png(gradient_rgb(), tmp_path / "cli" / "out.png", {"k": "v"})
    assert mode_of(target) == 0o644  # -rw-r--r--, like any file the user's tools write
