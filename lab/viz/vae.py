"""Figures of a latent space (autoencoder and VAE): codes, posteriors, aggregate vs prior, decoder manifold, reconstructions, ELBO."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import DATA_COLOR, PALETTE, _layout, curves, empty_figure, position_colors, samples_figure

_T = np.linspace(0, 2 * np.pi, 60)


def _ellipse(mu: np.ndarray, std: np.ndarray, k: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned ellipse mu +- k std (a diagonal Gaussian's k-sigma contour)."""
    return mu[0] + k * std[0] * np.cos(_T), mu[1] + k * std[1] * np.sin(_T)


def _cov_ellipse(mean: np.ndarray, cov: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """k-sigma contour of N(mean, cov) in 2D."""
    w, v = np.linalg.eigh(cov)
    pts = (v * np.sqrt(np.clip(w, 0, None))) @ np.stack([np.cos(_T), np.sin(_T)]) * k
    return mean[0] + pts[0], mean[1] + pts[1]


def _selected(views: dict, select) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, mu, std) of the highlighted points: indices `select` into the codes, else the views' own choice."""
    if select is None:
        return views["ellipse_x"], views["ellipse_mu"], views.get("ellipse_std")
    idx = np.asarray(select, dtype=int) % len(views["codes"])
    std = views.get("code_std")
    return views["data"][idx], views["codes"][idx], None if std is None else std[idx]


def spread_indices(n_codes: int, k: int) -> list[int]:
    """k indices spread evenly over n_codes codes (the views hold codes of evenly spread training points)."""
    return [int(i) for i in np.linspace(0, n_codes - 1, k + 2)[1:-1].round()] if k > 0 else []


def latent_figure(
    views: dict,
    bounds,
    select=None,
    title: str = "Latent space: codes coloured by where they come from",
    height: int = 380,
) -> go.Figure:
    """Encoded data points mu(x) coloured by their position in data space, posterior ellipses (1 sigma)
    of the selected points (`select`: indices into the codes), and the prior's 1-2-3 sigma contours
    (for the AE: the Gaussian fitted to its codes, which its sampling draws from; for a VampPrior the
    centres of its components instead)."""
    if not views or "codes" not in views:
        return empty_figure(title, "no codes yet", height)
    codes, colors = views["codes"], position_colors(views["data"], bounds)
    _, sel_mu, sel_std = _selected(views, select)
    pm, pc = np.asarray(views["prior_mean"]), np.asarray(views["prior_cov"])
    fig = go.Figure()
    if views["latent_dim"] == 1:
        agg = views["aggregate"]
        z, q, p = agg["axes"][0], agg["q"], agg["prior"]
        top = float(max(q.max(), p.max()))
        jitter = -top * (
            0.05 + 0.15 * (np.arange(len(codes)) % 7) / 7
        )  # a rug, spread so overlapping codes show
        fig.add_trace(go.Scatter(x=z, y=p, mode="lines", line=dict(color="grey", dash="dash"), name="prior"))
        fig.add_trace(
            go.Scatter(x=z, y=q, mode="lines", line=dict(color=PALETTE[0]), name="aggregate posterior")
        )
        fig.add_trace(
            go.Scatter(
                x=codes[:, 0], y=jitter, mode="markers", marker=dict(size=4, color=colors), name="codes"
            )
        )
        if sel_std is not None:
            for m, s in zip(sel_mu, sel_std):
                zz = np.linspace(m[0] - 3 * s[0], m[0] + 3 * s[0], 60)
                dens = np.exp(-0.5 * ((zz - m[0]) / s[0]) ** 2) / (s[0] * np.sqrt(2 * np.pi))
                fig.add_trace(
                    go.Scatter(
                        x=zz,
                        y=dens * top / max(dens.max(), 1e-12) * 0.5,
                        mode="lines",
                        line=dict(color="black", width=1),
                    )
                )
        _layout(fig, title, height=height, square=False)
        fig.update_xaxes(title="z")
        return fig
    comps = views.get("prior_components")
    if comps is not None:  # a VampPrior is no ellipse: mark where its components sit, mu(u_k)
        fig.add_trace(
            go.Scatter(
                x=comps[:, 0],
                y=comps[:, 1],
                mode="markers",
                name="prior components mu(u_k)",
                marker=dict(
                    size=7, color="rgba(0,0,0,0)", line=dict(color="grey", width=1.5), symbol="diamond"
                ),
            )
        )
    else:
        for k in (1, 2, 3):
            ex, ey = _cov_ellipse(pm, pc, k)
            fig.add_trace(
                go.Scatter(
                    x=ex, y=ey, mode="lines", line=dict(color="grey", dash="dash", width=1), hoverinfo="skip"
                )
            )
    fig.add_trace(
        go.Scatter(
            x=codes[:, 0], y=codes[:, 1], mode="markers", marker=dict(size=4, color=colors), name="codes"
        )
    )
    emu, estd = sel_mu, sel_std
    for i in range(len(emu)):
        if estd is not None:
            ex, ey = _ellipse(emu[i], estd[i])
            fig.add_trace(
                go.Scatter(x=ex, y=ey, mode="lines", line=dict(color="black", width=1.5), hoverinfo="skip")
            )
        fig.add_trace(
            go.Scatter(
                x=[emu[i, 0]], y=[emu[i, 1]], mode="markers", marker=dict(size=8, color="black", symbol="x")
            )
        )
    _layout(fig, title, height=height)
    fig.update_xaxes(title="z1")
    fig.update_yaxes(title="z2")
    return fig


