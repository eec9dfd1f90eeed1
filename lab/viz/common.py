"""Shared figures: density heatmaps with samples, scatter plots, training curves."""

from __future__ import annotations

import base64
import json
import struct
import threading
import zlib

import numpy as np
import plotly.graph_objects as go

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]
DATA_COLOR = "rgba(40, 40, 40, 0.35)"
SAMPLE_COLOR = "rgba(214, 39, 40, 0.55)"


def _layout(fig: go.Figure, title: str, bounds=None, height: int = 360, square: bool = True) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=14)),
        margin=dict(l=10, r=10, t=36, b=10),
        height=height,
        showlegend=False,
        plot_bgcolor="white",
        uirevision=str(bounds) if bounds is not None else title,  # keeps zoom/pan across live updates
    )
    if bounds is not None:
        fig.update_xaxes(range=[bounds[0], bounds[1]], showgrid=False, zeroline=False)
        fig.update_yaxes(range=[bounds[2], bounds[3]], showgrid=False, zeroline=False)
    if square:  # equal scales by shrinking the plot area, not by widening a range: a user's zoom survives live updates
        fig.update_xaxes(constrain="domain")
        fig.update_yaxes(scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


def empty_figure(title: str = "", message: str = "", height: int = 360) -> go.Figure:
    fig = go.Figure()
    if message:
        fig.add_annotation(
            text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=13)
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=height, square=False)


def _layout_dict(title: str, bounds=None, height: int = 360, square: bool = True) -> dict:
    """The layout `_layout` sets, as a plain dict (for `fast_figure`)."""
    layout = {
        "title": {"text": title, "x": 0.02, "font": {"size": 14}, "automargin": False},
        "margin": {"l": 34, "r": 10, "t": 36, "b": 24},
        "height": height,
        "showlegend": False,
        "plot_bgcolor": "white",
        # zoom/pan survive live updates: the revision changes only with the window, not with the title's step count
        "uirevision": str(bounds),
        "xaxis": {},
        "yaxis": {},
    }
    if bounds is not None:
        layout["xaxis"] = {
            "range": [bounds[0], bounds[1]],
            "showgrid": False,
            "zeroline": False,
            "automargin": False,
        }
        layout["yaxis"] = {
            "range": [bounds[2], bounds[3]],
            "showgrid": False,
            "zeroline": False,
            "automargin": False,
        }
    if square:  # constrain="domain": with a widened range instead, plotly's uirevision drops the user's zoom on update
        layout["xaxis"]["constrain"] = "domain"
        layout["yaxis"].update(scaleanchor="x", scaleratio=1, constrain="domain")
    return layout


_TEMPLATE: dict | None = None
# plotly.py's "Blues" spelled out: plotly.js has its own, different scale under that name
_BLUES = [list(c) for c in go.Heatmap(colorscale="Blues").colorscale]
_BLUES_STOPS = np.array([c[0] for c in _BLUES], dtype=float)
_BLUES_RGB = np.array([[float(v) for v in c[1][c[1].index("(") + 1 : -1].split(",")] for c in _BLUES])


