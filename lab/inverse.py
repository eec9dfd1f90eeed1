"""Inverse problems on 2D data: infer x_other from an observation of x_dim = c with each family, against the true conditional."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import logsumexp

from lab.base import GenerativeModel, option
from lab.metrics import energy_distance

METHODS = {
    "autoregressive": "exact sequential conditional: sample x_other from p(x_other | x_dim = c)",
    "inpaint": "diffusion inpainting (replacement method): x_dim held at its noised value c at every step",
    "grid": "exact Bayes on a fine grid: p(x_other | c) proportional to p(c, x_other), normalised",
    "latent": "optimise latents z so that decode(z) has x_dim near c, plus the prior -log p(z)",
    "rejection": "rejection (ABC): draw samples, keep those whose x_dim is near c",
}


@dataclass(frozen=True)
class InverseConfig:
    """How the latent-inversion solver works: fields map to the page's widgets, its link and `--set`."""

    prior_weight: float = option(
        1.0,
        "λ, the weight of the prior term λ·(-log p(z)) in latent inversion: 0 = none (the data term alone, "
        "each start keeps whatever the observation does not pin down), 1 = MAP, large = answers pulled to "
        "the prior's centre",
        min=0.0,
        max=1000.0,
    )
    steps: int = option(300, "Adam steps of latent inversion", min=10, max=5000)
    lr: float = option(
        0.1, "Adam's learning rate in latent inversion (decays linearly to 0)", min=1e-4, max=1.0
    )

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


# ---------------------------------------------------------------------------------------------
# The conditional on a grid: the truth, and every family with a density
# ---------------------------------------------------------------------------------------------


def grid_conditional(
    log_prob, dim: int, c: float, lo: float, hi: float, n: int = 600, sigma: float = 0.0
) -> dict:
    """p(x_other | observation) on a grid of x_other over [lo, hi], normalised to integrate to 1.

    sigma = 0: the observation is x_dim = c exactly, p(x_other | c) = p(c, x_other) / int p(c, u) du.
    sigma > 0: the observation is y = x_dim + N(0, sigma^2), and
      p(x_other | y) is proportional to int p(x_dim, x_other) N(y; x_dim, sigma^2) dx_dim,
    integrated on 81 nodes over y +- 5 sigma. `log_prob` maps points [m, 2] to log p [m].
    Returns {"g": grid [n], "p": density [n], "log_p": [n]}.
    """
    edges = np.linspace(lo, hi, n + 1)
    g = 0.5 * (edges[1:] + edges[:-1])  # midpoints: the normalisation is the midpoint rule
    if sigma <= 0:
        pts = np.empty((n, 2))
        pts[:, dim], pts[:, 1 - dim] = c, g
        lp = np.asarray(log_prob(pts), dtype=np.float64)
    else:
        u = np.linspace(c - 5 * sigma, c + 5 * sigma, 81)  # nodes for the measured coordinate
        pts = np.empty((len(u), n, 2))
        pts[..., dim], pts[..., 1 - dim] = u[:, None], g[None, :]
        lp = np.asarray(log_prob(pts.reshape(-1, 2)), dtype=np.float64).reshape(len(u), n)
        lik = -0.5 * ((u - c) / sigma) ** 2
        lp = logsumexp(lp + lik[:, None], axis=0)
    lp = np.where(np.isfinite(lp), lp, -np.inf)
    if not np.isfinite(lp).any():
        raise ValueError(f"The density is zero everywhere on the line x{dim + 1} = {c:g}.")
    log_z = logsumexp(lp) + math.log((hi - lo) / n)
    return {"g": g, "log_p": lp - log_z, "p": np.exp(lp - log_z)}


def true_conditional(dataset, dim: int, c: float, sigma: float = 0.0, n: int = 600) -> dict:
    """The dataset's own p(x_other | observation) from its true log_prob, over its plot window."""
    b = dataset.bounds()
    lo, hi = (b[2], b[3]) if dim == 0 else (b[0], b[1])
    return grid_conditional(dataset.log_prob, dim, c, lo, hi, n, sigma)


def sample_grid(cond: dict, n: int, seed: int = 0) -> np.ndarray:
    """n draws from a gridded density (inverse CDF over cells, uniform within a cell)."""
    g, p = cond["g"], cond["p"]
    w = p / p.sum()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(g), size=n, p=w)
    h = g[1] - g[0]
    return g[idx] + h * (rng.uniform(size=n) - 0.5)


