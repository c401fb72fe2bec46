"""``python -m cnaps_demo evaluate`` end to end on two small pictures (classical + Real-CUGAN, CPU)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from cnaps_demo import cli, fidelity
from cnaps_demo.evaluate import TESTSET_DIR, degrade, evaluate, load_pairs


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Two 96x96 crops of the bundled drawings (outlines, fills, lettering), as plain originals."""
    folder = tmp_path_factory.mktemp("originals")
    for name, box in (("speech_bubble", (560, 60, 656, 156)), ("mascot", (420, 420, 516, 516))):
        with Image.open(TESTSET_DIR / "truth" / f"{name}.png") as image:
            image.crop(box).save(folder / f"{name}.png")
    return folder


def test_the_command_writes_a_table_a_csv_and_a_plot(originals, tmp_path, capsys):
    out = tmp_path / "report"
    code = cli.main(["evaluate", "--engines", "bicubic", "realcugan", "--images", str(originals), "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO((out / "evaluation.csv").read_text())))
    assert [row["engine"] for row in rows] == ["bicubic", "realcugan + colour fix"]  # the CNN default: fix on
    assert [row["colour_fix"] for row in rows] == ["off", "wavelet"]
    assert list(rows[0])[1] == "psnr_db"  # the first numeric column is PSNR in dB
    table = (out / "evaluation.md").read_text()
    assert table.splitlines()[0].startswith("| engine | PSNR (dB) |")
    assert len(table.strip().splitlines()) == 4 and table.strip() in printed

    # The bicubic row, recomputed by hand from the same degradation: the figures are the real ones.
    scores = []
    for path in sorted(originals.iterdir()):
        truth = Image.open(path).convert("RGB")
        enlarged = degrade(truth).resize(truth.size, Image.Resampling.BICUBIC)
        scores.append(fidelity.psnr_db(np.asarray(enlarged, np.float32), np.asarray(truth, np.float32)))
    assert float(rows[0]["psnr_db"]) == pytest.approx(np.mean(scores), abs=1e-4)
    assert float(rows[0]["sharpness"]) == pytest.approx(1.0, abs=1e-4)
    assert float(rows[1]["sharpness"]) > 1.0  # the CNN draws crisper edges than bicubic

    with Image.open(out / "evaluation.png") as plot:
        assert plot.width >= 1000 and plot.height >= 400
        assert len(plot.convert("RGB").getcolors(1 << 16) or ()) > 8  # bars in several colours, text


def test_colour_fix_both_scores_the_ai_engine_twice_and_reports_progress(originals):
    seen = []
    evaluation = evaluate(
        ["nearest", "realcugan"], originals, colour_fix="both", device="cpu", progress=lambda d, t, s: seen.append((d, t))
    )
    assert [row.label for row in evaluation.rows] == ["nearest", "realcugan", "realcugan + colour fix"]
    assert seen[0] == (0, 6) and seen[-1] == (6, 6) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    nearest, plain, fixed = evaluation.rows
    assert nearest.figures["lr_psnr"] == float("inf")  # nearest then box-down gives the input back
    assert fixed.figures["colour_shift"] <= 1.0
    assert fixed.figures["colour_shift"] <= plain.figures["colour_shift"] + 1e-9
    assert "\u221e" in evaluation.markdown()


def test_a_folder_with_truth_and_input_is_used_as_it_is(originals, tmp_path):
    for kind in ("truth", "input"):
        (tmp_path / kind).mkdir()
    for path in originals.iterdir():
        truth = Image.open(path).convert("RGB")
        truth.save(tmp_path / "truth" / path.name)
        truth.resize((48, 48), Image.Resampling.BOX).save(tmp_path / "input" / path.name)
    pairs = load_pairs(tmp_path)
    assert [p.name for p in pairs] == ["mascot", "speech_bubble"]
    assert pairs[0].input.size == (48, 48) and pairs[0].truth.size == (96, 96)
    evaluation = evaluate(["nearest"], tmp_path)
    assert evaluation.rows[0].figures["lr_psnr"] == float("inf")


def test_bad_folders_and_engines_are_bad_commands(tmp_path, capsys):
    assert cli.main(["evaluate", "--images", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "holds no pictures" in capsys.readouterr().err
    assert cli.main(["evaluate", "--engines", "waifu9000", "-o", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
