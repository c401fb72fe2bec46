"""Loaded CNN models: one torch module per (model file, device, precision), built once and kept.

Also the tensor conversions every CNN engine shares. torch is imported inside functions, so
importing the engines stays light.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...devices import cpu_supports_bf16
from ...memory import keep_freed_memory
from . import weights


@dataclass
class LoadedModel:
    net: Any  # cnaps_demo.ncnn net (a torch module)
    device: Any  # torch.device
    dtype: Any  # torch.dtype the weights are stored in
    compute: str  # "float32" | "bfloat16" | "float16"
    autocast: bool
    pool_blobs: list[str]
    name: str
    # How the convolutions run, for the stage detail and the benchmark: e.g. "winograd (NNPACK)".
    conv: str = "direct (oneDNN)"


_models: dict[tuple[str, str, str, str, str], LoadedModel] = {}
_models_lock = threading.Lock()


def precision(device, cpu_bf16: bool, float32: bool = False) -> tuple[str, bool]:
    """(compute dtype name, autocast?) for a device: CUDA fp16, CPU bf16 autocast where native, else fp32;
    ``float32`` forces fp32 everywhere (gradients, exact comparisons)."""
    import torch

    if float32:
        return "float32", False
    if device.type == "cuda":
        return "float16", False
    if device.type == "cpu" and cpu_bf16:
        mkldnn_ok = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)()
        if cpu_supports_bf16() and mkldnn_ok:
            return "bfloat16", True
    return "float32", False


CPU_CONV_CHOICES = ("auto", "winograd", "direct")


def cpu_conv_algorithm(device, compute: str, cpu_conv: str = "auto") -> str:
    """How fp32 3x3 convolutions run: "winograd" (NNPACK, in bands) where asked on an fp32 CPU
    run with NNPACK present, else "direct" (oneDNN, PyTorch's default).

    "auto" is "direct" for now: on the 2-core AVX2 EPYC it was measured on, Winograd halves each
    layer's CPU time on one core, but NNPACK does not scale to the second core (PyTorch
    serialises its calls; its own pool spins), so whole-model wall time did not beat oneDNN.
    """
    from ...ncnn.layers import fast_conv

    if device.type != "cpu" or compute != "float32" or cpu_conv != "winograd":
        return "direct"
    return "winograd" if fast_conv.nnpack_ready() else "direct"


def conv_label(device, compute: str, algorithm: str) -> str:
    if device.type != "cpu":
        return f"{device.type} ({compute})"
    if algorithm == "winograd":
        return "winograd F(6x6,3x3) in bands (NNPACK) + oneDNN for the rest"
    return "direct (oneDNN)" + (", bf16 autocast" if compute == "bfloat16" else "")


def load_model(
    module: str,
    name: str,
    device,
    *,
    cpu_bf16: bool = True,
    weights_cache=None,
    cpu_conv: str = "auto",
    float32: bool = False,
) -> LoadedModel:
    """Load (once per file, device, precision and convolution algorithm) the torch module for an ncnn model.
    ``float32``: fp32 on every device (CUDA included), for gradients and exact comparisons."""
    import torch

    from ...ncnn import build_module, parse_param

    compute, use_autocast = precision(device, cpu_bf16, float32)
    algorithm = cpu_conv_algorithm(device, compute, cpu_conv)
    key = (module, name, str(device), compute, algorithm)
    with _models_lock:
        cached = _models.get(key)
        if cached is not None:
            return cached
        converted = weights.load_converted(weights.model_files(module, name), weights_cache)
        net = build_module(parse_param(converted.param_text), converted.tensors).eval()
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        dtype = torch.float16 if compute == "float16" else torch.float32
        net = net.to(device=device, dtype=dtype, memory_format=torch.channels_last)
        net.cpu_conv = algorithm
        if device.type == "cpu":
            keep_freed_memory()
        label = conv_label(device, compute, algorithm)
        loaded = LoadedModel(net, device, dtype, compute, use_autocast, list(net.pool_blobs), name, label)
        _models[key] = loaded
        return loaded


def autocast(loaded: LoadedModel):
    """bf16 autocast where the model was loaded for it, else nothing."""
    import torch

    if loaded.autocast:
        return torch.autocast(device_type=loaded.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_input(array: np.ndarray, loaded: LoadedModel):
    """HxWx3 float32 -> 1x3xHxW tensor on the model's device (no copy on the CPU)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(device=loaded.device, dtype=loaded.dtype)


def to_array(tensor) -> np.ndarray:
    """1x3xHxW tensor -> HxWx3 float32 numpy array."""
    return tensor[0].permute(1, 2, 0).float().cpu().numpy()


def reflect_pad(array: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect padding as the C++ engines do it (edge padding where the image is too small to reflect)."""
    mode = "reflect" if min(array.shape[:2]) > max(top, bottom, left, right) else "edge"
    return np.pad(array, ((top, bottom), (left, right), (0, 0)), mode=mode)
