#!/usr/bin/env python
"""The GPU figures in one go, within a time budget: ``scripts/gpu-check.sh OUTDIR`` runs this.

Parts, each in its own process with its own deadline (a part that overruns is stopped, and what
it measured so far is kept: each writes its figures after every step):

1. ``cnn`` (``gpu_check_cnn.py``): Real-CUGAN and Real-ESRGAN on CUDA, fp16, warm, 512x512 and
   1920x1080 -> 2x, ours against the same models as plain eager PyTorch, and the CUDA parity check;
2. ``tests``: the tests marked ``cuda`` in tests/, where there are any;
3. ``sd`` (``gpu_check_sd.py``): SD 1.5 img2img 512 -> 1024 (10 UNet steps, CFG), with the tile
   ControlNet, and latent x2, each against plain diffusers; the filmstrip's cost per step; peak
   VRAM; torch.compile if the time left allows.

It writes ``gpu-report.md`` and ``gpu-report.json`` (and each part's log) into OUTDIR, after
every part. ``--smoke`` runs the same parts on the CPU with tiny models and small pictures (every
figure is then marked CPU smoke: it shows that the script works, not how fast a GPU is).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

BUDGET_S, SMOKE_BUDGET_S = 470, 170  # the whole run, install included: within 8 (3) minutes
CNN_BUDGET_S, SMOKE_CNN_BUDGET_S = 150, 80
TESTS_BUDGET_S = 60
RESERVE_S = 8  # kept back to write the report
GRACE_S = 5  # a part past its deadline gets this long to finish its last write
SMOKE_NOTE = "CPU smoke (tiny models, small pictures): not a GPU figure"


def environment(device: Any) -> dict[str, Any]:
    """Versions and the device, for the report (the parts call this; it imports torch)."""
    import importlib.metadata
    import platform

    import torch

    from cnaps_demo.bench import _device_line

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "device": _device_line(device.type)}
    for name in ("diffusers", "transformers", "huggingface_hub", "safetensors", "numpy"):
        try:
            env[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            env[name] = "missing"
    try:
        import diffusers

        env["diffusers_from"] = str(Path(diffusers.__file__).parent.parent)
    except ImportError as error:
        env["diffusers_from"] = f"not importable: {error}"
    return env


def part_parser(doc: str | None, smoke_help: str) -> argparse.ArgumentParser:
    """The arguments every part takes from ``run_part``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="write the figures here (after each step)")
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    parser.add_argument("--deadline", type=float, required=True, help="time.time() by which to stop")
    return parser


def use_configured_threads() -> None:
    """torch's CPU threads as CNAPS_CPU_THREADS says (the dry run sets 1), before an engine picks all cores."""
    from cnaps_demo.devices import configure_cpu_threads
    from cnaps_demo.settings import get_settings

    configure_cpu_threads(get_settings().cpu_threads)


class Steps:
    """Runs named steps against a deadline and keeps the record in ``results`` (written after each)."""

    def __init__(
        self, path: Path, deadline: float, results: dict[str, Any], needs: dict[str, float], default_need: float
    ) -> None:
        """``needs``: the seconds a named step needs at least to start; ``default_need`` for the others."""
        self.path, self.deadline, self.results = path, deadline, results
        self.needs, self.default_need = needs, default_need
        results.setdefault("steps", {})

    def write(self) -> None:
        self.path.write_text(json.dumps(self.results, indent=2, default=str))

    def run(self, name: str, job: Callable[[], Any]) -> Any:
        need = self.needs.get(name, self.default_need)
        left = self.deadline - time.time()
        if left < need:
            self.results["steps"][name] = {"status": f"skipped: {left:.0f} s left, it needs about {need} s"}
            self.write()
            return None
        started, value = time.time(), None
        self.results["steps"][name] = {"status": "running when the part was stopped at its time budget"}
        self.write()
        try:
            value = job()
            status = "done"
        except Exception as error:  # one failed job must not cost the figures of the others
            traceback.print_exc()
            status = f"error: {type(error).__name__}: {str(error)[:300]}"
        self.results["steps"][name] = {"status": status, "seconds": round(time.time() - started, 1)}
        self.write()
        print(f"step {name}: {status} in {time.time() - started:.1f} s", flush=True)
        return value


