#!/usr/bin/env python
"""GPU benchmark of the diffusion engines, with full-size random weights (same compute as the real models).

Builds the SD 1.5 architecture (UNet, VAE, CLIP text encoder) and the x2 latent upscaler's
UNet from the configs in ``cnaps_demo/configs/sd15`` with random weights, saves them as fp16
diffusers folders, and runs the engines through their real loading code. Nothing is
downloaded (the tokenizer is a small character-level CLIP vocabulary; prompts still pad to 77
tokens, so the text encoder does the real model's work).

Jobs, warm (after warm-up runs), median of ``--runs``:

* ``sd-img2img`` 512 x 512 -> 1024 x 1024, strength 0.4, 25 steps (10 UNet steps), CFG 6.0,
  Lanczos pre-enlarge (Real-CUGAN needs its own weights; ``--pre-upscaler realcugan`` to include it);
* the same job with plain diffusers defaults (``StableDiffusionImg2ImgPipeline`` in fp16 with
  its default SDPA attention, no compile, same scheduler) as the anchor, and the ratio;
* ``sd-latent-x2`` 512 -> 1024 at 20 steps (and its plain diffusers anchor).

Targets on an H100: sd-img2img <= 0.35 s end to end, <= 0.6x plain, peak VRAM <= 6 GB.

Usage::

    python benchmarks/bench_sd_gpu.py                    # CUDA
    python benchmarks/bench_sd_gpu.py --compile          # also with torch.compile (CNAPS_TORCH_COMPILE=1)
    python benchmarks/bench_sd_gpu.py --device cpu --tiny  # smoke test anywhere: tiny models, 1 run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tiny_sd: tokenizer writer and tiny models

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

PROMPT = "anime illustration, clean line art, sharp details, high quality"
NEGATIVE = "blurry, lowres, jpeg artifacts, noise, watermark, text"
TARGET_SECONDS, TARGET_RATIO, TARGET_VRAM_GB = 0.35, 0.6, 6.0


# --- models -------------------------------------------------------------------------------------


def build_full_sd15(folder: Path, device: Any) -> Path:
    """Full-size SD 1.5 img2img folder with random fp16 weights (initialised on ``device``: fast)."""
    import tiny_sd
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from cnaps_demo.engines.diffusion.hub import CONFIG_DIR

    target = folder / "sd15-random"
    if (target / "model_index.json").is_file():
        return target
    tokenizer = tiny_sd.tiny_tokenizer(folder / "_tokenizer")
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIG_DIR, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(CONFIG_DIR, subfolder="vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(CONFIG_DIR, subfolder="text_encoder"))
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler.from_pretrained(CONFIG_DIR, subfolder="scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16)
    pipe.save_pretrained(target, safe_serialization=True, variant="fp16")
    del pipe, unet, vae, text_encoder
    return target


def build_full_latent(folder: Path, device: Any) -> Path:
    """Full-size x2 latent upscaler folder (k-diffusion UNet from our config, SD 1.5 VAE/CLIP), random fp16."""
    import tiny_sd
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionLatentUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from cnaps_demo.engines.diffusion.hub import CONFIG_DIR, LATENT_UPSCALER_CONFIG_DIR

    target = folder / "latent-x2-random"
    if (target / "model_index.json").is_file():
        return target
    tokenizer = tiny_sd.tiny_tokenizer(folder / "_tokenizer")
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(LATENT_UPSCALER_CONFIG_DIR, subfolder="unet")
        )
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(CONFIG_DIR, subfolder="vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(CONFIG_DIR, subfolder="text_encoder"))
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_pretrained(LATENT_UPSCALER_CONFIG_DIR, subfolder="scheduler"),
    )
    pipe.to(torch.float16)
    pipe.save_pretrained(target, safe_serialization=True, variant="fp16")
    del pipe, unet, vae, text_encoder
    return target


# --- timing -----------------------------------------------------------------------------------------


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(job: Callable[[], Any], device: Any, warmup: int, runs: int) -> tuple[list[float], Any, float | None]:
    """(seconds per timed run, last result, peak GB allocated during the timed runs)."""
    import torch

    result = None
    for _ in range(warmup):
        result = job()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(runs):
        sync(device)
        started = time.perf_counter()
        result = job()
        sync(device)
        times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return times, result, peak


def free(device: Any) -> None:
    from cnaps_demo.engines.diffusion import release_pipelines

    release_pipelines()
    gc.collect()
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def unet_rate(stages: list[Any]) -> tuple[float | None, int | None]:
    unet = next((s for s in stages if s.name.startswith("UNet")), None)
    if unet is None or unet.seconds <= 0:
        return None, None
    steps = int(unet.detail.get("steps", 0)) * int(unet.detail.get("tiles", 1))
    return steps / unet.seconds, steps


def fmt_gb(value: float | None) -> str:
    return f"{value:.2f} GB" if value is not None else "n/a (not CUDA)"


# --- benchmark ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu", "mps"))
    parser.add_argument("--tiny", action="store_true", help="tiny random models (smoke test, e.g. on a CPU)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs (default 5; 1 with --tiny)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 2; 0 with --tiny)")
    parser.add_argument("--size", type=int, default=None, help="input side in pixels (default 512; 64 with --tiny)")
    parser.add_argument("--compile", action="store_true", help="also time our path with torch.compile")
    parser.add_argument("--pre-upscaler", default="lanczos", choices=("lanczos", "realcugan"))
    parser.add_argument("--no-plain", action="store_true", help="skip the plain diffusers anchors")
    parser.add_argument("--no-latent", action="store_true", help="skip sd-latent-x2")
    parser.add_argument("--models", type=Path, default=None, help="folder to build (or reuse) the random models in")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from cnaps_demo.devices import resolve_device
    from cnaps_demo.engines.base import RunOptions
    from cnaps_demo.engines import get_engine
    from cnaps_demo.engines.diffusion import _dtype_kwarg

    device = resolve_device(args.device)
    runs = args.runs or (1 if args.tiny else 5)
    warmup = args.warmup if args.warmup is not None else (0 if args.tiny else 2)
    size = args.size or (64 if args.tiny else 512)
    on_gpu = device.type == "cuda" and not args.tiny
    dtype = torch.float16 if device.type in ("cuda", "mps") else torch.float32

    workdir = args.models or Path(tempfile.mkdtemp(prefix="cnaps-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else device.type}), "
        f"torch {torch.__version__}, {'tiny' if args.tiny else 'full-size'} random models in {workdir}"
    )
    started = time.perf_counter()
    if args.tiny:
        import tiny_sd

        sd_dir = tiny_sd.build_img2img_folder(workdir)
        latent_dir = tiny_sd.build_latent_upscaler_folder(workdir)
    else:
        init_device = device if device.type == "cuda" else torch.device("cpu")
        sd_dir = build_full_sd15(workdir, init_device)
        latent_dir = None if args.no_latent else build_full_latent(workdir, init_device)
        free(device)
    print(f"models ready in {time.perf_counter() - started:.1f} s")

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.normal(0, 12, (size, size, 3))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    results: dict[str, Any] = {"device": str(device), "tiny": args.tiny, "size": size, "runs": runs}

    img2img = get_engine("sd-img2img")
    params = img2img.check_params(
        {
            "model": str(sd_dir),
            "steps": 25,
            "strength": 0.4,
            "guidance": 6.0,
            "prompt": PROMPT,
            "negative_prompt": NEGATIVE,
            "seed": 0,
            "pre_upscaler": args.pre_upscaler,
        }
    )
    variants = [("ours", False)] + ([("ours+compile", True)] if args.compile else [])
    for label, compile_ in variants:
        options = RunOptions(device=device.type, torch_compile=compile_)
        free(device)
        times, output, peak = timed(
            lambda: img2img.run(image, scale=2, params=params, options=options), device, warmup, runs
        )
        rate, steps = unet_rate(output.stages)
        median = statistics.median(times)
        results[f"img2img_{label}"] = {
            "median_s": median,
            "times_s": times,
            "unet_it_s": rate,
            "unet_steps": steps,
            "peak_vram_gb": peak,
            "stages": [s.as_dict() for s in output.stages],
        }
        print(
            f"sd-img2img [{label}] {size}->{2 * size}, strength 0.4, 25 steps ({steps} UNet steps, CFG): "
            f"median {median:.3f} s over {runs}, UNet {rate:.2f} it/s, peak VRAM {fmt_gb(peak)}"
        )
        for stage in output.stages:
            print(
                f"    {stage.name:<28} {stage.input_shape!s:>18} -> {stage.output_shape!s:<18} {stage.seconds * 1000:8.1f} ms"
            )
    free(device)

    if not args.no_plain:
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline

        variant = None if args.tiny else "fp16"
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
            sd_dir, variant=variant, safety_checker=None, requires_safety_checker=False, **{_dtype_kwarg(): dtype}
        ).to(device)
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        gen_device = device if device.type == "cuda" else "cpu"

        def plain_job() -> Any:
            enlarged = image.resize((2 * size, 2 * size), Image.Resampling.LANCZOS)
            return pipe(
                PROMPT,
                image=enlarged,
                strength=0.4,
                num_inference_steps=25,
                guidance_scale=6.0,
                negative_prompt=NEGATIVE,
                generator=torch.Generator(gen_device).manual_seed(0),
            ).images[0]

        times, _, peak = timed(plain_job, device, warmup, runs)
        plain = statistics.median(times)
        ours = results["img2img_ours"]["median_s"]
        best = min(results[f"img2img_{label}"]["median_s"] for label, _ in variants)
        results["img2img_plain"] = {"median_s": plain, "times_s": times, "peak_vram_gb": peak}
        results["img2img_ratio"] = best / plain
        print(
            f"plain diffusers (fp16 + SDPA, no compile): median {plain:.3f} s, peak VRAM {fmt_gb(peak)}; "
            f"ours/plain = {ours / plain:.2f}"
            + (f", best (compile) / plain = {best / plain:.2f}" if args.compile else "")
        )
        del pipe
        free(device)

    if latent_dir is not None:
        latent = get_engine("sd-latent-x2")
        lparams = latent.check_params({"model": str(latent_dir), "steps": 20, "seed": 0})
        times, output, peak = timed(
            lambda: latent.run(image, scale=2, params=lparams, options=options), device, warmup, runs
        )
        rate, steps = unet_rate(output.stages)
        median = statistics.median(times)
        results["latent_x2_ours"] = {"median_s": median, "times_s": times, "unet_it_s": rate, "peak_vram_gb": peak}
        print(
            f"sd-latent-x2 [ours] {size}->{2 * size}, 20 steps: median {median:.3f} s, UNet {rate:.2f} it/s, "
            f"peak VRAM {fmt_gb(peak)}"
        )
        free(device)
        if not args.no_plain:
            from diffusers import StableDiffusionLatentUpscalePipeline

            lpipe = StableDiffusionLatentUpscalePipeline.from_pretrained(
                latent_dir, variant=None if args.tiny else "fp16", **{_dtype_kwarg(): dtype}
            ).to(device)
            lpipe.set_progress_bar_config(disable=True)
            gen_device = device if device.type == "cuda" else "cpu"

            def plain_latent() -> Any:
                return lpipe(
                    prompt="",
                    image=image,
                    num_inference_steps=20,
                    guidance_scale=0,
                    generator=torch.Generator(gen_device).manual_seed(0),
                ).images[0]

            times, _, peak = timed(plain_latent, device, warmup, runs)
            plain = statistics.median(times)
            results["latent_x2_plain"] = {"median_s": plain, "times_s": times, "peak_vram_gb": peak}
            print(f"plain diffusers latent upscaler: median {plain:.3f} s; ours/plain = {median / plain:.2f}")
            del lpipe
            free(device)

    if on_gpu:
        ours = min(results[f"img2img_{label}"]["median_s"] for label, _ in variants)
        peak = results["img2img_ours"]["peak_vram_gb"]
        checks = [f"end to end {ours:.3f} s (target <= {TARGET_SECONDS})"]
        if "img2img_ratio" in results:
            checks.append(f"ratio {results['img2img_ratio']:.2f} (target <= {TARGET_RATIO})")
        checks.append(f"peak VRAM {fmt_gb(peak)} (target <= {TARGET_VRAM_GB} GB)")
        print("targets: " + "; ".join(checks))
    else:
        print(
            f"unmeasured on GPU: these figures come from {device.type}"
            f"{' with tiny models' if args.tiny else ''} and only show that the benchmark runs."
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
