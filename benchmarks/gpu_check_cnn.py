#!/usr/bin/env python
"""The CNN part of the GPU check (``benchmarks/gpu_check.py`` runs it): our CNN engines on CUDA
against the same models as plain eager PyTorch, and a CUDA parity check.

For each engine (Real-CUGAN se x2 conservative, Real-ESRGAN animevideov3 x2) and size (512x512
and 1920x1080 -> 2x; fp16 on CUDA, warm):

* **ours, network alone**: the engine's own network path on the whole frame, tensor in and out
  on the device (Real-CUGAN's graph on the reflect-padded frame; Real-ESRGAN's body and its
  folded tail), channels-last fp16 as the engine loads it;
* **plain**: the published architecture (Real-CUGAN's ``UpCunet2x``, Real-ESRGAN's
  ``SRVGGNetCompact`` x4 with the shipped model's bicubic halving) as a plain eager fp16
  ``nn.Module`` in NCHW, with the same weights copied in; the ratio ours / plain, and how far
  apart the two pictures are (PSNR);
* **ours, end to end**: ``cnaps_demo.upscale()`` from PIL picture to PIL picture, in a fresh
  process (``cnaps_demo.bench``'s worker, which also gives the peak GPU memory).

The parity check runs each engine on the device and the plain module in fp32 on the CPU on a
small picture; on CUDA that is the check of the CUDA path (no test in tests/ needs CUDA).
Writes its figures as JSON after each step, so a part stopped at its time budget keeps them.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench_sd_gpu  # noqa: E402  (timed runs: benchmarks/ is this script's own folder)

ENGINES = ("realesrgan-anime", "realcugan")
SIZES = ((512, 512), (1920, 1080))
SMOKE_SIZES = ((64, 64), (96, 54))  # 1920x1080 / 20: the same code path, a CPU's worth of work
PARITY_SIZE = (128, 96)
PARITY_MIN_DB = 40.0  # fp16 on the GPU against fp32 on the CPU: far above visible, far below exact
NEED_S, SMOKE_NEED_S = 15, 2  # seconds a step needs at least (a fresh worker process, warm-up, runs)


# --- the published architectures, as plain eager modules ---------------------------------------------


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact net (realesr-animevideov3), x4; the shipped x2 model halves it (bicubic)."""

    def __init__(self, feat: int = 64, convs: int = 16, upscale: int = 4, out_scale: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, feat, 3, 1, 1), nn.PReLU(feat)]
        for _ in range(convs):
            layers += [nn.Conv2d(feat, feat, 3, 1, 1), nn.PReLU(feat)]
        layers.append(nn.Conv2d(feat, 3 * upscale * upscale, 3, 1, 1))
        self.body = nn.Sequential(*layers)
        self.upscale, self.out_scale = upscale, out_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pixel_shuffle(self.body(x), self.upscale) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return F.interpolate(out, scale_factor=self.out_scale / self.upscale, mode="bicubic", align_corners=False)


