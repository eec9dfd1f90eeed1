"""Normalizing flows: rational-quadratic spline coupling, affine coupling (RealNVP) and planar flows."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lab.base import Config, GenerativeModel, option
from lab.nn import MLP

LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------------
# Rational-quadratic spline (Durkan et al. 2019, "Neural Spline Flows", eqs. 4-6 and appendix A)
# ---------------------------------------------------------------------------------------------


def rq_spline(
    x: torch.Tensor,
    w_raw: torch.Tensor,
    h_raw: torch.Tensor,
    d_raw: torch.Tensor,
    bound: float,
    inverse: bool = False,
    min_bin: float = 1e-3,
    min_deriv: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotone rational-quadratic spline on [-B, B], identity outside (linear tails).

    x [n]; w_raw, h_raw [n, K] (bin widths / heights before softmax); d_raw [n, K-1] (interior knot
    derivatives before softplus). In bin k with theta = (x - x_k) / w_k and s_k = h_k / w_k:

        y = y_k + h_k [s_k theta^2 + d_k theta (1 - theta)] / [s_k + (d_k+1 + d_k - 2 s_k) theta (1 - theta)]

    Returns (y, log|dy/dx|), or with inverse=True (x, log|dx/dy|) by solving the quadratic in theta.
    """
    n, K = w_raw.shape
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)  # outside values are computed on the edge, then replaced

    # knots of x (widths) and y (heights) together: [n, 2, K+1] from -B to B, each bin at least min_bin
    frac = min_bin + (1 - min_bin * K) * torch.softmax(
        torch.stack([w_raw, h_raw], 1), dim=-1
    )  # [n, 2, K], rows sum to 1
    interior = 2 * bound * torch.cumsum(frac[..., :-1], dim=-1) - bound  # [n, 2, K-1]
    end = interior.new_full((n, 2, 1), bound)
    knots = torch.cat([-end, interior, end], dim=-1)
    # boundary derivatives are 1 so the spline joins the identity tails smoothly
    ones = torch.ones_like(d_raw[:, :1])
    # softplus on a strided slice of the network's output is ~6x slower than on a contiguous copy
    derivs = torch.cat([ones, min_deriv + F.softplus(d_raw.contiguous()), ones], dim=-1)  # [n, K+1]

    edges = knots[:, 1 if inverse else 0]
    idx = (torch.searchsorted(edges[:, 1:-1].contiguous(), xc[:, None].contiguous(), right=True)[:, 0]).clamp(
        0, K - 1
    )
    # one gather for the bin's two ends: (x_k, x_k+1), (y_k, y_k+1), (d_k, d_k+1), each [n]
    table = torch.cat([knots, derivs[:, None]], dim=1)  # [n, 3, K+1]
    ends = table.gather(-1, torch.stack([idx, idx + 1], -1)[:, None].expand(n, 3, 2))  # [n, 3, 2]
    (x_k, x_k1), (y_k, y_k1), (d_k, d_k1) = [e.unbind(-1) for e in ends.unbind(1)]
    w_k, h_k = x_k1 - x_k, y_k1 - y_k
    s_k = h_k / w_k

    if not inverse:
        theta = (xc - x_k) / w_k
    else:
        # a theta^2 + b theta + c = 0 (appendix A), the root in [0, 1] taken in its stable form
        dy = xc - y_k
        a = h_k * (s_k - d_k) + dy * (d_k1 + d_k - 2 * s_k)
        b = h_k * d_k - dy * (d_k1 + d_k - 2 * s_k)
        c = -s_k * dy
        disc = (b.pow(2) - 4 * a * c).clamp_min(0)
        theta = (2 * c) / (-b - disc.sqrt())
    t1t = theta * (1 - theta)
    denom = s_k + (d_k1 + d_k - 2 * s_k) * t1t
    # dy/dx = s_k^2 [d_k+1 theta^2 + 2 s_k theta (1-theta) + d_k (1-theta)^2] / denom^2
    logdet = torch.log(
        s_k.pow(2) * (d_k1 * theta.pow(2) + 2 * s_k * t1t + d_k * (1 - theta).pow(2))
    ) - 2 * torch.log(denom)
    if not inverse:
        out = y_k + h_k * (s_k * theta.pow(2) + d_k * t1t) / denom
    else:
        out, logdet = x_k + theta * w_k, -logdet
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))


