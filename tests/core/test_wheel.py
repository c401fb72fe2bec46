"""The package as a wheel: built from this tree, installed into a fresh venv, run from elsewhere.

Catches what only breaks once installed: data files left out of the wheel (the bundled
examples, the SD 1.5 configs) and paths that point outside the package. The fresh venv borrows
the test venv's installed dependencies through a ``.pth`` file (no download); the wheel itself
is installed with ``--no-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import cnaps_demo
from cnaps_demo.engines.diffusion import hub
from cnaps_demo.present.examples import bundled_examples
examples = bundled_examples()
result = cnaps_demo.upscale(examples[0], "realcugan", device="cpu")
print(json.dumps({
    "package": cnaps_demo.__file__,
    "examples": [p.name for p in examples],
    "example_dir": str(examples[0].parent),
    "configs": (hub.CONFIG_DIR / "unet" / "config.json").is_file(),
    "input": list(result.input_image.size),
    "output": list(result.image.size),
}))
"""


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_upscales_a_bundled_example(tmp_path):
    source, dist = tmp_path / "source", tmp_path / "dist"  # a copy: building writes build/ into the tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("cnaps_demo-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"  # not the repository: only the installed package can be found
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", SCRIPT], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(venv), report["package"]
    assert Path(report["example_dir"]).is_relative_to(venv)
    assert {"chibi_face.png", "starry_night.png", "cat_sticker.png"} <= set(report["examples"])
    assert report["configs"] is True
    assert report["output"] == [2 * side for side in report["input"]]
    cli = subprocess.run(
        [str(venv / "bin" / "cnaps-demo"), "engines"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert cli.returncode == 0 and "realcugan" in cli.stdout, cli.stderr
