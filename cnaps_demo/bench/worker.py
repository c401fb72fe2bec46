"""One benchmark measurement in a fresh process: ``python -m cnaps_demo.bench.worker SPEC_JSON``.

``cnaps_demo.bench`` starts one of these per engine so that each figure starts from a cold
process (model load, peak memory); the result comes back as one marked JSON line.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

MARK = "CNAPS-BENCH-RESULT "


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
    from ..devices import available_cores

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
    from cnaps_demo.engines import RunOptions, get_engine

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
        # The colour fix is ours alone (the C++ engines have none): like for like, it stays off.
        last["result"] = cnaps_demo.upscale(image, spec["engine"], device=device, colour_fix=False)

    start = time.perf_counter()
    warm = get_engine(spec["engine"]).warm(RunOptions(device=device)) if spec["warmup"] else None
    warm_s = time.perf_counter() - start
    times = _median_times(run, spec["runs"], warmup=spec["warmup"], sync=sync)
    result = last["result"]
    # The network's own pass is the stage that records the graph's structure (``engines.cnn.common``),
    # whatever the engine names it.
    net = next((s for s in result.stages if "structure" in s.detail), None)
    detail = dict(net.detail) if net else {}
    out = {
        "times": times,
        "peak_rss": _peak_rss(),
        "base_rss": base,
        "threads": torch.get_num_threads(),
        "dtype": detail.get("dtype", "?"),
        "tiles": detail.get("tiles", "?"),
        "convolution": detail.get("convolution", "?"),
        "warm_up_s": warm_s if warm is not None else None,
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

    from ..engines import RunOptions, cnn, get_engine

    engine, scale = get_engine(spec["engine"]), 2
    loaded = engine.load(scale, engine.check_params({}), RunOptions(device="cuda"))  # its default model
    rgb = engine.network_input(np.asarray(image, dtype=np.float32) / 255.0, scale)
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
    from ..engines import get_engine

    base = _peak_rss()
    gpuid = -1 if spec["device"] == "cpu" else 0
    original = get_engine(spec["engine"]).original
    try:
        engine = original.build(gpuid, _cores())
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
        "threads": _cores() if original.takes_threads else None,  # None: ncnn's own default
        "output": list(last["image"].size),
    }


def _wall_and_cpu(fn, runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def _work_inside(spec: dict[str, Any]) -> dict[str, Any]:
    """``inside`` (default region) and ``attribution`` (the region's centre, 50 steps) on an NxN picture.
    Each attribution run gets a new picture, as a first click on a new result does (Real-CUGAN's
    whole-picture SE averages are then computed again, not served from its cache)."""
    import torch

    from ..probe import attribution, inside

    base = _peak_rss()
    width, height = spec["size"]
    engine, runs = spec["engine"], spec["runs"]
    image = make_image(width, height)
    start = time.perf_counter()
    seen = inside(image, engine)
    left, top, side_w, side_h = seen.region
    point = ((2 * left + side_w) * seen.scale // 2, (2 * top + side_h) * seen.scale // 2)
    found = attribution(make_image(width, height, seed=runs + 1), engine, point)
    warm_s = time.perf_counter() - start
    inside_times, inside_cpu = _wall_and_cpu(lambda: inside(image, engine), runs)
    pictures = iter([make_image(width, height, seed=1 + k) for k in range(runs)])
    attribution_times, attribution_cpu = _wall_and_cpu(lambda: attribution(next(pictures), engine, point), runs)
    return {
        "inside_times": inside_times,
        "attribution_times": attribution_times,
        # CPU seconds of the whole process (all threads): the work itself, which other processes on a
        # shared machine do not inflate the way they inflate wall time.
        "inside_cpu": inside_cpu,
        "attribution_cpu": attribution_cpu,
        "warm_up_s": warm_s,
        "region": list(seen.region),
        "steps": found.steps,
        "crop": [found.field_box[2] - found.field_box[0], found.field_box[3] - found.field_box[1]],
        "peak_rss": _peak_rss(),
        "base_rss": base,
        "threads": torch.get_num_threads(),
    }


def _worker(spec: dict[str, Any]) -> int:
    # The C++ engines print tile progress on stdout; the result is the marked last line.
    try:
        kinds = {"ours": _work_ours, "ncnn": _work_ncnn, "inside": _work_inside}
        result = kinds[spec["kind"]](spec)
    except Exception as error:  # report, don't hide: the parent prints it in the table
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.flush()
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(json.loads(sys.argv[1])))
