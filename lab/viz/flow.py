"""Flow pictures: the base grid warped layer by layer, densities after each layer, points flowing, log|det J|."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import _layout, empty_figure, position_colors

LINE_COLORS = ("rgba(31, 119, 180, 0.7)", "rgba(214, 39, 40, 0.7)")  # lines of constant u1, of constant u2


def warp_figure(views: dict, index: int, bounds=None, height: int = 360) -> go.Figure:
    """The base's regular grid (lines of constant u1 in blue, u2 in red) after layers[index] layers."""
    if not views or "warp" not in views:
        return empty_figure("Warped grid", "no flow yet", height)
    index = int(np.clip(index, 0, len(views["layers"]) - 1))
    lines = views["warp"][index]  # [2 * n_lines, pts, 2]
    half = len(lines) // 2
    fig = go.Figure()
    for j, color in enumerate(LINE_COLORS):
        block = lines[j * half : (j + 1) * half]
        # one trace per family of lines: NaN rows break the polyline between grid lines
        xy = np.concatenate([np.vstack([ln, [np.nan, np.nan]]) for ln in block])
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0], y=xy[:, 1], mode="lines", line=dict(color=color, width=1), hoverinfo="skip"
            )
        )
    k = views["layers"][index]
    return _layout(fig, f"Base grid after {k} of {views['n_layers']} layers", bounds, height)


def layer_density_figure(
    views: dict, index: int, bounds=None, height: int = 360, floor: float = 12.0
) -> go.Figure:
    """Heatmap of the density after layers[index] layers (0: the base Gaussian, last: the model)."""
    if not views or "layer_log_prob" not in views:
        return empty_figure("Density after each layer", "no flow yet", height)
    index = int(np.clip(index, 0, len(views["layers"]) - 1))
    lp = views["layer_log_prob"][index]
    top = np.nanmax(lp)
    p = np.exp(np.clip(lp, top - floor, top) - top)
    fig = go.Figure(
        go.Heatmap(
            x=views["density_x"],
            y=views["density_y"],
            z=p,
            colorscale="Blues",
            showscale=False,
            hoverinfo="skip",
            zsmooth="best",
        )
    )
    k = views["layers"][index]
    name = "base N(0, I)" if k == 0 else ("the model" if k == views["n_layers"] else f"{k} layers")
    return _layout(fig, f"Density after {k} layers ({name})", bounds, height)


def flow_animation_figure(views: dict, bounds=None, height: int = 420) -> go.Figure:
    """Base samples carried through the flow one layer per frame (play button); colours follow each
    point's place in the base, so where each region of the Gaussian ends up can be read off."""
    if not views or "trajectories" not in views:
        return empty_figure("Points from base to data", "no flow yet", height)
    traj = views["trajectories"]  # [K + 1, n, 2]
    base = traj[0]
    lo, hi = base.min(0), base.max(0)
    colors = position_colors(base, (lo[0], hi[0], lo[1], hi[1]))
    marker = dict(size=5, color=colors)
    frames = [
        go.Frame(data=[go.Scatter(x=t[:, 0], y=t[:, 1], mode="markers", marker=marker)], name=str(k))
        for k, t in enumerate(traj)
    ]
    fig = go.Figure(data=frames[0].data, frames=frames)
    if bounds is None:
        allp = traj.reshape(-1, 2)
        lo, hi = np.nanquantile(allp, 0.005, 0), np.nanquantile(allp, 0.995, 0)
        bounds = (lo[0], hi[0], lo[1], hi[1])
    _layout(fig, "Points from base (layer 0) to data (last layer)", bounds, height)
    steps = [
        dict(
            method="animate",
            label=str(k),
            args=[
                [str(k)],
                dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0)),
            ],
        )
        for k in range(len(traj))
    ]
    fig.update_layout(
        updatemenus=[
            dict(
                type="buttons",
                showactive=False,
                x=0.0,
                y=-0.08,
                xanchor="left",
                yanchor="top",
                direction="left",
                buttons=[
                    dict(
                        label="▶ play",
                        method="animate",
                        args=[
                            None,
                            dict(
                                frame=dict(duration=500, redraw=False),
                                transition=dict(duration=400),
                                fromcurrent=False,
                            ),
                        ],
                    ),
                ],
            )
        ],
        sliders=[dict(active=0, steps=steps, x=0.15, len=0.85, y=-0.02, currentvalue=dict(prefix="layer "))],
        margin=dict(l=10, r=10, t=36, b=70),
    )
    return fig


def log_det_figure(views: dict, bounds=None, height: int = 360) -> go.Figure:
    """log|det d f^-1 / dx| over the plane: red where the flow packs base mass in (density raised),
    blue where it spreads it out."""
    if not views or "log_det" not in views:
        return empty_figure("log |det J|", "no flow yet", height)
    ld = views["log_det"]
    m = float(np.nanmax(np.abs(ld))) or 1.0
    fig = go.Figure(
        go.Heatmap(
            x=views["density_x"],
            y=views["density_y"],
            z=ld,
            colorscale="RdBu_r",
            zmin=-m,
            zmax=m,
            zsmooth="best",
            colorbar=dict(thickness=10, len=0.8),
            hovertemplate="x %{x:.2f}, y %{y:.2f}<br>log|det J⁻¹| %{z:.2f}<extra></extra>",
        )
    )
    return _layout(fig, "log |det ∂f⁻¹/∂x| (red: mass packed in)", bounds, height)
