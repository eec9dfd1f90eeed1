"""Autoregressive pictures: the marginal p(x_first), conditional slices p(x_second | x_first = c), sequential sampling."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import DATA_COLOR, SAMPLE_COLOR, _layout, empty_figure

NAMES = ("x₁", "x₂")


def marginal_figure(views: dict, c: float | None = None, height: int = 260) -> go.Figure:
    """p(x_first) as a curve, with the slice position c marked."""
    if not views or "marginal_x" not in views:
        return empty_figure("Marginal", "no model yet", height)
    a = views["order"][0]
    fig = go.Figure(
        go.Scatter(
            x=views["marginal_x"],
            y=np.exp(views["marginal_log_prob"]),
            mode="lines",
            line=dict(color="#1f77b4", width=2),
        )
    )
    if c is not None:
        fig.add_vline(x=c, line_dash="dash", line_color="grey")
    _layout(fig, f"Step 1: marginal p({NAMES[a]})", height=height, square=False)
    fig.update_xaxes(title=NAMES[a])
    return fig


def conditional_figure(
    views: dict, index: int, truth: np.ndarray | None = None, height: int = 260
) -> go.Figure:
    """p(x_second | x_first = c) for c = slice_c[index]; the true conditional dashed when given."""
    if not views or "slice_log_prob" not in views:
        return empty_figure("Conditional", "no model yet", height)
    a, b = views["order"]
    index = int(np.clip(index, 0, len(views["slice_c"]) - 1))
    c = views["slice_c"][index]
    fig = go.Figure(
        go.Scatter(
            x=views["slice_x"],
            y=np.exp(views["slice_log_prob"][index]),
            mode="lines",
            name="model",
            line=dict(color="#d62728", width=2),
        )
    )
    if truth is not None:
        fig.add_trace(
            go.Scatter(
                x=views["slice_x"],
                y=np.exp(truth),
                mode="lines",
                name="truth",
                line=dict(color="grey", width=1.5, dash="dash"),
            )
        )
    _layout(fig, f"Step 2: conditional p({NAMES[b]} | {NAMES[a]} = {c:.2f})", height=height, square=False)
    fig.update_layout(showlegend=truth is not None, legend=dict(orientation="h", y=1.0, x=1, xanchor="right"))
    fig.update_xaxes(title=NAMES[b])
    return fig


def slice_on_density(fig: go.Figure, views: dict, index: int) -> go.Figure:
    """Mark the slice x_first = c on a density figure (a vertical or horizontal line)."""
    if not views or "slice_c" not in views:
        return fig
    c = views["slice_c"][int(np.clip(index, 0, len(views["slice_c"]) - 1))]
    if views["order"][0] == 0:
        fig.add_vline(x=c, line_dash="dash", line_color="#d62728")
    else:
        fig.add_hline(y=c, line_dash="dash", line_color="#d62728")
    return fig


def sequential_figure(
    views: dict, step: int, bounds=None, data: np.ndarray | None = None, height: int = 360
) -> go.Figure:
    """Sequential sampling shown step by step: step 1 draws x_first (ticks along its axis); step 2
    completes each draw with x_second ~ p(x_second | x_first) (the segment shows the move)."""
    if not views or "seq_points" not in views:
        return empty_figure("Sequential sampling", "no model yet", height)
    a, b = views["order"]
    pts = views["seq_points"]
    if bounds is None:
        lo, hi = pts.min(0), pts.max(0)
        bounds = (lo[0], hi[0], lo[1], hi[1])
    base = bounds[2] if a == 0 else bounds[0]  # the first variable's ticks sit on its own axis
    first = np.empty_like(pts)
    first[:, a], first[:, b] = pts[:, a], base
    fig = go.Figure()
    if data is not None and len(data):
        fig.add_trace(
            go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", marker=dict(size=3, color=DATA_COLOR))
        )
    fig.add_trace(
        go.Scatter(
            x=first[:, 0],
            y=first[:, 1],
            mode="markers",
            marker=dict(
                symbol="line-ns" if a == 0 else "line-ew", size=12, line=dict(width=1, color="#1f77b4")
            ),
        )
    )
    if step >= 2:
        seg = np.full((3 * len(pts), 2), np.nan)
        seg[0::3], seg[1::3] = first, pts
        fig.add_trace(
            go.Scatter(
                x=seg[:, 0],
                y=seg[:, 1],
                mode="lines",
                line=dict(color="rgba(31, 119, 180, 0.15)", width=1),
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", marker=dict(size=4, color=SAMPLE_COLOR))
        )
    title = (
        f"Step 1: {NAMES[a]} ~ p({NAMES[a]})"
        if step < 2
        else f"Step 2: {NAMES[b]} ~ p({NAMES[b]} | {NAMES[a]})"
    )
    return _layout(fig, title, bounds, height)


LADDER_STYLE = {
    "made": ("masked (MADE, PixelCNN-style)", "#d62728"),
    "gru": ("recurrent (GRU, PixelRNN-style)", "#9467bd"),
    "flow": ("flow (one pass)", "#2ca02c"),
}


def ladder_figure(ladder: dict | None, key: str = "sample_1000_s", height: int = 300) -> go.Figure:
    """Seconds (mean over seeds) against the dimension d, one line per model, log-log: `key` is
    "sample_1000_s" (drawing 1000 points), "sample_1_s" (one point: the latency) or "train_step_s". `ladder` is the JSON
    bench/ar_ladder.py writes (lab.autoregressive.load_ladder)."""
    what = {
        "sample_1000_s": "sampling 1000 points",
        "sample_1_s": "sampling one point",
        "train_step_s": "one training step (batch 256)",
    }[key]
    if not ladder or not ladder.get("rows"):
        return empty_figure(f"Time for {what}", "no measurement: run bench/ar_ladder.py", height)
    fig = go.Figure()
    for model, (name, color) in LADDER_STYLE.items():
        rows = [r for r in ladder["rows"] if r["model"] == model and r.get(key) is not None]
        dims = sorted({r["d"] for r in rows})
        if not dims:
            continue
        ms = [1e3 * np.mean([r[key] for r in rows if r["d"] == d]) for d in dims]
        fig.add_trace(
            go.Scatter(x=dims, y=ms, mode="lines+markers", name=name, line=dict(color=color, width=2))
        )
    _layout(fig, f"Time for {what} (ms)", height=height, square=False)
    fig.update_xaxes(title="dimension d", type="log", tickvals=sorted({r["d"] for r in ladder["rows"]}))
    fig.update_yaxes(title="ms", type="log")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.35))
    return fig
