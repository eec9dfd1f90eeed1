"""GAN pictures: discriminator surface and the optimal D*, G's push on its samples, the latent manifold, mode coverage."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from lab.metrics import mode_coverage
from lab.viz.common import DATA_COLOR, PALETTE, SAMPLE_COLOR, _layout, curves, empty_figure

LOG4 = math.log(4.0)


# ---------------------------------------------------------------------------------------------
# The optimal discriminator, from the true density and a KDE of the generated samples (numpy only)
# ---------------------------------------------------------------------------------------------


def kde_log_prob(
    points: np.ndarray, samples: np.ndarray, bandwidth: float | np.ndarray | None = None
) -> np.ndarray:
    """log p_g(points) [m] for the Gaussian KDE p_g(x) = 1/n sum_i N(x; s_i, diag(h^2)).

    bandwidth: per-axis h; None uses Scott's rule h = std * n^(-1/6) (in 2D).
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    s = s[np.isfinite(s).all(1)]
    if len(s) == 0:
        return np.full(len(p), -np.inf)
    if bandwidth is None:
        bandwidth = np.maximum(s.std(0), 1e-3) * len(s) ** (-1 / 6)
    h = np.broadcast_to(np.asarray(bandwidth, dtype=np.float64), (2,))
    p, s = p / h, s / h  # whiten, then |p - s|^2 = |p|^2 + |s|^2 - 2 p.s as one matrix product
    out = np.empty(len(p))
    for i in range(0, len(p), 4096):  # [4096, n] at a time keeps memory small
        pc = p[i : i + 4096]
        a = -0.5 * np.maximum((pc**2).sum(1)[:, None] + (s**2).sum(1)[None, :] - 2 * pc @ s.T, 0.0)
        top = a.max(1, keepdims=True)
        out[i : i + 4096] = top[:, 0] + np.log(np.exp(a - top).sum(1))
    return out - math.log(len(s)) - math.log(2 * math.pi) - np.log(h).sum()


def optimal_discriminator(true_log_prob: np.ndarray, gen_log_prob: np.ndarray) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) = sigmoid(log p_data - log p_g) (Goodfellow et al. 2014, Prop. 1).

    Both inputs are log-densities on the same points/grid; where both are -inf the answer is 0.5.
    """
    a = np.asarray(true_log_prob, dtype=np.float64)
    b = np.asarray(gen_log_prob, dtype=np.float64)
    diff = np.where(np.isneginf(a) & np.isneginf(b), 0.0, a - b)
    return 0.5 * (1.0 + np.tanh(0.5 * np.clip(diff, -700, 700)))  # a stable sigmoid


def optimal_discriminator_grid(
    dataset, samples: np.ndarray, x: np.ndarray, y: np.ndarray, bandwidth=None
) -> np.ndarray:
    """D* on the grid x [nx] by y [ny] (rows = y): the dataset's true log_prob against a KDE of the samples."""
    xx, yy = np.meshgrid(np.asarray(x), np.asarray(y))
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    return optimal_discriminator(dataset.log_prob(pts), kde_log_prob(pts, samples, bandwidth)).reshape(
        xx.shape
    )


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _scatter(fig: go.Figure, pts, color, size=3, name="") -> None:
    if pts is not None and len(pts):
        p = np.asarray(pts)[:1500]
        fig.add_trace(
            go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", marker=dict(size=size, color=color), name=name)
        )


