#!/usr/bin/env python
"""GPU benchmark of the diffusion engines, with full-size random weights (same compute as the real models).

Builds the SD 1.5 architecture (UNet, VAE, CLIP text encoder) and the x2 latent upscaler's
UNet from the configs in ``cnaps_demo/engines/diffusion/configs/sd15`` with random weights, saves them as fp16
diffusers folders (put together by the package's own ``assemble_pipeline``), and runs the
engines through their real loading code. Nothing is downloaded (the tokenizer is the tests'
small character-level CLIP vocabulary, ``tests/tiny_sd.py``; prompts still pad to 77 tokens,
so the text encoder does the real model's work).

Over 400 lines because it is one self-contained script that a lent GPU machine runs as it is:
the random-model builders, the timed runs (ours and plain diffusers) and the report.

Jobs, warm (after warm-up runs), median of ``--runs``:

* ``sd-img2img`` 512 x 512 -> 1024 x 1024, strength 0.4, 25 steps (10 UNet steps), CFG 6.0,
  Lanczos pre-enlarge (Real-CUGAN needs its own weights; ``--pre-upscaler realcugan`` to include it);
* the same job with plain diffusers defaults (``StableDiffusionImg2ImgPipeline`` in fp16 with
  its default SDPA attention, no compile, same scheduler) as the anchor, and the ratio;
* ``sd-latent-x2`` 512 -> 1024 at 20 steps (and its plain diffusers anchor);
* ``sd-img2img`` with the tile ControlNet (a full-size random SD 1.5 ControlNet, the shape of
  ``lllyasviel/control_v11f1e_sd15_tile``), the engine's default path;
* the filmstrip preview's cost per UNet step (the same job with and without a frame callback;
  target <= 5 ms a step on a GPU) and the colour fix (``cnaps_demo.colour``) on the result.

Targets on an H100: sd-img2img <= 0.35 s end to end, <= 0.6x plain, peak VRAM <= 6 GB.

Usage::

    python benchmarks/bench_sd_gpu.py                    # CUDA
    python benchmarks/bench_sd_gpu.py --compile          # also with torch.compile (CNAPS_TORCH_COMPILE=1)
    python benchmarks/bench_sd_gpu.py --device cpu --tiny  # smoke test anywhere: tiny models, 1 run
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts benchmarks/ on the path, not the repository root: this makes
# `cnaps_demo` importable from a checkout that is not pip-installed.
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

PROMPT = "anime illustration, clean line art, sharp details, high quality"
NEGATIVE = "blurry, lowres, jpeg artifacts, noise, watermark, text"
TARGET_SECONDS, TARGET_RATIO, TARGET_VRAM_GB = 0.35, 0.6, 6.0


# --- models -------------------------------------------------------------------------------------


def tiny_sd() -> ModuleType:
    """The tests' tiny-model builders (``tests/tiny_sd.py``), loaded from their file: tests/ stays off sys.path."""
    module = sys.modules.get("tiny_sd")
    if module is None:
        spec = importlib.util.spec_from_file_location("tiny_sd", ROOT / "tests" / "tiny_sd.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["tiny_sd"] = module
        spec.loader.exec_module(module)
    return module


def build_full(engine_id: str, folder: Path, device: Any) -> Path:
    """A full-size random fp16 folder for engine ``engine_id`` (initialised on ``device``: fast): its
    UNet and scheduler from its own configs (``DiffusionTraits.unet_configs``), with SD 1.5's VAE and
    CLIP text encoder (``sd-img2img``: all SD 1.5; ``sd-latent-x2``: the x2 latent upscaler's
    k-diffusion UNet and Euler scheduler).
    """
    import diffusers
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from cnaps_demo.engines import get_engine
    from cnaps_demo.engines.diffusion import assemble_pipeline
    from cnaps_demo.engines.diffusion.hub import CONFIG_DIR

    engine = get_engine(engine_id)
    target = folder / f"{engine_id}-random"
    if (target / "model_index.json").is_file():
        return target
    own = engine.unet_configs  # the UNet's and the scheduler's configs
    tokenizer = tiny_sd().tiny_tokenizer(folder / "_tokenizer")
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(own, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(CONFIG_DIR, subfolder="vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(CONFIG_DIR, subfolder="text_encoder"))
    # The scheduler the configs name (the engine swaps in its own at load, as for a real model).
    scheduler_config = json.loads((own / "scheduler" / "scheduler_config.json").read_text())
    scheduler_class = getattr(diffusers, scheduler_config["_class_name"])
    pipe = assemble_pipeline(
        engine,
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler_class.from_pretrained(own, subfolder="scheduler"),
    )
    pipe.to(torch.float16)
    pipe.save_pretrained(target, safe_serialization=True, variant="fp16")
    del pipe, unet, vae, text_encoder
    return target


def build_controlnet(folder: Path, device: Any) -> Path:
    """A full-size random SD 1.5 ControlNet (fp16), shaped from our UNet config (ControlNet 1.1 tile's shape)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    from cnaps_demo.engines.diffusion.hub import CONFIG_DIR

    target = folder / "controlnet-random"
    if (target / "config.json").is_file():
        return target
    torch.manual_seed(1)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIG_DIR, subfolder="unet"))
        model = ControlNetModel.from_unet(unet)
    model.to(torch.float16).save_pretrained(target, safe_serialization=True, variant="fp16")
    del unet, model
    return target


def build_models(args: argparse.Namespace, device: Any, workdir: Path) -> tuple[Path, Path | None, Path | None]:
    """(img2img folder, latent upscaler folder or None, ControlNet folder or None): tiny with ``--tiny``."""
    import torch

    started = time.perf_counter()
    if args.tiny:
        sd_dir = tiny_sd().build_img2img_folder(workdir)
        latent_dir = tiny_sd().build_latent_upscaler_folder(workdir)
        cn_dir = None if args.no_controlnet else tiny_sd().build_controlnet_folder(workdir)
    else:
        init_device = device if device.type == "cuda" else torch.device("cpu")
        sd_dir = build_full("sd-img2img", workdir, init_device)
        latent_dir = None if args.no_latent else build_full("sd-latent-x2", workdir, init_device)
        cn_dir = None if args.no_controlnet else build_controlnet(workdir, init_device)
        free(device)
    print(f"models ready in {time.perf_counter() - started:.1f} s")
    return sd_dir, latent_dir, cn_dir


def input_image(size: int) -> Any:
    """A smooth gradient with some noise, ``size`` x ``size``, seeded."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


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


def generator(device: Any, seed: int = 0) -> Any:
    import torch

    return torch.Generator(device if device.type == "cuda" else "cpu").manual_seed(seed)


# --- benchmark ------------------------------------------------------------------------------------


class Bench:
    """One benchmark session: the device, the input picture, the run counts, and the figures so far."""

    def __init__(self, args: argparse.Namespace, device: Any, size: int) -> None:
        import torch

        self.args, self.device, self.size = args, device, size
        self.runs = args.runs or (1 if args.tiny else 5)
        self.warmup = args.warmup if args.warmup is not None else (0 if args.tiny else 2)
        self.dtype = torch.float16 if device.type in ("cuda", "mps") else torch.float32
        self.image = input_image(size)
        self.results: dict[str, Any] = {"device": str(device), "tiny": args.tiny, "size": size, "runs": self.runs}
        self.variants = [("ours", False)] + ([("ours+compile", True)] if args.compile else [])

    def timed(self, job: Callable[[], Any]) -> tuple[list[float], Any, float | None]:
        return timed(job, self.device, self.warmup, self.runs)

    def img2img(self, sd_dir: Path) -> None:
        """Our sd-img2img, once per variant (plain, and compiled with --compile)."""
        from cnaps_demo.engines import get_engine
        from cnaps_demo.engines.base import RunOptions

        engine, size = get_engine("sd-img2img"), self.size
        params = engine.check_params(
            {
                "model": str(sd_dir),
                "steps": 25,
                "strength": 0.4,
                "guidance": 6.0,
                "prompt": PROMPT,
                "negative_prompt": NEGATIVE,
                "seed": 0,
                "pre_upscaler": self.args.pre_upscaler,
                "controlnet": "none",  # the plain diffusers anchor is plain img2img; ControlNet: controlnet()
            }
        )
        for label, compile_ in self.variants:
            options = RunOptions(device=self.device.type, torch_compile=compile_)
            free(self.device)
            times, output, peak = self.timed(lambda: engine.run(self.image, scale=2, params=params, options=options))
            rate, steps = unet_rate(output.stages)
            median = statistics.median(times)
            self.results[f"img2img_{label}"] = {
                "median_s": median,
                "times_s": times,
                "unet_it_s": rate,
                "unet_steps": steps,
                "peak_vram_gb": peak,
                "stages": [s.as_dict() for s in output.stages],
            }
            print(
                f"sd-img2img [{label}] {size}->{2 * size}, strength 0.4, 25 steps ({steps} UNet steps, CFG): "
                f"median {median:.3f} s over {self.runs}, UNet {rate:.2f} it/s, peak VRAM {fmt_gb(peak)}"
            )
            for stage in output.stages:
                print(
                    f"    {stage.name:<28} {stage.input_shape!s:>18} -> {stage.output_shape!s:<18} "
                    f"{stage.seconds * 1000:8.1f} ms"
                )
        free(self.device)

    def plain_img2img(self, sd_dir: Path) -> None:
        """The anchor: plain diffusers defaults (fp16 + SDPA, no compile), same scheduler and job."""
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline
        from PIL import Image

        from cnaps_demo.engines.diffusion import dtype_kwarg

        size, device = self.size, self.device
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
            sd_dir,
            variant=None if self.args.tiny else "fp16",
            safety_checker=None,
            requires_safety_checker=False,
            **{dtype_kwarg(): self.dtype},
        ).to(device)
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)

        def plain_job() -> Any:
            enlarged = self.image.resize((2 * size, 2 * size), Image.Resampling.LANCZOS)
            return pipe(
                PROMPT,
                image=enlarged,
                strength=0.4,
                num_inference_steps=25,
                guidance_scale=6.0,
                negative_prompt=NEGATIVE,
                generator=generator(device),
            ).images[0]

        times, _, peak = self.timed(plain_job)
        plain = statistics.median(times)
        ours = self.results["img2img_ours"]["median_s"]
        best = min(self.results[f"img2img_{label}"]["median_s"] for label, _ in self.variants)
        self.results["img2img_plain"] = {"median_s": plain, "times_s": times, "peak_vram_gb": peak}
        self.results["img2img_ratio"] = best / plain
        print(
            f"plain diffusers (fp16 + SDPA, no compile): median {plain:.3f} s, peak VRAM {fmt_gb(peak)}; "
            f"ours/plain = {ours / plain:.2f}"
            + (f", best (compile) / plain = {best / plain:.2f}" if self.args.compile else "")
        )
        del pipe
        free(device)

    def latent(self, latent_dir: Path) -> float:
        """Our sd-latent-x2 (compiled with --compile); returns its median seconds."""
        from cnaps_demo.engines import get_engine
        from cnaps_demo.engines.base import RunOptions

        engine, size = get_engine("sd-latent-x2"), self.size
        params = engine.check_params({"model": str(latent_dir), "steps": 20, "seed": 0})
        options = RunOptions(device=self.device.type, torch_compile=self.args.compile)
        times, output, peak = self.timed(lambda: engine.run(self.image, scale=2, params=params, options=options))
        rate, steps = unet_rate(output.stages)
        median = statistics.median(times)
        self.results["latent_x2_ours"] = {"median_s": median, "times_s": times, "unet_it_s": rate, "peak_vram_gb": peak}
        print(
            f"sd-latent-x2 [ours] {size}->{2 * size}, 20 steps: median {median:.3f} s, UNet {rate:.2f} it/s, "
            f"peak VRAM {fmt_gb(peak)}"
        )
        free(self.device)
        return median

    def plain_latent(self, latent_dir: Path, ours: float) -> None:
        """The anchor for sd-latent-x2: the plain diffusers latent upscale pipeline."""
        from diffusers import StableDiffusionLatentUpscalePipeline

        from cnaps_demo.engines.diffusion import dtype_kwarg

        device = self.device
        lpipe = StableDiffusionLatentUpscalePipeline.from_pretrained(
            latent_dir, variant=None if self.args.tiny else "fp16", **{dtype_kwarg(): self.dtype}
        ).to(device)
        lpipe.set_progress_bar_config(disable=True)

        def plain_latent() -> Any:
            return lpipe(
                prompt="",
                image=self.image,
                num_inference_steps=20,
                guidance_scale=0,
                generator=generator(device),
            ).images[0]

        times, _, peak = self.timed(plain_latent)
        plain = statistics.median(times)
        self.results["latent_x2_plain"] = {"median_s": plain, "times_s": times, "peak_vram_gb": peak}
        print(f"plain diffusers latent upscaler: median {plain:.3f} s; ours/plain = {ours / plain:.2f}")
        del lpipe
        free(device)

    def img2img_params(self, sd_dir: Path, controlnet: Path | str) -> dict[str, Any]:
        from cnaps_demo.engines import get_engine

        values = {"model": str(sd_dir), "steps": 25, "strength": 0.4, "guidance": 6.0, "prompt": PROMPT}
        values.update(negative_prompt=NEGATIVE, seed=0, pre_upscaler=self.args.pre_upscaler)
        values["controlnet"] = str(controlnet)
        return get_engine("sd-img2img").check_params(values)

    def controlnet(self, sd_dir: Path, cn_dir: Path) -> Any:
        """sd-img2img with the tile ControlNet (the engine's default path); returns the last output."""
        from cnaps_demo.engines import get_engine
        from cnaps_demo.engines.base import RunOptions

        engine, params = get_engine("sd-img2img"), self.img2img_params(sd_dir, cn_dir)
        options = RunOptions(device=self.device.type, torch_compile=self.args.compile)
        free(self.device)
        times, output, peak = self.timed(lambda: engine.run(self.image, scale=2, params=params, options=options))
        rate, steps = unet_rate(output.stages)
        median = statistics.median(times)
        control = next((s for s in output.stages if s.name.startswith("ControlNet")), None)
        self.results["img2img_controlnet"] = {
            "median_s": median, "times_s": times, "unet_it_s": rate, "peak_vram_gb": peak,
            "controlnet_s": control.seconds if control else None,
        }
        print(
            f"sd-img2img + ControlNet tile [ours] {self.size}->{2 * self.size}, strength 0.4, {steps} UNet steps: "
            f"median {median:.3f} s, UNet {rate:.2f} it/s, "
            f"ControlNet {control.seconds * 1000 if control else 0:.1f} ms in all, peak VRAM {fmt_gb(peak)}"
        )
        return output

    def filmstrip_cost(self, sd_dir: Path) -> None:
        """The preview's cost: the same job with and without a frame callback, per UNet step."""
        from cnaps_demo.engines import get_engine
        from cnaps_demo.engines.base import RunOptions

        engine, params = get_engine("sd-img2img"), self.img2img_params(sd_dir, "none")
        frames: list[Any] = []
        plain = RunOptions(device=self.device.type)
        with_frames = RunOptions(device=self.device.type, frames=frames.append)
        free(self.device)
        off, output, _ = self.timed(lambda: engine.run(self.image, scale=2, params=params, options=plain))
        def framed() -> Any:
            frames.clear()
            return engine.run(self.image, scale=2, params=params, options=with_frames)

        on, _, _ = self.timed(framed)
        _, steps = unet_rate(output.stages)
        per_step = (statistics.median(on) - statistics.median(off)) / max(1, steps or 1)
        self.results["filmstrip_ms_per_step"] = per_step * 1000
        print(
            f"filmstrip preview: {per_step * 1000:.2f} ms per UNet step ({len(frames)} frames; "
            f"off {statistics.median(off):.3f} s, on {statistics.median(on):.3f} s; target <= 5 ms on a GPU)"
        )
        free(self.device)

    def colour_fix(self, output: Any) -> None:
        """cnaps_demo.colour's fix on a diffusion result (skipped where that module is absent)."""
        try:
            from cnaps_demo import colour
        except ImportError:
            print("colour fix: cnaps_demo.colour not present; skipped")
            return
        for method in getattr(colour, "METHODS", ("wavelet",)):
            times, _, _ = self.timed(lambda: colour.colour_fix(output.image, self.image, method))
            self.results[f"colour_fix_{method}_s"] = statistics.median(times)
            size = f"{output.image.width}x{output.image.height}"
            print(f"colour fix ({method}) on {size}: {statistics.median(times) * 1000:.1f} ms")

    def report_targets(self) -> None:
        """On a CUDA GPU with full-size models: the figures against the targets; elsewhere, say they are not GPU figures."""
        results = self.results
        if self.device.type == "cuda" and not self.args.tiny:
            ours = min(results[f"img2img_{label}"]["median_s"] for label, _ in self.variants)
            peak = results["img2img_ours"]["peak_vram_gb"]
            checks = [f"end to end {ours:.3f} s (target <= {TARGET_SECONDS})"]
            if "img2img_ratio" in results:
                checks.append(f"ratio {results['img2img_ratio']:.2f} (target <= {TARGET_RATIO})")
            checks.append(f"peak VRAM {fmt_gb(peak)} (target <= {TARGET_VRAM_GB} GB)")
            print("targets: " + "; ".join(checks))
        else:
            print(
                f"unmeasured on GPU: these figures come from {self.device.type}"
                f"{' with tiny models' if self.args.tiny else ''} and only show that the benchmark runs."
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    parser.add_argument("--no-controlnet", action="store_true", help="skip sd-img2img with the tile ControlNet")
    parser.add_argument("--models", type=Path, default=None, help="folder to build (or reuse) the random models in")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from cnaps_demo.devices import resolve_device

    device = resolve_device(args.device)
    workdir = args.models or Path(tempfile.mkdtemp(prefix="cnaps-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else device.type}), "
        f"torch {torch.__version__}, {'tiny' if args.tiny else 'full-size'} random models in {workdir}"
    )
    sd_dir, latent_dir, cn_dir = build_models(args, device, workdir)
    bench = Bench(args, device, args.size or (64 if args.tiny else 512))
    bench.img2img(sd_dir)
    if not args.no_plain:
        bench.plain_img2img(sd_dir)
    if cn_dir is not None:
        bench.colour_fix(bench.controlnet(sd_dir, cn_dir))
    bench.filmstrip_cost(sd_dir)
    if latent_dir is not None:
        ours = bench.latent(latent_dir)
        if not args.no_plain:
            bench.plain_latent(latent_dir, ours)
    bench.report_targets()
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
