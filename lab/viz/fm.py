"""Flow-matching figures: the velocity field at a time t, particle paths from noise to data, quality against steps."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import PALETTE, _layout, empty_figure
from lab.viz.paths import field_figure
from lab.viz.paths import paths_figure as _paths


def velocity_field_figure(
    views: dict, index: int, data: np.ndarray | None = None, height: int = 380
) -> go.Figure:
    """Arrows of v_theta(x, t) (in data units per unit t) at time index `index` of views["velocity_field"]."""
    vf = views.get("velocity_field")
    if not vf:
        return empty_figure("Velocity field", "no views yet", height)
    index = int(np.clip(index, 0, len(vf["labels"]) - 1))
    speed = np.linalg.norm(np.asarray(vf["velocity"][index]), axis=-1)
    title = f"Velocity field v_θ(x, t), {vf['labels'][index]} (mean speed {speed.mean():.2f})"
    return field_figure(vf["x"], vf["y"], vf["velocity"][index], PALETTE[0], title, data, height)


def paths_figure(views: dict, bounds=None, data: np.ndarray | None = None, height: int = 420) -> go.Figure:
    """Particle paths of the ODE from noise (t = 0, yellow) to data (t = 1, purple), with their straightness."""
    tr = views.get("trajectories")
    if not tr:
        return empty_figure("Particle paths", "no views yet", height)
    paths, time = np.asarray(tr["paths"]), np.asarray(tr["time"])  # [p, s, 2], [s]
    rnd = views.get("reflow_round", 0)
    title = (
        f"Paths noise → data: {len(paths)} particles, {len(time) - 1} steps, straightness "
        f"{tr['straightness']:.3f}" + (f" (after reflow {rnd})" if rnd else "")
    )
    return _paths(paths, 1 - time, "1 − t", title, bounds, data, height)


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
