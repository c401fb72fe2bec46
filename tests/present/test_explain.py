"""The Explain tab for a room: three short visual sections, the long text folded, sources linked."""

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from cnaps_demo.present import explain_figures as fig
from cnaps_demo.present.explain import explanation_html
from cnaps_demo.present.references import REFERENCES, reference_urls

VOID = {"br", "img", "hr", "meta", "input", "source", "wbr"}
SVG_VOID = {"rect", "circle", "path"}  # written self-closed inside the figures


class Outline(HTMLParser):
    """Sections, links and the words a reader sees without opening any "Read more"."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.sections: list[dict] = []
        self.links: list[dict] = []

    def _in(self, tag: str) -> bool:
        return tag in self.stack

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append({"id": attrs.get("id"), "visible": [], "folded": [], "svg": 0, "chains": 0,
                                  "details": 0})
        if self.sections:
            current = self.sections[-1]
            current["svg"] += tag == "svg"
            current["chains"] += tag == "ol" and "cnaps-chain" in attrs.get("class", "")
            current["details"] += tag == "details"
        if tag == "a":
            self.links.append({**attrs, "folded": self._in("details")})
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        if not self.sections or self._in("svg") or self._in("summary"):
            return
        words = data.split()
        self.sections[-1]["folded" if self._in("details") else "visible"] += words


def outline() -> Outline:
    parser = Outline()
    parser.feed(explanation_html())
    parser.close()
    assert parser.stack == [], parser.stack  # every tag closed
    return parser


def test_three_sections_each_short_visual_and_with_the_long_text_folded():
    sections = outline().sections
    assert [s["id"] for s in sections] == ["task", "paths", "why"]
    for section in sections:
        assert section["details"] >= 1  # "Read more"
        assert section["svg"] >= 1  # a figure
        assert len(section["folded"]) > len(section["visible"]) / 2, section["id"]  # the long text is folded
    task, paths, why = sections
    assert len(task["visible"]) <= 60 and len(why["visible"]) <= 200  # why: also lists the sources
    assert paths["chains"] == 3 and len(paths["visible"]) <= 200
    assert "Read more" in explanation_html()


def test_each_path_is_drawn_as_an_input_model_output_chain():
    html = explanation_html()
    for steps in (fig.CLASSICAL_CHAIN, fig.CNN_CHAIN, fig.SD_CHAIN):
        assert fig.chain(steps) in html
        assert steps[0][0] == "picture" and steps[-1][0] == "picture"  # input ... output
    sd = [label for _, label in fig.SD_CHAIN]
    order = ["VAE encoder", "latent", "noise", "CLIP text", "UNet", "VAE decoder"]
    positions = [next(i for i, label in enumerate(sd) if word in label) for word in order]
    assert positions == sorted(positions)
    assert any("4 channels" in label and "1/8" in label for label in sd)


def test_sources_are_visible_links_to_exactly_the_references():
    parser = outline()
    assert {link["href"] for link in parser.links} == set(reference_urls())
    for link in parser.links:
        assert not link["folded"], link["href"]  # one click away, never hidden behind "Read more"
        assert link.get("target") == "_blank" and "noopener" in link.get("rel", "")
    text = re.sub(r"<[^>]+>", " ", explanation_html())
    for ref in REFERENCES:
        assert ref.short in text
    assert "Lykon/dreamshaper-8" in explanation_html()


def test_figures_are_well_formed_svg_coloured_by_the_page():
    html = explanation_html()
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) >= 2 + len(fig.SD_CHAIN)
    for svg in svgs:
        root = ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
        for text in root.iter("{http://www.w3.org/2000/svg}text"):
            assert text.get("fill") == "currentColor"
    task = fig.task_figure()
    assert task.count(">?</text>") == 27  # 3 of every 4 pixels of the 2x picture are new


def test_the_why_figure_contrasts_a_soft_ramp_with_a_crisp_line():
    soft, crisp = fig._interpolated(), fig._crisp()
    colours = lambda grid: {c for row in grid for c in row}  # noqa: E731
    assert colours(crisp) <= {fig._SKIN, fig._INK, fig._HAIR}  # flat fills and an outline only
    assert len(colours(soft)) > 6  # averaging makes in-between shades


def test_every_source_has_a_short_tagline_for_the_visible_list():
    for ref in REFERENCES:
        assert 3 <= len(ref.tagline.split()) <= 14, ref.key
