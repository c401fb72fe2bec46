"""Gradio's MCP server (``app.py --mcp``), made to work from a plain MCP client and to keep its files
in the app's private folder. The only code that touches ``gradio.mcp``'s internals.

Two things in Gradio 6.31's bridge between an MCP tool call and the Gradio endpoint behind it:

* without a progress token (most MCP clients send none) it takes ``[job.result()]`` as the
  endpoint's outputs: for an endpoint with several outputs that is one tuple, and removing the
  State output's place from it fails ("pop index out of range"), so ``upscale`` failed on every
  such call. The call now collects the outputs the way the progress path does, without notices.
* a picture an MCP client sends as a ``data:`` URL is written to ``gradio.mcp.DEFAULT_TEMP_DIR``,
  fixed when Gradio is imported (``/tmp/gradio``), outside the app's private folder, and kept
  after the server stops. It now goes to ``<private folder>/mcp``, where files older than a
  time to live go at the next call and everything goes when the server stops.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

MCP_FOLDER = "mcp"


async def outputs_of(job: Any) -> list[Any]:
    """Every output of a finished job, in the endpoint's order (what Gradio's progress path collects)."""
    output: dict[str, Any] = {}
    async for update in job:
        if getattr(update, "type", None) != "output" or not update.final:
            continue
        output = update.outputs
        if not update.success:
            title, error = output.get("title"), output.get("error")
            raise RuntimeError(": ".join(part for part in (title, error) if part) or "The tool call failed.")
    if job.exception():
        raise job.exception()
    return list(output.get("data") or [])


def prune_folder(folder: Path, max_age_s: float) -> None:
    """Remove what an earlier call left in ``folder`` once it is older than ``max_age_s``."""
    cutoff = time.time() - max_age_s
    for child in folder.iterdir() if folder.is_dir() else ():
        try:
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        except OSError:
            pass


def fix_gradio_mcp(private_root: Path, max_age_s: float) -> bool:
    """Patch Gradio's MCP bridge (see the module docstring); False where this Gradio lacks what it patches."""
    try:
        import gradio.mcp as gradio_mcp
    except ImportError:  # the mcp package is missing: app.py refuses --mcp before this
        return False
    server_class = getattr(gradio_mcp, "GradioMCPServer", None)
    prepare = getattr(server_class, "_prepare_tool_call_args", None)
    if server_class is None or prepare is None or not hasattr(server_class, "_execute_tool_without_progress"):
        return False
    folder = Path(private_root) / MCP_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    gradio_mcp.DEFAULT_TEMP_DIR = str(folder)
    original = getattr(prepare, "__wrapped__", prepare)

    def prepare_in_private_folder(self: Any, name: str, arguments: dict[str, Any]) -> Any:
        prune_folder(folder, max_age_s)  # before this call writes its own pictures there
        return original(self, name, arguments)

    async def execute_without_progress(self: Any, job: Any) -> list[Any]:
        return await outputs_of(job)

    prepare_in_private_folder.__wrapped__ = original  # type: ignore[attr-defined]
    server_class._prepare_tool_call_args = prepare_in_private_folder
    server_class._execute_tool_without_progress = execute_without_progress
    return True
