"""What a path names, asked without raising: the one place that probes user-given paths."""

from __future__ import annotations

import os
import stat


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