# ---------------------------------------------------------------------------------------------
# What each family can do
# ---------------------------------------------------------------------------------------------


def methods_for(model: GenerativeModel) -> list[str]:
    """The conditioning methods this model supports, its best one first."""
    out = []
    if hasattr(model, "sample_conditional"):
        out.append("autoregressive")
    if hasattr(model, "inpaint"):
        out.append("inpaint")
    if model.has_log_prob:
        out.append("grid")
    if all(hasattr(model, a) for a in ("decode", "latent_dim", "prior_sample_latent")):
        out.append("latent")
    out.append("rejection")  # anything that samples
    return out


def latent_inversion(
    model: GenerativeModel,
    dim: int,
    c: float,
    n: int,
    generator: torch.Generator,
    sigma: float = 0.0,
    steps: int = 300,
    lr: float = 0.1,
    prior_weight: float = 1.0,
) -> tuple[np.ndarray, dict]:
    """Samples by optimising latents (GAN inversion / VAE latent MAP; Bora et al. 2017, "Compressed
    sensing using generative models"):

        z* = argmin_z (decode(z)_dim - c)^2 / (2 s^2) - λ log p(z),

    from n starts z_0 ~ p(z), all in standardised coordinates; s is the measurement noise sigma
    (or 5 % of the data's spread for an exact observation). -log p(z) uses a Gaussian fitted to
    prior_sample_latent draws, which is the prior itself when that is Gaussian. λ = `prior_weight`
    is the regulariser's weight (Tikhonov in z): λ = 1 is the MAP estimate, λ = 0 fits the data
    term alone (the ill-posed least squares: what the observation does not pin down stays where its
    start was), λ -> infinity pulls every answer to the prior's centre whatever was observed.
    Each start lands on one solution near it, so this is mode-seeking, not a posterior sampler.
    Returns the points [n, 2] in data coordinates and {"residual": mean |x_dim - c| in data units,
    "z_radius": mean Mahalanobis distance of z* from the prior's centre, "prior_weight": λ}.
    """
    std, mean = float(model.scaler.std[dim]), float(model.scaler.mean[dim])
    c_z = (c - mean) / std
    s = max(sigma, 0.05 * std) / std
    dev = model.device
    with torch.no_grad():
        ref = model.prior_sample_latent(
            4096, torch.Generator(device=dev).manual_seed(model.seed + 99)
        ).float()
        mu = ref.mean(0)
        prec = torch.linalg.inv(
            torch.cov(ref.T).reshape(ref.shape[1], ref.shape[1]) + 1e-4 * torch.eye(ref.shape[1], device=dev)
        )
        z = model.prior_sample_latent(n, generator).float().clone()
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 1 - i / steps
    )  # decay to 0: Adam settles instead of hovering
    for _ in range(steps):
        x = model.decode(z)
        d = z - mu
        loss = (0.5 * ((x[:, dim] - c_z) / s) ** 2 + prior_weight * 0.5 * ((d @ prec) * d).sum(1)).sum()
        # grad w.r.t. z only: the model's own parameters (maybe training elsewhere) are untouched
        (gz,) = torch.autograd.grad(loss, [z])
        z.grad = gz
        opt.step()
        sched.step()
    with torch.no_grad():
        x = model.scaler.to_x(model.decode(z).float().cpu()).numpy()
        d = z.detach() - mu
        radius = float(((d @ prec) * d).sum(1).clamp_min(0).sqrt().mean())
    return x, {
        "residual": float(np.abs(x[:, dim] - c).mean()),
        "z_radius": radius,
        "prior_weight": float(prior_weight),
    }


