"""Start the web demo: ``python app.py [--presenter]``.

Serves on 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say otherwise
(Gradio reads them). This file only assembles and launches; the UI is in cnaps_demo/ui/.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util

try:  # Hugging Face ZeroGPU: `spaces` must be imported before anything touches CUDA.
    import spaces  # noqa: F401
except ImportError:
    pass


def main(argv: list[str] | None = None) -> None:
    from cnaps_demo.devices import yield_idle_cores
    from cnaps_demo.memory import keep_freed_memory
    from cnaps_demo.settings import get_settings

    # Before any thread starts and before torch loads: jobs run in worker threads, beside a browser.
    keep_freed_memory()
    settings = get_settings()
    yield_idle_cores(settings.omp_wait_policy)
    parser = argparse.ArgumentParser(description="cnaps-demo web UI")
    parser.add_argument(
        "--presenter",
        action="store_true",
        help="larger type and example results cached ahead (same as CNAPS_PRESENTER=1)",
    )
    parser.add_argument(
        "--mcp",
        action="store_true",
        help="also serve the upscale and explain functions as an MCP server (same as CNAPS_MCP=1)",
    )
    args = parser.parse_args(argv)

    from cnaps_demo.ui import build_demo, launch_kwargs, start_background_work
    from cnaps_demo.ui.server import private_temp_dir, stop_on_sigterm

    if (args.mcp or settings.mcp) and importlib.util.find_spec("mcp") is None:
        parser.exit(2, "app.py: --mcp needs the mcp package: pip install 'mcp>=1.21,<2' (or gradio[mcp]).\n")
    if args.presenter or args.mcp:
        settings = dataclasses.replace(settings, presenter=settings.presenter or args.presenter, mcp=settings.mcp or args.mcp)
    private_temp_dir(settings.temp_parent)  # uploads and results live there, and go when the server stops
    stop_on_sigterm()
    demo = build_demo(settings)
    demo.launch(prevent_thread_lock=True, **launch_kwargs(settings))
    start_background_work(settings)  # after the first page can be served: it must not delay it
    demo.block_thread()


if __name__ == "__main__":
    main()
