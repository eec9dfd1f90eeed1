"""The brush's pure functions: strokes -> painted cells -> points, and the painting in a link."""

import numpy as np
import pytest

from lab.data import (
    BRUSH_GRID,
    DataError,
    decode_paint,
    encode_cells,
    encode_paint,
    paint_strokes,
    points_from_paint,
)


def typical_drawing() -> np.ndarray:
    """Three strokes with a medium brush: a ring, an arc and a bar (what a user draws in a lecture)."""
    t = np.linspace(0, 2 * np.pi, 60)
    ring = np.stack([2.0 * np.cos(t), 2.0 * np.sin(t)], 1)
    arc = np.stack([np.linspace(-3, 3, 30), 0.3 * np.linspace(-3, 3, 30) ** 2 - 3], 1)
    bar = np.array([[-3.0, 3.0], [-1.0, 3.2], [1.0, 2.9], [3.0, 3.1]])
    return paint_strokes([(ring, 0.35, 2), (arc, 0.3, 3), (bar, 0.25, 4)])


def test_strokes_paint_near_the_polyline_and_the_eraser_clears():
    lv = paint_strokes([(np.array([[-2.0, 0.0], [2.0, 0.0]]), 0.3, 3)])
    assert set(np.unique(lv)) == {0, 3}
    pts = points_from_paint(lv, seed=0).points
    assert np.abs(pts[:, 1]).max() < 0.6 and pts[:, 0].min() > -2.6 and pts[:, 0].max() < 2.6
    erased = paint_strokes([(np.array([[0.0, 0.0]]), 1.0, 0)], lv)
    assert (
        erased.sum() < lv.sum()
        and not erased.reshape(BRUSH_GRID, BRUSH_GRID)[BRUSH_GRID // 2, BRUSH_GRID // 2]
    )


def test_points_follow_density_and_seed():
    one = paint_strokes([(np.array([[0.0, 0.0]]), 0.5, 1)])
    four = paint_strokes([(np.array([[0.0, 0.0]]), 0.5, 4)])
    assert len(points_from_paint(four).points) == 4 * len(points_from_paint(one).points)
    a, b = points_from_paint(four, seed=3).points, points_from_paint(four, seed=3).points
    assert np.array_equal(a, b) and not np.array_equal(a, points_from_paint(four, seed=4).points)
    with pytest.raises(DataError):
        points_from_paint(np.zeros(BRUSH_GRID * BRUSH_GRID))


def test_a_typical_drawing_fits_a_link_and_round_trips():
    lv = typical_drawing()
    text = encode_paint(lv)
    assert text.startswith("p") and len(text) < 1000, len(text)
    assert np.array_equal(decode_paint(text), lv)
    assert encode_paint(np.zeros_like(lv)) == "" and not decode_paint("").any()


def test_an_old_cell_link_still_decodes():
    lv = decode_paint(encode_cells([0, 5]))
    assert lv.reshape(BRUSH_GRID, BRUSH_GRID)[:2, :2].min() == 4 and (lv > 0).sum() == 8


@pytest.mark.parametrize("bad", ["p", "p!!!", "pAAAA", "p" + "A" * 50, "zzz"])
def test_a_bad_link_is_a_data_error(bad):
    with pytest.raises(DataError):
        decode_paint(bad)
