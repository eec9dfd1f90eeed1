"""Datasets: true densities integrate to 1, match their own samples, and bad user data gets one sentence."""

import functools
import io

import numpy as np
import pytest

from lab.data import DATASETS, DataError, load_points_csv, make_dataset, parse_points_csv, points_from_array


@functools.cache
def _grid(name, m=300):
    """(integral of p, entropy -integral of p log p) by the midpoint rule on an m x m grid over the plot window."""
    ds = make_dataset(name)
    x0, x1, y0, y1 = ds.bounds()
    gx, gy = np.linspace(x0, x1, m), np.linspace(y0, y1, m)
    xx, yy = np.meshgrid(gx, gy)
    lp = ds.log_prob(np.stack([xx.ravel(), yy.ravel()], 1))
    p, area = np.exp(lp), (gx[1] - gx[0]) * (gy[1] - gy[0])
    return p.sum() * area, -(p * lp).sum() * area


@pytest.mark.parametrize("name", list(DATASETS))
def test_true_density_integrates_to_one(name):
    assert abs(_grid(name)[0] - 1) < 0.01


@pytest.mark.parametrize("name", list(DATASETS))
def test_samples_follow_the_density(name):
    """The sampler and the density agree: -mean log p over the sampler's points (a Monte Carlo cross-entropy)
    equals the entropy -integral p log p on a grid, which only the density defines; a sampler with the wrong noise
    or the wrong mixture weights moves the first and not the second. Shifted points score well below."""
    ds = make_dataset(name)
    a = ds.log_prob(ds.sample(4000, seed=1))
    se = a.std() / np.sqrt(len(a))
    entropy = _grid(name)[1]
    assert abs(-a.mean() - entropy) < 4 * se + 0.005, (-a.mean(), entropy, se)
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
    with pytest.raises(DataError, match=r"n_rings must be a whole number, got 2.5\."):
        make_dataset("rings", n_rings="2.5")
    with pytest.raises(DataError, match=r"scale=inf is outside \[0.1, 10.0\]"):
        make_dataset("moons", scale="1e400")
    with pytest.raises(DataError, match=r"n_rings=inf is outside"):
        make_dataset("rings", n_rings="inf")
    with pytest.raises(DataError, match="must be a number, got 'xxx"):
        make_dataset("moons", noise="x" * 10_000)
    assert make_dataset("rings", n_rings="3").n_rings == 3 and isinstance(
        make_dataset("rings", n_rings="3.0").n_rings, int
    )


def _rows(n, sep=","):
    return "".join(f"{i}{sep}{i % 7}\n" for i in range(n))


def test_csv_with_and_without_header():
    want = [[i, i % 7] for i in range(10)]
    for text in ("x,y\n" + _rows(10), _rows(10) + "\n\n", _rows(10, ";"), "\n" + _rows(10, "\t")):
        assert parse_points_csv(text).points.tolist() == want


