"""Generative adversarial networks: minimax and non-saturating GAN, WGAN, WGAN-GP, with PacGAN packing and the R1 penalty."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lab.base import Config, GenerativeModel, option
from lab.nn import ACTIVATIONS

LOSSES = ["minimax", "nonsaturating", "wgan", "wgan-gp"]
LOG4 = math.log(4.0)  # V(D*, G) at the global optimum p_g = p_data is -log 4
# JSD(p_data, p_g) as the GAN page draws it: both densities smoothed by the same Gaussian kernel of this
# width (in the data's standard deviations) on a JSD_GRID^2 grid over the plot box, from JSD_POINTS real and generated points
JSD_BANDWIDTH = 0.1
JSD_GRID = 128
JSD_POINTS = 1000
JSD_HISTORY = 500  # points of the JSD series a model keeps (every other one is dropped when full)


def grid_jsd(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q) / 2, in nats, in [0, log 2].

    p, q: probability masses per grid cell (>= 0, each summing to at most 1); what a distribution puts
    outside the grid is counted as disjoint from the other one (it adds 1/2 log 2 per unit of mass).
    """
    p = np.clip(np.asarray(p, dtype=np.float64).ravel(), 0.0, None)
    q = np.clip(np.asarray(q, dtype=np.float64).ravel(), 0.0, None)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 = 0
        kp = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kq = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    outside = max(0.0, 1.0 - p.sum()) + max(0.0, 1.0 - q.sum())
    return float(np.clip(0.5 * (kp + kq + outside * math.log(2.0)), 0.0, math.log(2.0)))


def smoothed_masses(
    points: np.ndarray | torch.Tensor, box: np.ndarray, bandwidth: float = JSD_BANDWIDTH, size: int = JSD_GRID
) -> np.ndarray:
    """Masses per grid cell [size, size] (rows = y) of the points' Gaussian KDE 1/n sum_i N(x; p_i, h^2 I)
    over box [[lo_x, lo_y], [hi_x, hi_y]]: the points binned, then blurred by the kernel (separable, so
    two small matrix products instead of the cells x points of a direct KDE). Mass that leaves the box is
    left out."""
    p = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    p = p[np.isfinite(p).all(1)] if len(p) else p.reshape(0, 2)
    if len(p) == 0:
        return np.zeros((size, size))
    (x0, y0), (x1, y1) = np.asarray(box, dtype=np.float64)
    counts, _, _ = np.histogram2d(p[:, 1], p[:, 0], bins=size, range=[[y0, y1], [x0, x1]])

    def blur(lo: float, hi: float) -> np.ndarray:
        """[size, size] Gaussian weights between bin centres: column j spreads bin j's mass (what leaves the box is lost)."""
        c = np.linspace(lo, hi, size + 1)
        c = 0.5 * (c[1:] + c[:-1])
        w = np.exp(-0.5 * ((c[:, None] - c[None, :]) / bandwidth) ** 2)
        return w / (bandwidth * math.sqrt(2 * math.pi) / (c[1] - c[0]))  # a full kernel sums to 1

    return blur(y0, y1) @ (counts / len(points)) @ blur(x0, x1).T


def smoothed_jsd(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    box: np.ndarray,
    bandwidth: float = JSD_BANDWIDTH,
    size: int = JSD_GRID,
) -> float:
    """JSD between the KDEs of `real` and `fake` [n, 2] with one bandwidth (smoothed_masses). Smoothing
    both with the same kernel applies one Markov kernel to both, so the smoothed densities' JSD is a lower
    bound of the true JSD (data processing) and 0 when p_g = p_data; a KDE of the samples against the sharp
    true density would not be (the blur alone would look like a gap). From n points the estimate is biased
    up by their noise: two samples of one law give the floor (GAN.jsd_floor), ~0.001-0.02 on the toys."""
    return grid_jsd(smoothed_masses(real, box, bandwidth, size), smoothed_masses(fake, box, bandwidth, size))


