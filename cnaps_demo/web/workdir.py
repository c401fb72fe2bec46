"""The folder of every file the page shows or offers, one fresh folder per run."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path


class Workdir:
    """Per-app folder for every file the page shows or offers; folders older than ``max_age`` go.

    It lives inside Gradio's cache folder, so Gradio serves these files as they are instead of
    copying them (Gradio names its copies by content and rewrites them in place, which corrupts a
    download of one identical result while another job writes it). Each run gets a fresh folder
    and each file is written once, before its path is handed out.
    """

    def __init__(self, root: Path, max_age: float = 3600.0) -> None:
        self.root = Path(root)
        self.max_age = max_age
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run_dir(self) -> Path:
        self.prune()
        # Its birth time is in its name: a file written into it later (a moved crop window) must not
        # make an old folder look new, or a folder clicked on forever would never go.
        path = self.root / f"{int(time.time())}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def prune(self) -> None:
        cutoff = time.time() - self.max_age
        for child in self.root.iterdir():
            try:
                born, _, _ = child.name.partition("-")
                when = int(born) if born.isdigit() else child.stat().st_mtime
                if child.is_dir() and when < cutoff:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                pass
