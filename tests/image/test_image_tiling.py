"""Tiling (cnaps_demo.image.tiling): spans, seamless blending, context, tile counts."""

import numpy as np
import pytest

from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.image import count_tiles, tile_spans, tiled_apply


def nearest_x2(tile: np.ndarray) -> np.ndarray:
    return tile.repeat(2, axis=0).repeat(2, axis=1)


def box_blur_x2(tile: np.ndarray) -> np.ndarray:
    """A function that depends on neighbours (3x3 mean), so wrong context shows at borders."""
    padded = np.pad(tile, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blurred = sum(padded[dy : dy + tile.shape[0], dx : dx + tile.shape[1]] for dy in range(3) for dx in range(3)) / 9
    return nearest_x2(blurred)


@pytest.mark.parametrize("length,tile,overlap", [(10, 16, 4), (100, 32, 8), (600, 256, 32), (257, 256, 16)])
def test_spans_cover_everything_with_overlap(length, tile, overlap):
    spans = tile_spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a1 - b0 >= overlap, "neighbouring tiles must overlap"
        assert a1 - a0 <= tile
    covered = np.zeros(length, bool)
    for start, end in spans:
        covered[start:end] = True
    assert covered.all()


def test_pointwise_function_tiles_exactly():
    rng = np.random.default_rng(0)
    image = rng.random((70, 90, 3), dtype=np.float32)
    whole = nearest_x2(image)
    tiled = tiled_apply(image, nearest_x2, scale=2, tile=32, overlap=8)
    assert tiled.shape == (140, 180, 3)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_context_gives_neighbours_so_tiles_match_whole_run():
    rng = np.random.default_rng(1)
    image = rng.random((64, 64, 3), dtype=np.float32)
    whole = tiled_apply(image, box_blur_x2, scale=2, tile=0, context=2)
    tiled = tiled_apply(image, box_blur_x2, scale=2, tile=24, overlap=4, context=2)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # Without context each tile sees edge-padding at its borders: the result differs.
    no_context = tiled_apply(image, box_blur_x2, scale=2, tile=24, overlap=4, context=0)
    assert np.abs(no_context - whole).max() > 1e-3


def test_progress_reports_every_tile():
    image = np.zeros((50, 50, 3), np.float32)
    events = []
    tiled_apply(image, nearest_x2, scale=2, tile=20, overlap=4, progress=lambda d, t, s: events.append((d, t)))
    total = events[-1][1]
    assert [d for d, _ in events] == list(range(1, total + 1))
    assert total == len(tile_spans(50, 20, 4)) ** 2


def test_alpha_channel_passes_through():
    image = np.random.default_rng(2).random((40, 40, 4), dtype=np.float32)
    out = tiled_apply(image, nearest_x2, scale=2, tile=16, overlap=4)
    np.testing.assert_allclose(out[..., 3], nearest_x2(image)[..., 3], atol=1e-6)


@pytest.mark.parametrize("tile,overlap", [(8, 0), (32, 16), (32, -1)])
def test_bad_tiling_parameters_are_refused(tile, overlap):
    with pytest.raises(InvalidParameterError):
        tiled_apply(np.zeros((64, 64, 3), np.float32), nearest_x2, scale=2, tile=tile, overlap=overlap)


@pytest.mark.parametrize(
    "height,width,tile,overlap",
    [(50, 50, 20, 4), (70, 90, 32, 8), (64, 64, 24, 4), (17, 300, 64, 16), (40, 40, 40, 8), (40, 41, 40, 8)],
)
def test_count_tiles_matches_what_tiled_apply_cuts(height, width, tile, overlap):
    calls = []

    def counting(piece):
        calls.append(piece.shape)
        return nearest_x2(piece)

    tiled_apply(np.zeros((height, width, 3), np.float32), counting, scale=2, tile=tile, overlap=overlap)
    assert count_tiles(height, width, tile, overlap) == len(calls)
    assert count_tiles(height, width, tile, overlap) == len(tile_spans(height, tile, overlap)) * len(
        tile_spans(width, tile, overlap)
    )


def test_count_tiles_is_one_without_tiling_or_when_a_tile_covers_the_image():
    assert count_tiles(5000, 3000, 0, 16) == 1
    assert count_tiles(5000, 3000, -1, 16) == 1
    assert count_tiles(256, 100, 256, 32) == 1
    assert count_tiles(257, 100, 256, 32) == 2  # height needs two, width one
    assert count_tiles(100, 257, 256, 32) == 2  # and the other way round: (height, width) order
    assert count_tiles(600, 600, 256, 32) == 9
