"""Device choice for torch engines, decided here only: auto picks CUDA, then MPS, then CPU.

torch is imported inside functions so that importing the package stays light.
"""

from __future__ import annotations

import os
import sys
import threading

from .errors import DeviceUnavailableError, InvalidParameterError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_threads_lock = threading.Lock()
_threads_set = False


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def yield_idle_cores(omp_wait_policy: str = "") -> bool:
    """Have OpenMP's idle threads sleep at once instead of spinning (``OMP_WAIT_POLICY=PASSIVE``),
    unless the operator set a policy (``Settings.omp_wait_policy``). Call before torch is imported;
    True if applied.

    For the web server: a browser or the server's own threads share the 2 cores with a job, and an
    OpenMP thread that spins at a barrier takes the core the late thread needs. Measured on the
    2-core AVX2 machine with Chromium on the page: a 600x600 Real-ESRGAN job 5.2 s spinning, 4.4 s
    passive (the same 4.3 s as without a browser).
    """
    if "torch" in sys.modules or omp_wait_policy:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def cpu_thread_count(requested: int = 0) -> int:
    """How many CPU threads a job uses: ``requested`` (``Settings.cpu_threads``), else every available core."""
    return requested or available_cores()


def configure_cpu_threads(requested: int = 0) -> None:
    """Use every available core (or ``requested``) for torch on the CPU, once per process."""
    global _threads_set
    import torch

    with _threads_lock:
        if _threads_set:
            return
        torch.set_num_threads(cpu_thread_count(requested))
        _threads_set = True


def _no_nvidia_driver() -> bool:
    """True when this is surely a machine without CUDA, known without importing torch (seconds on a
    small CPU, and the first page should not wait for it): Linux with no NVIDIA kernel driver, and
    neither torch nor ZeroGPU's ``spaces`` (which provides CUDA later, to the job) loaded."""
    if sys.platform != "linux" or "torch" in sys.modules or "spaces" in sys.modules:
        return False
    return not any(os.path.exists(path) for path in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg"))


def cuda_available() -> bool:
    if _no_nvidia_driver():
        return False
    import torch

    return torch.cuda.is_available()


def mps_available() -> bool:
    if sys.platform != "darwin":
        return False
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def choose_device(
    requested: str = "auto",
    *,
    configured: str = "auto",
    gpu_only: bool = False,
    allow_cpu: bool = False,
    cpu_refusal: str = "",
    probe: bool = True,
) -> tuple[str, str]:
    """The one device decision: ``(name, problem)``, name one of cpu, cuda, mps.

    ``auto`` follows ``configured`` (``Settings.device``, from CNAPS_DEVICE) when that is not
    auto, else picks CUDA, then MPS, then the CPU. An engine with ``gpu_only`` never falls back
    to the CPU by itself (``cpu_refusal`` says why) unless ``allow_cpu``; asking for ``cpu``
    explicitly always works. ``problem`` is "" when the device is usable. A name outside
    :data:`DEVICE_CHOICES` raises at once: it is a bad setting, not a missing device.
    ``probe=False`` is for callers that want only the problem: an ``auto`` that can always fall
    back to the CPU is then not looked into (that would import torch) and names "cpu".
    """
    name = (requested or "auto").strip().lower()
    source = "device"
    if name == "auto":
        name, source = (configured or "auto").strip().lower(), "the environment variable CNAPS_DEVICE"
    if name not in DEVICE_CHOICES:
        raise InvalidParameterError(
            f"{source}={name!r} is not one of {', '.join(DEVICE_CHOICES)}.",
            hint="Pick auto (CUDA, then MPS, then CPU), cpu, cuda or mps.",
        )
    if name == "cuda" and not cuda_available():
        return name, (
            "device='cuda' was requested but torch sees no CUDA GPU. Use --device auto or cpu, or install a "
            "CUDA build of torch on a machine with an NVIDIA GPU."
        )
    if name == "mps" and not mps_available():
        return name, "device='mps' was requested but Apple MPS is not available (it needs Apple silicon, macOS 12.3+)."
    if name != "auto":
        return name, ""
    if not probe and not gpu_only:
        return "cpu", ""
    if cuda_available():
        return "cuda", ""
    if mps_available():
        return "mps", ""
    if gpu_only and not allow_cpu:
        return "cpu", cpu_refusal or "This engine needs a GPU."
    return "cpu", ""


def resolve_device(requested: str = "auto", *, configured: str = "auto"):
    """``torch.device`` for a request, or ``DeviceUnavailableError`` with the fix (scripts, benchmarks)."""
    name, problem = choose_device(requested, configured=configured)
    if problem:
        raise DeviceUnavailableError(problem)
    return torch_device(name)


def torch_device(name: str, cpu_threads: int = 0):
    """``torch.device(name)`` for a name ``choose_device`` returned; on the CPU, use the cores once."""
    import torch

    if name == "cpu":
        configure_cpu_threads(cpu_threads)
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 / AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