def surface_figure(
    x, y, z, title: str, kind: str = "probability", samples=None, data=None, bounds=None, height: int = 360
) -> go.Figure:
    """Heatmap of D(x) (or D*, or the critic f) with its 0.5 contour (probabilities only), points on top."""
    fig = go.Figure()
    z = np.asarray(z, dtype=float)
    if kind == "probability":
        fig.add_trace(
            go.Heatmap(
                x=x,
                y=y,
                z=z,
                zmin=0,
                zmax=1,
                colorscale="RdBu",
                showscale=True,
                colorbar=dict(len=0.8, thickness=10),
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Contour(
                x=x,
                y=y,
                z=z,
                contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                line=dict(color="black", width=1.5),
                showscale=False,
                hoverinfo="skip",
            )
        )
    else:  # a critic's level is arbitrary: centre the colours on its median
        mid = float(np.median(z))
        span = float(np.max(np.abs(z - mid))) or 1.0
        fig.add_trace(
            go.Heatmap(
                x=x,
                y=y,
                z=z,
                zmin=mid - span,
                zmax=mid + span,
                colorscale="RdBu",
                showscale=True,
                colorbar=dict(len=0.8, thickness=10),
                hoverinfo="skip",
            )
        )
    _scatter(fig, data, DATA_COLOR, name="data")
    _scatter(fig, samples, SAMPLE_COLOR, name="samples")
    return _layout(fig, title, bounds, height)


def discriminator_figure(views: dict, samples=None, data=None, height: int = 360) -> go.Figure:
    """The model's own D (or critic) surface from GAN.views()."""
    if not views or "d_surface" not in views:
        return empty_figure("Discriminator", "no discriminator yet", height)
    kind = views["d_kind"]
    title = "Discriminator D(x) (0.5 contour)" if kind == "probability" else "Critic f(x) (WGAN)"
    if views.get("pack", 1) > 1:
        title += f", pack of {views['pack']} copies"
    return surface_figure(
        views["x"], views["y"], views["d_surface"], title, kind, samples, data, views.get("bounds"), height
    )


def optimal_figure(dstar: np.ndarray | None, x, y, samples=None, bounds=None, height: int = 360) -> go.Figure:
    """D* = p_data / (p_data + p_g) with p_g a KDE of the samples."""
    if dstar is None:
        return empty_figure("Optimal D*", "needs a dataset with a true density", height)
    return surface_figure(
        x, y, dstar, "Optimal D* = p_data / (p_data + p_g)", "probability", samples, None, bounds, height
    )


def push_figure(views: dict, data=None, height: int = 360, length: float = 0.08) -> go.Figure:
    """Generated points with arrows along -dL_G/dx: where the next generator step pushes each one.

    Arrows are scaled so the longest is `length` of the window; the title gives the mean raw norm
    (tiny under the saturating minimax loss when D is sure: vanishing gradients).
    """
    if not views or "push" not in views:
        return empty_figure("Generator gradients", "no generator yet", height)
    f, g = np.asarray(views["fake"]), np.asarray(views["push"])
    b = views.get("bounds") or [f[:, 0].min(), f[:, 0].max(), f[:, 1].min(), f[:, 1].max()]
    norms = np.linalg.norm(g, axis=1)
    scale = length * max(b[1] - b[0], b[3] - b[2]) / max(norms.max(), 1e-12)
    ends = f + scale * g
    xs = np.stack([f[:, 0], ends[:, 0], np.full(len(f), np.nan)], 1).ravel()
    ys = np.stack([f[:, 1], ends[:, 1], np.full(len(f), np.nan)], 1).ravel()
    fig = go.Figure()
    _scatter(fig, data, DATA_COLOR, name="data")
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", line=dict(color="rgba(31,119,180,0.8)", width=1), hoverinfo="skip"
        )
    )
    _scatter(fig, f, SAMPLE_COLOR, size=4, name="generated")
    return _layout(fig, f"Where G is pushed (mean |grad| {norms.mean():.2e})", b, height)


def manifold_figure(views: dict, data=None, height: int = 360) -> go.Figure:
    """G's image of a square grid over latent dims 0 and 1 (GAN Lab's manifold view)."""
    if not views or "manifold" not in views:
        return empty_figure("Generator manifold", "no generator yet", height)
    m = np.asarray(views["manifold"])  # [k, k, 2]
    fig = go.Figure()
    _scatter(fig, data, DATA_COLOR, name="data")
    for lines in (m, m.transpose(1, 0, 2)):  # rows, then columns of the latent grid
        pts = np.concatenate([np.concatenate([ln, np.full((1, 2), np.nan)]) for ln in lines])
        fig.add_trace(
            go.Scatter(
                x=pts[:, 0],
                y=pts[:, 1],
                mode="lines",
                line=dict(color="rgba(148,103,189,0.7)", width=1),
                hoverinfo="skip",
            )
        )
    return _layout(fig, "Generator manifold: G(latent grid)", views.get("bounds"), height)