# ---------------------------------------------------------------------------------------------
# Layers. Each maps base -> data with `forward` and data -> base with `inverse`, both returning
# (output [n, 2], log|det| [n] of the map it applies).
# ---------------------------------------------------------------------------------------------


class Coupling(nn.Module):
    """Coupling layer (Dinh et al. 2017): keep coordinate `cond`, transform the other one with
    parameters computed from the kept one, so the Jacobian is triangular and log|det| is one term.

    kind="affine" (RealNVP):  x_b = u_b exp(s(x_a)) + t(x_a),  log|det| = s(x_a)
    kind="spline" (NSF):      x_b = RQ-spline(u_b; theta(x_a)),  log|det| from the spline
    """

    def __init__(self, cond: int, kind: str, hidden: int, depth: int, bins: int, bound: float):
        super().__init__()
        self.cond, self.kind, self.bins, self.bound = cond, kind, bins, bound
        n_out = 2 if kind == "affine" else 3 * bins - 1
        self.net = MLP(1, n_out, hidden, depth, act="silu")
        last = self.net[-1]
        nn.init.zeros_(last.weight)  # start at the identity map (uniform spline, unit scale)
        nn.init.zeros_(last.bias)

    def _transform(
        self, v: torch.Tensor, a: torch.Tensor, inverse: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.net(a[:, None])
        if self.kind == "affine":
            log_s = 2.0 * torch.tanh(p[:, 0] / 2.0)  # bounded scale keeps early training stable
            t = p[:, 1]
            return ((v - t) * torch.exp(-log_s), -log_s) if inverse else (v * torch.exp(log_s) + t, log_s)
        K = self.bins
        # the spline is written data -> base (no square root in training); base -> data inverts it
        return rq_spline(v, p[:, :K], p[:, K : 2 * K], p[:, 2 * K :], self.bound, inverse=not inverse)

    def _couple(self, x: torch.Tensor, inverse: bool):
        a, v = x[:, self.cond], x[:, 1 - self.cond]
        out, logdet = self._transform(v, a, inverse)
        cols = [a, out] if self.cond == 0 else [out, a]
        return torch.stack(cols, dim=1), logdet

    def forward(self, u):  # base -> data
        return self._couple(u, inverse=False)

    def inverse(self, x):  # data -> base
        return self._couple(x, inverse=True)


class Planar(nn.Module):
    """Planar flow (Rezende & Mohamed 2015): x = u + u_hat tanh(w^T u + b), log|det| = log|1 + u_hat^T w tanh'(.)|.

    u_hat = u + [m(w^T u) - w^T u] w / |w|^2 with m(a) = -1 + softplus(a) keeps w^T u_hat > -1, so the
    map is invertible. It has no closed-form inverse: with alpha = w^T u, the data point y gives the
    scalar equation alpha + (w^T u_hat) tanh(alpha + b) = w^T y, monotone in alpha, which `inverse`
    solves by bisection on its bracket [w^T y - |w^T u_hat|, w^T y + |w^T u_hat|]. The gradient of
    the solution is the implicit-function one, d alpha = -dg / g'(alpha), attached by one Newton step.
    """

    def __init__(self, init_scale: float = 0.1):
        super().__init__()
        self.u = nn.Parameter(torch.randn(2) * init_scale)
        self.w = nn.Parameter(torch.randn(2) * init_scale)
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self) -> torch.Tensor:
        wu = self.w @ self.u
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w @ self.w + 1e-12)

    def forward(self, u):  # base -> data
        uh = self.u_hat()
        pre = u @ self.w + self.b
        x = u + uh[None, :] * torch.tanh(pre)[:, None]
        logdet = torch.log((1 + (uh @ self.w) * (1 - torch.tanh(pre).pow(2))).abs())
        return x, logdet

    def inverse(self, y, iters: int = 30):  # data -> base, numerically
        uh = self.u_hat()
        s = uh @ self.w  # > -1
        c = y @ self.w
        g = lambda al: al + s * torch.tanh(al + self.b) - c  # noqa: E731  increasing in alpha
        with torch.no_grad():
            lo, hi = c - s.abs() - 1e-6, c + s.abs() + 1e-6
            for _ in range(iters):
                mid = 0.5 * (lo + hi)
                pos = g(mid) > 0
                hi, lo = torch.where(pos, mid, hi), torch.where(pos, lo, mid)
            alpha0 = 0.5 * (lo + hi)
        # one Newton step from the (detached) root: exact value to first order, implicit gradient
        dg = 1 + s * (1 - torch.tanh(alpha0 + self.b).pow(2))
        alpha = alpha0 - g(alpha0) / dg.detach()
        u = y - uh[None, :] * torch.tanh(alpha + self.b)[:, None]
        logdet = -torch.log((1 + s * (1 - torch.tanh(alpha + self.b).pow(2))).abs())
        return u, logdet


