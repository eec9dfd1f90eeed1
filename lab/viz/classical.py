"""Figures for the classical references: GMM ellipses over the data and the learned density."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import PALETTE, density_figure


def ellipse(mean: np.ndarray, cov: np.ndarray, n_std: float = 2.0, n: int = 60) -> np.ndarray:
    """Points [n, 2] on the n_std contour of N(mean, cov)."""
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    return mean + n_std * (circle * np.sqrt(np.maximum(vals, 0))) @ vecs.T


def gmm_figure(snap: dict, bounds, data: np.ndarray | None = None) -> go.Figure:
    """Learned density, data, and each component's 2-std ellipse (line width ~ its weight)."""
    fig = density_figure(snap.density, None, f"GMM after {snap.step} EM steps", bounds, data=data)
    v = snap.views
    if "means" in v:
        for k, (m, c, w) in enumerate(zip(v["means"], v["covariances"], v["weights"])):
            e = ellipse(m, c)
            fig.add_trace(
                go.Scatter(
                    x=e[:, 0],
                    y=e[:, 1],
                    mode="lines",
                    line=dict(color=PALETTE[k % len(PALETTE)], width=1 + 6 * float(w)),
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=v["means"][:, 0],
                y=v["means"][:, 1],
                mode="markers",
                marker=dict(symbol="x", size=8, color="black"),
                hoverinfo="skip",
            )
        )
    return fig