class UNetConv(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, se: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, mid, 3), nn.LeakyReLU(0.1), nn.Conv2d(mid, cout, 3), nn.LeakyReLU(0.1))
        # Squeeze and excitation (the official SEBlock: 1x1 convolutions on the mean, reduction 8).
        self.se = nn.Sequential(nn.Conv2d(cout, cout // 8, 1), nn.ReLU(), nn.Conv2d(cout // 8, cout, 1)) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        return z if self.se is None else z * torch.sigmoid(self.se(z.mean(dim=(2, 3), keepdim=True)))


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


class UNet1(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv1_down = UNetConv(3, 32, 64, se=False), nn.Conv2d(64, 64, 2, 2)
        self.conv2, self.conv2_up = UNetConv(64, 128, 64, se=True), nn.ConvTranspose2d(64, 64, 2, 2)
        self.conv3, self.conv_bottom = nn.Conv2d(64, 64, 3), nn.ConvTranspose2d(64, 3, 4, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = _lrelu(self.conv2_up(self.conv2(_lrelu(self.conv1_down(x1)))))
        return self.conv_bottom(_lrelu(self.conv3(F.pad(x1, (-4, -4, -4, -4)) + x2)))


class UNet2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv1_down = UNetConv(3, 32, 64, se=False), nn.Conv2d(64, 64, 2, 2)
        self.conv2, self.conv2_down = UNetConv(64, 64, 128, se=True), nn.Conv2d(128, 128, 2, 2)
        self.conv3, self.conv3_up = UNetConv(128, 256, 128, se=True), nn.ConvTranspose2d(128, 128, 2, 2)
        self.conv4, self.conv4_up = UNetConv(128, 64, 64, se=True), nn.ConvTranspose2d(64, 64, 2, 2)
        self.conv5, self.conv_bottom = nn.Conv2d(64, 64, 3), nn.Conv2d(64, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(_lrelu(self.conv1_down(x1)))
        x3 = _lrelu(self.conv3_up(self.conv3(_lrelu(self.conv2_down(x2)))))
        x4 = _lrelu(self.conv4_up(self.conv4(F.pad(x2, (-4, -4, -4, -4)) + x3)))
        return self.conv_bottom(_lrelu(self.conv5(F.pad(x1, (-16, -16, -16, -16)) + x4)))


class UpCunet2x(nn.Module):
    """Real-CUGAN x2 as bilibili's inference code runs it: reflect pad 18 (+ alignment), two U-Nets, crop."""

    def __init__(self) -> None:
        super().__init__()
        self.unet1, self.unet2 = UNet1(), UNet2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2:]
        x = F.pad(x, (18, 18 + width % 2, 18, 18 + height % 2), "reflect")
        x = self.unet1(x)
        x = self.unet2(x) + F.pad(x, (-20, -20, -20, -20))
        return x[:, :, : 2 * height, : 2 * width]


def plain_module(engine: str, net: nn.Module) -> nn.Module:
    """The published architecture with our loaded graph's weights, layer by layer in graph order."""
    plain = SRVGGNetCompact() if engine == "realesrgan-anime" else UpCunet2x()
    theirs = [m for m in plain.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.PReLU))]
    ours = [m for m in (net.module_of(layer.name) for layer in net.layers) if m is not None]
    if len(ours) != len(theirs):
        raise ValueError(f"{engine}: {len(ours)} weighted layers in the ncnn graph, {len(theirs)} in the plain module")
    with torch.no_grad():
        for mine, other in zip(ours, theirs):
            for name in ("weight", "bias"):
                source, target = getattr(mine, name, None), getattr(other, name, None)
                if (source is None) != (target is None) or (source is not None and source.numel() != target.numel()):
                    raise ValueError(f"{engine}: {type(mine).__name__} does not fit {type(other).__name__} ({name})")
                if target is not None:
                    target.copy_(source.detach().float().reshape(target.shape))
    return plain.eval()


# --- our path -------------------------------------------------------------------------------------------


def our_network(engine: str, device: torch.device) -> tuple[Any, Callable[[np.ndarray], torch.Tensor], Callable]:
    """(loaded model, picture -> input tensor, input -> output) as the engine runs the whole frame."""
    from cnaps_demo.engines import cnn
    from cnaps_demo.engines.cnn.esrgan_tail import fold_tail
    from cnaps_demo.settings import get_settings

    cache = get_settings().cache_dir / "weights"  # CNAPS_CACHE_DIR: the carried converted weights
    # The plain module it is compared with runs in fp32 on a CPU (the smoke run), so ours does too: with
    # bf16 on an AVX512-BF16 CPU the two differed by 54.8 dB PSNR, rounding rather than a wrong network.
    same_precision = {"cpu_bf16": False}
    if engine == "realcugan":
        loaded = cnn.load_model(cnn.REALCUGAN, cnn.realcugan_model_name("se", 2, "conservative"), device,
                                weights_cache=cache, **same_precision)

        def prepare(rgb: np.ndarray) -> torch.Tensor:
            rgb = cnn.aligned_input(rgb, cnn.PREPADDING[2], cnn.ALIGN[2])
            return cnn.to_input(rgb, loaded).contiguous(memory_format=torch.channels_last)

        return loaded, prepare, loaded.net
    loaded = cnn.load_model(cnn.REALESRGAN, "realesr-animevideov3-x2", device, weights_cache=cache, **same_precision)
    tail = fold_tail(loaded.net)

    def run(x: torch.Tensor) -> torch.Tensor:
        if tail is None:
            return loaded.net(x)
        return tail(loaded.net.run(x, outputs=[tail.body])[tail.body], x)

    return loaded, lambda rgb: cnn.to_input(rgb, loaded).contiguous(memory_format=torch.channels_last), run


def picture(width: int, height: int) -> np.ndarray:
    """The benchmark's cartoon-like test picture as HxWx3 float32 in [0, 1]."""
    from cnaps_demo.bench.worker import make_image

    return np.asarray(make_image(width, height), dtype=np.float32) / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor, border: int = 8) -> float:
    """PSNR of two 1x3xHxW outputs in [0, 1] away from the border (the folded tail pads there with zeros)."""
    from cnaps_demo.fidelity import psnr_db

    height, width = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])

    def pixels(t: torch.Tensor) -> np.ndarray:
        t = t[:, :, :height, :width]
        return (t[0, :, border:-border, border:-border].float().clamp(0, 1).cpu().numpy() * 255.0).astype(np.float64)

    return psnr_db(pixels(a), pixels(b))