def loo_bandwidth(z: torch.Tensor, max_points: int = 500, seed: int = 0) -> float:
    """The bandwidth h of a Gaussian KDE of the points z [n, 2] that maximises the leave-one-out
    log-likelihood  1/n sum_i log 1/(n-1) sum_{j != i} N(z_i; z_j, h^2 I)  over a log grid.

    Beyond max_points it is fitted on a random subset and shrunk by (m / n)^(1/6), the rate at which
    the optimal bandwidth falls with the number of points in 2D. 0 for fewer than 10 points.
    """
    n = len(z)
    if n < 10:
        return 0.0
    z = z.detach().double().cpu()
    if n > max_points:
        z = z[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_points]]
    m = len(z)
    d2 = torch.cdist(z, z).pow(2).fill_diagonal_(math.inf)  # [m, m], a point never explains itself
    hs = torch.logspace(-3, 0.5, 48, dtype=torch.float64)
    ll = [float(torch.logsumexp(-0.5 * d2 / h**2, 1).mean() - 2 * math.log(h)) for h in hs]
    return float(hs[int(np.argmax(ll))]) * (m / n) ** (1 / 6)


def noise_std(noise: float, half_life: float, step: int, n: int, floor: float = 0.0) -> float:
    """sigma_t = max(floor, noise * sqrt(300 / n) * 2^(-step / half_life)): more data needs less smoothing."""
    return max(floor, noise * math.sqrt(300 / max(n, 1)) * 0.5 ** (step / half_life))


def _noisy(z: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Noise regularisation (Rothfuss et al. 2019): fit the data convolved with N(0, sigma^2 I).

    sigma starts large (a coarse fit first, which also finds separated modes sooner) and halves every
    noise_half_life steps down to a floor: a fraction of the training points' leave-one-out KDE
    bandwidth, the smoothing that data of this size supports. The floor shrinks as n grows, both
    through that bandwidth (~ n^(-1/6)) and a factor sqrt(300 / n), so big data trains nearly
    noise-free; the runner's early stopping on held-out NLL does the rest."""
    if sigma <= 0:
        return z
    return z + sigma * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)


# ---------------------------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowConfig(Config):
    lr: float = option(
        1e-2, "learning rate (AdamW, halved every lr_decay steps)", min=1e-5, max=1.0, log=True, live=True
    )
    batch_size: int = option(512, "points per training step", min=8, max=4096)
    variant: str = option(
        "spline",
        "layer type: rational-quadratic spline coupling, affine coupling (RealNVP) or planar",
        choices=["spline", "affine", "planar"],
    )
    layers: int = option(4, "flow layers (planar flows need many: try 32)", min=1, max=64)
    # 48 rather than 64: each step ~10 % cheaper and no less able (moons in 7.5 s: KL 0.0185 against 0.0227 over
    # 5 seeds; 300 points of 8gaussians in 15 s: gap to the best classical fit +0.046 against +0.054)
    hidden: int = option(48, "hidden units of each coupling network", min=4, max=512)
    depth: int = option(2, "hidden layers of each coupling network", min=1, max=6)
    # 8 bins fit moons faster (KL 0.009-0.019 in 570 steps against 0.024 for 16) but miss 8gaussians' narrow
    # modes on 300 points by 0.38 nats (16: 0.035): bench/results_fit_flow_ar.md
    bins: int = option(16, "spline bins", min=2, max=64)
    tail_bound: float = option(
        4.5, "spline interval [-B, B] in standardised units; identity outside", min=1.0, max=10.0
    )
    weight_decay: float = option(1e-4, "AdamW weight decay (regularises small data sets)", min=0.0, max=1.0)
    lr_decay: float = option(1000.0, "steps for the learning rate to halve (0: constant)", min=0.0, max=1e6)
    min_lr_ratio: float = option(
        0.05, "the decayed learning rate never goes below lr times this", min=0.0, max=1.0
    )
    noise: float = option(
        0.3,
        "noise regularisation: std of the noise added to training points at step 0 for 300 points, in standardised units (scaled by sqrt(300 / n) for n points)",
        min=0.0,
        max=2.0,
    )
    noise_half_life: float = option(40.0, "steps for the training noise to halve", min=1.0, max=1e6)
    noise_floor: float = option(
        0.75,
        "the training noise never falls below this times the leave-one-out KDE bandwidth of the training points, scaled by sqrt(300 / n) for n points (0: anneal to no noise)",
        min=0.0,
        max=4.0,
    )
    ema: float = option(
        0.995, "decay of the weight average the model uses (0: the raw weights)", min=0.0, max=0.9999
    )


