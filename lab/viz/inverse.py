"""Figures of latent inversion's regularisation: what the prior weight λ does to the answers."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lab.viz.common import PALETTE

PANELS = (
    ("spread", "spread of the answers (std)"),
    ("energy_distance", "error to the truth (energy distance)"),
    ("off_manifold", "fraction off the data manifold"),
)


def regularisation_figure(
    rows: list[dict], spread_truth: float | None = None, height: int = 320
) -> go.Figure:
    """One line per family over λ in three panels: the answers' spread (with the true conditional's
    as a dashed line), their energy distance to the true conditional, and the fraction of answer points
    off the data manifold. `rows`: {"family", "prior_weight", "spread", "energy_distance", "off_manifold"}."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in PANELS], horizontal_spacing=0.08)
    lams = sorted({r["prior_weight"] for r in rows})
    for i, fam in enumerate(dict.fromkeys(r["family"] for r in rows)):
        mine = sorted((r for r in rows if r["family"] == fam), key=lambda r: r["prior_weight"])
        for j, (key, _) in enumerate(PANELS):
            fig.add_trace(
                go.Scatter(
                    x=[f"{r['prior_weight']:g}" for r in mine],
                    y=[r.get(key) for r in mine],
                    mode="lines+markers",
                    name=fam,
                    legendgroup=fam,
                    showlegend=j == 0,
                    line=dict(color=PALETTE[i % len(PALETTE)]),
                ),
                row=1,
                col=j + 1,
            )
    if spread_truth is not None and lams:
        fig.add_trace(
            go.Scatter(
                x=[f"{v:g}" for v in lams],
                y=[spread_truth] * len(lams),
                mode="lines",
                name="true conditional's spread",
                line=dict(color="black", dash="dash"),
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(title="λ (prior weight)", type="category")
    fig.update_layout(
        height=height,
        margin=dict(l=40, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.3),
        template="plotly_white",
    )
    return fig


__all__ = ["regularisation_figure"]
