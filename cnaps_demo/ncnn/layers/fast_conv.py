"""The fast fp32 CPU path for 3x3 stride-1 convolutions: NNPACK's Winograd F(6x6, 3x3), in bands.

PyTorch's own fp32 CPU convolution (oneDNN) is a direct convolution: 9 multiply-adds per
input channel and output pixel. Winograd F(6x6, 3x3) computes each 6x6 output block from an
8x8 input block with 64 element-wise products per channel pair instead of 324, so the big
3x3 layers of Real-CUGAN and Real-ESRGAN need about a fifth of the multiplications. ncnn's
x86 engine wins over direct PyTorch with exactly this; NNPACK (built into the official
PyTorch CPU wheels, AVX2 kernels) has it too, as ``torch._nnpack_spatial_convolution``.

Measured on a 2-core AMD EPYC (AVX2, no AVX-512), one core: 64->64 channels at 512x512 takes
0.31 s direct and 0.16 s here; 128->256 at 128x128, 0.12 s direct and 0.05 s here.

Why bands: NNPACK on a whole 512x512x64 map is only 1.3x faster than direct; on horizontal
bands of about 8 MB of input (each with its 2 halo rows) the working set stays in cache and it
is 2x faster. The fused activation runs on each band while it is still in cache, and the band
is written straight into the layer's output.

Not used for tiny channel counts (the RGB input and output layers, where Winograd's transforms
cost more than they save), for bf16/fp16 or autocast, or off the CPU.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from typing import Callable

# Which CPU convolution runs 3x3 stride-1 fp32 layers: "winograd" (this module) or "direct"
# (oneDNN). Set for the duration of a network run by NcnnNet.run from the net's choice.
ALGORITHMS = ("winograd", "direct")
current_algorithm: contextvars.ContextVar[str] = contextvars.ContextVar("cnaps_cpu_conv", default="direct")

MIN_CHANNELS = 16  # below this on either side, direct convolution is faster (measured: 3->64 3x slower)
BAND_BYTES = 8 << 20  # input bytes per band: the measured sweet spot (4-16 MB) on a 1 MB L2 / 32 MB L3


@functools.lru_cache(maxsize=1)
def nnpack_ready() -> bool:
    """True when this PyTorch build has NNPACK and it initialises on this CPU (it needs AVX2).

    The call also initialises NNPACK: without it every NNPACK convolution fails. NNPACK runs
    on its own thread pool, sized from ``torch.get_num_threads()`` at its first convolution.
    (Calls from several Python threads are serialised inside PyTorch, so bands run one after
    another and each uses the whole pool.)
    """
    import torch

    try:
        if not torch._nnpack_available():
            return False
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # NNPACK's pool gets one thread (see above)
        try:
            probe = torch.ones(1, MIN_CHANNELS, 3, 3)
            torch._nnpack_spatial_convolution(probe, torch.ones(MIN_CHANNELS, MIN_CHANNELS, 3, 3), None, [0, 0], [1, 1])
        finally:
            torch.set_num_threads(threads)
        return True
    except (AttributeError, RuntimeError):
        return False


def eligible(weight_shape: tuple[int, ...], stride: tuple[int, int], dilation: tuple[int, int], groups: int) -> bool:
    """Can (and should) this convolution take the Winograd path, by its shape alone?"""
    out_ch, in_ch, kh, kw = weight_shape
    return (
        (kh, kw) == (3, 3)
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and min(out_ch, in_ch) >= MIN_CHANNELS
    )


def use_winograd(x) -> bool:
    """Should this call take the Winograd path: fp32 CPU tensors, no autocast, chosen, available."""
    import torch

    return (
        current_algorithm.get() == "winograd"
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and not torch.is_autocast_enabled("cpu")
        and nnpack_ready()
    )


def to_nchw(x):
    """``x.contiguous()``, 3x faster for a channels_last map: each image is one 2-D transpose,
    which torch copies in cache-sized blocks (a 4-D permuted copy goes element by element)."""
    import torch

    if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous()
    n, c, h, w = x.shape
    out = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device)
    for i in range(n):
        out[i].view(c, h * w).copy_(x[i].permute(1, 2, 0).reshape(h * w, c).t())
    return out


def band_rows(in_channels: int, width: int, out_rows: int) -> int:
    """Output rows per band: about BAND_BYTES of fp32 input, a multiple of 6 (NNPACK's 6x6 output tiles)."""
    rows = BAND_BYTES // max(1, in_channels * width * 4)
    return min(max(6, rows - rows % 6), out_rows)


def winograd_conv3x3(
    x,
    weight,
    bias,
    pads: tuple[int, int, int, int],
    activation: Callable | None = None,
    rows: int = 0,
    helper_weight=None,
):
    """``activation(conv2d(pad(x, pads), weight, bias))`` for a 3x3 stride-1 kernel, band by band.

    ``x`` is N x C x H x W fp32 on the CPU (any memory format); ``weight`` O x C x 3 x 3 in NCHW
    order; ``pads`` is (left, right, top, bottom) zero padding as F.pad takes it. ``activation``
    must work in place on a band. ``rows`` overrides the band height (tests use 1).
    ``helper_weight`` (the weight in channels_last order) lets a second thread run oneDNN's
    direct convolution on bands from the bottom while NNPACK takes them from the top. Returns an
    N x O x H' x W' contiguous (NCHW) tensor.
    """
    import torch
    import torch.nn.functional as F

    left, right, top, bottom = pads
    n, channels, height, width = x.shape
    out_h, out_w = height + top + bottom - 2, width + left + right - 2
    if out_h < 1 or out_w < 1:
        raise ValueError(f"3x3 convolution of a {height}x{width} map padded by {pads} has no output")
    # NNPACK works in NCHW, and so does the output: a chain of these layers then needs no
    # layout changes (only a channels_last input is transposed, band by band, in cache).
    out = torch.empty((n, weight.shape[0], out_h, out_w), dtype=x.dtype)
    # NNPACK pads both sides alike: symmetric column padding goes to it, anything else to F.pad.
    side = left if left == right else 0
    col_pad = (0, 0) if left == right else (left, right)
    rows = rows or band_rows(channels, width + left + right, out_h)
    starts = list(range(0, out_h, rows))

    def band(r0: int, direct) -> None:
        r1 = min(out_h, r0 + rows)
        # Input rows r0 - top .. r1 + 2 - top of the unpadded map; rows outside it are zeros.
        lo, hi = r0 - top, r1 + 2 - top
        piece = x[:, :, max(0, lo) : min(height, hi)]
        missing_top, missing_bottom = max(0, -lo), max(0, hi - height)
        if direct is not None:
            if missing_top or missing_bottom or col_pad != (0, 0):
                piece = F.pad(piece, (*col_pad, missing_top, missing_bottom))
            result = F.conv2d(piece, direct, bias, padding=(0, side))
        else:
            piece = to_nchw(piece)
            if missing_top or missing_bottom or col_pad != (0, 0):
                piece = F.pad(piece, (*col_pad, missing_top, missing_bottom))
            result = torch._nnpack_spatial_convolution(piece, weight, bias, [0, side], [1, 1])
        if activation is not None:
            result = activation(result)
        out[:, :, r0:r1] = result

    _share_bands(starts, band, helper_weight)
    return out


def _share_bands(starts: list[int], band: Callable, helper_weight) -> None:
    """Run ``band(r0, None)`` (NNPACK) from the top on this thread and, with a helper weight and
    more than one core, ``band(r0, helper_weight)`` (oneDNN, one core) from the bottom on a
    second thread, until they meet.

    PyTorch serialises NNPACK calls and NNPACK's own pool spins, so NNPACK gets one core; the
    other core does direct convolution meanwhile instead of idling.
    """
    import torch

    if helper_weight is None or len(starts) < 2 or torch.get_num_threads() < 2:
        for r0 in starts:
            band(r0, None)
        return
    lock = threading.Lock()
    queue = list(starts)
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def take(front: bool):
        with lock:
            return (queue.pop(0) if front else queue.pop()) if queue else None

    def helper() -> None:
        # Grad and inference mode are per thread: take the caller's. One OpenMP thread here.
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            _one_omp_thread()
            while (r0 := take(False)) is not None:
                band(r0, helper_weight)

    future = _helper_pool().submit(helper)
    try:
        while (r0 := take(True)) is not None:
            band(r0, None)
    finally:
        future.result()


_pool: list = []
_pool_lock = threading.Lock()


def _helper_pool():
    from concurrent.futures import ThreadPoolExecutor

    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnaps-conv-helper"))
        return _pool[0]


def _one_omp_thread() -> None:
    """This thread's OpenMP team size to 1 (the ICV is per thread: the caller keeps its own)."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
