"""Denoising diffusion (DDPM, Ho et al. 2020) with ancestral and DDIM (Song et al. 2021) sampling."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lab.base import Config, GenerativeModel, option
from lab.guidance import (
    MAX_CLASSES,
    NULL_LABEL,
    ClassConditional,
    conditional_option,
    guidance_option,
    guided_call,
    p_uncond_option,
)
from lab.metrics import energy_distance_unbiased
from lab.nn import MLP, sinusoidal_embedding, sinusoidal_frequencies

LABEL_DIM = 16  # size of a class label's learned embedding (conditional models)

# ---------------------------------------------------------------------------------------------
# Pieces shared with lab/score.py: the noise-conditional network, EMA, the true noised score.
# ---------------------------------------------------------------------------------------------


class NoiseConditionalMLP(nn.Module):
    """f(x, c[, y]) = MLP([features(x), sinusoidal_embedding(c)[, embedding(y)]]): x [n, 2], c [n] or one value
    for all rows (a step or a noise level), y [n] class labels when `n_labels` > 0.

    features(x) is x itself, or with `x_embedding` > 0 also sinusoidal features of each coordinate
    (tiny-diffusion's input embedding), which lets a small MLP draw sharp, thin structures. With n_labels
    the label table has one more row, the null label (lab.guidance.NULL_LABEL = n_labels) of classifier-free
    guidance; without, the module is exactly the unconditional one (same parameters, same initialisation).
    """

    def __init__(self, hidden: int, layers: int, time_dim: int, x_embedding: int = 0, n_labels: int = 0):
        super().__init__()
        self.time_dim, self.x_embedding, self.n_labels = time_dim, x_embedding, n_labels
        in_dim = 2 + time_dim + 2 * x_embedding + (LABEL_DIM if n_labels else 0)
        self.mlp = MLP(in_dim, 2, hidden, layers, "silu")
        if n_labels:
            self.label_embedding = nn.Embedding(n_labels + 1, LABEL_DIM)

    def forward(self, x: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if c.dim() == 0:  # one step or noise level for every row (a sampler's step): embed it once
            temb = sinusoidal_embedding(c[None], self.time_dim).expand(len(x), -1)
        else:
            temb = sinusoidal_embedding(c, self.time_dim)
        feats = [x, temb]
        if self.x_embedding:
            # coordinates in standardised units span ~[-3, 3]; scale 25 resolves ~0.05 (tiny-diffusion)
            feats += [
                sinusoidal_embedding(25.0 * x[:, 0], self.x_embedding),
                sinusoidal_embedding(25.0 * x[:, 1], self.x_embedding),
            ]
        if self.n_labels:
            if y is None:  # no label given: the unconditional model
                y = torch.full((len(x),), self.n_labels, dtype=torch.long, device=x.device)
            feats.append(self.label_embedding(y))
        return self.mlp(torch.cat(feats, dim=1))

    def at_levels(self, c: torch.Tensor) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """f(x, i) = self(x, c[i]) without labels, for a sampler that visits the fixed levels c [S] (steps or
        noise levels): each level's embedding goes through the first layer once, W_c emb(c_i) + b, and a step
        pays for the features of x alone. A sampler's step on a few hundred points is mostly per-operation
        overhead, so this halves the operations of a live picture's 50-100 network calls."""
        first = self.mlp[0]
        x_cols = 2 + 2 * self.x_embedding
        if self.x_embedding % 2 or first.in_features != x_cols + self.time_dim + (
            LABEL_DIM if self.n_labels else 0
        ):
            return lambda x, i: self(x, c[i])
        w_t = first.weight[:, 2 : 2 + self.time_dim]
        level_bias = torch.addmm(first.bias, sinusoidal_embedding(c, self.time_dim), w_t.t())  # [S, hidden]
        if self.n_labels:  # the unconditional model is the null label's
            null = torch.tensor([self.n_labels], device=c.device)
            w_y = first.weight[:, 2 + self.time_dim + 2 * self.x_embedding :]
            level_bias = level_bias + self.label_embedding(null) @ w_y.t()
        w_x = torch.cat(
            [
                first.weight[:, :2],
                first.weight[:, 2 + self.time_dim : 2 + self.time_dim + 2 * self.x_embedding],
            ],
            1,
        ).t()
        rest = _layers(list(self.mlp)[1:])
        freqs = (
            sinusoidal_frequencies(self.x_embedding // 2, 10_000.0, c.device) if self.x_embedding else None
        )

        def f(x: torch.Tensor, i: int) -> torch.Tensor:
            feats = x
            if (
                freqs is not None
            ):  # sinusoidal_embedding(25 x_d) of both coordinates in one go, in the same order
                a = (25.0 * x)[:, :, None] * freqs
                feats = torch.cat([x, torch.cat([torch.cos(a), torch.sin(a)], 2).reshape(len(x), -1)], 1)
            return rest(torch.addmm(level_bias[i], feats, w_x))

        return f


def _layers(modules: list[nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The modules applied in turn, linear layers as one addmm with their transposed weight taken once and
    SiLU as the function: a sampler's step on a few hundred points is per-call overhead, and nn.Module's
    call machinery was a quarter of the network's (89 against 118 us for the default DDPM's MLP, 64
    points). The same numbers as calling the modules."""
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for m in modules:
        if type(m) is nn.Linear:
            w, b = m.weight.t(), m.bias
            steps.append(lambda h, w=w, b=b: torch.addmm(b, h, w) if b is not None else h @ w)
        elif type(m) is nn.SiLU:
            steps.append(F.silu)
        else:
            steps.append(m)

    def run(h: torch.Tensor) -> torch.Tensor:
        for step in steps:
            h = step(h)
        return h

    return run


def make_ema_pair(net: nn.Module) -> nn.ModuleDict:
    """{"model": trained net, "ema": its exponential moving average} in one ModuleDict (save/load carry both).

    The EMA copy has requires_grad False: it is updated by `ema_update`, never by the optimiser.
    """
    import copy

    ema = copy.deepcopy(net)
    for p in ema.parameters():
        p.requires_grad_(False)
    return nn.ModuleDict({"model": net, "ema": ema})


@torch.no_grad()
def ema_update(pair: nn.ModuleDict, decay: float) -> None:
    """theta_ema <- decay * theta_ema + (1 - decay) * theta (Polyak averaging)."""
    torch._foreach_lerp_(list(pair["ema"].parameters()), list(pair["model"].parameters()), 1.0 - decay)


def warmup_ema_step(model: GenerativeModel, loss: torch.Tensor) -> None:
    """One optimiser step for a model with `config.lr/warmup/ema_decay`, `optimizers`, `step_count`
    and an EMA pair in `net`: linear warm-up from the live learning rate (set_lr changes config.lr),
    then the EMA update, its decay ramped up as (1 + k) / (10 + k) so it does not remember the init."""
    cfg = model.config
    opt = model.optimizers[0]
    for g in opt.param_groups:
        g["lr"] = cfg.lr * min(1.0, (model.step_count + 1) / max(cfg.warmup, 1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    model.step_count += 1
    if cfg.ema_decay > 0:
        ema_update(model.net, min(cfg.ema_decay, (1 + model.step_count) / (10 + model.step_count)))


def noised_empirical_score(
    x: torch.Tensor, centres: torch.Tensor, scale: float, sigma: float
) -> torch.Tensor:
    """Exact score of p(x) = mean_i N(x; scale * c_i, sigma^2 I): the noised empirical density.

    grad log p(x) = sum_i w_i(x) (scale * c_i - x) / sigma^2, w = softmax_i(-|x - scale c_i|^2 / 2 sigma^2).
    With c_i many true samples this is the "true" score that denoising score matching regresses on.
    x [m, 2], centres [k, 2] -> [m, 2].
    """
    mu = scale * centres.double()
    xd = x.double()
    logits = -0.5 * torch.cdist(xd, mu) ** 2 / sigma**2  # [m, k]
    w = torch.softmax(logits, dim=1)
    return ((w @ mu - xd) / sigma**2).float()


def gaussian_kl_to_standard(x: torch.Tensor) -> float:
    """KL(N(m, C) || N(0, I)) for the mean m and covariance C of the points x [n, 2] (moment match)."""
    x = x.double()
    m, c = x.mean(0), torch.cov(x.T)
    return float(0.5 * (torch.trace(c) + m @ m - 2 - torch.logdet(c)))


def _energy(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double(), y.double()
    return float(max(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean(), 0.0))


def throttled(model: GenerativeModel, name: str, compute, every: float = 1.0):
    """compute() for a view, reused until the weights changed (step_count moved) and `every` seconds passed:
    the network-heavy views (paths, score field) then cost ~nothing in most live snapshots."""
    cache = model.__dict__.setdefault("_view_cache", {})
    hit = cache.get(name)
    now = time.monotonic()
    if hit is not None and (hit[0] == model.step_count or now - hit[1] < every):
        return hit[2]
    value = compute()
    cache[name] = (model.step_count, now, value)
    return value


def field_grid(model: GenerativeModel, size: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """A size x size grid over the training data's box (padded 15 %), as (gx, gy) in x and points [size^2, 2] in z."""
    lo = model.scaler.to_x(model.train_z.min(0).values.cpu()).numpy()
    hi = model.scaler.to_x(model.train_z.max(0).values.cpu()).numpy()
    pad = 0.15 * (hi - lo) + 1e-3
    gx, gy = (
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], size),
        np.linspace(lo[1] - pad[1], hi[1] + pad[1], size),
    )
    xx, yy = np.meshgrid(gx, gy)
    return gx, gy, model.to_z(np.stack([xx.ravel(), yy.ravel()], 1))


# ---------------------------------------------------------------------------------------------
# Noise schedules
# ---------------------------------------------------------------------------------------------


def make_betas(schedule: str, T: int) -> torch.Tensor:
    """beta_1..beta_T [T] in float64.

    linear (Ho et al. 2020): beta from 1e-4 to 0.02, rescaled by 1000 / T so that any T ends at the
    same alpha_bar_T. cosine (Nichol & Dhariwal 2021): alpha_bar(t) = f(t) / f(0),
    f(t) = cos^2((t/T + s) / (1 + s) * pi / 2), s = 0.008, beta_t = min(1 - alpha_bar_t / alpha_bar_{t-1}, 0.999).
    """
    if schedule == "linear":
        scale = 1000.0 / T
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), T, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        t = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return torch.clamp(1 - alpha_bar[1:] / alpha_bar[:-1], max=0.999)
    raise ValueError(f"unknown schedule {schedule!r}")