def rejection(
    model: GenerativeModel,
    dim: int,
    c: float,
    n: int,
    generator: torch.Generator,
    sigma: float = 0.0,
    max_draws: int = 200_000,
) -> tuple[np.ndarray, dict]:
    """Approximate Bayesian computation: draw x ~ model, accept with probability
    exp(-(x_dim - c)^2 / (2 s^2)). With s = sigma this is exactly the noisy-observation posterior;
    for an exact observation s is 2 % of the data's spread on x_dim (a thin slab)."""
    s = sigma if sigma > 0 else 0.02 * float(model.scaler.std[dim])
    kept, drawn = [], 0
    while sum(len(k) for k in kept) < n and drawn < max_draws:
        m = min(20_000, max_draws - drawn)
        x = model.sample(m, generator).double().numpy()
        drawn += m
        u = torch.rand(m, generator=generator, dtype=torch.float64, device=generator.device).cpu().numpy()
        ok = np.isfinite(x).all(1) & (u < np.exp(-0.5 * ((x[:, dim] - c) / s) ** 2))
        kept.append(x[ok])
    x = np.concatenate(kept)[:n]
    return x, {"acceptance": len(np.concatenate(kept)) / max(drawn, 1), "draws": drawn}


@dataclass
class Answer:
    """One family's answer to the inverse problem."""

    key: str
    title: str
    method: str
    points: np.ndarray  # [m, 2] data coordinates (x_dim near or at c)
    density: dict | None = None  # {"g", "p"} when the method gives a density on the grid
    info: dict = field(default_factory=dict)
    error: str = ""

    @property
    def other(self) -> np.ndarray:
        return self.points[:, 1 - self.info.get("dim", 0)] if len(self.points) else np.zeros(0)


def solve(
    model: GenerativeModel,
    dim: int,
    c: float,
    truth: dict,
    method: str | None = None,
    n: int = 1000,
    seed: int = 0,
    sigma: float = 0.0,
    solver: InverseConfig | None = None,
) -> Answer:
    """Answer the inverse problem with one model: samples of x_other (and a density where the method has
    one). `solver` sets latent inversion's prior weight λ, steps and learning rate (the defaults: MAP)."""
    method = method or methods_for(model)[0]
    solver = solver or InverseConfig()
    gen = torch.Generator(device=model.device).manual_seed(seed)
    info: dict = {"dim": dim, "method_text": METHODS[method]}
    density = None
    try:
        if method == "autoregressive" and sigma == 0:
            pts = model.sample_conditional(c, n, gen, dim=dim)
        elif method == "inpaint" and sigma == 0:
            pts = model.inpaint(dim, c, n, gen)
        elif method == "grid":
            lo, hi = (
                truth["g"][0] - 0.5 * (truth["g"][1] - truth["g"][0]),
                truth["g"][-1] + 0.5 * (truth["g"][1] - truth["g"][0]),
            )
            density = grid_conditional(
                lambda p: model.log_prob(p).double().numpy(), dim, c, lo, hi, len(truth["g"]), sigma
            )
            other = sample_grid(density, n, seed)
            pts = np.empty((n, 2))
            pts[:, dim], pts[:, 1 - dim] = c, other
            if model.density_kind == "bound":
                info["note"] = "the density is the model's bound (ELBO), so this conditional is approximate"
        elif method == "latent":
            pts, more = latent_inversion(
                model, dim, c, n, gen, sigma, solver.steps, solver.lr, solver.prior_weight
            )
            info.update(more)
        else:
            if method in ("autoregressive", "inpaint"):
                info["note"] = (
                    "a noisy observation is not what this method conditions on; rejection used instead"
                )
                method = "rejection"
            pts, more = rejection(model, dim, c, n, gen, sigma)
            info.update(more)
    except Exception as e:  # a family's conditional sampler failing must not take the page down
        return Answer(
            model.key, model.title, method, np.zeros((0, 2)), None, info, f"{type(e).__name__}: {e}"
        )
    pts = np.asarray(
        torch.as_tensor(pts).double().cpu().numpy() if isinstance(pts, torch.Tensor) else pts,
        dtype=np.float64,
    )
    pts = pts[np.isfinite(pts).all(1)]
    return Answer(model.key, model.title, method, pts, density, info)


# ---------------------------------------------------------------------------------------------
# Scores against the truth, and the ill-posedness
# ---------------------------------------------------------------------------------------------


def conditional_spread(cond: dict) -> float:
    """The standard deviation of a gridded conditional p(x_other | observation)."""
    w = cond["p"] / cond["p"].sum()
    m = float((cond["g"] * w).sum())
    return float(np.sqrt((w * (cond["g"] - m) ** 2).sum()))


