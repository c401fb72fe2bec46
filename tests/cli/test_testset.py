"""The bundled evaluation set: what it holds, and that its script redraws it bit-identically."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnaps_demo.evaluate import TESTSET_DIR, degrade, load_pairs

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("make_testset", ROOT / "assets" / "make_testset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_the_set_holds_six_drawings_with_their_degraded_inputs():
    pairs = load_pairs()
    assert len(pairs) >= 6
    for pair in pairs:
        assert pair.truth.size == (1024, 1024) and pair.input.size == (512, 512)
        # anime-style flat art, not noise: few distinct colours dominate, and there are edges
        colours = pair.truth.getcolors(1 << 20)
        assert colours is not None and max(count for count, _ in colours) > 0.05 * 1024 * 1024
    total = sum(p.stat().st_size for p in TESTSET_DIR.rglob("*") if p.is_file())
    assert total < 4 * 1024 * 1024  # a few MB at most: it ships in the wheel
    assert (TESTSET_DIR / "LICENSE.md").read_text().strip()


def test_each_input_is_its_truth_degraded():
    for pair in load_pairs():
        assert np.array_equal(np.asarray(degrade(pair.truth)), np.asarray(pair.input)), pair.name


def test_the_script_redraws_a_committed_picture(tmp_path):
    """One scene (lettering, strokes 1-12 px, rings, hair): drawn in this process, equal to the file
    drawn earlier in another; the slow test below redraws them all."""
    written = _script().write(tmp_path, ["line_chart"])
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["truth/line_chart.png", "input/line_chart.png"]
    for path in written:
        committed = TESTSET_DIR / path.parent.name / path.name
        assert np.array_equal(pixels(path), pixels(committed)), committed
    assert (tmp_path / "LICENSE.md").read_text() == (TESTSET_DIR / "LICENSE.md").read_text()


@pytest.mark.slow
def test_the_script_redraws_every_committed_picture(tmp_path):
    script = _script()
    written = script.write(tmp_path)
    assert len(written) == 2 * len(script.SCENES) >= 12
    for path in written:
        assert np.array_equal(pixels(path), pixels(TESTSET_DIR / path.parent.name / path.name)), path.name
