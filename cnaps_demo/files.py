"""The one place that touches user-given paths: ask what a path names, write a file atomically."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

__all__ = ["atomic_write", "path_kind", "require_empty_folder"]

# Longest part of the target's name kept in the temporary name, so ".<name>.<random>.tmp"
# stays within the usual 255-byte file name limit even when the target's name is near it.
_TEMP_NAME_PART = 100


def path_kind(path: str | os.PathLike[str]) -> str:
    """"file", "folder", "missing", "other" or "invalid" (a name the OS refuses: too long, NUL)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    except PermissionError:
        return "file"  # opening it then says "could not be read (Permission denied)"
    except (OSError, ValueError):  # ENAMETOOLONG, ELOOP, embedded NUL
        return "invalid"
    if stat.S_ISREG(mode):
        return "file"
    return "folder" if stat.S_ISDIR(mode) else "other"


def require_empty_folder(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Refuse (``OutputExistsError``) a folder for new outputs that already holds something, unless
    ``overwrite``: a second run must not silently replace the first one's results."""
    from .errors import OutputExistsError

    kind = path_kind(path)
    if kind == "missing" or overwrite and kind == "folder":
        return
    if kind == "folder" and not any(Path(path).iterdir()):
        return
    what = "a folder that is not empty" if kind == "folder" else "not a folder"
    raise OutputExistsError(
        f"{os.fspath(path)} is {what}.",
        hint="Pass --overwrite to write into it anyway, or choose another folder with -o."
        if kind == "folder"
        else "Choose a folder with -o.",
    )


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    Parent folders are created. The bytes go to a temporary file in the same folder (so the
    rename cannot cross file systems), are flushed to disk, and replace ``path`` in one
    ``os.replace``. The file gets the user's normal permissions (0o666 minus the umask), as
    ``open(path, "wb")`` would give; the temporary file is removed if anything fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _create_temp(target: Path) -> tuple[int, str]:
    """Create a new, unique temporary file next to ``target``; returns (fd, path).

    Not ``tempfile.mkstemp``: it creates files as 0600, and ``os.replace`` keeps that mode, so
    outputs became readable by their owner only. ``os.open(..., 0o666)`` lets the kernel apply
    the umask (and any default ACL), without ``os.umask`` calls that would race other threads.
    O_EXCL refuses an existing name, including a planted symlink.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    prefix = f".{target.name[:_TEMP_NAME_PART]}."
    for _ in range(100):
        tmp = str(target.parent / f"{prefix}{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue  # astronomically unlikely with 64 random bits; try another name
    raise FileExistsError(f"could not create a temporary file next to {target}")
