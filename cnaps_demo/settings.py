"""Every setting, read from environment variables, in one place: the only module that reads them.

``get_settings()`` reads the environment on each call (cheap), so tests and the CLI can
change variables without import-order tricks. The ``Settings`` it returns is handed down
explicitly (``api.prepare`` turns it into ``RunOptions``); engines, the model stores and the
image contract never read the environment themselves. Nothing here imports torch or gradio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidParameterError


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError(
            f"Environment variable {name}={raw!r} is not an integer.",
            hint=f"Set it to a whole number >= {minimum}, or unset it to use {default}.",
        ) from None
    if value < minimum:
        raise InvalidParameterError(
            f"Environment variable {name}={value} is below {minimum}.",
            hint=f"Set it to a whole number >= {minimum}, or unset it to use {default}.",
        )
    return value


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def parse_bool(text: str) -> bool:
    """The one reading of a yes/no word, for variables and parameters alike: 1/true/yes/on."""
    return text.strip().lower() in TRUE_WORDS


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return parse_bool(raw)


def _env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise InvalidParameterError(
            f"Environment variable {name}={raw!r} is not one of {', '.join(choices)}.",
            hint=f"Set it to one of {', '.join(choices)}, or unset it to use {default}.",
        )
    return raw


def _env_list(name: str) -> tuple[str, ...]:
    """Comma-separated values, blanks dropped."""
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``: the base of both caches below."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg).expanduser() if xdg else Path.home() / ".cache"


def _first_path(*names: str) -> Path | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return Path(value).expanduser()
    return None


def default_cache_dir() -> Path:
    """``$CNAPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnaps-demo``, else ``~/.cache/cnaps-demo``."""
    return _first_path("CNAPS_CACHE_DIR") or _user_cache() / "cnaps-demo"


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache, found the way huggingface_hub finds it."""
    home = _first_path("HF_HOME")
    return _first_path("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE") or (
        home / "hub" if home else _user_cache() / "huggingface" / "hub"
    )


@dataclass(frozen=True)
class Settings:
    # Pixel limit for inputs, checked from the header before decoding.
    max_input_pixels: int
    # Lower limit applied by the web UI (a shared Space must stay responsive).
    ui_max_input_pixels: int
    cache_dir: Path
    device: str  # auto | cpu | cuda | mps
    tile: int  # 0 = engine default
    cpu_threads: int  # 0 = all available cores
    cpu_bf16: bool  # bf16 autocast for CNNs on CPUs that support it
    cpu_conv: str  # fp32 CPU 3x3 convolutions: auto | winograd | direct (CNAPS_CPU_CONV)
    omp_wait_policy: str  # OMP_WAIT_POLICY as the environment gives it ("" unset: the web server sets PASSIVE)
    sd_model: str
    sd_controlnet: str  # the ControlNet sd-img2img runs beside its UNet ("none": plain img2img)
    allow_cpu_diffusion: bool
    torch_compile: bool
    presenter: bool
    mcp: bool  # also serve /upscale and the explanation as MCP tools (CNAPS_MCP, app.py --mcp)
    queue_size: int  # jobs waiting for the CPU lane before "busy, try again"
    gpu_queue_size: int  # the same for the GPU lane (its own queue: CPU traffic never fills it)
    cpu_concurrency: int
    # On a CPU-only server, an upload of at least this many pixels switches the page from its default
    # realcugan to the faster realesrgan-anime, unless the visitor picked an engine (0: never).
    large_picture_pixels: int
    max_upload_mb: int  # largest upload the web server accepts (bigger ones get HTTP 413)
    # What one client may send: files per upload request, and bytes per time window (uploads, pasted
    # pictures and every other request body together; beyond it, HTTP 429 until the window moves on).
    max_upload_files: int
    upload_quota_mb: int
    upload_window_s: int
    # The page's follow-ups (crop picker, pair picker) keep each browser session's last run for this
    # long, in a store of at most this many MB for all sessions together (the oldest runs go first).
    result_ttl_s: int
    result_store_mb: int
    session_capacity: int  # browser/API sessions whose Gradio state is kept (the oldest are dropped)
    web_models: tuple[str, ...]  # extra `model` values web visitors may pick (Hub ids or folders)
    hub_cache: Path  # the Hugging Face cache (HF_HUB_CACHE, HF_HOME, ...)
    hub_offline: bool  # HF_HUB_OFFLINE: the Hub may not be contacted
    hub_endpoint: str | None  # HF_ENDPOINT: the Hub's address (None: huggingface.co)
    allow_downloads: bool  # CNAPS_ALLOW_DOWNLOADS=0: this server never fetches weights (preload them)
    temp_parent: Path | None  # GRADIO_TEMP_DIR as given: where the server's private temp folder goes


def get_settings() -> Settings:
    return Settings(
        max_input_pixels=_env_int("CNAPS_MAX_PIXELS", 4096 * 4096, minimum=1),
        ui_max_input_pixels=_env_int("CNAPS_UI_MAX_PIXELS", 2048 * 2048, minimum=1),
        cache_dir=default_cache_dir(),
        device=os.environ.get("CNAPS_DEVICE", "auto").strip().lower() or "auto",
        tile=_env_int("CNAPS_TILE", 0),
        cpu_threads=_env_int("CNAPS_CPU_THREADS", 0),
        cpu_bf16=_env_bool("CNAPS_CPU_BF16", True),
        cpu_conv=_env_choice("CNAPS_CPU_CONV", ("auto", "winograd", "direct"), "auto"),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "").strip(),
        sd_model=os.environ.get("CNAPS_SD_MODEL", "Lykon/dreamshaper-8"),
        sd_controlnet=os.environ.get("CNAPS_SD_CONTROLNET", "lllyasviel/control_v11f1e_sd15_tile"),
        allow_cpu_diffusion=_env_bool("CNAPS_ALLOW_CPU_DIFFUSION", False),
        torch_compile=_env_bool("CNAPS_TORCH_COMPILE", False),
        presenter=_env_bool("CNAPS_PRESENTER", False),
        mcp=_env_bool("CNAPS_MCP", False),
        queue_size=_env_int("CNAPS_QUEUE_SIZE", 16, minimum=1),
        gpu_queue_size=_env_int("CNAPS_GPU_QUEUE_SIZE", 4, minimum=1),
        cpu_concurrency=_env_int("CNAPS_CPU_CONCURRENCY", 1, minimum=1),
        large_picture_pixels=_env_int("CNAPS_LARGE_PICTURE_PIXELS", 300_000),
        max_upload_mb=_env_int("CNAPS_MAX_UPLOAD_MB", 25, minimum=1),
        max_upload_files=_env_int("CNAPS_MAX_UPLOAD_FILES", 1, minimum=1),
        upload_quota_mb=_env_int("CNAPS_UPLOAD_QUOTA_MB", 100, minimum=1),
        upload_window_s=_env_int("CNAPS_UPLOAD_WINDOW_S", 600, minimum=1),
        result_ttl_s=_env_int("CNAPS_RESULT_TTL_S", 1800, minimum=1),
        result_store_mb=_env_int("CNAPS_RESULT_STORE_MB", 1024, minimum=1),
        session_capacity=_env_int("CNAPS_SESSION_CAPACITY", 1000, minimum=1),
        web_models=_env_list("CNAPS_WEB_MODELS"),
        hub_cache=hub_cache_dir(),
        hub_offline=_env_bool("HF_HUB_OFFLINE", False),
        hub_endpoint=os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None,
        allow_downloads=_env_bool("CNAPS_ALLOW_DOWNLOADS", True),
        temp_parent=_first_path("GRADIO_TEMP_DIR"),
    )