GOOD = _rows(12)


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "x,y\n1,2\n3,nan\n",
            "Row 3 has a missing or infinite value (NaN or inf).",
        ),
        ("1,2\n3,inf\n", "Row 2 has a missing or infinite value"),
        ("1,2\n3,-inf\n", "Row 2 has a missing or infinite value"),
        ("1,2\n3,1e400\n", "Row 2 has a missing or infinite value"),
        ("1,2\n3,1e300\n", "Row 2 has a coordinate beyond +-1e+15"),
        ("1,2\n3,hello\n", "Row 2 has 'hello', which is not a number"),
        ("1,2\n3,\n", "only 1 complete row (and 1 with a missing coordinate); at least 10 complete rows"),
        (",2\n3,4\n", "only 1 complete row (and 1 with"),
        ("1,2,3\n4,5,6\n", "Row 1 has 3 columns"),
        ("1\n2\n", "Row 1 has 1 column;"),
        ("x,y\n", "no data rows"),
        ("", "no data rows"),
        ("\n\n  \n", "no data rows"),
        ("1,2\n", "only 1 data row;"),
        ("1,2\n3,4\n", "only 2 data rows; at least 10"),
        ("x,y\n" + "1.5,2\n" * 50, "All 50 points are the same point (1.5, 2)"),
        ("".join(f"{i},3\n" for i in range(50)), "Every point has y = 3 (column 2 never changes)"),
        ("".join(f"7,{i}\n" for i in range(50)), "Every point has x = 7 (column 1 never changes)"),
        (
            "".join(f"{i},{48.1 + (i % 2) * 1e-5}\n" for i in range(50)),
            "Column 2 (y) varies by only 1e-05 around 48.1,",
        ),
        (
            "".join(f"{1e9 + i * 1e-6},{i}\n" for i in range(50)),
            "Column 1 (x) varies by only 4.9e-05 around 1e+09",
        ),  # float32
        (GOOD + '"' + "9" * 200_000 + '",1\n', "Row 13 is not readable CSV"),  # a cell past csv's field limit
        (GOOD + "1,2\n3,4,5\n", "Row 14 has 3 columns"),
    ],
)
def test_bad_csv_gives_one_sentence(text, match):
    with pytest.raises(DataError) as e:
        parse_points_csv(text)
    assert match in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_points_to_score_need_one_row_but_the_same_checks_per_row():
    assert parse_points_csv("1,2\n", training=False).points.tolist() == [[1, 2]]
    assert parse_points_csv("1,2\n1,2\n", training=False).points.shape == (2, 2)
    for text, match in (
        ("", "no data rows"),
        ("1,nan\n", "Row 1 has a missing"),
        ("1,\n", "Row 1 has an empty cell"),
    ):
        with pytest.raises(DataError, match=match):
            parse_points_csv(text, training=False)


def test_a_million_rows_and_60_megabytes_are_refused_at_the_real_limits(tmp_path):
    """No monkeypatched limit: 1,000,001 rows, and a 60 MB file (sparse: its size is refused before any read)."""
    with pytest.raises(DataError, match=r"more than 1,000,000 rows \(row 1,000,001 is one too many\)"):
        parse_points_csv(_rows(1_000_001))
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(60 * 2**20)
    with pytest.raises(DataError, match="The file is 60 MB; the limit is 50 MB."):
        load_points_csv(str(big))
    with pytest.raises(DataError, match="The file is 60 MB; the limit is 50 MB."):
        load_points_csv(b"1,2\n" * (15 * 2**20))


def test_limits_on_rows_and_bytes(tmp_path, monkeypatch):
    from lab import data

    monkeypatch.setattr(data, "MAX_ROWS", 10)
    with pytest.raises(DataError, match="more than 10 rows"):
        parse_points_csv("\n".join(f"{i},{i}" for i in range(20)))
    monkeypatch.setattr(data, "MAX_BYTES", 100)
    p = tmp_path / "big.csv"
    p.write_text("\n".join(f"{i},{i}" for i in range(100)))
    with pytest.raises(DataError, match="the limit is 100 bytes"):
        load_points_csv(str(p))


def test_a_stream_is_read_only_to_the_limit(monkeypatch):
    """An upload (a file-like object) is read up to the limit plus one byte, never to its end."""
    from lab import data

    monkeypatch.setattr(data, "MAX_BYTES", 1000)
    stream = io.BytesIO(b"1,2\n" * 1000)
    with pytest.raises(DataError, match="The file is over 1,000 bytes; the limit is 1,000 bytes."):
        data.read_text(stream)
    assert stream.tell() == 1001


def test_binary_missing_and_special_files(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\x00\x01\x02\xff\xfe")
    with pytest.raises(DataError, match="Row 1 is not text"):
        load_points_csv(str(p))
    p.write_bytes(b"1,2\n3,4\n\xff\xfe junk\n")
    with pytest.raises(DataError, match=r"Row 3 is not text \(the file is not UTF-8\)"):
        load_points_csv(str(p))
    p.write_bytes(GOOD.encode() + b"5,\x006\n")
    with pytest.raises(DataError, match=r"Row 13 is not text \(the file contains binary data\)"):
        load_points_csv(str(p))
    with pytest.raises(DataError, match="There is no file at"):
        load_points_csv(str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match="is a directory, not a CSV file"):
        load_points_csv(str(tmp_path))
    for dev in ("/dev/null", "/dev/zero"):  # /dev/zero would never end: it must not be read at all
        with pytest.raises(DataError, match=f"{dev} is not a regular file"):
            load_points_csv(dev)


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
