"""Variational autoencoder: Q(z|x) by the reparameterization trick, trained on the ELBO, scored by the IWAE bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lab.base import Config, GenerativeModel, option
from lab.nn import MLP

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_std))^2) summed over the last axis: [..., d] -> [...]."""
    return (-0.5 * ((x - mean) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)


def kl_to_standard_normal(mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2): [n, d] -> [n]."""
    return 0.5 * (mu**2 + torch.exp(2 * log_std) - 1 - 2 * log_std).sum(-1)


@dataclass(frozen=True)
class VAEConfig(Config):
    lr: float = option(5e-3, "learning rate", min=1e-5, max=1.0, log=True, live=True)
    batch_size: int = option(512, "points per training step", min=8, max=4096)
    latent_dim: int = option(2, "dimension of z (1 squeezes 2D data onto a curve)", choices=[1, 2])
    beta: float = option(
        1.0,
        "weight of the KL term (beta-VAE); large values collapse the posterior",
        min=0.0,
        max=20.0,
        live=True,
    )
    kl_warmup: int = option(300, "steps over which the KL weight ramps from 0 to beta", min=0, max=100_000)
    decoder_variance: str = option(
        "learned",
        "P(x|z) = N(g(z), σ²): learned = σ(z) output by the decoder per point and dimension; global = one "
        "learned log σ² per output dimension, the same for every z (Rybkin et al. 2021's σ-VAE); fixed = σ a "
        "constant, so -log P(x|z) is ‖x - g(z)‖² / 2σ² + const: the MSE loss",
        choices=["learned", "global", "fixed"],
    )
    decoder_std: float = option(
        0.1,
        "std of P(x|z) in standardised units when the variance is fixed (and the global one's start)",
        min=1e-3,
        max=2.0,
        log=True,
    )
    train_samples: int = option(4, "samples z per point in the training objective", min=1, max=64)
    objective: str = option(
        "iwae",
        "training bound: the ELBO, or the importance-weighted bound over train_samples",
        choices=["elbo", "iwae"],
    )
    iwae_k: int = option(
        256,
        "importance samples K in log_prob (the IWAE bound; larger is tighter)",
        min=1,
        max=4096,
        log=True,
        live=True,
    )
    prior: str = option(
        "vamp",
        "P(z): vamp = VampPrior, a mixture of Q(z|u_k) at learned pseudo-inputs u_k that follows the "
        "codes and leaves no holes (Tomczak & Welling 2018); standard = N(0, I), the lecture's",
        choices=["vamp", "standard"],
    )
    pseudo_inputs: int = option(32, "pseudo-inputs u_k of the VampPrior", min=1, max=1024, log=True)
    # learned by default: with uniform weights each region's share of the samples is the share of
    # pseudo-inputs that started there (drawn from the data, they rarely cross between modes; 12 of 32 on the
    # upper moon gave it 37 % of the samples, energy distance 30x its floor), and only the weights can move it
    prior_weights: str = option(
        "learned",
        "the VampPrior's mixture weights: learned (softmax of K logits, so the prior can move mass between "
        "regions of z without moving its components), or uniform 1/K (Tomczak & Welling 2018)",
        choices=["learned", "uniform"],
    )
    hidden: int = option(64, "width of encoder and decoder", min=8, max=1024, log=True)
    layers: int = option(3, "hidden layers of encoder and decoder", min=1, max=8)


class VAENet(nn.Module):
    """Encoder x -> (mu, log sigma) of Q(z|x); decoder z -> (mean, log std) of P(x|z)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.latent_dim = cfg.latent_dim
        self.learned = cfg.decoder_variance == "learned"
        self.encoder = MLP(2, 2 * cfg.latent_dim, cfg.hidden, cfg.layers)
        self.decoder = MLP(cfg.latent_dim, 4 if self.learned else 2, cfg.hidden, cfg.layers)
        self.fixed_log_std = math.log(cfg.decoder_std)
        # global: log σ per output dimension, trained with the rest by the Gaussian NLL; it starts at the
        # fixed σ, so fixed vs global differ only in whether σ may move
        self.log_std = (
            nn.Parameter(torch.full((2,), self.fixed_log_std)) if cfg.decoder_variance == "global" else None
        )
        # VampPrior: K learned points in (standardised) data space; P(z) = 1/K sum_k Q(z|u_k)
        self.pseudo = nn.Parameter(torch.zeros(cfg.pseudo_inputs, 2)) if cfg.prior == "vamp" else None
        learned_w = cfg.prior == "vamp" and cfg.prior_weights == "learned"
        self.prior_logits = nn.Parameter(torch.zeros(cfg.pseudo_inputs)) if learned_w else None

    def log_weights(self) -> torch.Tensor:
        """log w_k of the VampPrior's K components [K]: log softmax of the logits, or log 1/K."""
        if self.prior_logits is not None:
            return torch.log_softmax(self.prior_logits, 0)
        return torch.full((len(self.pseudo),), -math.log(len(self.pseudo)), device=self.pseudo.device)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [n, 2] -> mu [n, d], log_sigma [n, d]."""
        mu, raw = self.encoder(x).chunk(2, dim=-1)
        return mu, raw.clamp(-10.0, 3.0)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [..., d] -> mean [..., 2], log_std [..., 2] of P(x|z)."""
        out = self.decoder(z)
        if self.log_std is not None:
            raw = self.log_std.expand_as(out)
            return out, math.log(1e-3) + nn.functional.softplus(raw - math.log(1e-3))
        if not self.learned:
            return out, torch.full_like(out, self.fixed_log_std)
        mean, raw = out[..., :2], out[..., 2:]
        # a soft floor at std = 1e-3: a collapsing variance cannot send the likelihood to infinity
        return mean, math.log(1e-3) + nn.functional.softplus(raw - math.log(1e-3))


class VAE(GenerativeModel):
    """Variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014).

    Q(z|x) = N(mu(x), diag sigma(x)^2), z = mu + sigma * eps with eps ~ N(0, I) (reparameterization),
    P(z) = N(0, I), P(x|z) = N(g(z), diag s^2) with s = s(z) from the decoder (learned), one learned s per
    dimension (global) or a constant (fixed: -log P(x|z) is the MSE over 2 s^2 plus a constant, the
    lecture's blurry case). The marginal P(x) = int P(x|z) P(z) dz has no closed form through a neural
    g(z), so it is trained on the (beta-weighted) ELBO

        log P(x) >= E_Q[log P(x|z)] - beta KL(Q(z|x) || P(z))

    or on the importance-weighted bound (Burda et al. 2016) over `train_samples` draws (there beta
    <= 1 tempers log P(z)/Q(z|x) inside the weights, beta > 1 adds (beta - 1) KL). `log_prob`
    is the IWAE bound with K = `iwae_k`: log 1/K sum_k P(x|z_k) P(z_k) / Q(z_k|x), z_k ~ Q(z|x),
    a lower bound on log P(x) that tightens as K grows; `elbo(x)` is the K = 1 bound's expectation.
    train_step also reports the ELBO gap log P(x) - ELBO = KL(Q(z|x) || P(z|x)) on a fixed set of
    training points, measured every `GAP_EVERY` steps with log P(x) estimated by the IWAE bound at K = `GAP_K`.

    For other modules: `latent_dim`, `decode(z)` (the mean of P(x|z), standardised coordinates,
    differentiable) and `prior_sample_latent(n, generator)` (z ~ P(z) = N(0, I)).
    """

    key = "vae"
    title = "Variational autoencoder"
    GAP_EVERY, GAP_POINTS, GAP_K = 50, 128, 64
    Config = VAEConfig
    has_log_prob = True
    density_kind = "bound"

    def _build(self):
        cfg = self.config
        self.latent_dim: int = cfg.latent_dim
        self.net = VAENet(cfg)
        if (
            self.net.pseudo is not None
        ):  # start the pseudo-inputs on training points, so P(z) starts where the codes are
            idx = torch.randint(
                0,
                len(self.train_z),
                (cfg.pseudo_inputs,),
                generator=torch.Generator().manual_seed(self.seed + 3),
            )
            with torch.no_grad():
                self.net.pseudo.copy_(self.train_z[idx.to(self.device)])
        self.optimizers = [torch.optim.Adam(self.net.parameters(), lr=cfg.lr, fused=True)]
        self.steps = 0
        self._gap: dict[str, float] = {}  # the latest ELBO-gap measurement (see elbo_gap)

    # -- the latent interface ------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of P(x|z): z [n, latent_dim] -> [n, 2] in standardised coordinates (differentiable)."""
        return self.net.decode(z)[0]

    def encode(self, z_data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(z|x) for standardised points [n, 2]: mu [n, d], sigma [n, d]."""
        mu, log_sigma = self.net.encode(z_data)
        return mu, log_sigma.exp()

    def prior_sample_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """z ~ P(z): [n, latent_dim]. N(0, I), or for the VampPrior a component Q(z|u_k) chosen with
        probability w_k (uniformly when the weights are uniform)."""
        eps = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        if self.net.pseudo is None:
            return eps
        with torch.no_grad():
            mu, log_sigma = self.net.encode(self.net.pseudo)
            if self.net.prior_logits is None:
                k = torch.randint(0, len(mu), (n,), generator=generator, device=self.device)
            else:
                k = torch.multinomial(self.net.log_weights().exp(), n, replacement=True, generator=generator)
        return mu[k] + log_sigma[k].exp() * eps

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log P(z) for z [..., d] -> [...]: the standard normal, or the VampPrior's mixture
        log sum_k w_k N(z; mu(u_k), sigma(u_k)^2) with w_k = 1/K or learned."""
        if self.net.pseudo is None:
            return gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
        mu, log_sigma = self.net.encode(
            self.net.pseudo
        )  # [K, d]: gradients reach the pseudo-inputs and the encoder
        # log N(z; mu_k, sigma_k^2) for every (z, k) by expanding the square into matrix products ([..., K]
        # without a [..., K, d] intermediate, which made training steps 2.5x slower)
        prec = torch.exp(-2 * log_sigma)  # [K, d]
        quad = (z * z) @ prec.T - 2 * z @ (mu * prec).T + (mu * mu * prec).sum(-1)
        log_n = -0.5 * quad - log_sigma.sum(-1) - 0.5 * z.shape[-1] * LOG_2PI
        return torch.logsumexp(log_n + self.net.log_weights(), -1)

    def prior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of P(z) (for the VampPrior: of its mixture), numpy."""
        d = self.latent_dim
        if self.net.pseudo is None:
            return np.zeros(d), np.eye(d)
        with torch.no_grad():
            mu, log_sigma = self.net.encode(self.net.pseudo)
            w = self.net.log_weights().exp().double().cpu().numpy()
        mu, var = mu.double().cpu().numpy(), (2 * log_sigma).exp().double().cpu().numpy()
        m = w @ mu
        cov = np.diag(w @ var) + (w[:, None] * (mu - m)).T @ (mu - m)
        return m, cov

    def beta_now(self) -> float:
        """KL weight at this step: a linear warm-up from 0 to beta over kl_warmup steps."""
        w = self.config.kl_warmup
        return self.config.beta * (min(1.0, self.steps / w) if w > 0 else 1.0)

    # -- training -------------------------------------------------------------------------------
    def _terms(self, x: torch.Tensor, s: int, gen: torch.Generator):
        """For x [n, 2] and s draws z ~ Q(z|x): log P(x|z) [s, n], log P(z) - log Q(z|x) [s, n], KL [n], mu [n, d].

        KL(Q(z|x) || P(z)) is in closed form for N(0, I); for the VampPrior it is the mean over the s draws."""
        mu, log_sigma = self.net.encode(x)
        eps = torch.randn(s, *mu.shape, generator=gen, device=self.device)
        z = mu + log_sigma.exp() * eps  # reparameterization: gradients flow through mu and sigma
        mean, log_std = self.net.decode(z)
        log_px_z = gaussian_log_prob(x, mean, log_std)
        log_w_prior = self.log_prior(z) - gaussian_log_prob(z, mu, log_sigma)
        kl = kl_to_standard_normal(mu, log_sigma) if self.net.pseudo is None else -log_w_prior.mean(0)
        return log_px_z, log_w_prior, kl, mu

    def train_step(self, batch):
        cfg = self.config
        x = batch.to(self.device)
        log_px_z, log_w_prior, kl, _ = self._terms(x, cfg.train_samples, self.gen)
        beta = self.beta_now()
        recon = -log_px_z.mean()  # -E_Q[log P(x|z)], nats per point
        kl_mean = kl.mean()  # KL(Q(z|x) || P(z)) in closed form
        if cfg.objective == "iwae":
            # IWAE with the prior ratio tempered by min(beta, 1) (the KL warm-up), plus (beta - 1) KL
            # beyond 1: with one sample this is the beta-ELBO in expectation; at beta = 1 the IWAE bound
            log_w = log_px_z + min(beta, 1.0) * log_w_prior
            iwae = torch.logsumexp(log_w, 0) - math.log(cfg.train_samples)
            loss = -iwae.mean() + max(beta - 1.0, 0.0) * kl_mean
        else:
            loss = recon + beta * kl_mean
        opt = self.optimizers[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
        opt.step()
        self.steps += 1
        # the ELBO split in data coordinates: -log P(x|z) gains -log|dz/dx| like any density
        recon_x, kl_f = float(recon.detach()) - self.scaler.log_det, float(kl_mean.detach())
        out = {
            "loss": float(loss.detach()),
            "recon": recon_x,
            "kl": kl_f,
            "neg_elbo": recon_x + kl_f,
            "beta": beta,
        }
        if self.steps % self.GAP_EVERY == 1 or self.GAP_EVERY == 1 or not self._gap:
            self._gap = self.elbo_gap()
        # the latest measurement rides on every step, so a history that keeps one record in many still has it
        return {**out, **self._gap}

    def elbo_gap(self) -> dict[str, float]:
        """log P(x) - ELBO on GAP_POINTS training points spread over the data, from the same K = GAP_K draws:
        log P(x) ~ log 1/K sum_k w_k (IWAE), ELBO ~ 1/K sum_k log w_k; the gap is >= 0 by Jensen and is
        KL(Q(z|x) || P(z|x)), the price of an approximate posterior. Own generator: training's is untouched."""
        idx = torch.linspace(
            0, len(self.train_z) - 1, min(self.GAP_POINTS, len(self.train_z)), device=self.device
        )
        x = self.train_z[idx.long()]
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 5)
        with torch.no_grad():
            log_px_z, log_w_prior, _, _ = self._terms(x, self.GAP_K, gen)
            log_w = log_px_z + log_w_prior
            iwae = torch.logsumexp(log_w, 0) - math.log(self.GAP_K)
            gap = float((iwae - log_w.mean(0)).mean())
        return {"elbo_gap": gap, "neg_log_px": float(-iwae.mean()) - self.scaler.log_det}

    # -- sampling and the bound -----------------------------------------------------------------
    def _sample_z(self, n, generator):
        z = self.prior_sample_latent(n, generator)
        mean, log_std = self.net.decode(z)
        return mean + log_std.exp() * torch.randn(n, 2, generator=generator, device=self.device)

    def _iwae_z(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """IWAE bound log 1/K sum_k w_k [n] in standardised coordinates, in chunks of <= 2^18 decoder calls."""
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 1)  # the same draws every call
        per = max(1, (1 << 18) // k)
        out = []
        for chunk in torch.split(x, per):
            log_px_z, log_w_prior, _, _ = self._terms(chunk, k, gen)
            out.append(torch.logsumexp(log_px_z + log_w_prior, 0) - math.log(k))
        return torch.cat(out)

    def _log_prob_z(self, z):
        return self._iwae_z(z, self.config.iwae_k)

    def display_log_prob(self, x) -> torch.Tensor:
        """The live heatmap uses K = 16 (about 0.04 nats looser than K = 256 on moons, 16x cheaper)."""
        return self.log_prob_k(x, min(16, self.config.iwae_k))

    def validation_log_prob(self, x) -> torch.Tensor:
        """Early stopping's checks use K = 32: 1.2 s a check at K = 256 on 2,000 held-out points held a
        crowded worker's session for ten times that while the others caught up."""
        return self.log_prob_k(x, min(32, self.config.iwae_k))

    def log_prob_k(self, x, k: int) -> torch.Tensor:
        """The IWAE bound with K = k importance samples, in data coordinates [n]."""
        z = self.to_z(x).reshape(-1, 2)
        with torch.no_grad():
            return self._iwae_z(z, int(k)).cpu() + self.scaler.log_det

    def elbo(self, x, k: int = 64) -> torch.Tensor:
        """ELBO in data coordinates [n]: E_Q[log P(x|z)] (k-sample average) - KL(Q(z|x) || P(z))."""
        z = self.to_z(x).reshape(-1, 2)
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 2)
        with torch.no_grad():
            log_px_z, _, kl, _ = self._terms(z, int(k), gen)
            return (log_px_z.mean(0) - kl).cpu() + self.scaler.log_det

    # -- pictures --------------------------------------------------------------------------------
    def views(self, points=None, n_codes: int = 600, **kw):
        """Latent codes, posterior ellipses, aggregate posterior vs prior, decoder manifold, reconstructions."""
        from lab.ae import latent_views

        with torch.no_grad():
            vamp = self.net.pseudo is not None
            v = latent_views(
                self,
                points=points,
                n_codes=n_codes,
                prior=self.prior_moments(),
                prior_log_density=(lambda z: self.log_prior(z).double().cpu().numpy()) if vamp else None,
            )
            v["prior_kind"] = self.config.prior
            if vamp:  # the components' centres mu(u_k): where P(z) puts its mass
                v["prior_components"] = self.net.encode(self.net.pseudo)[0].double().cpu().numpy()
            return v
