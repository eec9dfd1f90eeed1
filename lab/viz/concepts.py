"""Figures for the concept pages: class posteriors and densities, inverse-problem slices, the measured scoreboard."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lab.viz.common import DATA_COLOR, PALETTE, _layout, empty_figure

CLASS_RGB = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (23, 190, 207),
    (140, 86, 75),
    (227, 119, 194),
]


def _rgb(k: int, a: float = 1.0) -> str:
    r, g, b = CLASS_RGB[k % len(CLASS_RGB)]
    return f"rgba({r},{g},{b},{a})"


def _class_points(
    fig: go.Figure, x: np.ndarray, y: np.ndarray, classes: list[str], max_points: int = 1500, size: int = 4
) -> None:
    x, y = np.asarray(x)[:max_points], np.asarray(y)[:max_points]
    for k, name in enumerate(classes):
        pts = x[y == k]
        fig.add_trace(
            go.Scatter(
                x=pts[:, 0],
                y=pts[:, 1],
                mode="markers",
                name=name,
                marker=dict(size=size, color=_rgb(k, 0.9), line=dict(width=0.5, color="white")),
            )
        )


# ---------------------------------------------------------------------------------------------
# Classifiers
# ---------------------------------------------------------------------------------------------


def posterior_figure(
    grid: dict | None,
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    title: str = "",
    bounds=None,
    height: int = 380,
) -> go.Figure:
    """P(y|x) as a colour blend of the class colours (white where unsure), the decision boundary
    (P(y=k|x) = 1/2 contours, black) and the labelled points."""
    if grid is None:
        return empty_figure(title, "not trained yet", height)
    p = np.asarray(grid["proba"])  # [size, size, K], rows = y
    K = p.shape[-1]
    cols = np.array([CLASS_RGB[k % len(CLASS_RGB)] for k in range(K)], dtype=float)
    rgb = np.einsum("ijk,kc->ijc", p, cols)
    conf = (p.max(-1, keepdims=True) - 1 / K) / (1 - 1 / K)  # 0 when uniform, 1 when certain
    img = (255 - 0.55 * conf * (255 - rgb)).clip(0, 255).astype(np.uint8)
    gx, gy = grid["x"], grid["y"]
    fig = go.Figure(go.Image(z=img, x0=gx[0], dx=gx[1] - gx[0], y0=gy[0], dy=gy[1] - gy[0], hoverinfo="skip"))
    for k in range(K if K > 2 else 1):
        fig.add_trace(
            go.Contour(
                x=gx,
                y=gy,
                z=p[..., k],
                contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                line=dict(color="black", width=2),
                showscale=False,
                hoverinfo="skip",
            )
        )
    _class_points(fig, x, y, classes)
    fig = _layout(fig, title, bounds, height)
    if bounds is not None:
        fig.update_yaxes(range=[bounds[2], bounds[3]], autorange=False)
    return fig


def class_density_figure(
    log_p: np.ndarray | None,
    gx: np.ndarray,
    gy: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    title: str = "",
    bounds=None,
    height: int = 380,
    floor: float = 8.0,
) -> go.Figure:
    """The learned class-conditionals p(x|y): one set of contour lines per class ([size, size, K] log p)."""
    if log_p is None:
        return empty_figure(title, "not trained yet", height)
    fig = go.Figure()
    _class_points(fig, x, y, classes, max_points=800, size=3)
    for k in range(log_p.shape[-1]):
        lp = log_p[..., k]
        top = np.nanmax(np.where(np.isfinite(lp), lp, -np.inf))
        z = np.exp(np.clip(lp - top, -floor, 0))
        fig.add_trace(
            go.Contour(
                x=gx,
                y=gy,
                z=z,
                contours=dict(start=0.05, end=0.95, size=0.15, coloring="lines"),
                colorscale=[[0, _rgb(k)], [1, _rgb(k)]],
                line=dict(width=1.5),
                showscale=False,
                hoverinfo="skip",
                name=f"p(x | {classes[k]})",
            )
        )
    return _layout(fig, title, bounds, height)


def missing_figure(
    curves: dict[str, dict],
    classes: list[str],
    observed: int,
    x: np.ndarray,
    y: np.ndarray,
    title: str = "",
    height: int = 320,
) -> go.Figure:
    """P(y = k | x_observed) along the observed coordinate for each classifier (name -> {"v", "proba"}),
    with the labelled points as a rug. Only class 1 is drawn for two classes."""
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    K = len(classes)
    for i, (name, c) in enumerate(curves.items()):
        for k in range(1 if K == 2 else 0, K):
            fig.add_trace(
                go.Scatter(
                    x=c["v"],
                    y=c["proba"][:, k],
                    mode="lines",
                    name=f"{name}: P({classes[k]})",
                    line=dict(color=_rgb(k), dash=dashes[i % len(dashes)], width=2),
                )
            )
    xs = np.asarray(x)[:600]
    ys = np.asarray(y)[:600]
    for k in range(K):
        v = xs[ys == k, observed]
        fig.add_trace(
            go.Scatter(
                x=v,
                y=np.full(len(v), -0.06 - 0.03 * k),
                mode="markers",
                showlegend=False,
                marker=dict(symbol="line-ns-open", size=6, color=_rgb(k, 0.5)),
            )
        )
    _layout(fig, title, height=height, square=False)
    fig.update_layout(
        showlegend=True,
        legend=dict(orientation="h", y=-0.3),
        xaxis_title=f"x{observed + 1} (observed)",
        yaxis_title="P(class | observed)",
    )
    fig.update_yaxes(range=[-0.06 - 0.03 * K, 1.05])
    return fig


def label_curve_figure(curve: dict, title: str = "", height: int = 300) -> go.Figure:
    """Test accuracy against labels per class (log scale) for each classifier."""
    fig = go.Figure()
    names = {"logistic": "logistic regression", "mlp": "MLP", "generative": "generative (Bayes rule)"}
    for i, (k, name) in enumerate(names.items()):
        fig.add_trace(
            go.Scatter(
                x=curve["sizes"],
                y=curve[k],
                mode="lines+markers",
                name=name,
                line=dict(color=PALETTE[i], width=2),
            )
        )
    _layout(fig, title, height=height, square=False)
    fig.update_layout(
        showlegend=True,
        legend=dict(orientation="h", y=-0.3),
        xaxis_title="labelled points per class",
        yaxis_title="test accuracy",
    )
    fig.update_xaxes(type="log")
    return fig


# ---------------------------------------------------------------------------------------------
# Inverse problems
# ---------------------------------------------------------------------------------------------


def slice_figure(
    truth: dict | None,
    data: np.ndarray,
    dim: int,
    c: float,
    answers: list,
    title: str = "",
    bounds=None,
    height: int = 400,
    max_points: int = 400,
) -> go.Figure:
    """The data (and true density), the observation line x_dim = c, and each family's answer points."""
    fig = go.Figure()
    if truth is not None:
        lp = np.asarray(truth["log_prob"], dtype=float)
        fig.add_trace(
            go.Heatmap(
                x=truth["x"],
                y=truth["y"],
                z=np.exp(np.clip(lp - lp.max(), -10, 0)),
                colorscale="Greys",
                showscale=False,
                hoverinfo="skip",
                opacity=0.5,
                zsmooth="best",
            )
        )
    d = np.asarray(data)[:1500]
    fig.add_trace(
        go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", marker=dict(size=2, color=DATA_COLOR), name="data")
    )
    for i, a in enumerate(answers):
        p = np.asarray(a.points)[:max_points]
        if len(p):
            fig.add_trace(
                go.Scatter(
                    x=p[:, 0],
                    y=p[:, 1],
                    mode="markers",
                    name=f"{a.title} ({a.method})",
                    marker=dict(size=5, color=PALETTE[i % len(PALETTE)], opacity=0.7),
                )
            )
    if dim == 0:
        fig.add_vline(x=c, line_color="black", line_dash="dash")
    else:
        fig.add_hline(y=c, line_color="black", line_dash="dash")
    fig = _layout(fig, title, bounds, height)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.12))
    return fig


