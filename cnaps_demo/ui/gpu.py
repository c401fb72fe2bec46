"""Hugging Face ZeroGPU support through the optional ``spaces`` package.

On a ZeroGPU Space, a function that needs the GPU must be decorated with
``spaces.GPU``; elsewhere the package is absent (or a no-op) and the handler is returned
unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# Long enough for Stable Diffusion img2img at 1024 px with ~30 steps on a shared GPU.
GPU_DURATION_S = 120


def on_gpu(fn: Callable[..., Any], duration: int | Callable[..., int] = GPU_DURATION_S) -> Callable[..., Any]:
    """``spaces.GPU(duration=...)(fn)`` when ``import spaces`` works, else ``fn`` itself.

    ``duration`` may be a function of ``fn``'s own arguments (ZeroGPU calls it before each job), so a
    small picture does not reserve the GPU as long as a large one."""
    try:
        import spaces
    except ImportError:
        return fn
    wrapped = spaces.GPU(duration=duration)(fn)
    functools.update_wrapper(wrapped, fn)  # keep the signature: Gradio reads parameter names from it
    return wrapped


def can_stream_frames() -> bool:
    """False on ZeroGPU: the job runs in another process, so a frame callback (and its lock) cannot
    go with it; the frames then arrive with the result instead of live."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        return True
    return False
