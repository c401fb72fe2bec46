"""The pipeline diagram: every stage drawn with pictures, user text escaped, every text inside
its box in both layouts, one shape notation, legible in light and dark themes."""

import base64
import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tiny_sd
from PIL import Image

import cnaps_demo
from cnaps_demo.engines.diffusion import release_pipelines
from cnaps_demo.present import diagram
from cnaps_demo.present.diagram_text import text_width
from cnaps_demo.present.examples import examples_dir
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
LONG_PROMPT = (
    "anime illustration, clean line art, sharp details, high quality, masterpiece, pastel colours, "
    "soft lighting, detailed eyes, WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW mmmmmmmmmmmmmmmmmmmmmmmm"
)


def render(stages=SD_STAGES, **kwargs):
    return diagram.render_svg(
        stages, input_shape=(3, 192, 192), output_shape=(3, 384, 384), engine_name="SD img2img <b>", **kwargs
    )


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.split("?>", 1)[-1])


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in parse(svg).iter(SVG + "text")]


# --- real runs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_tiled():
    """Real-CUGAN on a picture bigger than its tile: SE statistics over the whole image, then tiles."""
    picture = Image.open(examples_dir() / "starry_night.png").convert("RGB").crop((0, 0, 200, 128))
    result = cnaps_demo.upscale(picture, engine="realcugan", tile=64)
    assert any("statistics" in stage.name for stage in result.stages)
    assert max(int(stage.detail.get("tiles", 1)) for stage in result.stages) > 1
    return result


@pytest.fixture(scope="module")
def classical():
    return cnaps_demo.upscale(Image.open(examples_dir() / "cat_sticker.png"), engine="bicubic")


@pytest.fixture(scope="module")
def sd_run(tmp_path_factory):
    """Tiny SD img2img with a long prompt and a negative prompt (the real engine, random weights)."""
    folder = tiny_sd.build_img2img_folder(tmp_path_factory.mktemp("tiny-sd-diagram"))
    engine = cnaps_demo.get_engine("sd-img2img")
    extra = {"controlnet": "none"} if any(p.name == "controlnet" for p in engine.params) else {}
    result = cnaps_demo.upscale(
        tiny_sd.noise_image(40, 32),
        "sd-img2img",
        model=str(folder),
        steps=4,
        strength=0.5,
        device="cpu",
        pre_upscaler="lanczos",
        prompt=LONG_PROMPT,
        negative_prompt="blurry, lowres, jpeg artifacts, watermark, signature, text, extra fingers",
        **extra,
    )
    yield result
    release_pipelines()


@pytest.fixture(params=["cnn_tiled", "classical", "sd_run"])
def real_result(request):
    return request.getfixturevalue(request.param)


def _frame(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect[@class='cnaps-frame']")
    return tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))


def _assert_inside(element: ET.Element, box: tuple[float, float, float, float], where: str) -> None:
    bx, by, bw, bh = box
    if element.tag == SVG + "text":
        size = float(element.get("font-size"))
        x, y = float(element.get("x")), float(element.get("y"))
        text = "".join(element.itertext())
        bold, mono = element.get("font-weight") == "700", element.get("font-family") is not None
        width = text_width(text, size, bold=bold, mono=mono)
        left, right, top, bottom = x, x + width, y - 0.8 * size, y + 0.25 * size  # ascent and descent
    else:
        left, top = float(element.get("x")), float(element.get("y"))
        right, bottom = left + float(element.get("width")), top + float(element.get("height"))
        text = "picture"
    assert bx <= left and right <= bx + bw and by <= top and bottom <= by + bh, (where, text, (left, right), box)


def assert_everything_fits(svg: str) -> int:
    """Every text (by a conservative width estimate) and picture lies inside its box; the free
    texts (title, caption) inside the margins. Returns how many texts were checked."""
    root = parse(svg)
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    checked = 0
    boxed = set()
    for group in root.iter(SVG + "g"):
        if group.get("class") != "cnaps-box":
            continue
        frame = _frame(group)
        assert frame[0] >= 0 and frame[0] + frame[2] <= width and frame[1] + frame[3] <= height
        for element in list(group.iter(SVG + "text")) + list(group.iter(SVG + "image")):
            _assert_inside(element, frame, "box")
            boxed.add(id(element))
            checked += element.tag == SVG + "text"
    page = (diagram.MARGIN, 0, width - 2 * diagram.MARGIN, height)
    for element in root.iter(SVG + "text"):
        if id(element) not in boxed:
            _assert_inside(element, page, "page")
            checked += 1
    return checked


