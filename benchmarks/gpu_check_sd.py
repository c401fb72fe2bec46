#!/usr/bin/env python
"""The Stable Diffusion part of the GPU check (``benchmarks/gpu_check.py`` runs it).

``benchmarks/bench_sd_gpu.py`` does the work (full-size SD 1.5 with random weights, nothing
downloaded; tiny models with ``--smoke``); this runs its jobs one step at a time against a
deadline, most important first, and writes the figures as JSON after each step, so a part
stopped at its time budget keeps what it measured. It adds the one anchor that script lacks:
img2img with the tile ControlNet in plain diffusers (``StableDiffusionControlNetImg2ImgPipeline``,
fp16 with SDPA, no compile, the same scheduler and job). ``torch.compile`` comes last, where
the time left allows (the engine compiles with max-autotune: minutes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import bench_sd_gpu  # benchmarks/ is this script's own folder
from gpu_check import Steps, environment, part_parser, use_configured_threads

# Seconds a step needs at least on an H100 with full-size models (load, warm-up, timed runs): a
# step starts only with that much time left (a smoke run's steps need SMOKE_NEED_S). torch.compile
# with max-autotune takes minutes.
NEEDS_S = {
    "img2img": 20, "plain img2img": 25, "img2img + ControlNet": 25, "plain img2img + ControlNet": 30,
    "filmstrip": 20, "latent x2": 20, "plain latent x2": 20, "img2img + torch.compile": 150,
}
SMOKE_NEED_S = 3


class GpuBench(bench_sd_gpu.Bench):
    """The benchmark's session, with the plain diffusers anchor for img2img + tile ControlNet."""

    def plain_controlnet(self, sd_dir: Path, cn_dir: Path) -> None:
        from diffusers import ControlNetModel, DPMSolverMultistepScheduler, StableDiffusionControlNetImg2ImgPipeline
        from PIL import Image

        from cnaps_demo.engines.diffusion import dtype_kwarg

        loading = {"variant": None if self.args.tiny else "fp16", dtype_kwarg(): self.dtype}
        controlnet = ControlNetModel.from_pretrained(cn_dir, **loading)
        pipe = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
            sd_dir, controlnet=controlnet, safety_checker=None, requires_safety_checker=False, **loading
        ).to(self.device)
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        side = 2 * self.size

        def plain_job() -> Any:
            enlarged = self.image.resize((side, side), Image.Resampling.LANCZOS)
            return pipe(
                bench_sd_gpu.PROMPT, image=enlarged, control_image=enlarged, strength=0.4, num_inference_steps=25,
                guidance_scale=6.0, negative_prompt=bench_sd_gpu.NEGATIVE, controlnet_conditioning_scale=1.0,
                generator=bench_sd_gpu.generator(self.device),
            ).images[0]

        times, _, peak = self.timed(plain_job)
        plain = statistics.median(times)
        self.results["img2img_controlnet_plain"] = {"median_s": plain, "times_s": times, "peak_vram_gb": peak}
        ours = self.results.get("img2img_controlnet", {}).get("median_s")
        if ours is not None:
            self.results["img2img_controlnet_ratio"] = ours / plain
        print(f"plain diffusers img2img + ControlNet: median {plain:.3f} s, peak VRAM {bench_sd_gpu.fmt_gb(peak)}")
        del pipe, controlnet
        bench_sd_gpu.free(self.device)

    def compiled_img2img(self, sd_dir: Path) -> None:
        """Our img2img with torch.compile (CUDA only: elsewhere the engine runs it eager)."""
        self.variants = [("ours+compile", True)]
        self.img2img(sd_dir)
        plain = self.results.get("img2img_plain", {}).get("median_s")
        if plain:
            self.results["img2img_compile_ratio"] = self.results["img2img_ours+compile"]["median_s"] / plain


def main(argv: list[str] | None = None) -> int:
    parser = part_parser(__doc__, "CPU smoke: tiny models, one run")
    parser.add_argument("--models", type=Path, default=None, help="build the random models here (default: a temp dir)")
    args = parser.parse_args(argv)
    from cnaps_demo.devices import resolve_device

    use_configured_threads()
    models = args.models or Path(tempfile.mkdtemp(prefix="cnaps-gpu-check-"))
    bench_args = bench_sd_gpu.parse_args(
        ["--device", "cpu" if args.smoke else "cuda", "--models", str(models)] + (["--tiny"] if args.smoke else [])
    )
    device = resolve_device(bench_args.device)
    results: dict[str, Any] = {"env": environment(device), "models": "tiny" if args.smoke else "full-size SD 1.5"}
    steps = Steps(args.json, args.deadline, results, {} if args.smoke else NEEDS_S, SMOKE_NEED_S if args.smoke else 0)
    steps.write()
    built = steps.run("build models", lambda: bench_sd_gpu.build_models(bench_args, device, models))
    if built is None:
        return 1
    sd_dir, latent_dir, cn_dir = built
    bench = GpuBench(bench_args, device, bench_args.size or (64 if args.smoke else 512))
    results["figures"] = bench.results  # the benchmark's own record, filled step by step
    steps.run("img2img", lambda: bench.img2img(sd_dir))
    steps.run("plain img2img", lambda: bench.plain_img2img(sd_dir))
    steps.run("img2img + ControlNet", lambda: bench.colour_fix(bench.controlnet(sd_dir, cn_dir)))
    steps.run("plain img2img + ControlNet", lambda: bench.plain_controlnet(sd_dir, cn_dir))
    steps.run("filmstrip", lambda: bench.filmstrip_cost(sd_dir))
    steps.run("latent x2", lambda: bench.latent(latent_dir))
    if "latent_x2_ours" in bench.results:
        steps.run("plain latent x2", lambda: bench.plain_latent(latent_dir, bench.results["latent_x2_ours"]["median_s"]))
    steps.run("img2img + torch.compile", lambda: bench.compiled_img2img(sd_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