# ---------------------------------------------------------------------------------------------
# DDPM
# ---------------------------------------------------------------------------------------------


def training_timesteps(u: torch.Tensor, T: int, power: float) -> torch.Tensor:
    """t = floor(T u^p) in 0..T-1 for uniform u (any shape): DDPM's training times, solo and batched.

    p = 1.5 puts 46 % of the steps in the first quarter of t instead of 25 %: on moons (noise 0.05) in a
    quiet 7.5 s the samples that stray between the arcs halve (blur gap 0.12 over 10 seeds, 0.26 at p = 1)."""
    return (T * u**power).long().clamp(max=T - 1)


def posterior_mean(
    x_t: torch.Tensor,
    a: torch.Tensor,
    s2: torch.Tensor,
    own: torch.Tensor,
    ref: torch.Tensor,
    same_class: torch.Tensor | None = None,
) -> torch.Tensor:
    """E[y | x_t] [..., n, 2] for x_t | y ~ N(a y, s2 I) over the candidates {own} + ref, equally likely a priori.

    The stable target field (Xu et al. 2023): a noised point's regression target (DDPM's eps and v, flow
    matching's x1 - x0) is affine in its clean point y, so averaging it over this posterior keeps the minimiser
    (the row's own point stays a candidate, so the estimate is consistent) and removes the noise of the single
    draw where the posterior is broad. x_t, own [..., n, 2]; a, s2 [..., n]; ref [..., R, 2] shared by the rows
    (leading dims: the members of a batched sweep); same_class [..., n, R] (bool): which refs a row may use."""
    s2 = s2.clamp_min(1e-12)[..., None]
    a = a[..., None]
    d_own = (x_t - a * own).pow(2).sum(-1, keepdim=True)
    d_ref = (  # |x_t - a y_j|^2 for every row and ref without the [n, R, 2] difference tensor
        x_t.pow(2).sum(-1, keepdim=True)
        - 2 * a * (x_t @ ref.mT)
        + a.pow(2) * ref.pow(2).sum(-1)[..., None, :]
    )
    if same_class is not None:
        d_ref = d_ref.masked_fill(~same_class, float("inf"))
    w = torch.softmax(-torch.cat([d_own, d_ref], -1) / (2 * s2), -1)  # [..., n, 1 + R]
    return w[..., :1] * own + w[..., 1:] @ ref