@pytest.mark.parametrize("layout", diagram.LAYOUTS)
def test_every_text_of_real_runs_lies_inside_its_box(real_result, layout):
    svg = diagram.render_result(real_result, layout=layout)
    assert assert_everything_fits(svg) >= 8
    drawn = " ".join(texts(svg))
    # nothing of the run is lost: each stage is named (perhaps shortened) and complete on hover
    for stage in real_result.stages:
        assert stage.name.split()[0] in drawn and diagram.esc(stage.name) in svg


def test_long_prompt_is_shortened_in_the_box_but_complete_on_hover(sd_run):
    for layout in diagram.LAYOUTS:
        svg = diagram.render_result(sd_run, layout=layout)
        drawn = " ".join(texts(svg))
        assert "prompt: \u201canime illustration" in drawn and "\u2026" in drawn
        assert "mmmmmmmmmmmmmmmmmmmmmmmm" not in drawn  # the tail is cut from the box...
        hover = " ".join(t.text or "" for t in parse(svg).iter(f"{SVG}title"))
        assert LONG_PROMPT in hover  # ...and kept in the tooltip


def test_hostile_text_fits_too():
    stage = StageRecord(
        "W" * 80,
        (1, 3, 320, 512),
        (1, 3, 640, 1024),
        1e9,
        {"prompt": "\u65e5\u672c\u8a9e" * 30 + "\U0001f3a8" * 20, "model": "m" * 300, "k": "MW@%" * 50},
    )
    many = [StageRecord(f"stage {i} " + "mmmm " * 12, (2, 4, 99999, 99999), (3, 8, 8), 0.01) for i in range(5)]
    for layout in diagram.LAYOUTS:
        svg = diagram.render_svg(
            [stage, *many],
            input_shape=(4, 99999, 12345),
            output_shape=(4, 199998, 24690),
            engine_name="WWWWWWWWWW " * 12,
            layout=layout,
            input_image=Image.new("RGBA", (3000, 20)),
            output_image=Image.new("L", (8, 900)),
        )
        assert assert_everything_fits(svg) > 20


def test_the_estimate_is_an_upper_bound_for_real_fonts():
    """The width estimate never falls short of the widths Pillow measures for the fonts a page
    may fall back to (Pillow's own font always; DejaVu and Liberation where installed)."""
    from PIL import ImageFont

    fonts = [(ImageFont.load_default(size=100), False)]
    for path, bold in (
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", False),
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", True),
        ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", False),
        ("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf", True),
        ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", None),
    ):
        try:
            fonts.append((ImageFont.truetype(path, 100), bold))
        except OSError:
            continue
    samples = [
        "Real-CUGAN UNet x2 (se, conservative)",
        "Real-ESRGAN SRVGGNetCompact x2 (animevideov3)",
        "320\u00d7512\u00d73 \u2192 640\u00d71024\u00d73",
        "prompt: \u201canime illustration, clean line art\u2026\u201d",
        "WWW MMM mmm %%% @@@ www",
        "iiii llll ....",
    ]
    for font, bold in fonts:
        for sample in samples:
            measured = font.getlength(sample)
            estimate = text_width(sample, 100, bold=bool(bold), mono=bold is None)
            assert estimate >= measured, (sample, font.getname(), estimate, measured)
            if bold is not None:
                assert estimate <= 1.6 * measured + 100, sample  # conservative, not absurd


# --- pictures -----------------------------------------------------------------------------------


def _pictures(svg: str) -> list[tuple[ET.Element, Image.Image]]:
    out = []
    for element in parse(svg).iter(SVG + "image"):
        href = element.get("href")
        assert href.startswith("data:image/")
        out.append((element, Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1])))))
    return out


def _on_white(image: Image.Image) -> np.ndarray:
    rgba = image.convert("RGBA")
    return np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB"), dtype=float)


