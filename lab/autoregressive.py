"""Autoregressive density p(x) = p(x_a) p(x_b | x_a) with a masked network (MADE) and MoG or softmax conditionals."""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lab.base import Config, GenerativeModel, option
from lab.flow import loo_bandwidth, noise_std

LOG_2PI = math.log(2 * math.pi)
ORDERS = {"x1-first": (0, 1), "x2-first": (1, 0)}


# ---------------------------------------------------------------------------------------------
# MADE (Germain et al. 2015): one network whose connectivity masks make output block d depend
# only on the inputs that come before d in the ordering, so all conditionals are one pass.
# ---------------------------------------------------------------------------------------------


class MaskedLinear(nn.Linear):
    """y = x (W * M)^T + b with a fixed 0/1 mask M [out, in]."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.float())

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """D inputs (already in autoregressive order) -> D blocks of n_params outputs.

    Degrees: input d has degree d (1..D); hidden units degrees in 1..D-1; a unit of degree m sees
    inputs of degree <= m, and output block d sees hidden units of degree < d. With D = 2 every
    hidden unit has degree 1 (it sees x_first only) and block 1 sees no unit: its parameters are
    free (the marginal p(x_first)), while block 2 is an MLP of x_first (the conditional).
    """

    def __init__(self, D: int, n_params: int, hidden: int, depth: int):
        super().__init__()
        self.D, self.n_params = D, n_params
        m_in = torch.arange(1, D + 1)
        m_h = [torch.arange(hidden) % max(D - 1, 1) + 1 for _ in range(depth)]
        m_out = torch.arange(1, D + 1).repeat_interleave(n_params)  # block d has degree d
        layers: list[nn.Module] = []
        prev = m_in
        for m in m_h:
            layers += [MaskedLinear(len(prev), hidden, m[:, None] >= prev[None, :]), nn.SiLU()]
            prev = m
        layers.append(MaskedLinear(len(prev), D * n_params, m_out[:, None] > prev[None, :]))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, D] -> params [n, D, n_params]; block d depends on x[:, :d] only."""
        return self.body(x).reshape(len(x), self.D, self.n_params)

    def last(self) -> nn.Linear:
        return self.body[-1]

    def sample(self, cond, n: int, generator, first: torch.Tensor | None = None) -> torch.Tensor:
        """x [n, D] one dimension at a time: D full passes, pass d reads block d (PixelCNN's sampling)."""
        dev = self.last().weight.device
        x = torch.zeros(n, self.D, device=dev)
        for d in range(self.D):
            x[:, d] = first if d == 0 and first is not None else cond.sample(self(x)[:, d], generator)
        return x


