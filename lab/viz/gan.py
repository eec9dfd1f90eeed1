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


def value_jsd_figure(losses: dict, loss: str, jsd=None, height: int = 260) -> go.Figure:
    """V(D, G) on the batch, V(D*, G) = 2 JSD - log 4 from `jsd` = (steps, values) (GAN.views' smoothed JSD)
    and the -log 4 of the optimum, over training; for the WGAN losses the critic's estimate beside them."""
    if not losses or "value" not in losses:
        return empty_figure("Value of the game", "not trained yet", height)
    js = loss in ("minimax", "nonsaturating")
    series = {"V(D, G) on the batch" if js else "E f(x) - E f(G(z)) (EM estimate)": losses["value"]}
    if jsd is not None and len(jsd[0]):
        series["V(D*, G) = 2 JSD - log 4"] = (jsd[0], 2 * np.asarray(jsd[1]) - LOG4)
    return curves(series, "Value of the game", height, hline=-LOG4, hline_label="-log 4: p_g = p_data")


def jsd_figure(series: dict, floor: float | None = None, height: int = 260) -> go.Figure:
    """JSD(p_data, p_g) = (V(D*, G) + log 4) / 2 over training; series: name -> (steps, values).
    `floor`: the JSD of two samples of the data itself (what a perfect G would still show)."""
    series = {k: v for k, v in series.items() if v is not None and len(v[0])}
    if not series:
        return empty_figure("JSD(p_data, p_g)", "measured every second or so while training", height)
    fig = curves(series, "JSD(p_data, p_g) = ½ (V(D*, G) + log 4)", height)
    fig.add_hline(y=math.log(2), line_dash="dot", line_color="grey", annotation_text="log 2: disjoint")
    if floor is not None and math.isfinite(floor):
        fig.add_hline(y=floor, line_dash="dash", line_color="grey", annotation_text="floor: data vs data")
    fig.update_yaxes(range=[0, math.log(2) * 1.08], title="nats")
    return fig


# ---------------------------------------------------------------------------------------------
# Oscillations: the Dirac-GAN (lab.dirac_gan) in the (theta, psi) plane
# ---------------------------------------------------------------------------------------------


def dirac_figure(trajectories: list, height: int = 320, arrows: int = 9) -> go.Figure:
    """One panel per trajectory in the (theta, psi) plane: the path from its start (circle) to its end
    (square), the equilibrium (0, 0) as a star, the gradient field faint behind, the EMA of theta as a
    dashed vertical line at its last value."""
    from plotly.subplots import make_subplots

    from lab.dirac_gan import vector_field

    n = max(len(trajectories), 1)
    fig = make_subplots(1, n, subplot_titles=[t.label for t in trajectories], horizontal_spacing=0.04)
    finite = [np.abs(np.concatenate([t.theta, t.psi])) for t in trajectories]
    r = min(max((float(np.nanmax(f)) for f in finite), default=1.5), 4.0) * 1.1
    g = np.linspace(-r, r, arrows)
    tt, pp = np.meshgrid(g, g)
    for i, tr in enumerate(trajectories, start=1):
        kw = dict(row=1, col=i)
        vt, vp = vector_field(tt, pp, "minimax")
        scale = 0.6 * (g[1] - g[0]) / max(float(np.hypot(vt, vp).max()), 1e-12)
        xs = np.stack([tt.ravel(), (tt + scale * vt).ravel(), np.full(tt.size, np.nan)], 1).ravel()
        ys = np.stack([pp.ravel(), (pp + scale * vp).ravel(), np.full(tt.size, np.nan)], 1).ravel()
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#cccccc", width=1)), **kw)
        ok = np.isfinite(tr.theta) & np.isfinite(tr.psi)
        th, ps = tr.theta[ok], tr.psi[ok]
        fig.add_trace(go.Scatter(x=th, y=ps, mode="lines", line=dict(color=PALETTE[i - 1], width=1.5)), **kw)
        fig.add_trace(
            go.Scatter(
                x=th[:1], y=ps[:1], mode="markers", marker=dict(size=8, color="black", symbol="circle")
            ),
            **kw,
        )
        fig.add_trace(
            go.Scatter(
                x=th[-1:],
                y=ps[-1:],
                mode="markers",
                marker=dict(size=8, color=PALETTE[i - 1], symbol="square"),
            ),
            **kw,
        )
        fig.add_trace(
            go.Scatter(x=[0], y=[0], mode="markers", marker=dict(size=12, color="gold", symbol="star")), **kw
        )
        if not np.array_equal(tr.theta_ema[ok], th):
            e = float(tr.theta_ema[ok][-1])
            fig.add_trace(
                go.Scatter(x=[e, e], y=[-r, r], mode="lines", line=dict(color="black", dash="dash", width=1)),
                **kw,
            )
        fig.update_xaxes(range=[-r, r], title="θ (generator)", **kw)
        fig.update_yaxes(range=[-r, r], title="ψ (discriminator)" if i == 1 else None, **kw)
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=46, b=10),
        showlegend=False,
        plot_bgcolor="white",
        uirevision="dirac",
    )
    fig.update_annotations(font_size=12)
    return fig


