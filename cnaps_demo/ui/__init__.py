"""The Gradio web UI. The only part of the package that imports gradio.

from cnaps_demo.ui import build_demo, launch_kwargs
demo = build_demo(settings)
demo.launch(**launch_kwargs(settings))

The page's run logic (requests, visitor policy, sources, runs, the result store) is in
``cnaps_demo.web``, without Gradio; here each tab's module lays its tab out and wires its events:

* ``page``: ``build_demo`` and ``launch_kwargs``, the page assembled from its tabs;
* ``upscale``: the Upscale tab (a package: its sections, its API /upscale, /upscale_gpu, /inside);
* ``compare_tab``: the Compare tab; ``explain_tab``: the "How does it work?" tab and /explain;
* ``params``: controls for the engines' settings; ``messages``: our errors as ``gr.Error`` / ``gr.Info``;
* ``jobs``: Stop, cancel, disconnect, and the CPU and GPU lanes; ``limits``, ``public_errors``: request
  limits and Gradio's own error answers in our words; ``mcp_bridge``: Gradio's MCP server fixed;
* ``theme``, ``gpu`` (ZeroGPU), ``server`` (the server's private folder).
"""

from __future__ import annotations

from .page import build_demo, launch_kwargs, start_background_work

__all__ = ["build_demo", "launch_kwargs", "start_background_work"]