def fast_figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain trace and layout dicts, skipping plotly's per-property validation.

    Validation costs ~40 ms per density panel and a live page redraws several panels 4-5 times a second
    (it holds the GIL the trainer needs); this path costs ~3 ms. Only for specs written in this module:
    tests validate each one by rebuilding it with `go.Figure(fig.to_dict())`.
    """
    return go.Figure(data=data, layout={"template": template(), **layout}, _validate=False)


def density_figure(
    density: dict | None,
    samples: np.ndarray | None = None,
    title: str = "",
    bounds=None,
    data: np.ndarray | None = None,
    height: int = 360,
    floor: float = 12.0,
    max_points: int = 1500,
) -> go.Figure:
    """exp(log p) on a grid (density = {"x", "y", "log_prob"}) as a picture, samples on top.

    The colour scale shows p itself, clipped to [max p * e^-floor, max p], so a model's filaments and
    holes stay visible next to the truth. This is the live panel, so it is built for a cheap redraw in
    the browser: a smoothed heatmap is interpolated pixel by pixel in JavaScript on every update, and a
    WebGL scatter needs a software GL context on a machine without a GPU; a PNG drawn here, plain points
    and fixed margins (no second layout pass) cost far less. Built with `fast_figure` (no validation)
    for the same reason; `density_spec` is the same figure as plain dicts, for live pages.
    """
    return fast_figure(**density_spec(density, samples, title, bounds, data, height, floor, max_points))


def density_spec(
    density: dict | None,
    samples: np.ndarray | None = None,
    title: str = "",
    bounds=None,
    data: np.ndarray | None = None,
    height: int = 360,
    floor: float = 12.0,
    max_points: int = 1500,
    upsample: int = 4,
) -> dict:
    """`density_figure` as a plain {"data": [...], "layout": {...}} without the template (`spec_json`
    adds it): a live page sends six of these 4-5 times a second, and building a plotly Figure for each
    costs more than the rest of the page together. `upsample` 1 sends the grid's own pixels and lets the
    browser smooth the stretched picture (the same look on screen, a 40 x 40 grid in 1.4 KB instead of 18)."""
    traces, layout = [], _layout_dict(title, bounds, height)
    if density is not None:
        layout["images"] = [_density_layer(density, floor, upsample)]
    for pts, name, color in ((data, "data", DATA_COLOR), (samples, "samples", SAMPLE_COLOR)):
        if pts is not None and len(pts):
            d = np.asarray(pts)[:max_points]
            traces.append(
                {
                    "type": "scatter",
                    "x": d[:, 0],
                    "y": d[:, 1],
                    "mode": "markers",
                    "marker": {"size": 3, "color": color},
                    "name": name,
                }
            )
    return {"data": traces, "layout": layout}


# A live run's snapshot keeps its density grid (the same dict) for a second or two while its samples
# move; its picture is drawn once, not on every redraw. Keyed by the dict's identity (snapshots are
# never changed in place), holding the dict so the id is not reused.
_LAYERS: dict[int, tuple[dict, tuple[float, int], dict]] = {}
_LAYERS_LOCK = threading.Lock()


def _density_layer(density: dict, floor: float, upsample: int = 4) -> dict:
    with _LAYERS_LOCK:
        hit = _LAYERS.get(id(density))
    if hit is not None and hit[0] is density and hit[1] == (floor, upsample):
        return hit[2]
    lp = np.asarray(density["log_prob"], dtype=float)
    top = np.nanmax(np.where(np.isfinite(lp), lp, -np.inf)) if np.isfinite(lp).any() else 0.0
    p = np.exp(np.clip(np.nan_to_num(lp, nan=-np.inf), top - floor, top) - top)
    layer = density_image(p, density["x"], density["y"], upsample)
    with _LAYERS_LOCK:
        while len(_LAYERS) >= 64:
            _LAYERS.pop(next(iter(_LAYERS)))
        _LAYERS[id(density)] = (density, (floor, upsample), layer)
    return layer


def template() -> dict:
    """The default template a validated plotly figure carries (`fast_figure` and `spec_json` add it)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = go.Figure().to_dict()["layout"]["template"]
    return _TEMPLATE


_TEMPLATE_JSON: str | None = None


