"""The pipeline diagram: every stage drawn, user text escaped, legible in light and dark themes."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

import cnaps_demo
from cnaps_demo.present import diagram
from cnaps_demo.stages import StageRecord

SVG = "{http://www.w3.org/2000/svg}"

SD_STAGES = [
    StageRecord("pre-enlarge x2 (Real-CUGAN)", (3, 192, 192), (3, 384, 384), 1.2),
    StageRecord("VAE encoder", (3, 384, 384), (1, 4, 48, 48), 0.3),
    StageRecord("add noise", (1, 4, 48, 48), (1, 4, 48, 48), 0.0004, {"strength": 0.3}),
    StageRecord(
        "UNet denoising",
        (1, 4, 48, 48),
        (1, 4, 48, 48),
        4.2,
        {
            "prompt": "<script>alert('x')</script> & \"quoted\" anime",
            "negative_prompt": "blurry </text><text>",
            "strength": 0.3,
            "steps": 8,
            "scheduler": "DPMSolverMultistep",
        },
    ),
    StageRecord("VAE decoder", (1, 4, 48, 48), (3, 384, 384), 0.5),
]


def render(stages=SD_STAGES, **kwargs):
    return diagram.render_svg(
        stages, input_shape=(3, 192, 192), output_shape=(3, 384, 384), engine_name="SD img2img <b>", **kwargs
    )


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.split("?>", 1)[-1])
    return ["".join(t.itertext()) for t in root.iter(SVG + "text")]


def test_every_stage_and_both_ends_are_drawn_with_shapes_and_times():
    svg = render()
    drawn = " ".join(texts(svg))
    assert "Input image" in drawn and "Output image" in drawn
    for stage in SD_STAGES:
        assert stage.name in drawn, stage.name
    assert "3\u00d7192\u00d7192" in drawn and "1\u00d74\u00d748\u00d748" in drawn
    assert "1.20 s" in drawn and "4.20 s" in drawn and "<1 ms" in drawn
    # SD details: prompt, strength, steps and scheduler are shown
    assert "strength: 0.3" in drawn and "steps: 8" in drawn and "scheduler: DPMSolverMultistep" in drawn
    assert "prompt:" in drawn
    # one box per stage plus input and output: count outlined boxes (rounded rects)
    assert svg.count('rx="14"') == len(SD_STAGES) + 2


def test_user_text_is_escaped_and_the_svg_stays_well_formed():
    svg = render()
    assert "<script>" not in svg and "</text><text>" not in svg.replace("</text><text ", "")
    assert "&lt;script&gt;" in svg
    assert "&lt;b&gt;" in svg  # the engine name is escaped too
    ET.fromstring(svg)  # raises if the markup were broken
    ET.fromstring(render(standalone=True).split("?>", 1)[1])
    # the full prompt survives in the tooltip, escaped
    assert "&amp; &quot;quoted&quot; anime" in svg


def test_in_page_svg_takes_its_colours_from_the_page():
    """Light and dark pages: text and arrows use currentColor, never a fixed black/white."""
    svg = render()
    root = ET.fromstring(svg)
    for text in root.iter(SVG + "text"):
        assert text.get("fill") == "currentColor", ET.tostring(text)
    for path in root.iter(SVG + "path"):
        assert path.get("stroke") in (None, "currentColor") and path.get("fill") in ("none", "currentColor")
    assert "<style" not in svg  # no page-wide CSS leaks from an inline diagram
    assert not re.search(r'fill="#(000|fff|000000|ffffff)"', svg, re.IGNORECASE)


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_standalone_file_has_readable_light_and_dark_colours():
    svg = render(standalone=True)
    assert svg.startswith("<?xml")
    light = re.search(r"\.cnaps-diagram\{color:(#[0-9a-f]{6})\}.*?\.cnaps-bg\{fill:(#[0-9a-f]{6})\}", svg)
    dark = re.search(
        r"prefers-color-scheme: dark\)\{\.cnaps-diagram\{color:(#[0-9a-f]{6})\}\.cnaps-diagram \.cnaps-bg\{fill:(#[0-9a-f]{6})\}",
        svg,
    )
    assert light and dark
    assert contrast(*light.groups()) >= 7
    assert contrast(*dark.groups()) >= 7
    # box outlines must stay visible on both backgrounds
    for accent in diagram.ACCENTS.values():
        assert contrast(accent, light.group(2)) >= 2.5, accent
        assert contrast(accent, dark.group(2)) >= 2.5, accent


def test_type_is_big_enough_for_a_projector():
    svg = render()
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    # drawn 1200 px wide, the smallest text must still be >= 16 px on screen
    assert min(sizes) * 1200 / width >= 16


def test_many_stages_wrap_into_rows_and_stay_connected():
    stages = [StageRecord(f"stage {i}", (3, 8, 8), (3, 8, 8), 0.01) for i in range(9)]
    svg = diagram.render_svg(stages, input_shape=(3, 8, 8), output_shape=(3, 16, 16))
    drawn = " ".join(texts(svg))
    for i in range(9):
        assert f"stage {i}" in drawn
    assert svg.count("marker-end=") == 9 + 1  # n + 2 boxes, n + 1 arrows
    height = float(re.search(r'viewBox="0 0 [\d.]+ ([\d.]+)"', svg).group(1))
    one_row = diagram.render_svg(stages[:1], input_shape=(3, 8, 8), output_shape=(3, 16, 16))
    assert height > 2 * float(re.search(r'viewBox="0 0 [\d.]+ ([\d.]+)"', one_row).group(1))


def test_long_names_and_values_are_wrapped_not_dropped():
    stage = StageRecord("a" * 70, (3, 4, 4), (3, 8, 8), 0.5, {"model": "x" * 200})
    svg = diagram.render_svg([stage], input_shape=(3, 4, 4), output_shape=(3, 8, 8))
    assert "\u2026" in " ".join(texts(svg))  # visibly shortened
    assert "x" * 200 in svg  # but complete in the tooltip


@pytest.mark.parametrize("seconds, text", [(0.0001, "<1 ms"), (0.25, "250 ms"), (2.5, "2.50 s"), (250, "250 s")])
def test_format_seconds(seconds, text):
    assert diagram.format_seconds(seconds) == text


def test_diagram_of_a_real_run():
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    result = cnaps_demo.upscale(picture, engine="bicubic")
    svg = diagram.render_result(result)
    drawn = " ".join(texts(svg))
    assert result.stages[0].name in drawn
    assert "3\u00d720\u00d730" in drawn and "3\u00d740\u00d760" in drawn
    assert result.engine_name in drawn


def test_boxes_show_what_explains_the_picture_and_hover_keeps_the_rest():
    stage = StageRecord(
        "UNet x10 with CFG",
        (4, 64, 64),
        (4, 64, 64),
        1.5,
        {"scheduler": "DPMSolverMultistepScheduler", "cfg": True, "passes": 2, "compiled": False, "vae_tiling": True},
    )
    svg = diagram.render_svg([stage], input_shape=(3, 512, 512), output_shape=(3, 1024, 1024), engine_name="SD")
    root = ET.fromstring(svg)
    drawn = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "DPM-Solver++ (multistep)" in drawn  # a readable scheduler name, not the class name
    assert "vae tiling: True" in drawn  # a switch that is on is news
    assert "compiled" not in drawn and "passes" not in drawn and "cfg:" not in drawn
    hover = " ".join(t.text or "" for t in root.iter(f"{SVG}title"))
    assert "passes: 2" in hover and "compiled: False" in hover