def compare(engine: str, size: tuple[int, int], device: torch.device, runs: int, warmup: int) -> dict[str, Any]:
    """Ours against plain eager on the whole frame, same device and precision; and how far apart."""
    from cnaps_demo.engines.cnn import autocast

    loaded, prepare, ours = our_network(engine, device)
    rgb = picture(*size)
    x_ours = prepare(rgb)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    plain = plain_module(engine, loaded.net).to(device=device, dtype=dtype)
    x_plain = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device=device, dtype=dtype)
    with torch.inference_mode():
        with autocast(loaded):
            ours_times, ours_out, ours_peak = bench_sd_gpu.timed(lambda: ours(x_ours), device, warmup, runs)
        plain_times, plain_out, plain_peak = bench_sd_gpu.timed(lambda: plain(x_plain), device, warmup, runs)
    ours_ms, plain_ms = statistics.median(ours_times) * 1000, statistics.median(plain_times) * 1000
    result = {
        "engine": engine, "size": f"{size[0]}x{size[1]}", "output": f"{2 * size[0]}x{2 * size[1]}",
        "precision": loaded.compute, "ours_ms": ours_ms, "plain_ms": plain_ms, "ratio": ours_ms / plain_ms,
        "ours_times_ms": [t * 1000 for t in ours_times], "plain_times_ms": [t * 1000 for t in plain_times],
        "ours_peak_gb": ours_peak, "plain_peak_gb": plain_peak, "psnr_ours_vs_plain_db": psnr(ours_out, plain_out),
    }
    del plain, ours_out, plain_out
    bench_sd_gpu.free(device)
    return result


def end_to_end(engine: str, size: tuple[int, int], device: torch.device, runs: int, timeout: float) -> dict[str, Any]:
    """``cnaps_demo.upscale()`` picture to picture in a fresh process (``cnaps_demo.bench``'s worker)."""
    from cnaps_demo.bench import _measure

    spec = {"engine": engine, "device": device.type, "size": list(size), "runs": runs, "warmup": 1, "kind": "ours"}
    measured = _measure(spec, max(10.0, timeout))
    if "error" in measured:
        return {"error": measured["error"]}
    return {
        "median_ms": statistics.median(measured["times"]) * 1000,
        "times_ms": [t * 1000 for t in measured["times"]],
        "network_alone_ms": statistics.median(measured["forward_times"]) * 1000 if "forward_times" in measured else None,
        "peak_gb": measured["cuda_peak"] / 2**30 if "cuda_peak" in measured else None,
        "peak_rss_gb": measured["peak_rss"] / 2**30, "tiles": measured.get("tiles"), "dtype": measured.get("dtype"),
    }


def parity(engine: str, device: torch.device) -> dict[str, Any]:
    """Ours on ``device`` against the plain module in fp32 on the CPU, on a small picture."""
    from cnaps_demo.engines.cnn import autocast

    loaded, prepare, ours = our_network(engine, device)
    rgb = picture(*PARITY_SIZE)
    plain = plain_module(engine, loaded.net)
    with torch.inference_mode():
        with autocast(loaded):
            ours_out = ours(prepare(rgb)).float().cpu()
        reference = plain(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    db = psnr(ours_out, reference)
    return {"engine": engine, "device": device.type, "precision": loaded.compute, "psnr_db": db,
            "max_abs_diff": float((ours_out - reference)[..., 8:-8, 8:-8].abs().max()), "passed": db >= PARITY_MIN_DB,
            "reference": "plain module, fp32, CPU"}


def weights_origin() -> list[dict[str, Any]]:
    """Where each model's files were found and whether the converted cache was used as it is."""
    from cnaps_demo.engines.cnn import weights
    from cnaps_demo.settings import get_settings

    from gpu_prepare import cnn_models

    found = []
    for module, name in cnn_models():
        files = weights.model_files(module, name)
        source = weights.load_converted(files, get_settings().cache_dir / "weights").source
        found.append({"model": f"{module}/{name}", "folder": str(files.param.parent), "cache": source})
    return found


def main(argv: list[str] | None = None) -> int:
    from gpu_check import Steps, environment, part_parser, use_configured_threads

    args = part_parser(__doc__, "CPU smoke: small pictures, one or two runs").parse_args(argv)
    use_configured_threads()
    sizes = SMOKE_SIZES if args.smoke else SIZES
    device = torch.device("cpu" if args.smoke else "cuda")
    runs, warmup, e2e_runs = (2, 1, 1) if args.smoke else (10, 3, 5)
    results: dict[str, Any] = {"env": environment(device), "compare": [], "end_to_end": [], "parity": []}
    steps = Steps(args.json, args.deadline, results, {}, SMOKE_NEED_S if args.smoke else NEED_S)
    results["weights"] = steps.run("weights", weights_origin) or []
    for engine in ENGINES:
        results["parity"].append(steps.run(f"parity {engine}", lambda: parity(engine, device)))
    for size in sizes:
        for engine in ENGINES:
            label = f"{engine} {size[0]}x{size[1]}"
            row = steps.run(f"{label} ours vs plain", lambda: compare(engine, size, device, runs, warmup))
            if row:
                results["compare"].append(row)
            if args.smoke and size != sizes[-1]:
                continue  # a fresh process each: in a dry run, once per engine is proof enough
            timeout = args.deadline - time.time() - 5
            row = steps.run(f"{label} upscale()", lambda: end_to_end(engine, size, device, e2e_runs, timeout))
            if row:
                results["end_to_end"].append({"engine": engine, "size": f"{size[0]}x{size[1]}", **row})
    results["parity"] = [p for p in results["parity"] if p]
    steps.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
