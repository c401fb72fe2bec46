"""The Gradio web UI. The only part of the package that imports gradio.

from cnaps_demo.ui import build_demo, launch_kwargs
demo = build_demo(settings)
demo.launch(**launch_kwargs(settings))
"""

from __future__ import annotations

from .layout import build_demo, launch_kwargs

__all__ = ["build_demo", "launch_kwargs"]
