"""The command line, end to end, in a subprocess as a user would run it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cnaps_demo.image import read_png_metadata


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnaps_demo", *args], capture_output=True, text=True, cwd=cwd)


def cartoon(path: Path, size: int = 64) -> Path:
    image = Image.new("RGB", (size, size), (250, 220, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, size - 8, size - 8), fill=(255, 180, 200), outline=(20, 20, 30), width=3)
    draw.line((10, size - 12, size - 10, 12), fill=(30, 30, 120), width=2)
    image.save(path)
    return path


def test_upscale_one_file_with_realcugan(tmp_path):
    source = cartoon(tmp_path / "in.png")
    result = run_cli("upscale", str(source), "-o", str(tmp_path / "out.png"), "--engine", "realcugan",
                     "--denoise", "conservative", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    out = Image.open(tmp_path / "out.png")
    assert out.size == (128, 128) and out.format == "PNG"
    meta = read_png_metadata(tmp_path / "out.png")
    assert meta["cnaps:engine"] == "realcugan" and "conservative" in meta["cnaps:params"]


def test_folder_with_a_bad_file_still_processes_the_rest(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    cartoon(folder / "a.png")
    cartoon(folder / "b.jpg")
    (folder / "broken.png").write_text("<html>oops</html>")
    out = tmp_path / "out"
    result = run_cli("upscale", str(folder), "-o", str(out), "--engine", "bicubic")
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["a-bicubic-x2.png", "b-bicubic-x2.png"]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "broken.png" in error_lines[0]
    assert "Traceback" not in result.stderr


def test_sub_folders_are_kept_under_the_output_folder_with_normal_permissions(tmp_path):
    import os
    import stat

    folder = tmp_path / "pics"
    (folder / "day").mkdir(parents=True)
    (folder / "night").mkdir()
    cartoon(folder / "day" / "cat.png")
    cartoon(folder / "night" / "cat.png")  # the same name in two sub-folders must not collide
    out = tmp_path / "out"
    old_umask = os.umask(0o022)
    try:
        result = run_cli("upscale", str(folder), "-o", str(out), "--engine", "nearest")
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert made == ["day/cat-nearest-x2.png", "night/cat-nearest-x2.png"]
    for path in out.rglob("*.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the user's normal permissions, not 0600


def test_a_missing_input_is_one_failure_with_one_reason(tmp_path):
    result = run_cli("upscale", str(tmp_path / "chibi.png"), "-o", str(tmp_path / "out.png"), "--engine", "nearest")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no such file" in errors[0]
    assert "1 input(s) failed" in result.stderr


def test_existing_output_is_not_overwritten_without_flag(tmp_path):
    source = cartoon(tmp_path / "in.png")
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    result = run_cli("upscale", str(source), "-o", str(target), "--engine", "nearest")
    assert result.returncode == 1 and "--overwrite" in result.stderr
    assert target.read_bytes() == b"keep me"
    assert run_cli("upscale", str(source), "-o", str(target), "--engine", "nearest", "--overwrite").returncode == 0
    assert Image.open(target).size == (128, 128)


def test_bad_engine_and_parameter_exit_early_with_a_reason(tmp_path):
    source = cartoon(tmp_path / "in.png")
    bad_engine = run_cli("upscale", str(source), "-o", str(tmp_path), "--engine", "nope")
    assert bad_engine.returncode == 2 and "Known engines" in bad_engine.stderr
    bad_denoise = run_cli("upscale", str(source), "-o", str(tmp_path), "--denoise", "7")
    assert bad_denoise.returncode == 2 and "conservative" in bad_denoise.stderr
    assert "Traceback" not in bad_engine.stderr + bad_denoise.stderr


def test_engines_command_says_what_is_missing():
    result = run_cli("engines")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith("realcugan") and "available" in line for line in lines)
    # The SD engines have no weights here: the listing says why and how to fix it.
    sd_index = next(i for i, line in enumerate(lines) if line.startswith("sd-img2img"))
    assert "unavailable" in lines[sd_index] and "why:" in lines[sd_index + 1]
    assert "download" in lines[sd_index + 1] or "GPU" in lines[sd_index + 1]


def test_cli_output_is_sharper_than_bicubic(tmp_path):
    """Real-CUGAN on a blurred cartoon gives stronger edges than plain bicubic."""
    source = Image.open(cartoon(tmp_path / "big.png", size=128)).resize((64, 64), Image.Resampling.BICUBIC)
    source.save(tmp_path / "small.png")
    for engine in ("bicubic", "realcugan"):
        assert run_cli("upscale", str(tmp_path / "small.png"), "-o", str(tmp_path / f"{engine}.png"),
                       "--engine", engine).returncode == 0

    def edge_energy(path):
        grey = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
        return np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()

    assert edge_energy(tmp_path / "realcugan.png") > edge_energy(tmp_path / "bicubic.png") * 1.05


def test_bench_command_takes_its_own_options():
    # `--no-ncnn` starts with a dash: the CLI must hand it to the benchmark, not reject it.
    result = run_cli("bench", "--runs", "1", "--size", "48", "--engines", "realesrgan-anime", "--no-ncnn", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "48x48 -> 96x96" in result.stdout
    assert "realesrgan-anime (ours)" in result.stdout and "ncnn-py (C++)" not in result.stdout