def conditional_figure(
    truth: dict, answers: list, dim: int, sols: list[dict] | None = None, title: str = "", height: int = 340
) -> go.Figure:
    """p(x_other | observation): the truth (black), each answer's density (solid) or a normalised
    histogram of its samples (steps), and the separate solutions as dotted lines."""
    g, pt = truth["g"], truth["p"]
    fig = go.Figure(go.Scatter(x=g, y=pt, mode="lines", name="truth", line=dict(color="black", width=3)))
    edges = np.linspace(g[0], g[-1], 81)
    for i, a in enumerate(answers):
        color = PALETTE[i % len(PALETTE)]
        name = f"{a.title} ({a.method})"
        if a.density is not None:
            fig.add_trace(
                go.Scatter(
                    x=a.density["g"],
                    y=a.density["p"],
                    mode="lines",
                    name=name,
                    line=dict(color=color, width=2),
                )
            )
        elif len(a.points):
            h, _ = np.histogram(a.points[:, 1 - dim], bins=edges, density=True)
            fig.add_trace(
                go.Scatter(
                    x=edges,
                    y=np.append(h, h[-1]),
                    mode="lines",
                    line=dict(shape="hv", color=color, width=2),
                    name=name,
                )
            )
    for s in sols or []:
        fig.add_vline(x=s["at"], line_color="grey", line_dash="dot")
    _layout(fig, title, height=height, square=False)
    fig.update_layout(
        showlegend=True,
        legend=dict(orientation="h", y=-0.3),
        xaxis_title=f"x{2 - dim}",
        yaxis_title="density",
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Scoreboard
# ---------------------------------------------------------------------------------------------


def scoreboard_figure(rows: list[dict], columns: dict[str, str], height: int | None = None) -> go.Figure:
    """The measured table: each cell the value with the lecture's claim; green where it agrees,
    red where the measurement disagrees, white where there is no claim."""
    if not rows:
        return empty_figure("", "no measurements yet", 200)
    fill = {True: "#dff0d8", False: "#f8d7da", None: "white"}
    header = ["family", *columns.values()]
    cells = [[r["family"] for r in rows]] + [[r[c]["text"] for r in rows] for c in columns]
    colors = [["#f5f5f5"] * len(rows)] + [[fill[r[c]["agrees"]] for r in rows] for c in columns]
    fig = go.Figure(
        go.Table(
            header=dict(values=header, fill_color="#e8e8e8", align="left", font=dict(size=12)),
            cells=dict(values=cells, fill_color=colors, align="left", height=28, font=dict(size=12)),
        )
    )
    fig.update_layout(margin=dict(l=0, r=0, t=4, b=0), height=height or 60 + 30 * len(rows))
    return fig
