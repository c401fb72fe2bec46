"""The web server's own folder: uploads and results of this process, removed when it stops."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path


def private_temp_dir(parent: Path | None) -> Path:
    """A fresh folder for Gradio's uploads and our result files, deleted at exit.

    Must run before the Blocks are built: Gradio reads ``GRADIO_TEMP_DIR`` when it creates them,
    so this sets that variable (for Gradio; nothing of ours reads it). ``parent`` is the
    operator's ``GRADIO_TEMP_DIR`` (``Settings.temp_parent``), kept as the parent.
    """
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="cnaps-demo-", dir=parent))
    os.environ["GRADIO_TEMP_DIR"] = str(root)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def stop_on_sigterm() -> None:
    """SIGTERM (a Space restarting, ``kill``) ends the server like Ctrl+C, so exit handlers run."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