def aggregate_figure(
    views: dict, title: str = "Aggregate posterior q(z) vs prior", height: int = 380
) -> go.Figure:
    """q(z) = 1/n sum_i Q(z|x_i) as a heatmap with the prior's contours over it: holes and overlaps show."""
    if not views or "aggregate" not in views:
        return empty_figure(title, "no codes yet", height)
    agg = views["aggregate"]
    if views["latent_dim"] == 1:
        return curves(
            {"prior": (agg["axes"][0], agg["prior"]), "aggregate q(z)": (agg["axes"][0], agg["q"])},
            title,
            height,
        )
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=agg["axes"][0],
            y=agg["axes"][1],
            z=agg["q"],
            colorscale="Blues",
            showscale=False,
            zsmooth="best",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Contour(
            x=agg["axes"][0],
            y=agg["axes"][1],
            z=agg["prior"],
            contours=dict(coloring="none", showlabels=False),
            line=dict(color=PALETTE[1], width=1, dash="dash"),
            ncontours=5,
            showscale=False,
            hoverinfo="skip",
        )
    )
    return _layout(fig, title, height=height)


def manifold_figure(
    views: dict,
    bounds,
    data: np.ndarray | None = None,
    title: str = "Decoder manifold: a latent grid, decoded",
    height: int = 380,
) -> go.Figure:
    """Latent grid lines (z1 = const in blue, z2 = const in red) or, with a 1D code, the decoded curve, over the data."""
    fig = go.Figure()
    if data is not None and len(data):
        d = np.asarray(data)[:1500]
        fig.add_trace(
            go.Scatter(
                x=d[:, 0], y=d[:, 1], mode="markers", marker=dict(size=3, color=DATA_COLOR), hoverinfo="skip"
            )
        )
    for line in (views or {}).get("manifold_lines", []):
        x = line["x"]
        if "z" in line:  # the 1D code's curve, coloured by z
            fig.add_trace(
                go.Scatter(
                    x=x[:, 0],
                    y=x[:, 1],
                    mode="lines+markers",
                    line=dict(color="black", width=1),
                    marker=dict(size=4, color=line["z"], colorscale="Viridis"),
                    hoverinfo="skip",
                )
            )
        else:
            color = PALETTE[0] if line["axis"] == 0 else PALETTE[1]
            fig.add_trace(
                go.Scatter(
                    x=x[:, 0], y=x[:, 1], mode="lines", line=dict(color=color, width=1), hoverinfo="skip"
                )
            )
    return _layout(fig, title, bounds, height)