# Defaults: the best of a short search on 8gaussians and 25gaussians at 60 s on one CPU thread
# (bench/gan_modes.py, bench/results_gan_modes.md). R1 keeps every mode (without it the grid loses a
# few); the EMA generator and large batches make the clusters tight; packing adds nothing once R1 is on.
@dataclass(frozen=True)
class GANConfig(Config):
    lr: float = option(
        2e-3,
        "learning rate of both players (Adam; RMSProp for wgan)",
        min=1e-5,
        max=1e-2,
        log=True,
        live=True,
    )
    batch_size: int = option(
        256, "real points per discriminator step (and fake points per generator step)", min=8, max=4096
    )
    loss: str = option(
        "nonsaturating",
        "the game: minimax (saturating), nonsaturating, wgan (weight clipping), wgan-gp (gradient penalty)",
        choices=LOSSES,
    )
    d_steps: int = option(1, "k: discriminator (critic) steps per generator step", min=1, max=20)
    pack: int = option(
        1, "PacGAN: the discriminator judges packs of this many points at once; 1 = no packing", min=1, max=8
    )
    latent_dim: int = option(8, "dimension of the Gaussian latent z fed to the generator", min=1, max=64)
    hidden: int = option(64, "units per hidden layer (both players)", min=16, max=1024)
    layers: int = option(3, "hidden layers (both players)", min=1, max=6)
    activation: str = option(
        "relu",
        "nonlinearity of both players (DCGAN: leaky_relu in D)",
        choices=["relu", "leaky_relu", "tanh", "silu"],
    )
    batch_norm: bool = option(
        False, "DCGAN-style batch norm in G's hidden layers (and D's, except with wgan-gp)"
    )
    gp_weight: float = option(0.1, "lambda of the WGAN-GP gradient penalty", min=0.0, max=100.0)
    clip: float = option(
        0.01, "WGAN weight clipping: every critic weight stays in [-clip, clip]", min=1e-4, max=1.0, log=True
    )
    beta1: float = option(0.5, "Adam beta1 (DCGAN: 0.5)", min=0.0, max=0.99)
    beta2: float = option(0.9, "Adam beta2 (WGAN-GP: 0.9)", min=0.0, max=0.9999)
    ema: float = option(
        0.99,
        "samples come from an exponential moving average of G's weights with this decay; 0 = the raw G",
        min=0.0,
        max=0.9999,
    )
    r1_gamma: float = option(
        0.1,
        "gamma of the R1 penalty gamma/2 E ||grad D(x)||^2 on real data (Mescheder et al. 2018); 0 = off",
        min=0.0,
        max=10.0,
    )
    lr_half_life: int = option(
        0,
        "the learning rate halves every this many G steps (step decay, lr 0.5^(t / half-life)); 0 = constant",
        min=0,
        max=1_000_000,
    )


