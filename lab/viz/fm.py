"""Flow-matching figures: the velocity field at a time t, particle paths from noise to data, quality against steps."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import DATA_COLOR, PALETTE, _layout, empty_figure
from lab.viz.diffusion import _arrows


def velocity_field_figure(
    views: dict, index: int, data: np.ndarray | None = None, height: int = 380
) -> go.Figure:
    """Arrows of v_theta(x, t) (in data units per unit t) at time index `index` of views["velocity_field"]."""
    vf = views.get("velocity_field")
    if not vf:
        return empty_figure("Velocity field", "no views yet", height)
    index = int(np.clip(index, 0, len(vf["labels"]) - 1))
    fig = go.Figure()
    if data is not None and len(data):
        d = np.asarray(data)[:1000]
        fig.add_trace(
            go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", marker={"size": 2, "color": DATA_COLOR})
        )
    gx, gy = np.asarray(vf["x"]), np.asarray(vf["y"])
    _arrows(fig, gx, gy, vf["velocity"][index], PALETTE[0])
    speed = np.linalg.norm(np.asarray(vf["velocity"][index]), axis=-1)
    title = f"Velocity field v_θ(x, t), {vf['labels'][index]} (mean speed {speed.mean():.2f})"
    return _layout(fig, title, (gx[0], gx[-1], gy[0], gy[-1]), height)


def paths_figure(views: dict, bounds=None, data: np.ndarray | None = None, height: int = 420) -> go.Figure:
    """Particle paths of the ODE from noise (t = 0, yellow) to data (t = 1, purple), with their straightness."""
    tr = views.get("trajectories")
    if not tr:
        return empty_figure("Particle paths", "no views yet", height)
    paths, time = np.asarray(tr["paths"]), np.asarray(tr["time"])  # [p, s, 2], [s]
    fig = go.Figure()
    if data is not None and len(data):
        d = np.asarray(data)[:1000]
        fig.add_trace(
            go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", marker={"size": 2, "color": DATA_COLOR})
        )
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
                "color": np.tile(1 - time, len(paths)),
                "colorscale": "Viridis",
                "cmin": 0,
                "cmax": 1,
                "showscale": True,
                "colorbar": {"title": "1 − t", "thickness": 10},
            },
            hovertemplate="1 − t %{marker.color:.2f}<extra></extra>",
        )
    )
    rnd = views.get("reflow_round", 0)
    title = (
        f"Paths noise → data: {len(paths)} particles, {len(time) - 1} steps, straightness "
        f"{tr['straightness']:.3f}" + (f" (after reflow {rnd})" if rnd else "")
    )
    return _layout(fig, title, bounds, height)


def steps_figure(views: dict, height: int = 320) -> go.Figure:
    """Energy distance to the data against solver steps, one line per solver, the noise floor dashed."""
    sq = views.get("steps_quality")
    if not sq:
        return empty_figure("Quality against solver steps", "no views yet", height)
    fig = go.Figure()
    for i, name in enumerate(("euler", "midpoint", "rk4")):
        if name in sq:
            fig.add_trace(
                go.Scatter(
                    x=sq["steps"],
                    y=sq[name],
                    mode="lines+markers",
                    name=name,
                    line={"color": PALETTE[i % len(PALETTE)]},
                )
            )
    fig.add_hline(
        y=max(sq["floor"], 1e-6), line_dash="dash", line_color="grey", annotation_text="noise floor"
    )
    _layout(fig, "Energy distance to the data against solver steps (same noise)", None, height, square=False)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(type="log", title_text="steps from noise to data")
    fig.update_yaxes(type="log")
    return fig
