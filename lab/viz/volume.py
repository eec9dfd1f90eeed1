"""Volume pictures: how little of its box a density fills, and how that share falls with dimension."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import _layout, empty_figure


def volume_figure(vs, title: str = "", height: int = 300) -> go.Figure:
    """The share of the box holding `mass` of the probability against d (log scale), beside a uniform
    density on the box (whose share is `mass` at every d). `vs` is a lab.data.VolumeShare."""
    if vs is None or not len(vs.dims):
        return empty_figure(title or "Volume", "no density", height)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=vs.dims,
            y=np.full(len(vs.dims), vs.mass),
            mode="lines",
            name="uniform on the box",
            line=dict(color="grey", dash="dash"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=vs.dims,
            y=vs.share,
            mode="lines+markers+text",
            name="this density (d/2 independent copies)",
            text=[f"{s:.1e}" for s in vs.share],
            textposition="top right",
            line=dict(color="#d62728", width=2),
        )
    )
    _layout(fig, title or f"Share of the box holding {vs.mass:.0%} of the mass", height=height, square=False)
    fig.update_xaxes(title="dimension d", tickvals=list(vs.dims))
    fig.update_yaxes(title="share of the box's volume", type="log", exponentformat="power")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.3))
    return fig