def _mlp(
    in_dim: int,
    out_dim: int,
    hidden: int,
    layers: int,
    act: str,
    batch_norm: bool,
    skip_first_norm: bool = False,
) -> nn.Sequential:
    """Linear -> [BatchNorm] -> act, `layers` times, then a linear output (DCGAN: no norm on D's input layer)."""
    mods: list[nn.Module] = []
    d = in_dim
    for i in range(layers):
        mods.append(nn.Linear(d, hidden))
        if batch_norm and not (skip_first_norm and i == 0):
            mods.append(nn.BatchNorm1d(hidden))
        mods.append(ACTIVATIONS[act]())
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class GAN(GenerativeModel):
    """Two players, G: z -> x and D: x -> logit (or critic value), trained in alternation.

    The game (Goodfellow et al. 2014):
        min_G max_D V(D, G) = E_data[log D(x)] + E_z[log(1 - D(G(z)))].
    For a fixed G the best D is D*(x) = p_data(x) / (p_data(x) + p_g(x)), and then
    V(D*, G) = -log 4 + 2 JSD(p_data || p_g), minimised (-log 4) exactly when p_g = p_data.

    loss = "minimax"        G minimises E log(1 - D(G(z)))  (saturates when D is sure: vanishing gradients)
           "nonsaturating"  G minimises -E log D(G(z))        (same fixed point, strong early gradients)
           "wgan"           critic f with weights clipped to [-c, c]; D loss E f(G(z)) - E f(x),
                            G loss -E f(G(z)): the Earth Mover's distance (Arjovsky et al. 2017)
           "wgan-gp"        the same with lambda E (||grad f(x_hat)|| - 1)^2 on random interpolates
                            instead of clipping (Gulrajani et al. 2017)
    pack = m > 1            PacGAN (Lin et al. 2018): D sees m samples concatenated, all real or all
                            fake, so a generator that collapses is easy to spot from a single pack.
    r1_gamma = gamma > 0    adds gamma/2 E_data ||grad_x D(x)||^2 to D's loss (Mescheder et al. 2018): D is
                            kept flat on the data, which damps the rotation of the two players around the
                            equilibrium; with it the GAN converges locally, without it it can circle forever.
    lr_half_life = h > 0    both learning rates are lr 0.5^(t / h) after t G steps, to calm the late jitter
                            (off by default: within a 60 s budget the smaller late steps slowed the
                            tightening of the clusters more than they calmed them).
    ema = beta > 0          samples, decode and the manifold use G_ema, theta_ema <- beta theta_ema +
                            (1 - beta) theta after every G step (Yazici et al. 2019): the average of
                            the oscillating iterates sits nearer the equilibrium, so clusters are tighter.

    For the inverse-problems page the generator is also exposed as a decoder:
      latent_dim                       the dimension of z
      decode(z [n, latent_dim])        G(z) [n, 2] in STANDARDISED coordinates, differentiable in z
      prior_sample_latent(n, gen)      z ~ N(0, I) [n, latent_dim]
    Packing changes only D's input; G, decode and the prior do not depend on it.
    """

    key = "gan"
    title = "Generative adversarial network"
    Config = GANConfig
    has_log_prob = False
    density_kind = "none"
    early_stopping = False

    # -- build ------------------------------------------------------------------------------------
    def _build(self):
        cfg = self.config
        self.latent_dim = cfg.latent_dim
        d_norm = (
            cfg.batch_norm and cfg.loss != "wgan-gp"
        )  # the penalty is per sample; batch norm couples samples
        self.net = nn.ModuleDict(
            {
                "G": _mlp(cfg.latent_dim, 2, cfg.hidden, cfg.layers, cfg.activation, cfg.batch_norm),
                "D": _mlp(
                    2 * cfg.pack, 1, cfg.hidden, cfg.layers, cfg.activation, d_norm, skip_first_norm=True
                ),
            }
        )
        G, D = self.net["G"], self.net["D"]
        if cfg.ema > 0:
            self.net["G_ema"] = copy.deepcopy(G).requires_grad_(False)
        if cfg.loss == "wgan":  # the WGAN paper: momentum makes the clipped critic unstable, use RMSProp
            self.opt_g = torch.optim.RMSprop(G.parameters(), lr=cfg.lr)
            self.opt_d = torch.optim.RMSprop(D.parameters(), lr=cfg.lr)
        else:
            self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
            self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
        self.optimizers = [self.opt_g, self.opt_d]
        self.steps_done = 0  # G steps so far: the clock of lr_half_life
        # plot window for views(): the training data's box, padded, in z
        z = self.train_z.cpu()
        lo, hi = z.min(0).values, z.max(0).values
        pad = 0.25 * (hi - lo).clamp(min=1e-3)
        self._box = torch.stack([lo - pad, hi + pad]).numpy()  # [2, 2]: (lo, hi) per axis
        if cfg.loss == "wgan":
            self._clip()
        # the JSD's fixed reference: real points and latents drawn once (their own generator, so the
        # training's random stream is untouched), and two disjoint real halves for the JSD's floor
        g = torch.Generator(device=self.device).manual_seed(self.seed + 4242)
        idx = torch.randperm(len(self.train_z), generator=g, device=self.device)
        n = min(JSD_POINTS, len(idx) // 2)
        self._jsd_real, self._jsd_other = self.train_z[idx[:n]], self.train_z[idx[n : 2 * n]]
        self._jsd_latent = torch.randn(JSD_POINTS, cfg.latent_dim, generator=g, device=self.device)
        self._jsd_floor: float | None = None
        self.jsd_history: list[tuple[int, float]] = []

    # -- pieces -----------------------------------------------------------------------------------
    def prior_sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), [n, latent_dim], on the model's device."""
        return torch.randn(
            int(n),
            self.latent_dim,
            generator=generator if generator is not None else self.gen,
            device=self.device,
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator G(z): [n, latent_dim] -> [n, 2] in standardised coordinates, differentiable in z.

        This is G_ema when ema > 0. Batch norm (if on) uses its running statistics here, so each row
        depends only on its own z.
        """
        G = self.net["G_ema"] if "G_ema" in self.net else self.net["G"]
        was = G.training
        G.eval()
        try:
            return G(z)
        finally:
            G.train(was)

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 2] -> [n / m, 2m]: consecutive points form one pack (PacGAN)."""
        m = self.config.pack
        return x.reshape(-1, 2 * m)

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        """D's logit (or the critic value) per pack: [n, 2] -> [n / m]."""
        return self.net["D"](self._pack(x)).squeeze(-1)

    def _real(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.train_z), (n,), generator=self.gen, device=self.device)
        return self.train_z[idx]

    def _d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        if self.config.loss in ("wgan", "wgan-gp"):
            return d_fake.mean() - d_real.mean()  # the critic maximises E f(x) - E f(G(z))
        # -V: -log sigmoid(l_real) - log(1 - sigmoid(l_fake)) = softplus(-l_real) + softplus(l_fake)
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def _g_loss_per_pack(self, d_fake: torch.Tensor) -> torch.Tensor:
        loss = self.config.loss
        if loss == "minimax":
            return -F.softplus(d_fake)  # log(1 - D(G(z))) = -softplus(l)
        if loss == "nonsaturating":
            return F.softplus(-d_fake)  # -log D(G(z)) = softplus(-l)
        return -d_fake  # WGAN: -f(G(z))

    def _value(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> float:
        """V(D, G) estimated on the batch: E log D(x) + E log(1 - D(G(z))); for WGAN E f(x) - E f(G(z))."""
        if self.config.loss in ("wgan", "wgan-gp"):
            return float(d_real.mean() - d_fake.mean())
        return float(-F.softplus(-d_real).mean() - F.softplus(d_fake).mean())

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """E (||grad_x_hat f(x_hat)|| - 1)^2 with x_hat = eps real + (1 - eps) fake, one eps per pack."""
        rp, fp = self._pack(real), self._pack(fake)
        eps = torch.rand(len(rp), 1, generator=self.gen, device=self.device)
        x_hat = (eps * rp + (1 - eps) * fp).requires_grad_(True)
        out = self.net["D"](x_hat).sum()
        (grad,) = torch.autograd.grad(out, x_hat, create_graph=True)
        return ((grad.norm(dim=1) - 1) ** 2).mean()

    def _d_and_r1(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logit per real pack [n / m], and R1 = E ||grad_x D(x)||^2 over the real packs (the gradient
        of the logit, before the sigmoid, with respect to the whole pack of 2m coordinates)."""
        packs = self._pack(real).detach().requires_grad_(True)
        d_real = self.net["D"](packs).squeeze(-1)
        (grad,) = torch.autograd.grad(
            d_real.sum(), packs, create_graph=True
        )  # create_graph: R1 is trained through
        return d_real, grad.pow(2).sum(1).mean()

    def _set_lr_now(self, lr: float):
        """The learning rate this step uses, in every optimiser (config.lr stays the base rate)."""
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = lr

    @torch.no_grad()
    def _clip(self):
        for p in self.net["D"].parameters():
            p.clamp_(-self.config.clip, self.config.clip)

    def _n(self, n: int) -> int:
        """Batch size rounded to whole packs (at least one pack)."""
        m = self.config.pack
        return max(m, n // m * m)

    # -- training ---------------------------------------------------------------------------------
    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        """k discriminator steps (fresh real batches after the first), then one generator step."""
        cfg = self.config
        G = self.net["G"]
        n = self._n(len(batch))
        real = batch[:n] if len(batch) >= n else self._real(n)
        if cfg.lr_half_life > 0:
            self._set_lr_now(cfg.lr * 0.5 ** (self.steps_done / cfg.lr_half_life))
        gp = r1 = torch.zeros((), device=self.device)
        for i in range(cfg.d_steps):
            if i > 0:
                real = self._real(n)
            with torch.no_grad():
                fake = G(self.prior_sample_latent(n))
            d_real, r1 = self._d_and_r1(real) if cfg.r1_gamma > 0 else (self._d(real), r1)
            d_fake = self._d(fake)
            loss_d = self._d_loss(d_real, d_fake)
            if cfg.loss == "wgan-gp":
                gp = self._gradient_penalty(real, fake)
                loss_d = loss_d + cfg.gp_weight * gp
            if cfg.r1_gamma > 0:
                loss_d = loss_d + 0.5 * cfg.r1_gamma * r1
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            if cfg.loss == "wgan":
                self._clip()
        value = self._value(d_real.detach(), d_fake.detach())

        # generator step: D's parameters receive gradients too, but opt_d zeroes them before using any
        fake = G(self.prior_sample_latent(n))
        loss_g = self._g_loss_per_pack(self._d(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        g_norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in G.parameters() if p.grad is not None))
        self.opt_g.step()
        if "G_ema" in self.net:
            self._update_ema()
        self.steps_done += 1
        out = {
            "d_loss": float(loss_d.detach()),
            "g_loss": float(loss_g.detach()),
            "value": value,
            "g_grad_norm": float(g_norm),
        }
        if cfg.loss == "wgan-gp":
            out["gradient_penalty"] = float(gp.detach())
        if cfg.r1_gamma > 0:
            out["r1"] = float(r1.detach())
        return out

    @torch.no_grad()
    def _update_ema(self):
        beta = self.config.ema
        G, E = self.net["G"], self.net["G_ema"]
        for pe, p in zip(E.parameters(), G.parameters()):
            pe.lerp_(p, 1.0 - beta)
        for be, b in zip(E.buffers(), G.buffers()):  # batch-norm running statistics
            be.copy_(b)

    def _sample_z(self, n, generator):
        return self.decode(torch.randn(n, self.latent_dim, generator=generator, device=self.device))

    # -- JSD over training ----------------------------------------------------------------------------
    def jsd(self) -> float:
        """JSD(p_data, p_g) of the smoothed densities (smoothed_jsd), p_g from the sampling generator
        (G_ema when ema > 0) on fixed latents; V(D*, G) = 2 JSD - log 4 (Goodfellow et al. 2014, Thm. 1)."""
        with torch.no_grad():
            fake = self.decode(self._jsd_latent)
        return smoothed_jsd(self._jsd_real, fake, self._box)

    def jsd_floor(self) -> float:
        """The JSD between two halves of the training data: what a generator equal to p_data would show."""
        if self._jsd_floor is None:
            self._jsd_floor = smoothed_jsd(self._jsd_real, self._jsd_other, self._box)
        return self._jsd_floor

    def _record_jsd(self) -> None:
        """One point of the JSD series at this step; the series keeps its whole span in JSD_HISTORY points."""
        if self.jsd_history and self.jsd_history[-1][0] == self.steps_done:
            return
        self.jsd_history.append((self.steps_done, self.jsd()))
        if len(self.jsd_history) > JSD_HISTORY:
            self.jsd_history = self.jsd_history[::2]

    # -- pictures ---------------------------------------------------------------------------------
    def discriminator(self, x: np.ndarray) -> np.ndarray:
        """D at data points x [n, 2]: the probability D(x) (JS losses) or the critic f(x) (WGAN).

        With packing, D is asked about a pack made of m copies of the same point.
        """
        D = self.net["D"]
        was = D.training
        D.eval()
        try:
            with torch.no_grad():
                z = self.to_z(x)
                out = D(z.repeat(1, self.config.pack)).squeeze(-1)
        finally:
            D.train(was)
        if self.config.loss in ("minimax", "nonsaturating"):
            out = torch.sigmoid(out)
        return out.double().cpu().numpy()

    def views(
        self, grid: int = 48, n_points: int = 256, manifold: int = 21, bounds=None, seed: int = 0, **kw
    ):
        """D's surface on a grid, G's push on generated points, and G's image of a latent grid, in x.

        d_surface [grid, grid] (rows = y): D(x) or the critic f(x)
        fake [n, 2], push [n, 2]: points of the trained G (not G_ema) and -dL_G/dx (where the G step
            moves them), in x units
        manifold [manifold, manifold, 2]: G of a grid over latent dims 0 and 1 in [-2.5, 2.5] (others 0)
        jsd (steps [k], values [k]): JSD(p_data, p_g) each time the views were drawn (about once a second
            while training: paid for by the picture budget, and never by a headless run); jsd_floor: its
            value for two samples of the data
        """
        self._record_jsd()
        cfg = self.config
        if bounds is None:
            lo = self.to_x(torch.as_tensor(self._box[0]))
            hi = self.to_x(torch.as_tensor(self._box[1]))
            bounds = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        gx = np.linspace(bounds[0], bounds[1], grid)
        gy = np.linspace(bounds[2], bounds[3], grid)
        xx, yy = np.meshgrid(gx, gy)
        surface = self.discriminator(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(grid, grid)

        G, D = self.net["G"], self.net["D"]
        gen = torch.Generator(device=self.device).manual_seed(self.seed + seed + 99)
        n_points = max(cfg.pack, n_points // cfg.pack * cfg.pack)
        was_d = D.training
        D.eval()
        try:
            with torch.no_grad():
                was_g = G.training
                G.eval()
                fz = G(self.prior_sample_latent(n_points, gen))
                G.train(was_g)
            fz.requires_grad_(True)
            loss = self._g_loss_per_pack(self._d(fz)).sum()
            (grad,) = torch.autograd.grad(loss, fz)
        finally:
            D.train(was_d)
        push = (-grad).cpu().numpy() * self.scaler.std  # a move of dz in z is dz * std in x

        t = torch.linspace(-2.5, 2.5, manifold, device=self.device)
        lat = torch.zeros(manifold, manifold, self.latent_dim, device=self.device)
        lat[..., 0] = t[None, :]
        if self.latent_dim > 1:
            lat[..., 1] = t[:, None]
        with torch.no_grad():
            man = self.to_x(self.decode(lat.reshape(-1, self.latent_dim))).reshape(manifold, manifold, 2)
        return {
            "x": gx,
            "y": gy,
            "d_surface": surface,
            "d_kind": "critic" if cfg.loss in ("wgan", "wgan-gp") else "probability",
            "fake": self.to_x(fz),
            "push": push,
            "manifold": man,
            "loss": cfg.loss,
            "pack": cfg.pack,
            "bounds": list(bounds),
            "jsd": (
                np.array([s for s, _ in self.jsd_history]),
                np.array([v for _, v in self.jsd_history], dtype=float),
            ),
            "jsd_floor": self.jsd_floor(),
        }


# what bench/gan_lessons.py measured (the dcgan lesson); the GAN page shows it under its training view
DCGAN_LESSON = (
    "DCGAN (Radford et al. 2016) recommends batch norm in both players (not on D's input or G's output) and "
    "LeakyReLU in D, for image GANs with convolutions. Here both are options (batch_norm, activation = "
    "leaky_relu; one activation for both players). Measured on the 8 Gaussians, 3 seeds × 1000 steps with "
    "the other defaults (R1 and EMA on), mean ± standard error (worst seed), bench/gan_lessons.py:\n\n"
    "| batch norm | activation | modes | high quality | energy distance | seeds with all 8 |\n"
    "|---|---|---|---|---|---|\n"
    "| off | relu (default) | 8 ± 0 (8) | 0.73 ± 0.02 (0.71) | 0.0056 ± 0.0019 (0.0092) | 3/3 |\n"
    "| off | leaky_relu | 8 ± 0 (8) | 0.28 ± 0.03 (0.22) | 0.016 ± 0.003 (0.020) | 3/3 |\n"
    "| on | relu | 8 ± 0 (8) | 0.36 ± 0.08 (0.24) | 0.016 ± 0.004 (0.022) | 3/3 |\n"
    "| on | leaky_relu | 7.3 ± 0.3 (7) | 0.18 ± 0.05 (0.12) | 0.017 ± 0.004 (0.025) | 1/3 |\n\n"
    "On these 2D toys the guidelines do not help: each one alone keeps every mode but halves the share of "
    "high-quality samples and triples the energy distance, and both together lose a mode in 2 of 3 seeds. "
    "They were written for deep convolutional players on images, where batch norm steadies the early "
    "gradients; a 3-layer MLP on 2D points with R1 and an EMA generator does not need that help (a likely "
    "reason, not measured here: batch norm ties every sample to its batch's statistics)."
)


def damping_pair(config: GANConfig) -> dict[str, GANConfig]:
    """The same GAN without and with the damping of its oscillations (the GAN page's side by side): R1 off
    and the raw G, against R1 and the EMA generator (the config's own values, else the defaults')."""
    d = GANConfig()
    gamma, ema = config.r1_gamma or d.r1_gamma, config.ema or d.ema
    return {
        "without damping (R1 off, raw G)": dataclasses.replace(config, r1_gamma=0.0, ema=0.0),
        f"with damping (R1 γ = {gamma:g}, EMA {ema:g})": dataclasses.replace(config, r1_gamma=gamma, ema=ema),
    }
