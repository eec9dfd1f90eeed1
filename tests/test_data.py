"""Datasets: true densities integrate to 1, match their own samples, and bad user data gets one sentence."""

import numpy as np
import pytest

from lab.data import DATASETS, DataError, load_points_csv, make_dataset, parse_points_csv, points_from_array


def _grid_integral(ds, m=300):
    x0, x1, y0, y1 = ds.bounds()
    gx, gy = np.linspace(x0, x1, m), np.linspace(y0, y1, m)
    xx, yy = np.meshgrid(gx, gy)
    p = np.exp(ds.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)))
    return p.sum() * (gx[1] - gx[0]) * (gy[1] - gy[0])


@pytest.mark.parametrize("name", list(DATASETS))
def test_true_density_integrates_to_one(name):
    assert abs(_grid_integral(make_dataset(name)) - 1) < 0.01


@pytest.mark.parametrize("name", list(DATASETS))
def test_samples_follow_the_density(name):
    """Mean log p of its own samples equals the entropy estimate from an independent sample, and is
    well above the mean log p of the same points shifted off the density."""
    ds = make_dataset(name)
    a = ds.log_prob(ds.sample(4000, seed=1))
    b = ds.log_prob(ds.sample(4000, seed=2))
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert abs(a.mean() - b.mean()) < 5 * se + 1e-3
    shifted = ds.log_prob(ds.sample(4000, seed=1) + 0.5 * ds.scale)
    assert shifted.mean() < a.mean() - 0.3


def test_sampling_is_seeded_and_scaled():
    ds = make_dataset("moons")
    assert np.array_equal(ds.sample(10, 3), ds.sample(10, 3))
    assert not np.array_equal(ds.sample(10, 3), ds.sample(10, 4))
    big = make_dataset("moons", scale=2.0)
    assert np.allclose(big.sample(10, 3), 2 * ds.sample(10, 3))
    x = ds.sample(50, 0)
    assert np.allclose(big.log_prob(2 * x), ds.log_prob(x) - 2 * np.log(2))


def test_mixture_density_is_exact():
    ds = make_dataset("8gaussians")
    m = ds.modes[0]
    # at a mode, the other 7 components are ~70 std away: p = 1/8 N(0; 0, s^2 I)
    assert np.isclose(ds.log_prob(m[None])[0], np.log(1 / 8) - np.log(2 * np.pi * 0.02**2), atol=1e-9)


def test_dataset_parameters_are_checked():
    with pytest.raises(DataError, match="Unknown dataset"):
        make_dataset("nope")
    with pytest.raises(DataError, match="no parameter"):
        make_dataset("moons", radius=1)
    with pytest.raises(DataError, match="outside"):
        make_dataset("moons", noise=-1)


def test_csv_with_and_without_header():
    a = parse_points_csv("x,y\n1,2\n3,4\n")
    b = parse_points_csv("1,2\n3,4\n\n")
    c = parse_points_csv("1;2\n3;4\n")
    for d in (a, b, c):
        assert d.points.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    "text, match",
    [
        ("x,y\n1,2\n3,nan\n", "Row 3 has a missing or infinite value"),
        ("1,2\n3,inf\n", "Row 2 has a missing or infinite value"),
        ("1,2\n3,hello\n", "Row 2 has 'hello', which is not a number"),
        ("1,2,3\n4,5,6\n", "Row 1 has 3 columns"),
        ("1\n2\n", "Row 1 has 1 column;"),
        ("x,y\n", "no data rows"),
        ("", "no data rows"),
        ("1,2\n", "only 1 data row"),
    ],
)
def test_bad_csv_gives_one_sentence(text, match):
    with pytest.raises(DataError, match=match) as e:
        parse_points_csv(text)
    assert "\n" not in str(e.value)


def test_limits_on_rows_and_bytes(tmp_path, monkeypatch):
    import lab.data as data

    monkeypatch.setattr(data, "MAX_ROWS", 10)
    with pytest.raises(DataError, match="more than 10 rows"):
        parse_points_csv("\n".join(f"{i},{i}" for i in range(20)))
    monkeypatch.setattr(data, "MAX_BYTES", 100)
    p = tmp_path / "big.csv"
    p.write_text("\n".join(f"{i},{i}" for i in range(100)))
    with pytest.raises(DataError, match="the limit is 50 MB"):
        load_points_csv(str(p))


def test_binary_and_missing_files(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\x00\x01\x02\xff\xfe")
    with pytest.raises(DataError, match="not text"):
        load_points_csv(str(p))
    with pytest.raises(DataError, match="no file"):
        load_points_csv(str(tmp_path / "missing.csv"))


def test_points_from_array():
    d = points_from_array([[0, 0], [1, 1], [2, 2]])
    assert d.points.shape == (3, 2) and not d.has_density
    with pytest.raises(DataError, match="two columns"):
        points_from_array(np.zeros((5, 3)))
    with pytest.raises(DataError, match="Point 2"):
        points_from_array([[0, 0], [np.nan, 1]])


def test_drawn_cells_round_trip_through_a_link():
    from lab.data import DRAW_GRID, cells_of_points, decode_cells, encode_cells, points_from_cells

    cells = [0, 7, 100, DRAW_GRID * DRAW_GRID - 1]
    text = encode_cells(cells)
    assert decode_cells(text).tolist() == cells and len(text) < 200
    ds = points_from_cells(cells, per_cell=10, seed=1)
    assert ds.points.shape == (40, 2)
    assert cells_of_points(ds.points).tolist() == cells  # every point lies in its own cell
    with pytest.raises(DataError, match="not readable"):
        decode_cells("!!")
    with pytest.raises(DataError, match="Nothing is drawn"):
        points_from_cells([])