class Flow(GenerativeModel):
    """x = f(u), u ~ N(0, I), f = f_K o ... o f_1 invertible, trained by maximum likelihood:

        log p(x) = log N(f^-1(x); 0, I) + log|det d f^-1 / dx|   (change of variables)

    Coupling variants invert exactly both ways. The planar variant is also trained by maximum likelihood
    on the data: its inverse is numerical (bisection on one scalar per layer, see Planar), so log_prob
    is exact to float precision, and sampling is the cheap closed-form forward pass.
    """

    key = "flow"
    title = "Normalizing flow"
    Config = FlowConfig
    has_log_prob = True
    density_kind = "exact"

    def _build(self):
        cfg = self.config
        if cfg.variant == "planar":
            layers = [Planar() for _ in range(cfg.layers)]
        else:
            layers = [
                Coupling(k % 2, cfg.variant, cfg.hidden, cfg.depth, cfg.bins, cfg.tail_bound)
                for k in range(cfg.layers)
            ]
        flow = nn.ModuleList(layers)
        # "ema": a Polyak average of the trained weights (Polyak & Juditsky 1992), what log_prob,
        # sample and views use: it removes most of the optimiser's noise from the fitted density
        ema = copy.deepcopy(flow).requires_grad_(False)
        self.net = nn.ModuleDict({"flow": flow, "ema": ema})
        # both parameter lists once: walking the modules for them three times a step was ~5 % of a step (the
        # Parameter objects stay the same through .to(device) and load_state_dict)
        self.params = (list(flow.parameters()), list(ema.parameters()))
        # fused: one kernel over every parameter (0.2 ms a step on one core, against 0.8 ms for foreach)
        self.opt = torch.optim.AdamW(flow.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.optimizers = [self.opt]
        self.steps = 0
        n = len(self.train_z)
        self.noise_floor = (
            cfg.noise_floor * math.sqrt(min(1.0, 300 / n)) * loo_bandwidth(self.train_z, seed=self.seed)
            if cfg.noise_floor > 0
            else 0.0
        )

    @property
    def layers(self) -> nn.ModuleList:
        """The layers that define the model's density and samples (the averaged ones)."""
        return self.net["ema"] if self.config.ema > 0 else self.net["flow"]

    # -- the map, in standardised coordinates ------------------------------------------------------
    def forward(
        self, u: torch.Tensor, upto: int | None = None, layers=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Base -> data through the first `upto` layers: (x [n, 2], log|det dx/du| [n])."""
        logdet = torch.zeros(len(u), dtype=u.dtype, device=u.device)
        for layer in list(self.layers if layers is None else layers)[:upto]:
            u, ld = layer(u)
            logdet = logdet + ld
        return u, logdet

    def inverse(
        self, x: torch.Tensor, upto: int | None = None, layers=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Data -> base, undoing the first `upto` layers: (u [n, 2], log|det du/dx| [n])."""
        logdet = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for layer in reversed(list(self.layers if layers is None else layers)[:upto]):
            x, ld = layer.inverse(x)
            logdet = logdet + ld
        return x, logdet

    def _log_prob_z(self, z: torch.Tensor, upto: int | None = None, layers=None) -> torch.Tensor:
        u, logdet = self.inverse(z, upto, layers)
        return -0.5 * u.pow(2).sum(1) - LOG_2PI + logdet

    def train_step(self, batch):
        cfg = self.config
        # step decay: lr * 2^(-step / lr_decay), floored; set_lr changes cfg.lr live
        scale = 1.0 if cfg.lr_decay <= 0 else max(cfg.min_lr_ratio, 0.5 ** (self.steps / cfg.lr_decay))
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * scale
        batch = _noisy(
            batch,
            noise_std(cfg.noise, cfg.noise_half_life, self.steps, len(self.train_z), self.noise_floor),
            self.gen,
        )
        loss = -self._log_prob_z(batch, layers=self.net["flow"]).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        trained, averaged = self.params
        nn.utils.clip_grad_norm_(trained, 10.0)
        self.opt.step()
        self.steps += 1
        if cfg.ema > 0:
            # ema <- d ema + (1 - d) w, with d ramping up so the first steps are not averaged with the init
            d = min(cfg.ema, (1 + self.steps) / (10 + self.steps))
            with torch.no_grad():
                torch._foreach_lerp_(averaged, trained, 1 - d)
        return {"nll": float(loss.detach())}

    def _sample_z(self, n, generator):
        u = torch.randn(n, 2, generator=generator, device=self.device)
        return self.forward(u)[0]

    # -- pictures ------------------------------------------------------------------------------------
    def _window_z(self, bounds=None) -> tuple[float, float, float, float]:
        """Plot window in z: the given data bounds, or the training data's range padded by 15 %."""
        if bounds is not None:
            lo = self.scaler.to_z(torch.tensor([[bounds[0], bounds[2]]], dtype=torch.float64))[0]
            hi = self.scaler.to_z(torch.tensor([[bounds[1], bounds[3]]], dtype=torch.float64))[0]
        else:
            z = self.train_z.cpu()
            lo, hi = z.min(0).values.double(), z.max(0).values.double()
            pad = 0.15 * (hi - lo)
            lo, hi = lo - pad, hi + pad
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])

    def _shown_layers(self, most: int = 6) -> list[int]:
        K = len(self.layers)
        return sorted(set(np.linspace(0, K, min(K + 1, most)).round().astype(int).tolist()))

    def views(self, bounds=None, grid: int = 40, n_points: int = 300, n_lines: int = 13, **kw):
        """Arrays, all in data coordinates, for the flow's pictures:

        layers          layer counts k shown (0 = the base Gaussian, K = the model)
        warp            [len(layers), 2 * n_lines, 60, 2] a regular grid of the base (lines of constant
                        u1 and of constant u2 over [-3, 3]) pushed through the first k layers
        density_x/y     grid axes [grid]; layer_log_prob [len(layers), grid, grid] the density of
                        f_k o ... o f_1 (u) after k layers (row = y, column = x)
        trajectories    [K + 1, n_points, 2] base samples after each layer (the animation); base [n_points, 2]
        log_det         [grid, grid] log|det d f^-1 / dx| in data coordinates (> 0 where the flow
                        concentrates mass, < 0 where it spreads it)
        """
        K = len(self.layers)
        shown = self._shown_layers()
        x0, x1, y0, y1 = self._window_z(bounds)
        gx = torch.linspace(x0, x1, grid, device=self.device)
        gy = torch.linspace(y0, y1, grid, device=self.device)
        yy, xx = torch.meshgrid(gy, gx, indexing="ij")
        pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
        t = torch.linspace(-3, 3, 60, device=self.device)
        levels = torch.linspace(-3, 3, n_lines, device=self.device)
        lines = torch.cat(
            [torch.stack([lv.expand(60), t], 1)[None] for lv in levels]
            + [torch.stack([t, lv.expand(60)], 1)[None] for lv in levels]
        )  # [2 * n_lines, 60, 2]
        g = torch.Generator(device=self.device).manual_seed(self.seed + 99)
        u = torch.randn(n_points, 2, generator=g, device=self.device)
        with torch.no_grad():
            warp, dens = [], []
            for k in shown:
                w, _ = self.forward(lines.reshape(-1, 2), upto=k)
                warp.append(self.to_x(w).reshape(2 * n_lines, 60, 2))
                dens.append(
                    (self._log_prob_z(pts, upto=k) + self.scaler.log_det).reshape(grid, grid).cpu().numpy()
                )
            traj = [u]
            for layer in self.layers:
                traj.append(layer(traj[-1])[0])
            _, ld = self.inverse(pts)
        to_x_axis = lambda v, d: v.cpu().double().numpy() * self.scaler.std[d] + self.scaler.mean[d]  # noqa: E731
        return {
            "variant": self.config.variant,
            "n_layers": K,
            "layers": shown,
            "warp": np.stack(warp),
            "density_x": to_x_axis(gx, 0),
            "density_y": to_x_axis(gy, 1),
            "layer_log_prob": np.stack(dens),
            "trajectories": np.stack([self.to_x(p) for p in traj]),
            "log_det": (ld + self.scaler.log_det).reshape(grid, grid).cpu().numpy(),
        }