def stable_noise_targets(
    x_t: torch.Tensor,
    ab: torch.Tensor,
    x0: torch.Tensor,
    ref: torch.Tensor,
    same_class: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DDPM's (x0, eps) [..., n, 2] of x_t = sqrt(ab) x0 + sqrt(1 - ab) eps replaced by their posterior means
    over x0 and `ref` (posterior_mean; eps is affine in x0): the solo step's and the batched sweep's targets."""
    x0 = posterior_mean(x_t, ab.sqrt(), 1 - ab, x0, ref, same_class)
    return x0, (x_t - ab.sqrt()[..., None] * x0) / (1 - ab).sqrt()[..., None]


def reference_batch(
    model: GenerativeModel, y: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(`config.reference` training points [R, 2], same_class [n, R] or None) for posterior_mean: a labelled row
    may use the refs of its class only, a row with the null label all of them (the unconditional model)."""
    idx = torch.randint(
        0, len(model.train_z), (model.config.reference,), generator=model.gen, device=model.device
    )
    if y is None:
        return model.train_z[idx], None
    return model.train_z[idx], (model.train_y[idx][None] == y[:, None]) | (y == NULL_LABEL)[:, None]


def target_option():
    """The `target` option of the families that regress a noised point's target (DDPM, flow matching)."""
    return option(
        "stable",
        "regression target: the noised point's own (conditional) one, or the stable target field (Xu et al. 2023: "
        "its posterior mean over a reference batch, the same minimiser with far less noise)",
        choices=["stable", "conditional"],
    )


def reference_option():
    return option(256, "data points in the stable target's reference batch", min=1, max=8192)


@dataclass(frozen=True)
class DDPMConfig(Config):
    lr: float = option(3e-3, "learning rate (after the warm-up)", min=1e-5, max=1.0, log=True, live=True)
    batch_size: int = option(256, "points per training step", min=8, max=4096)
    schedule: str = option("cosine", "noise schedule beta_t", choices=["cosine", "linear"])
    T: int = option(1000, "diffusion steps of the forward process", min=10, max=4000)
    sampler: str = option(
        "ddpm",
        "reverse process used by sample(): ancestral DDPM or deterministic DDIM",
        choices=["ddpm", "ddim"],
        live=True,
    )
    sample_steps: int = option(
        50, "reverse steps used by sample() (at most T; fewer = faster)", min=1, max=4000, live=True
    )
    eta: float = option(
        0.0, "DDIM noise: 0 deterministic, 1 equals ancestral DDPM", min=0.0, max=1.0, live=True
    )
    hidden: int = option(128, "hidden units per layer of eps_theta", min=16, max=1024)
    layers: int = option(3, "hidden layers of eps_theta", min=1, max=8)
    time_dim: int = option(64, "size of the sinusoidal embedding of t", min=4, max=256)
    x_embedding: int = option(32, "sinusoidal features per coordinate of x (0: raw x only)", min=0, max=128)
    ema_decay: float = option(0.995, "EMA of the weights used for sampling (0: no EMA)", min=0.0, max=0.9999)
    warmup: int = option(100, "steps of linear learning-rate warm-up", min=0, max=10_000)
    prediction: str = option(
        "v",
        "what the network predicts: eps (Ho et al.) or v = sqrt(ab) eps - sqrt(1 - ab) x0 (stable at t near T)",
        choices=["v", "eps"],
    )
    target: str = target_option()
    reference: int = reference_option()
    t_power: float = option(
        1.5,
        "t = floor(T u^p), u uniform: p > 1 trains small t (the last steps that place a sample) more often",
        min=0.1,
        max=10.0,
    )
    clip_x0: float = option(
        4.0, "clip the predicted x0 to [-c, c] standardised units while sampling (0: off)", min=0.0, max=100.0
    )
    conditional: bool = conditional_option()
    p_uncond: float = p_uncond_option()
    guidance: float = guidance_option()


class DDPM(ClassConditional, GenerativeModel):
    """Denoising diffusion probabilistic model with an eps-prediction network (Ho et al. 2020).

    Forward: q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I). Loss (L_simple):
    E_{t, x_0, eps} |eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t)|^2.
    By default the regressed eps is its posterior mean given x_t over x_0 and a reference batch (the stable
    target field, Xu et al. 2023; `posterior_mean`): the same minimiser with far less noise (bench/fit_table.py,
    7.5 s on the five datasets: energy distance over its floor lower on 4 of 5, blur gap halved).
    Steps are 0-indexed here: t = 0..T-1, alpha_bar_t = prod_{s<=t} (1 - beta_s), and "t = -1" is the data.

    conditional: eps_theta(x_t, t, c) learns every class c and, with the label dropped to null with
    probability p_uncond, the unconditional model too; sampling with guidance weight w uses
    (1 + w) eps_theta(x_t, t, c) - w eps_theta(x_t, t, null) (classifier-free guidance, Ho & Salimans 2022).
    """

    key = "ddpm"
    title = "Diffusion (DDPM / DDIM)"
    Config = DDPMConfig
    has_log_prob = False
    density_kind = "none"
    early_stopping = False

    def _build(self):
        cfg = self.config
        self.betas = make_betas(cfg.schedule, cfg.T).to(self.device)  # float64 [T]
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        n_labels = MAX_CLASSES if cfg.conditional else 0
        self.net = make_ema_pair(
            NoiseConditionalMLP(cfg.hidden, cfg.layers, cfg.time_dim, cfg.x_embedding, n_labels)
        )
        self._build_labels()
        self.optimizers = [torch.optim.Adam(self.net["model"].parameters(), lr=cfg.lr, fused=True)]
        self.step_count = 0
        self._true_cache: dict = {}

    # -- forward process ---------------------------------------------------------------------------
    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar_t for integer steps t (t = -1 gives 1: the data)."""
        ab = torch.cat(
            [torch.ones(1, dtype=self.alphas_cumprod.dtype, device=self.device), self.alphas_cumprod]
        )
        return ab[t.long() + 1]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (the closed-form forward marginal)."""
        ab = self.alpha_bar(t).float()[:, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def eps_theta(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int,
        ema: bool = True,
        labels: torch.Tensor | None = None,
        guidance: float = 0.0,
    ) -> torch.Tensor:
        """The model's noise prediction eps_theta(x_t, t) [n, 2] for steps t [n] or one step t (an int) for
        every row; the EMA weights when ema is True. A conditional model: for class `labels` [n] (None: the
        null label, the unconditional model), guided with weight `guidance` (lab.guidance.guide).

        prediction "eps": the network output itself. prediction "v" (Salimans & Ho 2022): the network
        predicts v = sqrt(ab) eps - sqrt(1 - ab) x_0, and eps = sqrt(1 - ab) x_t + sqrt(ab) v. Near t = T
        (ab ~ 1e-9 with the cosine schedule) the x_0 implied by an eps-network is its error times
        1 / sqrt(ab); with v it is sqrt(ab) x_t - sqrt(1 - ab) v, as accurate as the network.
        """
        net = self.net["ema"] if ema and self.config.ema_decay > 0 else self.net["model"]
        c = torch.tensor(float(t), device=self.device) if isinstance(t, int) else t.float()
        # guiding the v output guides eps alike: eps is affine in it with weights (1 + w) - w = 1 on x_t
        out = net(x, c) if labels is None else guided_call(net, x, c, labels, guidance)
        return self._eps_of(out, x, t)

    def _eps_of(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """The network's output at (x_t, t) as eps (see eps_theta)."""
        if self.config.prediction == "eps":
            return out
        if isinstance(t, int):
            ab = float(self.alphas_cumprod[t]) if t >= 0 else 1.0
        else:
            ab = self.alpha_bar(t).float()[:, None]
        return (1 - ab) ** 0.5 * x + ab**0.5 * out

    def eps_at_steps(self, tau: list[int], labels: torch.Tensor | None, w: float):
        """(x, i) -> eps_theta(x, tau[i]) with the EMA weights, for the reverse process's steps."""
        if labels is not None:
            return lambda x, i: self.eps_theta(x, tau[i], labels=labels, guidance=w)
        net = self.net["ema"] if self.config.ema_decay > 0 else self.net["model"]
        f = net.at_levels(torch.tensor(tau, dtype=torch.float32, device=self.device))
        return lambda x, i: self._eps_of(f(x, i), x, tau[i])

    # -- training ------------------------------------------------------------------------------------
    def train_step(self, batch):
        cfg = self.config
        n = len(batch)
        y = None
        if cfg.conditional:  # labelled points, a share p_uncond of them with the null label
            batch, y = self.labelled_batch(n)
        t = training_timesteps(torch.rand(n, generator=self.gen, device=self.device), cfg.T, cfg.t_power)
        eps = torch.randn(n, 2, generator=self.gen, device=self.device)
        x_t = self.q_sample(batch, t, eps)
        ab = self.alpha_bar(t).float()
        x0, eps = self.regression_targets(x_t, ab, batch, eps, y)
        if cfg.prediction == "eps":  # L_simple = |eps - eps_theta|^2
            loss = ((self.eps_theta(x_t, t, ema=False, labels=y) - eps) ** 2).sum(1).mean()
        else:  # |v - v_theta|^2 = |eps - eps_theta|^2 / ab: the same minimiser, weighted towards high t
            v = ab.sqrt()[:, None] * eps - (1 - ab).sqrt()[:, None] * x0
            loss = ((self.net["model"](x_t, t.float(), y) - v) ** 2).sum(1).mean()
        warmup_ema_step(self, loss)
        return {"loss": float(loss.detach())}

    def regression_targets(self, x_t, ab, x0, eps, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0, eps) [n, 2] that the loss regresses on for x_t = q_sample(x0, t, eps), ab = alpha_bar(t) [n]: the
        draw itself, or with target "stable" their posterior means over x0 and a reference batch."""
        if self.config.target != "stable":
            return x0, eps
        return stable_noise_targets(x_t, ab, x0, *reference_batch(self, y))

    # -- reverse process -----------------------------------------------------------------------------
    def timesteps(self, steps: int) -> torch.Tensor:
        """An increasing subsequence tau of 0..T-1 with `steps` entries, first 0 and last T-1 (DDIM's tau)."""
        steps = int(min(max(steps, 1), self.config.T))
        if steps == 1:
            return torch.tensor([self.config.T - 1], device=self.device)
        return (
            torch.linspace(0, self.config.T - 1, steps, dtype=torch.float64)
            .round()
            .long()
            .unique()
            .to(self.device)
        )

    def _predict_x0(
        self, x: torch.Tensor, t: int, eps: torch.Tensor, ab: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab), clipped; eps recomputed so the pair stays consistent."""
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        c = self.config.clip_x0
        if c > 0:
            # near t = T, 1 / sqrt(ab) amplifies eps's error ~1e4-fold; clipping keeps the few-step samplers sane
            x0 = x0.clamp(-c, c)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        return x0, eps

    @torch.no_grad()
    def reverse(
        self,
        n: int,
        generator: torch.Generator,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        record: bool = False,
        known: tuple[int, float] | None = None,
        x_T: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        guidance: float | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the reverse process in z from x_T ~ N(0, I); returns (x_0 [n, 2], path [x_T, ..., x_0] if record).

        sampler "ddpm" (ancestral, Ho et al. Alg. 2) on the respaced schedule tau: with
        alpha_bar' the values at tau and beta'_i = 1 - alpha_bar'_i / alpha_bar'_{i-1},
          x_{i-1} = mu~(x_i, x0_hat) + sqrt(beta~_i) z,   beta~_i = (1 - ab'_{i-1}) / (1 - ab'_i) beta'_i,
          mu~ = sqrt(ab'_{i-1}) beta'_i / (1 - ab'_i) x0_hat + sqrt(1 - beta'_i) (1 - ab'_{i-1}) / (1 - ab'_i) x_i.
        With steps = T it is exactly DDPM's ancestral sampler.
        sampler "ddim" (Song et al. 2021, eq. 12):
          x_{i-1} = sqrt(ab'_{i-1}) x0_hat + sqrt(1 - ab'_{i-1} - s_i^2) eps_theta + s_i z,
          s_i = eta sqrt((1 - ab'_{i-1}) / (1 - ab'_i)) sqrt(1 - ab'_i / ab'_{i-1}); eta = 1 reproduces "ddpm".
        known = (dim, value_z): the replacement method (RePaint, Lugmayr et al. 2022) for inpainting:
        after every step the known coordinate is overwritten by a forward-noised observation
        sqrt(ab'_{i-1}) value + sqrt(1 - ab'_{i-1}) eps, and by the value itself at the end.
        labels [n] (conditional models): each particle's class, eps guided with weight `guidance`
        (the config's when None).
        """
        cfg = self.config
        sampler = sampler or cfg.sampler
        eta = cfg.eta if eta is None else eta
        w = cfg.guidance if guidance is None else guidance
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
        tau = self.timesteps(cfg.sample_steps if steps is None else steps).tolist()
        x = torch.randn(n, 2, generator=generator, device=self.device) if x_T is None else x_T.clone()
        if known is not None:
            ab_T = float(self.alphas_cumprod[tau[-1]])
            x[:, known[0]] = math.sqrt(ab_T) * known[1] + math.sqrt(1 - ab_T) * torch.randn(
                n, generator=generator, device=self.device
            )
        path = [x.clone()] if record else []
        eps_at = self.eps_at_steps(tau, labels, w)
        for i in range(len(tau) - 1, -1, -1):
            t, t_prev = tau[i], (tau[i - 1] if i > 0 else -1)
            ab = float(self.alphas_cumprod[t])
            ab_prev = float(self.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
            eps = eps_at(x, i)
            x0, eps = self._predict_x0(x, t, eps, ab)
            last = t_prev < 0
            if sampler == "ddpm":
                beta = 1 - ab / ab_prev
                mean = (math.sqrt(ab_prev) * beta / (1 - ab)) * x0 + (
                    math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)
                ) * x
                var = (1 - ab_prev) / (1 - ab) * beta
                x = (
                    mean
                    if last
                    else mean + math.sqrt(var) * torch.randn(n, 2, generator=generator, device=self.device)
                )
            else:
                s = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
                x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - s * s, 0.0)) * eps
                if s > 0 and not last:
                    x = x + s * torch.randn(n, 2, generator=generator, device=self.device)
            if known is not None:
                noise = torch.randn(n, generator=generator, device=self.device) if not last else 0.0
                x[:, known[0]] = math.sqrt(ab_prev) * known[1] + math.sqrt(1 - ab_prev) * noise
            if record:
                path.append(x.clone())
        return x, path

    def _sample_z(self, n, generator):
        return self.reverse(n, generator, labels=self.draw_labels(n, generator))[0]

    def _sample_labels(self, labels: torch.Tensor, w: float, generator) -> torch.Tensor:
        return self.reverse(len(labels), generator, labels=labels, guidance=w)[0]

    def sample_with(
        self, n: int, sampler: str, steps: int, eta: float | None = None, generator=None
    ) -> torch.Tensor:
        """n samples [n, 2] in data coordinates from a chosen sampler and number of steps."""
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        labels = self.draw_labels(int(n), generator)
        z = self.reverse(int(n), generator, sampler, steps, eta, labels=labels)[0]
        return self.scaler.to_x(z.float().cpu())

    def inpaint(
        self, dim: int, value: float, n: int, generator=None, steps: int | None = None
    ) -> torch.Tensor:
        """Samples [n, 2] (data coordinates) of p(x_other | x_dim = value) by the replacement method.

        At every ancestral reverse step the known coordinate is replaced by a forward-noised version of
        the observation (RePaint without resampling, Lugmayr et al. 2022). Approximation: the unknown
        coordinate is denoised as if the noised observation were a draw from the model's own
        p(x_t), which it is only marginally, so the result is biased towards p(x_other) where the
        condition is unlikely; more steps (default: min(T, 250)) reduce the error but never remove it.
        Column `dim` of the output equals `value` exactly.
        """
        if dim not in (0, 1):
            raise ValueError(f"dim must be 0 or 1, got {dim}")
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        v = (float(value) - float(self.scaler.mean[dim])) / float(self.scaler.std[dim])
        steps = (
            min(self.config.T, 250) if steps is None else steps
        )  # 250 of 1000: ~4x faster, as good on the toys
        labels = self.draw_labels(int(n), generator)
        z, _ = self.reverse(int(n), generator, "ddpm", steps, known=(dim, v), labels=labels)
        x = self.scaler.to_x(z.float().cpu())
        x[:, dim] = float(value)
        return x

    # -- views ----------------------------------------------------------------------------------------
    def views(self, n_forward: int = 500, n_particles: int = 48, grid: int = 20, **kw) -> dict:
        """Forward process frames, x_T against the prior, reverse trajectories, score field (all in x).

        The score of p_t is -eps_theta(x, t) / sqrt(1 - alpha_bar_t); the "true" one is the exact
        score of the noised training set, mean_i N(x; sqrt(ab_t) x_i, (1 - ab_t) I) (`noised_empirical_score`).
        """
        g = torch.Generator(device=self.device).manual_seed(self.seed + 4242)
        cfg = self.config
        x0 = self.train_z[torch.randint(0, len(self.train_z), (n_forward,), generator=g, device=self.device)]
        eps = torch.randn(n_forward, 2, generator=g, device=self.device)
        fracs = np.linspace(0, 1, 21)
        ts = [-1] + [int(round(f * (cfg.T - 1))) for f in fracs[1:]]
        frames = np.stack(
            [self.to_x(self.q_sample(x0, torch.full((n_forward,), t, device=self.device), eps)) for t in ts]
        )
        x_T = self.q_sample(x0, torch.full((n_forward,), cfg.T - 1, device=self.device), eps)
        prior = torch.randn(n_forward, 2, generator=g, device=self.device)
        ab = self.alphas_cumprod.cpu().numpy()
        n_steps = min(cfg.sample_steps, 25)  # a picture of the sampler at <= 25 steps keeps views cheap
        tau = self.timesteps(n_steps).cpu().numpy()
        paths = throttled(
            self,
            f"paths{n_particles}",
            lambda: np.stack(
                [
                    self.to_x(p)
                    for p in self.reverse(
                        n_particles, g, steps=n_steps, record=True, labels=self.draw_labels(n_particles, g)
                    )[1]
                ],
                1,
            ),
        )
        return {
            "kind": "ddpm",
            "forward": {
                "points": frames,
                "labels": ["t = 0 (data)"] + [f"t = {t + 1}" for t in ts[1:]],
                "signal": [1.0]
                + [float(np.sqrt(ab[t])) for t in ts[1:]],  # sqrt(alpha_bar_t): data left in x_t
            },
            "prior": {
                "x_T": self.to_x(x_T),
                "prior": self.to_x(prior),
                "kl_gaussian": gaussian_kl_to_standard(x_T),
                "energy_distance": _energy(x_T, prior),
                "energy_floor": _energy(*torch.randn(2, n_forward, 2, generator=g, device=self.device)),
                "signal": float(np.sqrt(ab[-1])),
            },
            "trajectories": {
                "paths": paths,  # [particles, steps + 1, 2]
                "time": np.concatenate([(tau[::-1] + 1) / cfg.T, [0.0]]),  # t / T, from 1 to 0
            },
            "score_field": throttled(self, f"field{grid}", lambda: self._score_field(grid)),
            "schedule": {"alpha_bar": ab, "beta": self.betas.cpu().numpy()},
            "guidance": self.guidance_views(),
        }

    def _score_field(self, size: int) -> dict:
        cfg = self.config
        gx, gy, pts = field_grid(self, size)
        ts = [int(round(f * (cfg.T - 1))) for f in (0.02, 0.1, 0.25, 0.5, 0.8)]
        key = (size, tuple(ts))
        if key not in self._true_cache:  # the truth does not change while training: compute it once
            centres = self.train_z[:4000]
            self._true_cache = {
                key: [
                    noised_empirical_score(
                        pts,
                        centres,
                        math.sqrt(float(self.alphas_cumprod[t])),
                        math.sqrt(1 - float(self.alphas_cumprod[t])),
                    ).cpu()
                    for t in ts
                ]
            }
        true = self._true_cache[key]
        std = torch.as_tensor(self.scaler.std, dtype=torch.float32)
        model, error, truth, labels = [], [], [], []
        for t, s_true in zip(ts, true):
            sig = math.sqrt(1 - float(self.alphas_cumprod[t]))
            with torch.no_grad():
                s = -self.eps_theta(pts, torch.full((len(pts),), t, device=self.device)).cpu() / sig
            error.append((sig * (s - s_true).norm(dim=1)).reshape(size, size).numpy())  # in noise units
            model.append((s / std).reshape(size, size, 2).numpy())  # d/dx = d/dz / std
            truth.append((s_true / std).reshape(size, size, 2).numpy())
            labels.append(f"t = {t + 1} (noise std {sig:.2f})")
        return {
            "x": gx,
            "y": gy,
            "labels": labels,
            "model": np.stack(model),
            "true": np.stack(truth),
            "error": np.stack(error),
        }


# ---------------------------------------------------------------------------------------------
# Quality against the number of sampling steps: the "slow sampling" of diffusion, measured.
# ---------------------------------------------------------------------------------------------


def sampler_sweep(
    model: DDPM,
    reference: np.ndarray,
    steps=(5, 10, 20, 50, 100, 250, 1000),
    n: int = 1000,
    seed: int = 0,
    samplers=("ddpm", "ddim"),
    repeats: int = 1,
) -> dict:
    """For each sampler and step count: energy distance of n samples to `reference` (data coordinates;
    the mean over `repeats` sample draws, since one draw's noise is of the order of the floor), the same as an
    unbiased U-statistic (no floor), and the seconds per 1000 samples (first draw).
    Returns {sampler: {"steps": [...], "energy": [...], "energy_unbiased": [...], "seconds": [...]}}."""
    # a list of references: draw r is compared with reference r (independent true samples, so the
    # mean over draws also averages the reference's own sampling noise)
    refs = [
        torch.as_tensor(np.asarray(r), dtype=torch.float64)
        for r in (reference if isinstance(reference, (list, tuple)) else [reference])
    ]
    out = {}
    for sampler in samplers:
        rows = {"steps": [], "energy": [], "energy_unbiased": [], "seconds": []}
        for k in steps:
            k = int(min(k, model.config.T))
            if k in rows["steps"]:
                continue
            energies, unbiased = [], []
            for r in range(max(repeats, 1)):
                t0 = time.perf_counter()
                x = model.sample_with(n, sampler, k, generator=seed + r)
                if r == 0:
                    rows["seconds"].append((time.perf_counter() - t0) * 1000 / n)
                ref = refs[r % len(refs)]
                energies.append(_energy(x, ref))
                unbiased.append(energy_distance_unbiased(x.double().cpu().numpy(), ref.numpy()))
            rows["steps"].append(k)
            rows["energy"].append(float(np.mean(energies)))
            rows["energy_unbiased"].append(float(np.mean(unbiased)))
        out[sampler] = rows
    return out
