""""Why crisp, not averaged": several crisp candidates all agree with the small picture; their pixel
average agrees just as well and is softer than every one of them."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.present.why_crisp import STORY, crisp_candidates


def crisp_pair(size: int = 96) -> tuple[Image.Image, Image.Image]:
    """(a crisp drawing, its box-shrunk half): what a model's crisp 2x and its input look like."""
    big = Image.new("RGB", (size, size), (245, 235, 220))
    draw = ImageDraw.Draw(big)
    draw.ellipse((14, 10, 70, 66), fill=(60, 40, 120))
    draw.polygon([(50, 90), (92, 40), (92, 90)], fill=(220, 60, 40))
    draw.line((0, 30, 95, 80), fill=(10, 10, 10), width=3)
    return big, big.resize((size // 2, size // 2), Image.Resampling.BOX)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_average_of_the_candidates_is_softer_than_each_and_all_agree_with_the_small_picture(seed):
    big, small = crisp_pair()
    found = crisp_candidates(big, small, count=4, seed=seed)
    assert len(found.candidates) == 4 and found.scale == 2
    assert found.candidates[0].shift == (0, 0)  # the model's own answer comes first
    assert len({c.shift for c in found.candidates}) == 4
    for candidate in found.candidates:
        assert candidate.lr_psnr > 45  # shrunk back, each is the small picture (up to rounding)
        assert candidate.image.size == (2 * found.small.width, 2 * found.small.height)
        assert found.average_edge_energy < 0.85 * candidate.edge_energy
    assert found.average_lr_psnr > 45  # the average agrees just as well: pixels cannot tell them apart
    assert found.average.size == found.candidates[0].image.size


def test_another_seed_moves_the_candidates_differently_and_the_same_seed_repeats():
    big, small = crisp_pair()
    first, again, other = (crisp_candidates(big, small, seed=s) for s in (5, 5, 6))
    assert [c.shift for c in first.candidates] == [c.shift for c in again.candidates]
    assert first.average.tobytes() == again.average.tobytes()
    assert [c.shift for c in first.candidates] != [c.shift for c in other.candidates]


def test_it_works_on_the_detail_window_of_a_large_picture():
    big, small = crisp_pair(800)
    found = crisp_candidates(big, small)  # its speed is measured by benchmarks/learned_views.py
    left, top, right, bottom = found.box
    assert (right - left, bottom - top) == (48, 48)
    assert found.small.size == (48, 48)


def test_the_story_names_both_losses_and_bad_inputs_are_refused():
    assert "pixel" in STORY and "perceptual" in STORY and "adversarial" in STORY and "invent" in STORY
    big, small = crisp_pair()
    with pytest.raises(InvalidParameterError, match="whole multiple"):
        crisp_candidates(big.resize((95, 96)), small)
    with pytest.raises(InvalidParameterError, match="count"):
        crisp_candidates(big, small, count=1)
    with pytest.raises(InvalidParameterError, match="box"):
        crisp_candidates(big, small, box=(40, 40, 60, 60))