def mode_histogram(
    samples: np.ndarray, modes: np.ndarray | None, std: float | None, height: int = 260
) -> go.Figure:
    """High-quality samples per mode (within 3 std of it), and the off-mode rest, as bars."""
    if modes is None or samples is None or len(samples) == 0:
        return empty_figure("Samples per mode", "only for the mixture datasets (8/25 Gaussians)", height)
    mc = mode_coverage(np.nan_to_num(samples, nan=1e9), modes, std)
    off = int(round((1 - mc.high_quality) * len(samples)))
    labels = [str(i) for i in range(len(modes))] + ["off"]
    colors = [PALETTE[0] if c > 0 else PALETTE[1] for c in mc.counts] + ["#7f7f7f"]
    fig = go.Figure(go.Bar(x=labels, y=list(mc.counts) + [off], marker_color=colors))
    _layout(
        fig,
        f"Samples per mode: {mc.modes}/{mc.n_modes} captured, {100 * mc.high_quality:.1f}% high quality",
        height=height,
        square=False,
    )
    fig.update_xaxes(title="mode", type="category")
    return fig


def coverage_figure(metrics: dict, height: int = 260) -> go.Figure:
    """Modes captured (left axis) and high-quality fraction (right axis) over training."""
    if not metrics or "modes" not in metrics:
        return empty_figure("Mode coverage", "only for the mixture datasets (8/25 Gaussians)", height)
    fig = go.Figure()
    s, v = metrics["modes"]
    fig.add_trace(
        go.Scatter(x=s, y=v, mode="lines+markers", name="modes captured", line=dict(color=PALETTE[0]))
    )
    if "high_quality" in metrics:
        s2, v2 = metrics["high_quality"]
        fig.add_trace(
            go.Scatter(
                x=s2,
                y=v2,
                mode="lines",
                name="high-quality fraction",
                yaxis="y2",
                line=dict(color=PALETTE[2]),
            )
        )
    _layout(fig, "Mode coverage over training", height=height, square=False)
    n = metrics.get("n_modes")
    top = float(np.max(n[1])) if n is not None and len(n[1]) else None
    fig.update_layout(
        showlegend=True,
        legend=dict(orientation="h", y=-0.3),
        xaxis_title="step",
        yaxis=dict(title="modes", range=[0, (top or max(v, default=1)) + 0.5]),
        yaxis2=dict(title="high quality", overlaying="y", side="right", range=[0, 1]),
    )
    return fig


def value_figure(losses: dict, loss: str, height: int = 260) -> go.Figure:
    """V(D, G) over training; for the JS losses, the -log 4 of the global optimum as a dashed line."""
    if not losses or "value" not in losses:
        return empty_figure("V(D, G)", "not trained yet", height)
    js = loss in ("minimax", "nonsaturating")
    name = "V(D, G)" if js else "E f(x) - E f(G(z)) (EM estimate)"
    return curves(
        {name: losses["value"]},
        "Value of the game",
        height,
        hline=-LOG4 if js else 0.0,
        hline_label="-log 4" if js else "0",
    )


def loss_figure(losses: dict, height: int = 260) -> go.Figure:
    """D and G losses (oscillation shows here)."""
    series = {k: losses[k] for k in ("d_loss", "g_loss") if losses and k in losses}
    if not series:
        return empty_figure("Losses", "not trained yet", height)
    return curves(series, "Discriminator and generator losses", height)


def grad_norm_figure(series: dict, height: int = 260) -> go.Figure:
    """Generator gradient norm ||dL_G/dtheta_G|| over training, log scale; series: name -> (steps, values)."""
    series = {k: (s, np.maximum(v, 1e-12)) for k, (s, v) in series.items() if len(v)}
    if not series:
        return empty_figure("Generator gradient norm", "not trained yet", height)
    return curves(series, "Generator gradient norm", height, log_y=True)
