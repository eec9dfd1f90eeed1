"""Diffusion and score-model figures: forward process, prior check, reverse paths, score fields, samplers."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lab.viz.common import DATA_COLOR, PALETTE, SAMPLE_COLOR, _layout, empty_figure
from lab.viz.paths import data_underlay, field_figure, paths_figure


def forward_figure(views: dict, index: int, bounds=None, height: int = 360) -> go.Figure:
    """Noised data at frame `index` of views["forward"] (t from 0 to T, or sigma up the ladder)."""
    fw = views.get("forward")
    if not fw:
        return empty_figure("Forward process", "no views yet", height)
    index = int(np.clip(index, 0, len(fw["points"]) - 1))
    p = np.asarray(fw["points"][index])
    fig = go.Figure(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", marker=dict(size=3, color=SAMPLE_COLOR)))
    title = f"Forward process: {fw['labels'][index]} (signal left {fw['signal'][index]:.3f})"
    return _layout(fig, title, bounds, height)


def prior_figure(views: dict, height: int = 360) -> go.Figure:
    """The last forward step x_T (red) over draws of the prior (grey), with the numbers that say whether they match."""
    pr = views.get("prior")
    if not pr:
        return empty_figure("x_T against the prior", "no views yet", height)
    a, b = np.asarray(pr["prior"]), np.asarray(pr["x_T"])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=a[:, 0], y=a[:, 1], mode="markers", marker=dict(size=3, color=DATA_COLOR), name="prior")
    )
    fig.add_trace(
        go.Scatter(x=b[:, 0], y=b[:, 1], mode="markers", marker=dict(size=3, color=SAMPLE_COLOR), name="x_T")
    )
    title = (
        f"x_T (red) vs prior (grey): energy dist. {pr['energy_distance']:.4f} (floor {pr['energy_floor']:.4f}), "
        f"Gaussian KL {pr['kl_gaussian']:.4f}, signal left {pr['signal']:.2g}"
    )
    return _layout(fig, title, None, height)


def trajectories_figure(
    views: dict, bounds=None, data: np.ndarray | None = None, height: int = 420
) -> go.Figure:
    """Reverse paths from noise to data: grey lines, points coloured by time (yellow = noise, purple = data)."""
    tr = views.get("trajectories")
    if not tr:
        return empty_figure("Reverse trajectories", "no views yet", height)
    paths, time = np.asarray(tr["paths"]), np.asarray(tr["time"])  # [p, s, 2], [s]
    title = f"Reverse trajectories: {len(paths)} particles, {len(time) - 1} steps"
    return paths_figure(paths, time, "t / T", title, bounds, data, height)


def score_field_figure(
    views: dict, level: int, which: str = "model", data: np.ndarray | None = None, height: int = 380
) -> go.Figure:
    """Arrows of the learned score ("model") or of the noised true score ("true") at one noise level."""
    sf = views.get("score_field")
    if not sf:
        return empty_figure("Score field", "no views yet", height)
    level = int(np.clip(level, 0, len(sf["labels"]) - 1))
    name = "Learned score" if which == "model" else "True score (noised data)"
    color = PALETTE[0] if which == "model" else PALETTE[2]
    return field_figure(
        sf["x"], sf["y"], sf[which][level], color, f"{name}, {sf['labels'][level]}", data, height
    )


def score_error_figure(
    views: dict, level: int, data: np.ndarray | None = None, height: int = 380
) -> go.Figure:
    """Heatmap of sigma * |s_theta - s_true| (noise units: 1 = wrong by a whole noise std) at one level."""
    sf = views.get("score_field")
    if not sf:
        return empty_figure("Score error", "no views yet", height)
    level = int(np.clip(level, 0, len(sf["labels"]) - 1))
    err = np.asarray(sf["error"][level])
    fig = go.Figure(
        go.Heatmap(
            x=sf["x"],
            y=sf["y"],
            z=err,
            colorscale="Reds",
            zmin=0,
            zmax=max(float(np.quantile(err, 0.98)), 1e-3),
            colorbar=dict(title="σ|Δs|", thickness=10),
            hovertemplate="σ|Δs| %{z:.3f}<extra></extra>",
        )
    )
    data_underlay(fig, data, "rgba(0,0,0,0.3)")
    bounds = (sf["x"][0], sf["x"][-1], sf["y"][0], sf["y"][-1])
    return _layout(
        fig, f"Score error σ|s_θ − s_true|, {sf['labels'][level]} (mean {err.mean():.3f})", bounds, height
    )


def steps_figure(sweep: dict | None, floor: float | None = None, height: int = 320) -> go.Figure:
    """Quality (energy distance, log) and cost (seconds per 1000 samples) against sampling steps, per sampler."""
    if not sweep:
        return empty_figure("Quality against sampling steps", "press “compare samplers”", height)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("energy distance to data (lower is better)", "seconds per 1000 samples"),
    )
    for i, (name, rows) in enumerate(sweep.items()):
        c = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=rows["steps"], y=rows["energy"], mode="lines+markers", name=name, line=dict(color=c)
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(
                x=rows["steps"],
                y=rows["seconds"],
                mode="lines+markers",
                name=name,
                line=dict(color=c),
                showlegend=False,
            ),
            1,
            2,
        )
    if floor is not None:
        fig.add_hline(
            y=floor, line_dash="dash", line_color="grey", annotation_text="noise floor", row=1, col=1
        )
    _layout(
        fig,
        "DDPM (ancestral) vs DDIM: quality and time against the number of steps",
        None,
        height,
        square=False,
    )
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(type="log", title_text="sampling steps")
    fig.update_yaxes(type="log")
    return fig
