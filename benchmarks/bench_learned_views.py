"""Speed of the "what it learned from" and "why crisp" views, on a 512x512 bundled drawing.

    .venv/bin/python benchmarks/bench_learned_views.py [--runs 3] [--engines realesrgan-anime realcugan]

Prints the median seconds of: ``degrade`` (the training-pair damage), ``restoration_trial`` per
engine (damage + the engine on the 256x256 damaged copy + bicubic + PSNR/SSIM; the first run,
which loads the model, is left out of the median and printed apart), ``crisp_candidates`` on the
detail window, and the two plots of one result (curves + SVG). Goals: a trial at most 3 s with a
CNN engine on 2 cores, the candidates under 0.5 s. Prints the CPU kind and whether bf16 was used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from PIL import Image  # noqa: E402

from bench_cold_start import cpu_kind  # noqa: E402
from cnaps_demo import degrade, upscale  # noqa: E402
from cnaps_demo.present.learned_from import restoration_trial  # noqa: E402
from cnaps_demo.present.result_plots import result_curves  # noqa: E402
from cnaps_demo.present.why_crisp import crisp_candidates  # noqa: E402
from cnaps_demo.settings import get_settings  # noqa: E402


def timed(action, runs: int) -> tuple[float, float]:
    """(first run, median of the next ``runs``) in seconds."""
    started = time.perf_counter()
    action()
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", nargs="+", default=["realesrgan-anime", "realcugan"])
    args = parser.parse_args()
    settings = get_settings()
    with Image.open(ROOT / "cnaps_demo" / "testset" / "truth" / "mascot.png") as opened:
        picture = opened.convert("RGB").crop((256, 256, 768, 768))
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} cores; CNAPS_CPU_BF16={int(settings.cpu_bf16)}; picture 512x512")
    _, seconds = timed(lambda: degrade(picture, seed=1), args.runs)
    print(f"degrade                      {seconds:6.3f} s")
    for engine in args.engines:
        first, seconds = timed(lambda: restoration_trial(picture, engine, seed=1, settings=settings), args.runs)
        print(f"trial {engine:<23}{seconds:6.3f} s  (first run, loading the model: {first:.2f} s)")
    result = upscale(picture.resize((256, 256), Image.Resampling.BOX), args.engines[0], settings=settings)
    _, seconds = timed(lambda: crisp_candidates(result.image, result.input_image, seed=0), args.runs)
    print(f"crisp_candidates (48 px)     {seconds:6.3f} s")
    _, seconds = timed(lambda: (lambda c: (c.spectrum_svg(), c.edge_svg()))(result_curves(result)), args.runs)
    print(f"spectrum + edge plots (SVG)  {seconds:6.3f} s")


if __name__ == "__main__":
    main()
