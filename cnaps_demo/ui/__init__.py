"""The Gradio web UI. The only part of the package that imports gradio.

from cnaps_demo.ui import build_demo, launch_kwargs
demo = build_demo(settings)
demo.launch(**launch_kwargs(settings))

Modules, one job each:

* ``layout``: ``build_demo`` and ``launch_kwargs``, the page assembled;
* ``components``: each tab's components, built and returned in a dataclass;
* ``wiring``: the events (engine picker, Upscale, example auto-run, Compare, Stop, pair picker);
* ``actions``: what an Upscale or Compare run computes, from input values to output values;
* ``sources``: the input picture (admitted, decoded, maybe made blurry);
* ``running``: one engine run, its progress and Stop, the example cache, the result folder;
* ``comparison`` and ``views``: the results side by side, and what the page shows of them;
* ``picker``: engine labels, status line, default choice, look-ups;
* ``messages``: library errors as ``gr.Error`` text fit for a web visitor;
* ``params``: controls for the engines' settings; ``untrusted``: what may arrive over the network;
* ``jobs``: Stop, cancel, disconnect, and the CPU and GPU lanes;
* ``live`` and ``diffusion_events``: the denoising filmstrip, the strength sweep and the seed map;
* ``theme``, ``gpu`` (ZeroGPU), ``server`` (the server's private folder).
"""

from __future__ import annotations

from .layout import build_demo, launch_kwargs, start_background_work

__all__ = ["build_demo", "launch_kwargs", "start_background_work"]
