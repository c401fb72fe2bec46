"""The explainer sections' values, without a browser: inside the network, why crisp, what it learned
from, and the fidelity verdicts under the slider (each drawn from a real run on a bundled picture)."""

from pathlib import Path

import gradio as gr
import pytest
from PIL import Image
from run_setups import run_setup

import cnaps_demo
from cnaps_demo.present import verdicts
from cnaps_demo.settings import get_settings
from cnaps_demo.web import comparison as cmp
from cnaps_demo.ui.upscale import inside as inside_panel, learned as learned_panel
from cnaps_demo.web import views
from cnaps_demo.web.workdir import Workdir
from cnaps_demo.web.sources import Source

EXAMPLES = Path(cnaps_demo.__file__).parent / "examples"


@pytest.fixture
def fp32(monkeypatch):
    """fp32 on every CPU: the page's runs read ``Settings`` from the environment."""
    monkeypatch.setenv("CNAPS_CPU_BF16", "0")
    return get_settings()


def comparison_of(picture: Image.Image, engine: str, tmp_path: Path) -> cmp.Comparison:
    result = cnaps_demo.upscale(picture, engine, colour_fix=False)
    source = Source(picture, picture, None, "picture")
    return cmp.build_comparison(source, {result.engine_id: result}, Workdir(tmp_path / "work"))


def crop(name: str, size: int = 96) -> Image.Image:
    picture = Image.open(EXAMPLES / name).convert("RGB")
    left, top = (picture.width - size) // 2, (picture.height - size) // 3
    return picture.crop((left, top, left + size, top + size))


def test_each_sections_outputs_are_declared_once_and_match_its_components():
    with gr.Blocks():
        inside = inside_panel.build_inside_panel()
        learned = learned_panel.build_learned_panel()
    assert inside.outputs() == [getattr(inside, name) for name in inside_panel.InsideView._fields]
    assert len(set(map(id, inside.outputs()))) == len(inside_panel.InsideView._fields)
    assert len(learned.crisp_outputs()) == len(learned_panel.CrispView._fields)
    assert len(learned.trial_outputs()) == len(learned_panel.TrialView._fields)


def test_inside_the_network_on_a_run_shows_real_layers_and_a_sum_and_traces_a_click(fp32, tmp_path):
    comparison = comparison_of(crop("chibi_face.png"), "realesrgan-anime", tmp_path)
    view = inside_panel.inside_view(comparison, run_setup(fp32, tmp_path / "work"), None, None)
    assert len(view.layers) >= 4 and len(view.maps) == len(view.layers)
    assert all(Path(path).is_file() for path, _ in view.layers)
    assert "channels at" in view.layer_notes and "3x3 convolution" in view.layer_notes
    assert "Real-ESRGAN" in view.intro and "input pixels" in view.intro
    assert "what the network draws" in view.sum_note
    assert Image.open(view.base).size == Image.open(view.output).size == (192, 192)  # the 96 px region, 2x
    overlay, reading = inside_panel.attribution_view(comparison, (96, 80), fp32, None, None)
    assert Path(overlay).is_file() and "px" in reading


def test_a_classical_engine_has_no_layers_to_show(fp32, tmp_path):
    comparison = comparison_of(crop("chibi_face.png", 48), "lanczos", tmp_path)
    view = inside_panel.inside_view(comparison, run_setup(fp32, tmp_path / "work"), None, None)
    assert view.layers == [] and "no layers" in view.intro
    # "Where did it invent?" is there for every engine, drawn from this run.
    assert Path(view.invented_added).is_file() and Path(view.invented_lr).is_file()
    assert "Lanczos" in view.invented_note and "% of your pixels" in view.invented_note
    assert inside_panel.inside_view(None, run_setup(fp32, tmp_path / "work"), None, None).layers == []


def test_why_crisp_and_the_training_pair_come_from_the_run(fp32, tmp_path):
    comparison = comparison_of(crop("chibi_face.png"), "realesrgan-anime", tmp_path)
    crisp = learned_panel.crisp_view(comparison)
    assert len(crisp.candidates) == 5 and "average" in crisp.candidates[-1][1]
    assert "| their pixel average |" in crisp.story.replace("**", "")
    assert crisp.plots.count("<svg") == 2 and "Real-ESRGAN" in crisp.plots
    trial = learned_panel.trial_view(comparison, 3, learned_panel.DEFAULT_KNOBS, fp32, None, None)
    assert trial.trial_box["visible"] is True
    assert len(trial.steps) >= 4 and all(Path(path).is_file() for path, _ in trial.steps)
    assert "PSNR" in trial.trial_note and "Seed 3" in trial.trial_note and "JPEG at quality 70" in trial.trial_note
    other = learned_panel.trial_view(comparison, 4, learned_panel.DEFAULT_KNOBS, fp32, None, None)
    assert other.trial_note != trial.trial_note  # a new draw damages it another way


def test_the_figures_get_verdicts_and_a_soft_picture_is_said_to_be_soft(fp32, tmp_path):
    crisp = comparison_of(Image.open(EXAMPLES / "chibi_face.png").convert("RGB"), "lanczos", tmp_path / "a")
    soft = comparison_of(Image.open(EXAMPLES / "chibi_face_blurry.png").convert("RGB"), "lanczos", tmp_path / "b")
    crisp_text, soft_text = views.fidelity_markdown(crisp, "lanczos"), views.fidelity_markdown(soft, "lanczos")
    for text in (crisp_text, soft_text):
        assert "How faithful is it to your picture?" in text and "<details" in text and "Scale: LR-PSNR" in text
        assert any(f"**{word}**" in text for word in ("faithful", "changed", "invented"))
    assert verdicts.SOFT_INPUT_NOTE not in crisp_text
    assert verdicts.SOFT_INPUT_NOTE in soft_text  # said before the number, so a low one is not read as "worse"
