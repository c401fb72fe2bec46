"""``cnaps_demo.attribution``: the integrated-gradients function the app uses, on networks whose
answer is known; faithfulness on a bundled example (blurring the pixels it ranks highest changes the
output far more than blurring as many random pixels nearby); the spread; the typed errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import cnaps_demo
from cnaps_demo.errors import InvalidParameterError, JobCancelledError
from cnaps_demo.probe import integrated_gradients
from cnaps_demo.probe.lam import blur_path, detail_objective, gini, radius_holding, value_objective
from cnaps_demo.settings import get_settings

EXAMPLE = Path(cnaps_demo.__file__).parent / "examples" / "chibi_face.png"


def _averaging(layers: int):
    """A network of ``layers`` stacked 3x3 averaging convolutions (no padding): known weights."""
    import torch
    import torch.nn.functional as F

    weight = torch.full((3, 3, 3, 3), 1.0 / 27.0)

    def forward(x):
        for _ in range(layers):
            x = F.conv2d(x, weight)
        return x

    return forward


def _footprint(weights: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(weights > 0)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


@pytest.mark.parametrize(("layers", "side"), [(1, 3), (2, 5)])
def test_one_output_pixel_of_averaging_convolutions_comes_from_their_footprint(layers, side):
    crop = np.random.default_rng(layers).random((11, 11, 3), dtype=np.float32)
    network = _averaging(layers)
    centre = 5 - layers  # the output pixel over input pixel (5, 5)

    def forward(x):
        return network(x)[:, :, centre : centre + 1, centre : centre + 1]

    weights, signed = integrated_gradients(forward, crop, objective=value_objective, steps=20, batch=7)
    assert weights.shape == (11, 11) and (weights >= 0).all()
    half = side // 2
    assert _footprint(weights) == (5 - half, 6 + half, 5 - half, 6 + half)
    assert np.count_nonzero(weights) == side * side
    # Completeness: for a linear network the attributions add up to the change along the path.
    import torch

    image = torch.from_numpy(crop).permute(2, 0, 1)[None]
    change = float(forward(image).sum() - forward(_lam_start(crop)).sum())
    assert signed.sum() == pytest.approx(change, rel=1e-4, abs=1e-6)
    assert blur_path(crop, 20)[0][-1].numpy() == pytest.approx(crop.transpose(2, 0, 1), abs=1e-6)  # ends on the input


def _lam_start(crop: np.ndarray):
    """The path's start: the input blurred with LAM's widest kernel."""
    import torch
    import torch.nn.functional as F

    from cnaps_demo.probe.lam import LAM_KERNEL, LAM_SIGMA, gaussian_kernel

    kernel = torch.from_numpy(gaussian_kernel(LAM_KERNEL, LAM_SIGMA).astype(np.float32))[None, None].repeat(3, 1, 1, 1)
    image = torch.from_numpy(crop).permute(2, 0, 1)[None]
    half = LAM_KERNEL // 2
    return F.conv2d(F.pad(image, (half,) * 4, mode="reflect"), kernel, groups=3)


def test_the_detail_objective_reaches_the_window_and_the_kernel_only():
    """LAM's objective (the window's gradient magnitude) on a 2x2 output window: a 3x3 averaging
    convolution reads a 4x4 patch; two stacked read 6x6."""
    crop = np.random.default_rng(3).random((12, 12, 3), dtype=np.float32)
    for layers, side in ((1, 4), (2, 6)):
        network = _averaging(layers)
        start = 5 - layers

        def forward(x, network=network, start=start):
            return network(x)[:, :, start : start + 2, start : start + 2]

        weights, _ = integrated_gradients(forward, crop, objective=detail_objective, steps=10)
        top, bottom, left, right = _footprint(weights)
        assert (bottom - top, right - left) == (side, side)


def test_gini_and_the_radius_holding_the_mass():
    assert gini(np.ones((8, 8))) == pytest.approx(0.0)
    one = np.zeros((8, 8))
    one[3, 3] = 1.0
    assert gini(one) == pytest.approx(1 - 1 / 64)
    ring = np.zeros((20, 20))
    ring[10, 10] = 1.0  # inside the box
    ring[10, 15] = 9.0  # 4 pixels right of the box (10..11)
    assert radius_holding(ring, (10, 10, 11, 11)) == 5
    assert radius_holding(ring, (10, 10, 11, 11), share=0.1) == 0


@pytest.fixture(scope="module")
def found():
    return cnaps_demo.attribution(EXAMPLE, "realesrgan-anime", (474, 374))


def test_the_map_is_local_and_drawn(found):
    height, width = 384, 384
    assert found.map.shape == (height, width) and found.map.dtype == np.float32 and (found.map >= 0).all()
    assert found.receptive_field == 38 and not found.global_note
    left, top, right, bottom = found.field_box
    outside = found.map.copy()
    outside[top:bottom, left:right] = 0
    assert not outside.any()  # nothing beyond the receptive field
    assert found.window_box == (233, 183, 241, 191) and found.output_box == (466, 366, 482, 382)
    assert found.overlay.size == (width, height) and found.zoom.width > bottom - top
    assert 0 <= found.spread.radius90 <= 19 and 0 < found.spread.diffusion_index < 100
    assert f"within {found.spread.radius90} px" in found.reading or "inside the patch" in found.reading
    assert found.steps == 50 and found.seconds > 0


def test_blurring_the_top_ranked_pixels_changes_the_output_more_than_random_ones(found):
    """Faithfulness, with the engine itself (fp32, no colour fix) on a crop holding the field."""
    settings = dataclasses.replace(get_settings(), cpu_bf16=False)
    picture = Image.open(EXAMPLE).convert("RGB")
    original = np.asarray(picture, dtype=np.uint8)
    blurred = np.asarray(picture.filter(ImageFilter.GaussianBlur(2)), dtype=np.uint8)
    left, top, right, bottom = found.field_box
    crop = (left - 24, top - 24, right + 24, bottom + 24)
    window = found.output_box

    def window_after(pixels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        changed = original.copy()
        changed[pixels] = blurred[pixels]
        piece = Image.fromarray(changed).crop(crop)
        result = np.asarray(cnaps_demo.upscale(piece, "realesrgan-anime", colour_fix=False, settings=settings).image)
        box = [window[0] - 2 * crop[0], window[1] - 2 * crop[1], window[2] - 2 * crop[0], window[3] - 2 * crop[1]]
        return result[box[1] : box[3], box[0] : box[2]].astype(np.float64)

    untouched = window_after((np.array([], dtype=int), np.array([], dtype=int)))
    field = found.map[top:bottom, left:right]
    count = field.size // 20  # 5% of the receptive field's pixels
    ranked = np.argsort(-field, axis=None, kind="stable")[:count]
    top_rows, top_cols = np.unravel_index(ranked, field.shape)
    ranked_change = np.sqrt(((window_after((top_rows + top, top_cols + left)) - untouched) ** 2).mean())
    rng = np.random.default_rng(0)
    random_changes = []
    for _ in range(6):
        picks = rng.choice(field.size, size=count, replace=False)
        rows, cols = np.unravel_index(picks, field.shape)
        random_changes.append(np.sqrt(((window_after((rows + top, cols + left)) - untouched) ** 2).mean()))
    assert ranked_change > 3 * np.mean(random_changes) and ranked_change > max(random_changes)


def test_realcugan_says_its_se_blocks_reach_the_whole_picture():
    found = cnaps_demo.attribution(EXAMPLE, "realcugan", (100, 100), window=8, steps=10)
    assert found.receptive_field == 39 and "whole picture" in found.global_note
    assert (found.map >= 0).all() and found.map.sum() > 0
    left, top, right, bottom = found.field_box
    assert found.map[top:bottom, left:right].sum() == pytest.approx(found.map.sum())


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"point": (768, 10)}, "outside the 768x768 result"),
        ({"point": (-1, 10)}, "outside"),
        ({"point": "12"}, "2 whole numbers"),
        ({"point": (10, 10), "window": 1}, "window=1 is out of range"),
        ({"point": (10, 10), "window": 500}, "out of range"),
        ({"point": (10, 10), "steps": 1}, "steps=1 is out of range"),
        ({"point": (10, 10), "denoise": "9"}, "denoise"),
    ],
)
def test_bad_points_windows_and_steps_are_typed_errors(arguments, words):
    engine = "realcugan" if "denoise" in arguments else "realesrgan-anime"
    point = arguments.pop("point")
    with pytest.raises(InvalidParameterError, match=words):
        cnaps_demo.attribution(EXAMPLE, engine, point, **arguments)


def test_stop_lands_between_path_batches():
    calls = []

    def progress(done, total, text):
        calls.append(done)
        if "path step" in text:
            raise JobCancelledError()

    with pytest.raises(JobCancelledError):
        cnaps_demo.attribution(EXAMPLE, "realesrgan-anime", (200, 200), progress=progress)
    assert calls