def test_input_and_output_boxes_show_the_pictures(cnn_tiled, classical):
    for result in (cnn_tiled, classical):
        pictures = _pictures(diagram.render_result(result))
        assert len(pictures) == 2  # input and output; no stage of these runs has a preview
        (_, shown_in), (_, shown_out) = pictures
        assert max(shown_in.size) <= 200 and max(shown_out.size) <= 200  # small data URIs
        for shown, full in ((shown_in, result.input_image), (shown_out, result.image)):
            assert abs(shown.width / shown.height - full.width / full.height) < 0.05
            small = _on_white(full.convert("RGBA").resize(shown.size, Image.Resampling.BOX))
            assert np.abs(_on_white(shown) - small).mean() < 12  # the same picture
    # transparency survives in the thumbnail of a sticker
    (_, sticker), _ = _pictures(diagram.render_result(classical))
    assert sticker.mode in ("RGBA", "P") and "A" in sticker.convert("RGBA").getbands()
    assert np.asarray(sticker.convert("RGBA"))[0, 0, 3] == 0


def test_a_stage_preview_is_drawn_with_crisp_pixels():
    latent = Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8))
    stages = [*SD_STAGES[:2], StageRecord("VAE encoder", (3, 96, 128), (4, 12, 16), 0.1, preview=latent)]
    svg = render(stages)
    pictures = _pictures(svg)
    assert len(pictures) == 1  # render_svg without pictures of the ends: only the preview
    element, shown = pictures[0]
    assert shown.size == (16, 12) and np.array_equal(np.asarray(shown.convert("RGB")), np.asarray(latent))  # lossless
    assert float(element.get("width")) > 3 * 16 and "pixelated" in element.get("style", "")
    assert_everything_fits(svg)
    assert StageRecord("a", (1,), (1,), 0.0) == StageRecord("a", (1,), (1,), 0.0, preview=latent)  # not compared


# --- notation, titles, layouts -------------------------------------------------------------------


SHAPE = re.compile(r"\d+(?:\u00d7\d+)+")


def test_one_shape_notation_stated_once(cnn_tiled, sd_run):
    for result in (cnn_tiled, sd_run):
        svg = diagram.render_result(result)
        drawn = " ".join(texts(svg))
        assert drawn.count("height \u00d7 width \u00d7 channels") == 1
        for shape in SHAPE.findall(drawn):
            dims = [int(v) for v in shape.split("\u00d7")]
            if len(dims) == 3:
                assert dims[-1] <= 8, shape  # channels last
        width, height = result.input_image.size
        assert f"{height}\u00d7{width}\u00d73" in drawn
        assert f"1\u00d73\u00d7{height}" not in drawn and f"3\u00d7{height}\u00d7{width}" not in drawn
    cnn = " ".join(texts(diagram.render_result(cnn_tiled))).lower()
    assert "latent" not in cnn  # a CNN has no latent
    sd = " ".join(texts(diagram.render_result(sd_run))).lower()
    assert "latent" in sd


@pytest.mark.parametrize("layout", diagram.LAYOUTS)
def test_real_titles_are_not_cut(layout):
    for name in (
        "Real-ESRGAN animevideov3 (anime CNN)",
        "Stable Diffusion img2img (DreamShaper 8)",
        "Real-CUGAN (anime CNN)",
    ):
        long_name = "Real-ESRGAN SRVGGNetCompact x2 (animevideov3)"
        stages = [StageRecord(long_name, (1, 3, 320, 512), (1, 3, 640, 1024), 1.0)]
        svg = diagram.render_svg(
            stages, input_shape=(3, 320, 512), output_shape=(3, 640, 1024), engine_name=name, layout=layout
        )
        drawn = texts(svg)
        assert "\u2026" not in " ".join(drawn), drawn
        assert " ".join(drawn).startswith(name)
        assert "Real-ESRGAN SRVGGNetCompact x2 (animevideov3)" in " ".join(drawn)