def spec_json(spec: dict, decimals: int = 4, extra: dict | None = None, binary: bool = False) -> str:
    """A plain spec ({"data", "layout"}, e.g. `density_spec`'s) as the JSON of its plotly figure, with the
    default template, as plotly.js reads it. Arrays become lists rounded to `decimals` (1e-4 of a data
    unit is far below a pixel) and non-finite numbers become null (JSON has no NaN). `binary`: the traces'
    1-D float arrays become plotly's typed arrays instead ({"dtype": "f4", "bdata": base64}, NaN kept): a
    live panel's 1000 coordinates in 5 KB rather than 9, written and parsed without a number each.
    `extra`: top-level keys for the live chart component (a picture's time "v", its feed)."""
    global _TEMPLATE_JSON
    if _TEMPLATE_JSON is None:
        _TEMPLATE_JSON = json.dumps(template())

    def typed(v):
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind == "f":
            return {"dtype": "f4", "bdata": base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")}
        return plain(v)

    def plain(v):
        if isinstance(v, (np.ndarray, np.floating)):  # arrays of any shape, and float scalars (NaN -> null)
            a = np.round(np.asarray(v, dtype=float), decimals)
            return (a if np.isfinite(a).all() else np.where(np.isfinite(a), a, None)).tolist()
        if isinstance(v, np.generic):
            return v.item()
        raise TypeError(f"cannot write {type(v).__name__} into a figure")

    layout = json.dumps(spec.get("layout", {}), default=plain)
    rest = "," + layout[1:] if layout != "{}" else "}"
    return (
        '{"data":'
        + json.dumps(spec.get("data", []), default=typed if binary else plain)
        + ',"layout":{"template":'
        + _TEMPLATE_JSON
        + rest
        + ("," + json.dumps(extra)[1:] if extra else "}")
    )


def blues(q: np.ndarray) -> np.ndarray:
    """Values as RGB [..., 3] (floats 0-255) in plotly.py's "Blues", from their minimum to their maximum."""
    q = np.asarray(q, dtype=float)
    span = q.max() - q.min() if q.size else 0.0
    q = (q - q.min()) / span if span > 0 else np.zeros_like(q)
    return np.stack([np.interp(q, _BLUES_STOPS, _BLUES_RGB[:, k]) for k in range(3)], axis=-1)


def density_image(p: np.ndarray, x, y, upsample: int = 4) -> dict:
    """A layout image of p on the grid (x, y), in plotly.py's "Blues" from min p to max p, bilinear
    upsampled (what a heatmap's zsmooth="best" shows) and placed over the cells the heatmap would fill."""
    p, x, y = np.asarray(p, dtype=float), np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def resample(a, n_in, axis):  # linear interpolation onto upsample x as many evenly spaced points
        pos = np.linspace(0, n_in - 1, upsample * n_in)
        i = np.minimum(pos.astype(int), n_in - 2)
        w = pos - i
        lo, hi = np.take(a, i, axis=axis), np.take(a, i + 1, axis=axis)
        w = w[:, None] if axis == 0 else w[None, :]
        return lo * (1 - w) + hi * w

    q = resample(resample(p, len(y), 0), len(x), 1)
    png = _png(np.round(blues(q)[::-1]).astype(np.uint8))  # image rows run top-down, y runs bottom-up
    dx, dy = (x[-1] - x[0]) / (len(x) - 1), (y[-1] - y[0]) / (len(y) - 1)
    return {
        "source": "data:image/png;base64," + base64.b64encode(png).decode(),
        "xref": "x",
        "yref": "y",
        "x": x[0] - dx / 2,
        "y": y[-1] + dy / 2,
        "sizex": x[-1] - x[0] + dx,
        "sizey": y[-1] - y[0] + dy,
        "sizing": "stretch",
        "layer": "below",
    }


def _png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG (the format's minimum: header, one zlib stream, end).

    Kept over Pillow by measurement: for a live panel's 160 x 160 density, Pillow 13's encoder (adaptive row
    filters) took 2.4 ms and 8.1 KB against 0.8 ms and 6.3 KB here (2026-12-03, 2 cores)."""
    h, w, _ = rgb.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgb))  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def samples_figure(
    samples: np.ndarray,
    title: str = "",
    bounds=None,
    data: np.ndarray | None = None,
    height: int = 360,
    colors=None,
) -> go.Figure:
    """Scatter of samples (red) over data (grey); `colors` overrides the sample colours."""
    fig = density_figure(None, None if colors is not None else samples, title, bounds, data, height)
    if colors is not None:
        s = np.asarray(samples)
        fig.add_trace(go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", marker=dict(size=4, color=colors)))
    return fig


def curves(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str = "",
    height: int = 260,
    log_y: bool = False,
    hline: float | None = None,
    hline_label: str = "",
) -> go.Figure:
    """Line plot of name -> (steps, values), e.g. a run's loss or metric history."""
    fig = go.Figure()
    for i, (name, (x, y)) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=np.asarray(x),
                y=np.asarray(y),
                mode="lines+markers" if len(x) < 30 else "lines",
                name=name,
                line=dict(color=PALETTE[i % len(PALETTE)], width=1.5),
            )
        )
    if hline is not None:
        fig.add_hline(y=hline, line_dash="dash", line_color="grey", annotation_text=hline_label)
    _layout(fig, title, height=height, square=False)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.25), xaxis_title="step")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def position_colors(x: np.ndarray, bounds) -> list[str]:
    """A fixed 2D colour map: hue by position in the data window, so regions can be followed across panels."""
    x = np.asarray(x, dtype=float)
    u = np.clip((x[:, 0] - bounds[0]) / (bounds[1] - bounds[0]), 0, 1)
    v = np.clip((x[:, 1] - bounds[2]) / (bounds[3] - bounds[2]), 0, 1)
    r, g, b = (40 + 200 * u).astype(int), (40 + 180 * v).astype(int), (220 - 180 * u * v).astype(int)
    return [f"rgb({a},{c},{d})" for a, c, d in zip(r, g, b)]


def draw_grid_figure(selected: list[int], height: int = 380) -> go.Figure:
    """The drawing grid: one marker per cell, selected cells filled."""
    from lab.data import DRAW_BOUNDS, cell_centres

    c = cell_centres()
    on = np.zeros(len(c), dtype=bool)
    on[np.asarray(selected, dtype=int)] = True
    fig = go.Figure(
        go.Scatter(
            x=c[:, 0],
            y=c[:, 1],
            mode="markers",
            hoverinfo="none",
            marker=dict(size=9, symbol="square", color=np.where(on, "#d62728", "#e8e8e8")),
        )
    )
    _layout(fig, "draw: select cells", DRAW_BOUNDS, height)
    fig.update_layout(dragmode="lasso", uirevision="draw")
    return fig
