"""Pictures shared by the noise-to-data families (diffusion, score, flow matching): particle paths, vector
fields, and a class-conditional model's samples under classifier-free guidance."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lab.viz.common import DATA_COLOR, PALETTE, _layout, empty_figure


def data_underlay(fig: go.Figure, data: np.ndarray | None, color: str = DATA_COLOR) -> None:
    """Up to 1000 data points as small markers under what a figure draws."""
    if data is not None and len(data):
        d = np.asarray(data)[:1000]
        fig.add_trace(go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", marker={"size": 2, "color": color}))


def paths_figure(
    paths: np.ndarray,
    colour: np.ndarray,
    colour_title: str,
    title: str,
    bounds=None,
    data: np.ndarray | None = None,
    height: int = 420,
) -> go.Figure:
    """Particle paths [p, s, 2] as grey lines, their points coloured by `colour` [s] in [0, 1] (Viridis: yellow
    at 1, purple at 0), the data under them."""
    paths, colour = np.asarray(paths), np.asarray(colour)
    fig = go.Figure()
    data_underlay(fig, data)
    sep = np.full((len(paths), 1, 2), np.nan)
    lines = np.concatenate([paths, sep], 1).reshape(-1, 2)  # NaN rows break the line between particles
    fig.add_trace(
        go.Scatter(
            x=lines[:, 0],
            y=lines[:, 1],
            mode="lines",
            hoverinfo="skip",
            line={"color": "rgba(120,120,120,0.35)", "width": 1},
        )
    )
    pts = paths.reshape(-1, 2)
    fig.add_trace(
        go.Scatter(
            x=pts[:, 0],
            y=pts[:, 1],
            mode="markers",
            marker={
                "size": 4,
                "color": np.tile(colour, len(paths)),
                "colorscale": "Viridis",
                "cmin": 0,
                "cmax": 1,
                "showscale": True,
                "colorbar": {"title": colour_title, "thickness": 10},
            },
            hovertemplate=colour_title + " %{marker.color:.2f}<extra></extra>",
        )
    )
    return _layout(fig, title, bounds, height)


def arrows(fig: go.Figure, gx, gy, field: np.ndarray, color: str) -> None:
    """Arrows of a vector field [ny, nx, 2]: length grows with sqrt(|s| / max |s|), at most 0.9 cells."""
    xx, yy = np.meshgrid(gx, gy)
    v = np.asarray(field, dtype=float).reshape(-1, 2)
    mag = np.linalg.norm(v, axis=1)
    cell = min(gx[1] - gx[0], gy[1] - gy[0]) if len(gx) > 1 else 1.0
    length = 0.9 * cell * np.sqrt(mag / (mag.max() + 1e-12))
    u = v / (mag[:, None] + 1e-12) * length[:, None]
    x0, y0 = xx.ravel(), yy.ravel()
    seg = np.stack(
        [x0, x0 + u[:, 0], np.full_like(x0, np.nan), y0, y0 + u[:, 1], np.full_like(y0, np.nan)], 1
    )
    fig.add_trace(
        go.Scatter(
            x=seg[:, :3].ravel(),
            y=seg[:, 3:].ravel(),
            mode="lines",
            line={"color": color, "width": 1.2},
            hoverinfo="skip",
        )
    )
    angle = 90 - np.degrees(np.arctan2(u[:, 1], u[:, 0]))  # plotly: 0 points up, clockwise
    fig.add_trace(
        go.Scatter(
            x=x0 + u[:, 0],
            y=y0 + u[:, 1],
            mode="markers",
            hoverinfo="skip",
            marker={"symbol": "arrow", "size": 6, "angle": angle, "color": color},
        )
    )


def field_figure(
    gx, gy, field: np.ndarray, color: str, title: str, data: np.ndarray | None = None, height: int = 380
) -> go.Figure:
    """A vector field [ny, nx, 2] on the grid (gx, gy) as arrows over the data, framed by the grid."""
    gx, gy = np.asarray(gx), np.asarray(gy)
    fig = go.Figure()
    data_underlay(fig, data)
    arrows(fig, gx, gy, field, color)
    return _layout(fig, title, (gx[0], gx[-1], gy[0], gy[-1]), height)


# ---------------------------------------------------------------------------------------------
# Classifier-free guidance (views["guidance"] of a conditional fm or ddpm)
# ---------------------------------------------------------------------------------------------


def guided_samples_figure(
    views: dict,
    classes: list[str] | None = None,
    bounds=None,
    data: np.ndarray | None = None,
    height: int = 420,
) -> go.Figure:
    """Samples of every class at the current guidance weight w, coloured by class, over the data."""
    g = views.get("guidance")
    if not g:
        return empty_figure(
            "Samples by class", "train with conditional on (labelled data) to see classes", height
        )
    fig = go.Figure()
    data_underlay(fig, data)
    x, y = np.asarray(g["samples"]), np.asarray(g["labels"])
    for k in np.unique(y):
        p = x[y == k]
        name = classes[k] if classes and k < len(classes) else f"class {k}"
        fig.add_trace(
            go.Scatter(
                x=p[:, 0],
                y=p[:, 1],
                mode="markers",
                name=name,
                marker={"size": 3, "color": PALETTE[int(k) % len(PALETTE)], "opacity": 0.7},
            )
        )
    _layout(fig, f"Samples by class, guidance w = {g['w']:g}", bounds, height)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.1})
    return fig


def guidance_sweep_figure(views: dict, classes: list[str] | None = None, height: int = 340) -> go.Figure:
    """Per class, against w: precision (share in the class's region), recall (its support covered) and the
    energy distance to the class's training points."""
    sw = (views.get("guidance") or {}).get("sweep")
    if not sw:
        return empty_figure("What guidance does to each class", "no views yet", height)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("precision (solid) and recall (dashed)", "energy distance to the class"),
    )
    w = sw["w"]
    for k in range(len(sw["precision"])):
        c = PALETTE[k % len(PALETTE)]
        name = classes[k] if classes and k < len(classes) else f"class {k}"
        fig.add_trace(go.Scatter(x=w, y=sw["precision"][k], name=name, line={"color": c}), 1, 1)
        fig.add_trace(
            go.Scatter(
                x=w, y=sw["recall"][k], name=name, line={"color": c, "dash": "dash"}, showlegend=False
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(x=w, y=sw["energy"][k], name=name, line={"color": c}, showlegend=False), 1, 2
        )
    _layout(fig, "Guidance weight w: sharper classes, then parts of them dropped", None, height, square=False)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(title_text="guidance weight w")
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    return fig