def test_vertical_layout_is_one_legible_column(sd_run):
    svg = diagram.render_result(sd_run, layout="vertical")
    root = parse(svg)
    width = float(root.get("viewBox").split()[2])
    frames = [_frame(g) for g in root.iter(SVG + "g") if g.get("class") == "cnaps-box"]
    assert len(frames) == len(sd_run.stages) + 2
    assert len({x for x, _, _, _ in frames}) == 1  # one column
    assert all(b[1] > a[1] + a[3] for a, b in zip(frames, frames[1:]))  # stacked top to bottom
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert min(sizes) * 358 / width >= 13  # on a 390 px phone (358 px of content), at least 13 px type
    assert svg.count("marker-end=") == len(frames) - 1


def test_responsive_fragment_holds_both_layouts_and_the_css_picks_one(classical):
    fragment = diagram.render_responsive(classical)
    wide, tall = fragment.split('<div class="cnaps-diagram-tall">')
    assert "cnaps-diagram-horizontal" in wide and "cnaps-diagram-vertical" in tall
    ids = re.findall(r'id="([^"]+)"', fragment)
    assert len(ids) == len(set(ids))  # two SVGs on one page: no clashing ids
    assert ".cnaps-diagram-tall{display:none}" in diagram.RESPONSIVE_CSS
    assert f"max-width: {diagram.STACK_BELOW_PX}px" in diagram.RESPONSIVE_CSS
    with pytest.raises(ValueError):
        diagram.render_result(classical, layout="diagonal")


# --- the rules kept from before ------------------------------------------------------------------


def test_every_stage_and_both_ends_are_drawn_with_shapes_and_times():
    svg = render()
    drawn = " ".join(texts(svg))
    assert "Input image" in drawn and "Output image" in drawn
    for stage in SD_STAGES:
        assert stage.name in drawn, stage.name
    assert "192\u00d7192\u00d73" in drawn and "48\u00d748\u00d74" in drawn
    assert "1.20 s" in drawn and "4.20 s" in drawn and "<1 ms" in drawn
    assert "strength: 0.3" in drawn and "steps: 8" in drawn and "scheduler: DPMSolverMultistep" in drawn
    assert "prompt:" in drawn
    assert svg.count('class="cnaps-frame"') == len(SD_STAGES) + 2


def test_user_text_is_escaped_and_the_svg_stays_well_formed():
    svg = render()
    assert "<script>" not in svg and "</text><text>" not in svg.replace("</text><text ", "")
    assert "&lt;script&gt;" in svg
    assert "&lt;b&gt;" in svg  # the engine name is escaped too
    ET.fromstring(svg)  # raises if the markup were broken
    ET.fromstring(render(standalone=True).split("?>", 1)[1])
    assert "&amp; &quot;quoted&quot; anime" in svg  # the full prompt survives in the tooltip, escaped


def test_in_page_svg_takes_its_colours_from_the_page():
    """Light and dark pages: text and arrows use currentColor, never a fixed black/white."""
    for layout in diagram.LAYOUTS:
        svg = render(layout=layout)
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
    for accent in diagram.ACCENTS.values():  # box outlines stay visible on both backgrounds
        assert contrast(accent, light.group(2)) >= 2.5, accent
        assert contrast(accent, dark.group(2)) >= 2.5, accent


def test_type_is_big_enough_for_a_projector():
    svg = render(stages=[*SD_STAGES, StageRecord("x", (3, 8, 8), (3, 8, 8), 0.1, {"model": "m" * 31})])
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert min(sizes) * 1200 / width >= 16  # drawn 1200 px wide, the smallest text is still >= 16 px


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
    assert_everything_fits(svg)


@pytest.mark.parametrize("seconds, text", [(0.0001, "<1 ms"), (0.25, "250 ms"), (2.5, "2.50 s"), (250, "250 s")])
def test_format_seconds(seconds, text):
    assert diagram.format_seconds(seconds) == text


@pytest.mark.parametrize(
    "shape, text",
    [
        ((384, 384, 3), "384\u00d7384\u00d73"),  # H, W, C as decoded
        ((1, 3, 384, 512), "384\u00d7512\u00d73"),  # a batch of one, channels first
        ((4, 48, 64), "48\u00d764\u00d74"),  # a latent
        ((8, 24, 24), "24\u00d724\u00d78"),  # the latent upscaler's input
        ((1, 384), "384 values"),
        ((77, 768), "77\u00d7768"),
    ],
)
def test_format_shape_uses_height_width_channels(shape, text):
    assert diagram.format_shape(shape) == text


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