class GRUConditioner(nn.Module):
    """PixelRNN-style conditioner (van den Oord et al. 2016, with a GRU, Cho et al. 2014, for the LSTM):
    a recurrent network reads x_1 ... x_{D-1} one at a time, and its state h_d (which has seen x_<d)
    gives the parameters of p(x_d | x_<d) through one linear head shared by all positions:

        h_d = GRU(h_{d-1}, [x_{d-1}, onehot(d)]),  params_d = W h_d + b,  x_0 = 0

    Training is sequential over the dimensions too (the recurrence), unlike MADE's one masked pass;
    sampling is D steps for both, but each step here is one cell update instead of a full pass.
    """

    def __init__(self, D: int, n_params: int, hidden: int, depth: int):
        super().__init__()
        self.D, self.n_params = D, n_params
        self.gru = nn.GRU(1 + D, hidden, num_layers=depth, batch_first=True)
        self.head = nn.Linear(hidden, n_params)

    def last(self) -> nn.Linear:
        return self.head

    def _input(self, prev: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """[n, L] previous values and L positions -> [n, L, 1 + D] (value, one-hot position)."""
        onehot = F.one_hot(positions, self.D).to(prev.dtype).expand(len(prev), -1, -1)
        return torch.cat([prev[..., None], onehot], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, D] -> params [n, D, n_params]; block d depends on x[:, :d] only (teacher forcing)."""
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
        out, _ = self.gru(self._input(prev, torch.arange(self.D, device=x.device)))
        return self.head(out)

    def sample(self, cond, n: int, generator, first: torch.Tensor | None = None) -> torch.Tensor:
        """x [n, D] one dimension at a time, carrying the recurrent state: D cell updates."""
        dev = self.head.weight.device
        x = torch.zeros(n, self.D, device=dev)
        prev, h = torch.zeros(n, 1, device=dev), None
        for d in range(self.D):
            out, h = self.gru(self._input(prev, torch.tensor([d], device=dev)), h)
            x[:, d] = first if d == 0 and first is not None else cond.sample(self.head(out[:, 0]), generator)
            prev = x[:, d : d + 1]
        return x


CONDITIONERS = {"made": MADE, "gru": GRUConditioner}


# ---------------------------------------------------------------------------------------------
# 1D conditionals p(v | params)
# ---------------------------------------------------------------------------------------------


class MixtureOfGaussians:
    """p(v) = sum_k pi_k N(v; mu_k, sigma_k^2), params = (logits, means, log sigmas), 3K numbers."""

    def __init__(self, K: int):
        self.K = K
        self.n_params = 3 * K

    def init_bias(self, bias: torch.Tensor) -> None:
        """Spread the means over [-2, 2] with width 0.5 so the components start distinct."""
        K = self.K
        bias.zero_()
        bias[K : 2 * K] = torch.linspace(-2, 2, K)
        bias[2 * K :] = math.log(0.5)

    def split(self, p):
        K = self.K
        return torch.log_softmax(p[..., :K], -1), p[..., K : 2 * K], p[..., 2 * K :].clamp(-7.0, 3.0)

    def log_prob(self, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """v [...], p [..., 3K] -> log p(v) [...]."""
        log_w, mu, log_s = self.split(p)
        comp = -0.5 * ((v[..., None] - mu) / log_s.exp()).pow(2) - log_s - 0.5 * LOG_2PI
        return torch.logsumexp(log_w + comp, -1)

    def sample(self, p: torch.Tensor, generator) -> torch.Tensor:
        """p [n, 3K] -> one draw per row [n]."""
        log_w, mu, log_s = self.split(p)
        k = torch.multinomial(log_w.exp(), 1, generator=generator)[:, 0]
        eps = torch.randn(len(p), generator=generator, device=p.device, dtype=p.dtype)
        pick = lambda t: t.gather(-1, k[:, None])[:, 0]  # noqa: E731
        return pick(mu) + pick(log_s).exp() * eps


class DiscretisedSoftmax:
    """PixelCNN's choice (van den Oord et al. 2016): a softmax over `bins` equal bins of [-B, B],
    uniform within a bin (dequantised), plus weight eps on a wide Gaussian so no point gets log 0:

        p(v) = (1 - eps) softmax(l)_k(v) / width + eps N(v; 0, B^2/4)
    """

    eps = 1e-3

    def __init__(self, bins: int, bound: float):
        self.bins, self.bound = bins, bound
        self.n_params = bins
        self.width = 2 * bound / bins

    def init_bias(self, bias: torch.Tensor) -> None:
        bias.zero_()

    def _tail(self, v):
        s = self.bound / 2
        return math.log(self.eps) - 0.5 * (v / s).pow(2) - math.log(s) - 0.5 * LOG_2PI

    def log_prob(self, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        k = ((v + self.bound) / self.width).floor().long()
        inside = (k >= 0) & (k < self.bins)
        logp_bin = torch.log_softmax(p, -1).gather(-1, k.clamp(0, self.bins - 1)[..., None])[..., 0]
        main = math.log1p(-self.eps) + logp_bin - math.log(self.width)
        main = torch.where(inside, main, torch.full_like(main, -torch.inf))
        return torch.logaddexp(main, self._tail(v))

    def sample(self, p: torch.Tensor, generator) -> torch.Tensor:
        n = len(p)
        k = torch.multinomial(torch.softmax(p, -1), 1, generator=generator)[:, 0]
        u = torch.rand(n, generator=generator, device=p.device, dtype=p.dtype)
        v = -self.bound + (k.to(p.dtype) + u) * self.width
        tail = torch.rand(n, generator=generator, device=p.device, dtype=p.dtype) < self.eps
        g = torch.randn(n, generator=generator, device=p.device, dtype=p.dtype) * self.bound / 2
        return torch.where(tail, g, v)


def make_conditioner(kind: str, D: int, cond, hidden: int, depth: int) -> MADE | GRUConditioner:
    """A conditioner for D dimensions whose output starts small, around the conditional's initial bias."""
    net = CONDITIONERS[kind](D, cond.n_params, hidden, depth)
    last = net.last()
    with torch.no_grad():
        last.weight.mul_(0.1)
        for d in range(len(last.bias) // cond.n_params):  # MADE: one block per dimension; GRU: one head
            cond.init_bias(last.bias[d * cond.n_params : (d + 1) * cond.n_params])
    return net


class ARDensity(nn.Module):
    """The family's model in D dimensions, p(x) = prod_d p(x_d | x_<d): the same conditioners and 1D
    conditionals as the 2D family, for the dimension ladder (bench/ar_ladder.py), where sampling takes D
    sequential steps while a flow's takes one pass."""

    def __init__(
        self, D: int, conditioner: str = "made", components: int = 16, hidden: int = 64, depth: int = 2
    ):
        super().__init__()
        self.cond = MixtureOfGaussians(components)
        self.net = make_conditioner(conditioner, D, self.cond, hidden, depth)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) [n] for x [n, D]: one pass of the conditioner (recurrent for the GRU)."""
        return self.cond.log_prob(x, self.net(x)).sum(1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.net.sample(self.cond, n, generator)


# ---------------------------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ARConfig(Config):
    lr: float = option(1e-2, "learning rate (AdamW)", min=1e-5, max=1.0, log=True, live=True)
    batch_size: int = option(512, "points per training step", min=8, max=4096)
    conditional: str = option(
        "mog",
        "1D conditional: mixture of Gaussians or discretised softmax over bins",
        choices=["mog", "softmax"],
    )
    order: str = option("x1-first", "which coordinate is generated first", choices=list(ORDERS))
    conditioner: str = option(
        "made",
        "network that maps x_<d to the parameters of p(x_d | x_<d): masked (MADE, PixelCNN-style, one "
        "parallel pass in training) or recurrent (GRU, PixelRNN-style, sequential in training too)",
        choices=list(CONDITIONERS),
    )
    components: int = option(16, "Gaussians per conditional (mog)", min=1, max=64)
    bins: int = option(64, "bins per conditional (softmax)", min=4, max=512)
    bound: float = option(4.0, "the bins cover [-B, B] in standardised units (softmax)", min=1.0, max=10.0)
    hidden: int = option(64, "hidden units of the masked network", min=4, max=512)
    depth: int = option(2, "hidden layers of the masked network", min=1, max=6)
    weight_decay: float = option(1e-4, "AdamW weight decay (regularises small data sets)", min=0.0, max=1.0)
    noise: float = option(
        0.3,
        "noise regularisation: std of the noise added to training points at step 0 for 300 points, in standardised units (scaled by sqrt(300 / n) for n points)",
        min=0.0,
        max=2.0,
    )
    noise_half_life: float = option(100.0, "steps for the training noise to halve", min=1.0, max=1e6)
    noise_floor: float = option(
        0.75,
        "the training noise never falls below this times the leave-one-out KDE bandwidth of the training points, scaled by sqrt(300 / n) for n points (0: anneal to no noise)",
        min=0.0,
        max=4.0,
    )
    ema: float = option(
        0.995, "decay of the weight average the model uses (0: the raw weights)", min=0.0, max=0.9999
    )


class Autoregressive(GenerativeModel):
    """p(x) = p(x_a) p(x_b | x_a), (a, b) = the configured order; the 2D PixelRNN/PixelCNN.

    Training is one parallel pass of the masked network (MADE) over the data; sampling is
    sequential: draw x_a from its marginal, then x_b from the conditional given that x_a. With
    little capacity the order matters: a bimodal p(x_b | x_a) may be easy one way and hard the
    other. Conditionals: a mixture of Gaussians (default) or a discretised softmax (PixelCNN).
    """

    key = "ar"
    title = "Autoregressive (MADE)"
    Config = ARConfig
    has_log_prob = True
    density_kind = "exact"
    learns_from_incomplete = True  # rows missing the second variable train p(x_first); see _build

    def _build(self):
        cfg = self.config
        self.order = ORDERS[cfg.order]  # (first, second) data dimensions
        self.cond = (
            MixtureOfGaussians(cfg.components)
            if cfg.conditional == "mog"
            else DiscretisedSoftmax(cfg.bins, cfg.bound)
        )
        made = make_conditioner(cfg.conditioner, 2, self.cond, cfg.hidden, cfg.depth)
        ema = copy.deepcopy(made).requires_grad_(False)  # Polyak average: what the model uses
        self.net = nn.ModuleDict({cfg.conditioner: made, "ema": ema})
        # fused: one kernel over every parameter (0.2 ms a step on one core, against 0.8 ms for foreach)
        self.opt = torch.optim.AdamW(made.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.optimizers = [self.opt]
        self.steps = 0
        # rows with a missing coordinate (NaN): a row missing the second variable still gives log p(x_first)
        # (the second integrates out: int p(x_a) p(x_b | x_a) dx_b = p(x_a)); a row missing the first would
        # need p(x_b) = int p(x_a) p(x_b | x_a) dx_a, an integral in every step, so it contributes nothing
        seen = ~torch.isnan(self.train_z[:, list(self.order)])
        self.rows_first_only = int((seen[:, 0] & ~seen[:, 1]).sum())
        self.rows_ignored = int((~seen[:, 0]).sum())
        complete = self.train_z[seen.all(1)]
        n = len(complete)
        self.noise_floor = (
            cfg.noise_floor * math.sqrt(min(1.0, 300 / n)) * loo_bandwidth(complete, seed=self.seed)
            if cfg.noise_floor > 0
            else 0.0
        )

    @property
    def made(self) -> MADE | GRUConditioner:
        """The conditioner the model uses (the weight average unless ema is 0); named for the default."""
        return self.net["ema"] if self.config.ema > 0 else self.net[self.config.conditioner]

    # -- density, in standardised coordinates ------------------------------------------------------
    def _log_probs(self, z: torch.Tensor, made: MADE | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(z_a) [n], log p(z_b | z_a) [n]) from one masked pass."""
        zo = z[:, list(self.order)]  # [n, 2] in generation order
        p = (made or self.made)(zo)  # [n, 2, P]
        return self.cond.log_prob(zo[:, 0], p[:, 0]), self.cond.log_prob(zo[:, 1], p[:, 1])

    def _log_prob_z(self, z):
        a, b = self._log_probs(z)
        return a + b

    def train_step(self, batch):
        cfg = self.config
        sigma = noise_std(cfg.noise, cfg.noise_half_life, self.steps, len(self.train_z), self.noise_floor)
        if sigma > 0:  # noise regularisation, annealed (see lab.flow._noisy)
            batch = batch + sigma * torch.randn(
                batch.shape, generator=self.gen, device=batch.device, dtype=batch.dtype
            )
        raw = self.net[cfg.conditioner]
        seen = ~torch.isnan(batch[:, list(self.order)])  # [n, 2] in generation order
        lp_a, lp_b = self._log_probs(torch.nan_to_num(batch), raw)  # a missing value's 0 is never read
        lp_a = torch.where(seen[:, 0], lp_a, 0.0)  # observed-data log-likelihood of each row
        lp_b = torch.where(seen.all(1), lp_b, 0.0)
        loss = -(lp_a + lp_b).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(raw.parameters(), 10.0)
        self.opt.step()
        self.steps += 1
        if self.config.ema > 0:
            d = min(self.config.ema, (1 + self.steps) / (10 + self.steps))
            with torch.no_grad():
                torch._foreach_lerp_(list(self.net["ema"].parameters()), list(raw.parameters()), 1 - d)
        return {
            "nll": float(loss.detach()),
            "nll_first": float(-lp_a.sum().detach() / seen[:, 0].sum().clamp(min=1)),
            "nll_second": float(-lp_b.sum().detach() / seen.all(1).sum().clamp(min=1)),
        }

    def _params_given_first(self, v_first: torch.Tensor) -> torch.Tensor:
        """Parameters of p(z_b | z_a = v) [m, P] for v [m] (z_b's input is masked out, any value works)."""
        zo = torch.stack([v_first, torch.zeros_like(v_first)], 1)
        return self.made(zo)[:, 1]

    def _sample_z(self, n, generator, first: torch.Tensor | None = None):
        """Sequential sampling: z_a ~ p(z_a), then z_b ~ p(z_b | z_a). Returns [n, 2] in data order."""
        zo = self.made.sample(self.cond, n, generator, first)  # [n, 2] in generation order
        z = torch.empty(n, 2, device=self.device)
        z[:, self.order[0]], z[:, self.order[1]] = zo[:, 0], zo[:, 1]
        return z

    # -- conditionals in data coordinates (the inverse-problems page uses these) ----------------------
    def _z_of(self, v, dim: int):
        return (
            torch.as_tensor(v, dtype=torch.float32, device=self.device) - float(self.scaler.mean[dim])
        ) / float(self.scaler.std[dim])

    def _posterior_grid(self, c: float, dim: int, cells: int = 4096, span: float = 6.0):
        """When dim is the SECOND variable: p(z_a | z_b = c) on a grid of cells over [-span, span],
        by Bayes: log p(z_a) + log p(c | z_a), normalised over the grid (numerically exact up to the grid)."""
        edges = torch.linspace(-span, span, cells + 1, device=self.device)
        mid = 0.5 * (edges[1:] + edges[:-1])
        zc = self._z_of(c, dim).expand(cells)
        z = torch.empty(cells, 2, device=self.device)
        z[:, self.order[0]], z[:, self.order[1]] = mid, zc
        with torch.no_grad():
            log_w = self._log_prob_z(z)
        return edges, log_w - torch.logsumexp(log_w, 0) - math.log(edges[1] - edges[0])

    def conditional_log_prob(self, c: float, values, dim: int = 0) -> np.ndarray:
        """log p(x_other = values | x_dim = c) [m] in data coordinates.

        Exact when dim is the model's first variable (one network pass); when dim is the second, the
        conditional p(x_first | x_second = c) is p(x_first) p(c | x_first) normalised on a 4096-cell grid.
        """
        other = 1 - dim
        v = self._z_of(np.asarray(values, dtype=np.float64).reshape(-1), other)
        with torch.no_grad():
            if dim == self.order[0]:
                p = self._params_given_first(self._z_of(c, dim).expand(len(v)))
                lp = self.cond.log_prob(v, p)
            else:
                edges, log_dens = self._posterior_grid(c, dim)
                k = torch.searchsorted(edges, v.contiguous(), right=True) - 1
                inside = (k >= 0) & (k < len(log_dens))
                lp = torch.where(
                    inside, log_dens[k.clamp(0, len(log_dens) - 1)], torch.full_like(v, -torch.inf)
                )
        return (lp - math.log(self.scaler.std[other])).cpu().double().numpy()

    def sample_conditional(
        self, c: float, n: int, generator: torch.Generator | int | None = None, dim: int = 0
    ) -> torch.Tensor:
        """n samples [n, 2] in data coordinates from p(x_other | x_dim = c); column dim equals c.

        Exact when dim is the model's first variable in its order (dim 0 for order "x1-first"): the
        second coordinate is drawn from the network's conditional, as in sequential sampling. When dim
        is the second variable, p(x_first | x_second = c) is proportional to p(x_first) p(c | x_first),
        evaluated on a 4096-cell grid over [-6, 6] standard deviations and sampled cell-then-uniform
        (exact up to that grid).
        """
        if dim not in (0, 1):
            raise ValueError(f"dim must be 0 or 1, got {dim}.")
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        with torch.no_grad():
            if dim == self.order[0]:
                z = self._sample_z(int(n), generator, first=self._z_of(c, dim).expand(int(n)).clone())
            else:
                edges, log_dens = self._posterior_grid(c, dim)
                k = torch.multinomial(log_dens.exp(), int(n), replacement=True, generator=generator)
                u = torch.rand(int(n), generator=generator, device=self.device)
                v = edges[k] + u * (edges[1] - edges[0])
                z = torch.empty(int(n), 2, device=self.device)
                z[:, self.order[0]], z[:, dim] = v, self._z_of(c, dim)
        x = self.scaler.to_x(z.float().cpu())
        x[:, dim] = float(c)  # exactly c, not c through a round trip of the scaling
        return x

    # -- pictures ------------------------------------------------------------------------------------
    def views(self, bounds=None, grid: int = 200, n_slices: int = 41, n_points: int = 300, **kw):
        """Arrays in data coordinates:

        order             [first, second] data dimensions (0 = x1, 1 = x2)
        marginal_x        [grid] values of x_first; marginal_log_prob [grid] log p(x_first)
        slice_c           [n_slices] values c of x_first; slice_x [grid] values of x_second;
        slice_log_prob    [n_slices, grid] log p(x_second | x_first = c), one curve per c
        seq_first         [n_points] step 1 of sequential sampling: x_first ~ p(x_first)
        seq_points        [n_points, 2] step 2: the same draws completed by x_second ~ p(x_second | x_first)
        """
        a, b = self.order
        if bounds is not None:
            lo = np.array([bounds[0], bounds[2]], dtype=float)
            hi = np.array([bounds[1], bounds[3]], dtype=float)
        else:
            x = self.to_x(self.train_z)
            lo, hi = np.nanmin(x, 0), np.nanmax(x, 0)
            pad = 0.15 * (hi - lo)
            lo, hi = lo - pad, hi + pad
        xa = np.linspace(lo[a], hi[a], grid)
        xb = np.linspace(lo[b], hi[b], grid)
        cs = np.linspace(lo[a], hi[a], n_slices)
        g = torch.Generator(device=self.device).manual_seed(self.seed + 99)
        with torch.no_grad():
            p_a = self.made(torch.zeros(1, 2, device=self.device))[0, 0]
            marg = self.cond.log_prob(self._z_of(xa, a), p_a.expand(grid, -1)) - math.log(self.scaler.std[a])
            p_b = self._params_given_first(self._z_of(cs, a))  # [n_slices, P]
            zb = self._z_of(xb, b)
            slices = self.cond.log_prob(
                zb[None, :].expand(n_slices, -1), p_b[:, None, :].expand(-1, grid, -1)
            )
            slices = slices - math.log(self.scaler.std[b])
            z = self._sample_z(n_points, g)
        pts = self.to_x(z)
        return {
            "conditional": self.config.conditional,
            "order": [a, b],
            "marginal_x": xa,
            "marginal_log_prob": marg.cpu().double().numpy(),
            "slice_c": cs,
            "slice_x": xb,
            "slice_log_prob": slices.cpu().double().numpy(),
            "seq_first": pts[:, a].copy(),
            "seq_points": pts,
            "rows_first_only": self.rows_first_only,
            "rows_ignored": self.rows_ignored,
        }


LADDER_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "results_ar_ladder.json"
)


def load_ladder(path: str = LADDER_FILE) -> dict | None:
    """The dimension ladder bench/ar_ladder.py measured (machine, settings, one row per d, model and seed:
    train_step_s, sample_1000_s, kl_per_pair), or None when it has not been run here."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def true_conditional_log_prob(dataset, dim: int, c: float, values: np.ndarray) -> np.ndarray:
    """log p_true(x_other = values | x_dim = c) for a dataset with a known density: the joint on the
    line x_dim = c, normalised by its Riemann sum over `values` (an even grid that holds the slice)."""
    values = np.asarray(values, dtype=np.float64)
    pts = np.empty((len(values), 2))
    pts[:, dim], pts[:, 1 - dim] = c, values
    lp = dataset.log_prob(pts)
    top = lp.max()
    return lp - top - np.log(np.exp(lp - top).sum() * (values[1] - values[0]))