def manifold_level(dataset, q: float = 0.01, n: int = 5000, seed: int = 0) -> float:
    """The true log-density below which only a fraction q of the data lies: points under it are "off
    the data manifold" (for moons, well outside the arcs' noise band)."""
    return float(np.quantile(dataset.log_prob(dataset.sample(n, seed)), q))


def score(
    answer: Answer,
    truth: dict,
    dim: int,
    c: float,
    n_truth: int = 1000,
    seed: int = 0,
    dataset=None,
) -> dict:
    """Energy distance between the answer's x_other and the true conditional's (both on the line
    x_dim = c), its floor (two true samples), the answers' spread (std of x_other) beside the truth's,
    KL(truth || model) on the grid where the answer has a density, and with a `dataset` that has a
    true density the fraction of answer points off its manifold (below `manifold_level`)."""
    out: dict = {"n": int(len(answer.points))}
    if len(answer.points) < 2:
        return out
    t1, t2 = sample_grid(truth, n_truth, seed + 1), sample_grid(truth, n_truth, seed + 2)
    out["spread"] = float(np.std(answer.other))
    out["spread_truth"] = conditional_spread(truth)
    if dataset is not None and getattr(dataset, "has_density", False):
        level = manifold_level(dataset)
        out["off_manifold"] = float(np.mean(dataset.log_prob(answer.points) < level))

    def line(v):
        return np.stack([np.full(len(v), c), v], 1)

    out["energy_distance"] = energy_distance(line(answer.other[:n_truth]), line(t1))
    out["energy_distance_floor"] = energy_distance(line(t1), line(t2))
    if answer.density is not None:
        p, q = truth["p"], answer.density["p"]
        h = truth["g"][1] - truth["g"][0]
        mask = p > 0
        out["kl"] = float(np.sum(p[mask] * (np.log(p[mask]) - np.log(np.maximum(q[mask], 1e-300)))) * h)
    return out


def solutions(cond: dict, rel: float = 0.05, min_mass: float = 0.02) -> list[dict]:
    """The separate answers in a conditional: its modes.

    A mode is a local maximum of p above `rel` of the highest; its mass is the probability of the
    region between the neighbouring minima. Modes with less than `min_mass` are dropped.
    Returns [{"at", "mass", "height"}] sorted by position.
    """
    g, p = cond["g"], cond["p"]
    h = g[1] - g[0]
    peaks = [
        i
        for i in range(len(p))
        if p[i] >= rel * p.max() and (i == 0 or p[i] > p[i - 1]) and (i == len(p) - 1 or p[i] >= p[i + 1])
    ]
    out = []
    for j, i in enumerate(peaks):
        # the region of this peak: from the lowest point before it (after the previous peak) to the next
        a = 0 if j == 0 else peaks[j - 1] + int(np.argmin(p[peaks[j - 1] : i + 1]))
        b = len(p) if j == len(peaks) - 1 else i + int(np.argmin(p[i : peaks[j + 1] + 1]))
        mass = float(p[a:b].sum() * h)
        if mass >= min_mass:
            out.append({"at": float(g[i]), "mass": mass, "height": float(p[i])})
    return out


def ill_posedness(cond: dict, dim: int, c: float) -> str:
    """One paragraph on why this inverse problem has one or several answers, with its numbers."""
    sol = solutions(cond)
    other = f"x{2 - dim}"
    mean = float((cond["g"] * cond["p"]).sum() / cond["p"].sum())
    at_mean = float(np.interp(mean, cond["g"], cond["p"]) / cond["p"].max())
    if len(sol) <= 1:
        where = f" near {sol[0]['at']:.2f}" if sol else ""
        return (
            f"At x{dim + 1} = {c:.2f} the data allow one value of {other}{where}: this slice is well posed. "
            f"Move the slider to a place where the line crosses the data twice to see several answers."
        )
    parts = ", ".join(f"{s['at']:.2f} ({s['mass']:.0%})" for s in sol)
    return (
        f"At x{dim + 1} = {c:.2f} the data allow {len(sol)} separate values of {other}: {parts}. "
        f"The inverse problem is ill-posed: no single answer is right. The average answer, {other} = {mean:.2f}, "
        f"sits where the density is {at_mean:.0%} of its peak, a point the data almost never produce. "
        f"A generative model answers with the whole conditional distribution instead, and a good one puts mass on every solution."
    )