def dirac_distance_figure(trajectories: list, height: int = 260) -> go.Figure:
    """Distance to the equilibrium sqrt(theta^2 + psi^2) over steps for each trajectory, and |theta_ema|
    (dashed) where an EMA is kept: the average of the circling iterates is near 0 while they are not."""
    fig = go.Figure()
    for i, tr in enumerate(trajectories):
        steps = np.arange(len(tr.theta))
        c = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=steps, y=tr.distance, mode="lines", name=tr.label, line=dict(color=c)))
        if not np.array_equal(tr.theta_ema, tr.theta, equal_nan=True):
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=np.abs(tr.theta_ema),
                    mode="lines",
                    name=f"|EMA of θ| ({tr.label})",
                    line=dict(color=c, dash="dash"),
                )
            )
    _layout(fig, "Distance to the equilibrium (0, 0)", height=height, square=False)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.3), xaxis_title="step")
    fig.update_yaxes(type="log", title="distance")
    return fig


# ---------------------------------------------------------------------------------------------
# Seeds: a sweep's members as small multiples
# ---------------------------------------------------------------------------------------------


def seed_clouds_figure(
    members: list, bounds=None, data=None, cols: int = 8, height_per_row: int = 130
) -> go.Figure:
    """One small panel per member: its samples over the data, titled with its seed and modes; a panel whose
    member missed a mode is red-titled. members: objects with .seed, .samples [n, 2] (or None), .modes,
    .n_modes, .error (lab.gan_seeds.MemberResult)."""
    from plotly.subplots import make_subplots

    if not members:
        return empty_figure("Seeds", "no member has finished yet", 200)
    cols = max(1, min(cols, len(members)))
    rows = math.ceil(len(members) / cols)

    def title(m) -> str:
        if m.error:
            return f"seed {m.seed}: failed"
        if m.modes is None:
            return f"seed {m.seed}"
        mark = "" if m.modes == m.n_modes else " ✗"
        return f"seed {m.seed}: {m.modes}/{m.n_modes}{mark}"

    fig = make_subplots(
        rows,
        cols,
        subplot_titles=[title(m) for m in members],
        horizontal_spacing=0.01,
        vertical_spacing=0.25 / rows,
    )
    d = None if data is None else np.asarray(data)[:300]
    for i, m in enumerate(members):
        kw = dict(row=i // cols + 1, col=i % cols + 1)
        if d is not None:
            fig.add_trace(
                go.Scattergl(x=d[:, 0], y=d[:, 1], mode="markers", marker=dict(size=2, color=DATA_COLOR)),
                **kw,
            )
        if m.samples is not None and len(m.samples):
            s = np.asarray(m.samples)
            collapsed = m.modes is not None and m.modes < m.n_modes
            fig.add_trace(
                go.Scattergl(
                    x=s[:, 0],
                    y=s[:, 1],
                    mode="markers",
                    marker=dict(size=2, color=PALETTE[1] if collapsed else PALETTE[0]),
                ),
                **kw,
            )
        if bounds is not None:
            fig.update_xaxes(range=[bounds[0], bounds[1]], **kw)
            fig.update_yaxes(range=[bounds[2], bounds[3]], **kw)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_layout(
        height=rows * height_per_row + 30,
        margin=dict(l=5, r=5, t=30, b=5),
        showlegend=False,
        plot_bgcolor="white",
    )
    fig.update_annotations(font_size=10)
    return fig
