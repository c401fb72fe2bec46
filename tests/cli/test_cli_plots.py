"""`upscale --plots DIR`: the edge profile and spectrum of each result against bicubic, as files."""

import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def test_upscale_writes_the_edge_and_spectrum_plots(tmp_path):
    picture = tmp_path / "in.png"
    Image.open(ROOT / "cnaps_demo" / "examples" / "chibi_face.png").convert("RGB").crop((100, 60, 196, 156)).save(
        picture
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnaps_demo",
            "upscale",
            str(picture),
            "-o",
            str(tmp_path / "out.png"),
            "--engine",
            "lanczos",
            "--plots",
            str(tmp_path / "plots"),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    written = sorted(path.name for path in (tmp_path / "plots").iterdir())
    assert written == ["out-edge.png", "out-edge.svg", "out-spectrum.png", "out-spectrum.svg"]
    edge = (tmp_path / "plots" / "out-edge.svg").read_text(encoding="utf-8")
    assert "<svg" in edge and "bicubic" in edge and "Lanczos" in edge
    assert "plots ->" in done.stdout
