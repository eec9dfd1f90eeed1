"""Shared figures: the fast (unvalidated) live panel must be exactly what plotly's validation would build."""

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from lab.viz.common import _BLUES_RGB, density_figure, density_image, density_spec, spec_json


def _read_png(source: str) -> np.ndarray:
    """Decode the 8-bit RGB PNGs `density_image` writes (filter 0 on every row)."""
    import base64
    import struct
    import zlib

    raw = base64.b64decode(source.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(raw):
        (n,) = struct.unpack(">I", raw[pos : pos + 4])
        kind, body = raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", raw[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def test_density_image_is_the_grid_in_blues_placed_over_its_cells():
    x, y = np.linspace(-2, 2, 20), np.linspace(0, 1, 10)
    p = np.zeros((10, 20))
    p[9, 0] = 1.0  # top-left cell (largest y, smallest x) is the peak
    img = density_image(p, x, y, upsample=4)
    rgb = _read_png(img["source"])
    assert rgb.shape == (40, 80, 3)
    assert (rgb[0, 0] == _BLUES_RGB[-1]).all()  # darkest blue at max p, drawn in the image's first row
    assert (rgb[-1, -1] == _BLUES_RGB[0]).all()  # palest at min p
    dx, dy = 4 / 19, 1 / 9  # the image covers the cells around the grid points, as a heatmap would
    assert np.isclose(img["x"], -2 - dx / 2) and np.isclose(img["sizex"], 4 + dx)
    assert np.isclose(img["y"], 1 + dy / 2) and np.isclose(img["sizey"], 1 + dy)
    flat = _read_png(density_image(np.ones((10, 20)), x, y)["source"])
    assert (flat == flat[0, 0]).all()  # a flat density is one colour


def test_density_figure_survives_plotly_validation_unchanged():
    rng = np.random.default_rng(0)
    lp = rng.normal(size=(30, 30))
    lp[0, 0], lp[1, 1] = -np.inf, np.nan  # a model's grid can hold both
    dens = {"x": np.linspace(-2, 3, 30), "y": np.linspace(-1.5, 2, 30), "log_prob": lp}
    fig = density_figure(
        dens, rng.normal(size=(500, 2)), "flow · step 12", (-2, 3, -1.5, 2), data=rng.normal(size=(50, 2))
    )
    checked = go.Figure(fig.to_dict())  # raises on any property name or value plotly does not know
    assert json.loads(pio.to_json(fig, validate=False)) == json.loads(pio.to_json(checked, validate=False))
    assert [t.type for t in fig.data] == [
        "scatter",
        "scatter",
    ]  # SVG: a WebGL scatter costs a GL context per redraw
    assert len(fig.layout.images) == 1 and fig.layout.images[0].source.startswith("data:image/png;base64,")
    # zoom survives a live update: the revision follows the window, not the title's step count
    later = density_figure(dens, None, "flow · step 13", (-2, 3, -1.5, 2))
    assert later.layout.uirevision == fig.layout.uirevision
    assert density_figure(None, None, "x", (0, 1, 0, 1)).layout.uirevision != fig.layout.uirevision


def test_spec_json_is_the_density_figure_as_plotly_reads_it():
    """Live panels send `spec_json(density_spec(...))` instead of serialising a Figure: the same figure
    (template included), coordinates rounded to 1e-4, non-finite ones as null (JSON has no NaN)."""
    rng = np.random.default_rng(1)
    dens = {"x": np.linspace(-2, 3, 20), "y": np.linspace(-1.5, 2, 20), "log_prob": rng.normal(size=(20, 20))}
    samples = rng.normal(size=(300, 2))
    samples[7] = np.nan  # a diverging model's sample
    args = (dens, samples, "gan · step 3", (-2, 3, -1.5, 2))
    sent = json.loads(
        spec_json(density_spec(*args))
    )  # strict JSON: a bare NaN would not parse in the browser
    built = json.loads(pio.to_json(density_figure(*args), validate=False))
    assert sent["layout"] == built["layout"]  # template, axes, title and the density picture
    (trace,) = sent["data"]
    assert trace["x"][7] is None and trace["y"][7] is None
    keep = np.isfinite(samples[:, 0])
    np.testing.assert_allclose(np.array(trace["x"], dtype=float)[keep], samples[keep, 0], atol=5e-5)
    go.Figure(sent)  # plotly validates it


def test_spec_json_binary_sends_the_samples_as_plotly_typed_arrays():
    """binary=True (Compare's live panels): the same figure, each coordinate array as little-endian float32 in
    base64 (plotly.js's typed-array spec), NaN kept; the layout is untouched."""
    import base64

    rng = np.random.default_rng(3)
    samples = rng.normal(size=(120, 2))
    samples[5, 1] = np.nan
    args = (None, samples, "ddpm · step 9", (-2, 3, -1.5, 2))
    plain, typed = (
        json.loads(spec_json(density_spec(*args))),
        json.loads(spec_json(density_spec(*args), binary=True)),
    )
    assert typed["layout"] == plain["layout"]
    (trace,) = typed["data"]
    for axis, column in (("x", 0), ("y", 1)):
        assert trace[axis]["dtype"] == "f4"
        got = np.frombuffer(base64.b64decode(trace[axis]["bdata"]), dtype="<f4")
        np.testing.assert_array_equal(got, samples[:, column].astype(np.float32))
    assert np.isnan(np.frombuffer(base64.b64decode(trace["y"]["bdata"]), dtype="<f4")[5])


def test_a_live_panel_draws_its_density_picture_once_per_grid():
    rng = np.random.default_rng(2)
    dens = {"x": np.linspace(0, 1, 10), "y": np.linspace(0, 1, 10), "log_prob": rng.normal(size=(10, 10))}
    a = density_spec(dens, rng.normal(size=(50, 2)), "step 1", (0, 1, 0, 1))
    b = density_spec(dens, rng.normal(size=(50, 2)), "step 2", (0, 1, 0, 1))  # new samples, the same grid
    assert a["layout"]["images"][0] is b["layout"]["images"][0]
    fresh = density_spec({**dens, "log_prob": dens["log_prob"] + 1.0}, None, "step 3", (0, 1, 0, 1))
    assert (
        fresh["layout"]["images"][0] is not a["layout"]["images"][0]
    )  # a new grid (a new dict) is drawn anew
    # p is shown relative to its maximum, so log p + 1 draws the same picture
    assert fresh["layout"]["images"][0]["source"] == a["layout"]["images"][0]["source"]


def test_a_live_panel_may_send_the_grid_as_it_is_for_the_browser_to_smooth():
    """upsample=1: the picture has the grid's own pixels (the browser stretches it smoothly), over the same
    cells; a panel asking for another upsampling of the same grid gets its own picture, not the cached one."""
    import base64
    import struct

    rng = np.random.default_rng(4)
    dens = {"x": np.linspace(0, 1, 12), "y": np.linspace(0, 2, 10), "log_prob": rng.normal(size=(10, 12))}
    small = density_spec(dens, None, "t", (0, 1, 0, 2), upsample=1)["layout"]["images"][0]
    big = density_spec(dens, None, "t", (0, 1, 0, 2))["layout"]["images"][0]
    assert small is not big
    size = lambda im: struct.unpack(">II", base64.b64decode(im["source"].split(",", 1)[1])[16:24])  # noqa: E731
    assert size(small) == (12, 10) and size(big) == (48, 40)  # PNG width, height
    assert {k: v for k, v in small.items() if k != "source"} == {
        k: v for k, v in big.items() if k != "source"
    }