def reconstruction_figure(
    views: dict,
    bounds,
    select=None,
    n: int = 200,
    title: str = "Reconstructions: x -> x_hat",
    height: int = 380,
) -> go.Figure:
    """Arrows from each data point x (coloured by position) to its reconstruction, the decoder mean at mu(x)."""
    if not views or "recon" not in views:
        return empty_figure(title, "no codes yet", height)
    x, xh = views["data"][:n], views["recon"][:n]
    seg = np.full((3 * len(x), 2), np.nan)  # x, x_hat, gap: one trace draws every segment
    seg[0::3], seg[1::3] = x, xh
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=seg[:, 0],
            y=seg[:, 1],
            mode="lines",
            line=dict(color="rgba(80,80,80,0.5)", width=1),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x[:, 0],
            y=x[:, 1],
            mode="markers",
            marker=dict(size=4, color=position_colors(x, bounds)),
            name="x",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xh[:, 0],
            y=xh[:, 1],
            mode="markers",
            marker=dict(size=4, color="black", symbol="x"),
            name="x_hat",
        )
    )
    ex = _selected(views, select)[0]
    if ex is not None and len(ex):
        fig.add_trace(
            go.Scatter(
                x=ex[:, 0],
                y=ex[:, 1],
                mode="markers",
                marker=dict(size=10, color="rgba(0,0,0,0)", line=dict(color="black", width=2)),
            )
        )
    return _layout(fig, title, bounds, height)


def elbo_figure(
    losses: dict, title: str = "ELBO split (nats, data coordinates)", height: int = 280
) -> go.Figure:
    """Reconstruction term -E_Q[log P(x|z)], KL(Q || P) and their sum -ELBO over training (from train_step's
    losses); with the VAE's IWAE estimate -log P(x) (`neg_log_px`, on fixed training points) the ELBO gap
    log P(x) - ELBO = KL(Q(z|x) || P(z|x)) is the shaded band between -log P(x) and that -ELBO
    (`elbo_gap`: the gap measured on those points, in the title)."""
    names = {"recon": "reconstruction -E[log P(x|z)]", "kl": "KL(Q(z|x) || P(z))", "neg_elbo": "-ELBO = sum"}
    series = {label: losses[k] for k, label in names.items() if k in (losses or {})}
    if not series:
        series = {k: v for k, v in (losses or {}).items() if k == "loss"}
    if not series:
        return empty_figure(title, "train to see the terms", height)
    fig = curves(series, title, height)
    if "neg_log_px" in losses and "elbo_gap" in losses:
        (s1, nlp), (s2, gap) = losses["neg_log_px"], losses["elbo_gap"]
        n = min(len(s1), len(s2))
        s1, nlp, gap = np.asarray(s1)[:n], np.asarray(nlp)[:n], np.asarray(gap)[:n]
        # the -ELBO on the gap's own points is -log P(x) + gap: the band between them is the gap
        fig.add_trace(
            go.Scatter(
                x=s1, y=nlp, mode="lines", name="-log P(x) (IWAE, K=64)", line=dict(color="black", width=1)
            )
        )
        fig.add_trace(
            go.Scatter(
                x=s1,
                y=nlp + gap,
                mode="lines",
                fill="tonexty",
                fillcolor="rgba(120,120,120,0.25)",
                line=dict(color="grey", width=1, dash="dot"),
                name="ELBO gap log P(x) - ELBO",
            )
        )
        if n:
            fig.update_layout(title_text=f"{title} · ELBO gap {gap[-1]:.2f} nats")
    return fig


def samples_blur_figure(
    samples: np.ndarray,
    data: np.ndarray,
    bounds,
    blur_gap: float | None = None,
    title: str = "Samples vs data",
    height: int = 380,
) -> go.Figure:
    """Model samples (red) over the data (grey), with the blur gap in the title when it is known."""
    if blur_gap is not None and np.isfinite(blur_gap):
        title = f"{title} - blur gap {blur_gap:.2f} nats"
    return samples_figure(samples, title, bounds, data, height)


__all__ = [
    "latent_figure",
    "aggregate_figure",
    "manifold_figure",
    "reconstruction_figure",
    "elbo_figure",
    "samples_blur_figure",
    "spread_indices",
]
