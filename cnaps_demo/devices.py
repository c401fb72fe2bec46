"""Device choice for torch engines: auto picks CUDA, then MPS, then CPU.

torch is imported inside functions so that importing the package stays light.
"""

from __future__ import annotations

import os
import threading

from .errors import DeviceUnavailableError, InvalidParameterError
from .settings import get_settings

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_threads_lock = threading.Lock()
_threads_set = False


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_cpu_threads(requested: int = 0) -> None:
    """Use every available core (or ``requested``) for torch on the CPU, once per process."""
    global _threads_set
    import torch

    with _threads_lock:
        if _threads_set:
            return
        torch.set_num_threads(requested or available_cores())
        _threads_set = True


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(name: str = "auto"):
    """Return a ``torch.device`` for ``name``; raise a typed error if it is not present.

    ``auto`` follows ``CNAPS_DEVICE`` when that is set, else picks CUDA, then MPS, then CPU.
    """
    import torch

    name = (name or "auto").strip().lower()
    source = "device"
    if name == "auto":  # CNAPS_DEVICE, when set, says what "auto" means on this machine
        name, source = get_settings().device or "auto", "the environment variable CNAPS_DEVICE"
    if name not in DEVICE_CHOICES:
        raise InvalidParameterError(
            f"{source}={name!r} is not one of {', '.join(DEVICE_CHOICES)}.",
            hint="Pick auto (CUDA, then MPS, then CPU), cpu, cuda or mps.",
        )
    if name == "auto":
        if cuda_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not cuda_available():
        raise DeviceUnavailableError(
            "device='cuda' was requested but torch sees no CUDA GPU.",
            hint="Use --device auto or cpu, or install a CUDA build of torch on a machine with an NVIDIA GPU.",
        )
    if name == "mps" and not mps_available():
        raise DeviceUnavailableError(
            "device='mps' was requested but Apple MPS is not available.",
            hint="Use --device auto or cpu (MPS needs Apple silicon and macOS 12.3+).",
        )
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 / AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