def _stop(process: subprocess.Popen) -> None:
    """Stop a part and every process it started (compile workers, benchmark workers)."""
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_part(name: str, command: list[str], deadline: float, out: Path, work: Path) -> dict[str, Any]:
    """Run one part to its deadline; its status, seconds, log name and the figures it wrote."""
    figures, log = work / f"{name}.json", out / f"{name}.log"
    started = time.time()
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [sys.executable, *command, "--json", str(figures), "--deadline", str(deadline)],
            stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=max(1.0, deadline - time.time() + GRACE_S))
        except subprocess.TimeoutExpired:
            _stop(process)
            code = None
    try:
        results = json.loads(figures.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {}
    if code is None:
        status = f"cut at its time budget ({deadline - started:.0f} s)"
    else:
        status = "done" if code == 0 else f"failed (exit {code}): see {log.name}"
    return {"status": status, "seconds": round(time.time() - started, 1), "log": log.name, "results": results}


def cuda_tests(deadline: float, out: Path) -> dict[str, Any]:
    """pytest -m cuda on the test files that mark any test so; none yet, and then it says so."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                   if "mark.cuda" in p.read_text(encoding="utf-8"))
    if not files:
        return {"status": "none: no test in tests/ is marked cuda; the cnn part's parity check covers the CUDA path",
                "seconds": 0}
    log, started = out / "tests.log", time.time()
    with open(log, "w", encoding="utf-8") as handle:
        try:
            code = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", *files], cwd=ROOT, stdout=handle,
                                  stderr=subprocess.STDOUT, timeout=max(1.0, deadline - time.time())).returncode
            status = "passed" if code == 0 else f"failed (exit {code}): see {log.name}"
        except subprocess.TimeoutExpired:
            status = "cut at its time budget"
    return {"status": status, "seconds": round(time.time() - started, 1), "log": log.name, "files": files}


# --- the report ----------------------------------------------------------------------------------


def _get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures set against the project's goals (met / not met; CPU smoke or unmeasured otherwise)."""
    sd = _get(report, "parts", "sd", "results", "figures") or {}
    eager, compiled = _get(sd, "img2img_ours", "median_s"), _get(sd, "img2img_ours+compile", "median_s")
    best = min((v for v in (eager, compiled) if v is not None), default=None)
    plain = _get(sd, "img2img_plain", "median_s")
    peaks = [_get(sd, k, "peak_vram_gb") for k in ("img2img_ours", "img2img_ours+compile")]
    peak = min((p for p in peaks if p is not None), default=None)
    side = sd.get("size", 512)
    rows = [
        (f"SD img2img {side}->{2 * side}, 10 UNet steps, CFG (ours, best of eager/compile)", best, "s", 0.35),
        ("the same / plain diffusers", best / plain if best and plain else None, "x", 0.6),
        ("peak VRAM of that job", peak, "GB", 6.0),
    ]
    compared = _get(report, "parts", "cnn", "results", "compare") or []
    sizes = sorted({row["size"] for row in compared}, key=lambda s: -int(s.split("x")[0]) * int(s.split("x")[1]))
    for engine, goal in (("realesrgan-anime", 15.0), ("realcugan", 40.0)):
        row = next((r for r in compared if r["engine"] == engine and sizes and r["size"] == sizes[0]), None)
        size, precision = (row["size"], row["precision"]) if row else ("1920x1080", "float16")
        rows.append((f"{engine} {size} -> 2x, {precision}, warm (network alone)", row and row["ours_ms"], "ms", goal))
    smoke = report["smoke"]
    result = []
    for name, value, unit, goal in rows:
        verdict = SMOKE_NOTE if smoke else "unmeasured" if value is None else "met" if value <= goal else "NOT met"
        result.append({"figure": name, "value": value, "unit": unit, "goal": f"<= {goal:g} {unit}", "verdict": verdict})
    return result


def _num(value: Any, digits: int = 3, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _sd_rows(sd: dict[str, Any]) -> list[str]:
    side = sd.get("size", 512)
    jobs = ((f"img2img {side}->{2 * side} (10 UNet steps, CFG)", "img2img_ours", "img2img_plain"),
            ("img2img + torch.compile (CUDA only: eager elsewhere)", "img2img_ours+compile", "img2img_plain"),
            ("img2img + tile ControlNet", "img2img_controlnet", "img2img_controlnet_plain"),
            ("latent x2 (20 steps)", "latent_x2_ours", "latent_x2_plain"))
    lines = ["| job | ours (s) | plain diffusers (s) | ours / plain | UNet it/s | peak VRAM (GB) |", "|---|---|---|---|---|---|"]
    for label, ours_key, plain_key in jobs:
        ours, plain = sd.get(ours_key) or {}, sd.get(plain_key) or {}
        both = ours.get("median_s") and plain.get("median_s")
        ratio = ours["median_s"] / plain["median_s"] if both else None
        lines.append(f"| {label} | {_num(ours.get('median_s'))} | {_num(plain.get('median_s'))} | {_num(ratio, 2)} "
                     f"| {_num(ours.get('unet_it_s'), 1)} | {_num(ours.get('peak_vram_gb'), 2)} |")
    return lines


def _cnn_rows(cnn: dict[str, Any]) -> list[str]:
    lines = ["| engine | size -> 2x | ours, network (ms) | plain eager (ms) | ours / plain | PSNR ours vs plain (dB) "
             "| upscale() end to end (ms) | peak GPU (GB) |", "|---|---|---|---|---|---|---|---|"]
    ends = {(r["engine"], r["size"]): r for r in cnn.get("end_to_end", [])}
    for row in cnn.get("compare", []):
        end = ends.get((row["engine"], row["size"]), {})
        lines.append(f"| {row['engine']} | {row['size']} ({row['precision']}) | {_num(row['ours_ms'], 1)} "
                     f"| {_num(row['plain_ms'], 1)} | {_num(row['ratio'], 2)} | {_num(row['psnr_ours_vs_plain_db'], 1)} "
                     f"| {end.get('error') or _num(end.get('median_ms'), 1)} | {_num(end.get('peak_gb'), 2)} |")
    return lines


def _step_lines(part: dict[str, Any]) -> list[str]:
    return [f"- step {name}: {step['status']}" + (f" ({step['seconds']} s)" if "seconds" in step else "")
            for name, step in (part.get("steps") or {}).items()]


def markdown(report: dict[str, Any]) -> str:
    parts, env = report["parts"], report.get("env") or {}
    lines = ["# GPU check report", ""]
    if report["smoke"]:
        lines += [f"**{SMOKE_NOTE}.** This run only shows that `scripts/gpu-check.sh` works.", ""]
    lines += [f"- device: {env.get('device', '?')}; python {env.get('python')}, torch {env.get('torch')} "
              f"(CUDA {env.get('cuda')}), diffusers {env.get('diffusers')}, transformers {env.get('transformers')}",
              f"- wall time {report['wall_s']:.0f} s of a {report['budget_s']} s budget; {report['date']}; "
              f"commit {report.get('commit') or 'unknown'}", "", "## Against the goals", "",
              "| figure | measured | goal | verdict |", "|---|---|---|---|"]
    for row in report["goals"]:
        lines.append(f"| {row['figure']} | {_num(row['value'], 3, ' ' + row['unit'])} | {row['goal']} | {row['verdict']} |")
    lines += ["", "## Parts", "", "| part | status | seconds | log |", "|---|---|---|---|"]
    for name, part in parts.items():
        lines.append(f"| {name} | {part['status']} | {part.get('seconds', '-')} | {part.get('log', '-')} |")
    sd_part = _get(parts, "sd", "results") or {}
    sd = sd_part.get("figures") or {}
    lines += ["", f"## Stable Diffusion 1.5 ({sd_part.get('models', '?')} random weights)", "", *_sd_rows(sd), ""]
    film = sd.get("filmstrip_ms_per_step")
    lines.append(f"- filmstrip preview: {_num(film, 2)} ms per UNet step (target <= 5 ms on a GPU)")
    lines += _step_lines(sd_part)
    cnn = _get(parts, "cnn", "results") or {}
    lines += ["", "## CNNs (warm; median)", "", "Ours: the engine's network, channels-last as it loads it; plain: the "
              "published architecture (UpCunet2x, SRVGGNetCompact) with the same weights, eager, NCHW; same precision.",
              "", *_cnn_rows(cnn), ""]
    lines += [f"- weights of {w['model']}: from {w['folder']} (converted cache: {w['cache']})" for w in cnn.get("weights", [])]
    lines += [f"- parity {p['engine']} on {p['device']} ({p['precision']}) vs {p['reference']}: {p['psnr_db']:.1f} dB, "
              f"max |diff| {p['max_abs_diff']:.2g}: {'passed' if p['passed'] else 'FAILED'}" for p in cnn.get("parity", [])]
    lines += _step_lines(cnn)
    lines += ["", f"CUDA tests: {parts.get('tests', {}).get('status', 'not run')}", ""]
    return "\n".join(lines)


def write_report(out: Path, report: dict[str, Any]) -> None:
    report["wall_s"] = time.time() - report["started"]
    report["env"] = next((p["results"]["env"] for p in report["parts"].values() if _get(p, "results", "env")), None)
    report["goals"] = goals(report)
    (out / "gpu-report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    (out / "gpu-report.md").write_text(markdown(report), encoding="utf-8")


def _commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder for the report and logs (comes back)")
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU (a dry run)")
    parser.add_argument("--started", type=float, default=None, help="time.time() the run began (the shell's start)")
    parser.add_argument("--budget-s", type=float, default=None, help=f"whole run (default {BUDGET_S}; smoke {SMOKE_BUDGET_S})")
    parser.add_argument("--carry", default=None, help="the carried folder used (for the record)")
    args = parser.parse_args(argv)
    import datetime
    import tempfile

    started = args.started or time.time()
    budget = args.budget_s or (SMOKE_BUDGET_S if args.smoke else BUDGET_S)
    end = started + budget - RESERVE_S
    out, work = args.out.resolve(), Path(tempfile.mkdtemp(prefix="cnaps-gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"smoke": args.smoke, "figures": "cpu smoke" if args.smoke else "gpu", "budget_s": budget,
                              "started": started, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                              "commit": _commit(), "carry": args.carry, "parts": {}}
    smoke = ["--smoke"] if args.smoke else []
    cnn_end = min(end, time.time() + (SMOKE_CNN_BUDGET_S if args.smoke else CNN_BUDGET_S))
    report["parts"]["cnn"] = run_part("cnn", [str(HERE / "gpu_check_cnn.py"), *smoke], cnn_end, out, work)
    write_report(out, report)
    report["parts"]["tests"] = cuda_tests(min(end, time.time() + TESTS_BUDGET_S), out)
    write_report(out, report)
    sd_args = [str(HERE / "gpu_check_sd.py"), "--models", str(work / "models"), *smoke]
    report["parts"]["sd"] = run_part("sd", sd_args, end, out, work)
    write_report(out, report)
    shutil.rmtree(work, ignore_errors=True)  # the random models: gigabytes on a GPU machine
    print((out / "gpu-report.md").read_text(encoding="utf-8"))
    return 0 if all(p["status"].startswith(("done", "passed", "none")) for p in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
