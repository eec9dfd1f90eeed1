"""Autoencoder: a deterministic code z = f(x), x_hat = g(z), trained on ||x - x_hat||^2; not a generative model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lab.base import Config, GenerativeModel, option
from lab.nn import MLP


@dataclass(frozen=True)
class AEConfig(Config):
    latent_dim: int = option(
        1, "dimension of the code z (1 makes the learned manifold a visible curve)", choices=[1, 2]
    )
    hidden: int = option(128, "width of encoder and decoder", min=8, max=1024, log=True)
    layers: int = option(3, "hidden layers of encoder and decoder", min=1, max=8)
    refit_every: int = option(
        50, "steps between refits of the Gaussian on the codes that sampling draws from", min=1, max=10_000
    )


class AENet(nn.Module):
    """Encoder f: x [n, 2] -> z [n, d], decoder g: z -> x_hat [n, 2], and the Gaussian fitted to the codes."""

    def __init__(self, cfg: AEConfig):
        super().__init__()
        d = cfg.latent_dim
        self.encoder = MLP(2, d, cfg.hidden, cfg.layers)
        self.decoder = MLP(d, 2, cfg.hidden, cfg.layers)
        # N(code_mean, code_chol code_chol^T) fitted to f(x): buffers, so they are saved with the weights
        self.register_buffer("code_mean", torch.zeros(d))
        self.register_buffer("code_chol", torch.eye(d))


class Autoencoder(GenerativeModel):
    """Autoencoder (Hinton & Salakhutdinov 2006): min E ||x - g(f(x))||^2.

    With a 1D code the decoder g traces a curve through the 2D data: the learned manifold. "Sampling"
    decodes z ~ N(m, C), a Gaussian fitted to the codes f(x): nothing in training asks the codes to
    fill that Gaussian, so samples fall in its holes (between the moons) and always lie exactly on
    the decoded curve, without the data's spread. That is the lecture's point: an AE is not a
    generative model, and the VAE is the fix. No density (has_log_prob False).

    For other modules: `latent_dim`, `decode(z)` (standardised coordinates, differentiable) and
    `prior_sample_latent(n, generator)` (z from the Gaussian fitted to the codes).
    """

    key = "ae"
    title = "Autoencoder"
    Config = AEConfig
    has_log_prob = False
    density_kind = "none"
    early_stopping = False

    def _build(self):
        self.latent_dim: int = self.config.latent_dim
        self.net = AENet(self.config)
        self.optimizers = [torch.optim.Adam(self.net.parameters(), lr=self.config.lr, fused=True)]
        self.steps = 0

    # -- the latent interface ------------------------------------------------------------------
    def encode(self, z_data: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The code f(x) of standardised points [n, 2] -> [n, d] (no posterior spread: None)."""
        return self.net.encoder(z_data), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """g(z): [n, latent_dim] -> [n, 2] in standardised coordinates (differentiable)."""
        return self.net.decoder(z)

    def prior_sample_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """z ~ N(code_mean, code_cov), the Gaussian fitted to the training codes: [n, latent_dim]."""
        eps = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return self.net.code_mean + eps @ self.net.code_chol.T

    def latent_gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [d], covariance [d, d]) of the Gaussian fitted to the codes."""
        L = self.net.code_chol.detach().cpu().double().numpy()
        return self.net.code_mean.detach().cpu().double().numpy(), L @ L.T

    @torch.no_grad()
    def fit_code_gaussian(self) -> None:
        """Mean and Cholesky factor of the covariance of f(x) over (up to 4096) training points."""
        codes = self.net.encoder(self.train_z[:4096])
        mean = codes.mean(0)
        c = codes - mean
        cov = c.T @ c / max(len(codes) - 1, 1) + 1e-6 * torch.eye(self.latent_dim, device=self.device)
        self.net.code_mean.copy_(mean)
        self.net.code_chol.copy_(torch.linalg.cholesky(cov))

    # -- training -------------------------------------------------------------------------------
    def train_step(self, batch):
        x = batch.to(self.device)
        x_hat = self.net.decoder(self.net.encoder(x))
        loss = ((x - x_hat) ** 2).sum(-1).mean()  # squared error per point, standardised units
        opt = self.optimizers[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.steps += 1
        if self.steps == 1 or self.steps % self.config.refit_every == 0:
            self.fit_code_gaussian()
        return {"loss": float(loss.detach())}

    def _sample_z(self, n, generator):
        return self.decode(self.prior_sample_latent(n, generator))

    def views(self, points=None, n_codes: int = 600, **kw):
        """Codes, the fitted Gaussian, decoder manifold, reconstructions (see `latent_views`)."""
        with torch.no_grad():
            return latent_views(self, points=points, n_codes=n_codes, prior=self.latent_gaussian())


# ---------------------------------------------------------------------------------------------
# Pictures of a latent space, shared by the autoencoder and the VAE
# ---------------------------------------------------------------------------------------------


def _mixture_on_grid(axes: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """1/n sum_i N(z; mean_i, diag std_i^2) on the product grid of `axes` (1 or 2 of them).

    A diagonal Gaussian factorises over dimensions, so on a product grid the 2D mixture is one matrix
    product: q[b, a] = 1/n sum_i N(a; m_i0, s_i0) N(b; m_i1, s_i1). Returns [g] or [g_y, g_x].
    """
    f = [
        np.exp(-0.5 * ((ax[None, :] - mean[:, j : j + 1]) / std[:, j : j + 1]) ** 2)
        / (std[:, j : j + 1] * np.sqrt(2 * np.pi))
        for j, ax in enumerate(axes)
    ]  # each [n, g]
    if len(f) == 1:
        return f[0].mean(0)
    return f[1].T @ f[0] / len(mean)


def latent_views(
    model,
    points=None,
    n_codes: int = 600,
    prior=None,
    n_lines: int = 11,
    grid: int = 48,
    prior_log_density=None,
) -> dict:
    """Everything a latent-space page draws, as numpy arrays.

    Data-space arrays are in data coordinates; latent arrays in latent units.
      data [n, 2], codes [n, d], code_std [n, d] or None    a fixed subset of the training points and Q(z|x)
      recon [n, 2]                                           x_hat = decoder mean at mu(x), for arrows x -> x_hat
      ellipse_x [m, 2], ellipse_mu [m, d], ellipse_std       posteriors of a few selected points (`points`, data coords)
      manifold_lines: list of {"axis", "value", "x" [p, 2]}  decoded latent grid lines (d = 2) or the curve (d = 1)
      aggregate: {"axes", "q", "prior"}                      aggregate posterior and prior (the AE's fitted Gaussian) on a latent grid
    `prior` = (mean, cov) places the grids; `prior_log_density(z [m, d] tensor) -> [m]` gives the prior's
    density on the grid where it is not that Gaussian (the VampPrior).
    """
    d = model.latent_dim
    dev = model.device
    z_all = model.train_z
    idx = torch.linspace(
        0, len(z_all) - 1, min(n_codes, len(z_all)), device=dev
    ).long()  # a fixed spread of points
    zx = z_all[idx]
    mu, sigma = model.encode(zx)
    recon = model.decode(mu)
    mu_np = mu.cpu().double().numpy()
    std_np = None if sigma is None else sigma.cpu().double().numpy()
    pmean, pcov = (
        (np.zeros(d), np.eye(d))
        if prior is None
        else (np.asarray(prior[0], float), np.asarray(prior[1], float))
    )
    pstd = np.sqrt(np.clip(np.diag(pcov), 1e-12, None))

    # posteriors of a few points: the ones asked for, else five spread over the data
    if points is None:
        sel = zx[torch.linspace(0, len(zx) - 1, 5, device=dev).long()]
    else:
        sel = model.to_z(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    emu, esig = model.encode(sel)

    # the decoder manifold: latent lines through the prior's bulk (+-2.5 std), decoded
    lines = []
    t = np.linspace(-2.5, 2.5, 80)
    if d == 1:
        zs = pmean[0] + pstd[0] * t
        xs = model.to_x(model.decode(torch.as_tensor(zs, dtype=torch.float32, device=dev)[:, None]))
        lines.append({"axis": 0, "value": 0.0, "z": zs, "x": xs})
    else:
        vals = np.linspace(-2.5, 2.5, n_lines)
        batch = []
        for axis in (0, 1):
            for v in vals:
                u = (
                    np.stack([t, np.full_like(t, v)], 1)
                    if axis == 0
                    else np.stack([np.full_like(t, v), t], 1)
                )
                batch.append(pmean + u * pstd)
        zs = np.concatenate(batch)
        xs = model.to_x(model.decode(torch.as_tensor(zs, dtype=torch.float32, device=dev)))
        for i, (axis, v) in enumerate([(a, v) for a in (0, 1) for v in vals]):
            lines.append(
                {
                    "axis": axis,
                    "value": float(pmean[1 - axis] + v * pstd[1 - axis]),
                    "x": xs[i * len(t) : (i + 1) * len(t)],
                }
            )

    # aggregate posterior q(z) = 1/n sum_i Q(z|x_i) against the prior, on a latent grid
    lo = np.minimum(pmean - 3.5 * pstd, mu_np.min(0) - 0.5)
    hi = np.maximum(pmean + 3.5 * pstd, mu_np.max(0) + 0.5)
    g = 200 if d == 1 else grid
    axes = [np.linspace(lo[j], hi[j], g) for j in range(d)]
    pts = axes[0][:, None] if d == 1 else np.stack([a.ravel() for a in np.meshgrid(axes[0], axes[1])], 1)
    # a deterministic code has no spread; give it a small kernel (2 % of the window) so it can be drawn
    kern = np.full_like(mu_np, 0.02 * float(np.max(hi - lo))) if std_np is None else std_np
    q = _mixture_on_grid(axes, mu_np, kern)
    if prior_log_density is not None:
        prior_d = np.exp(prior_log_density(torch.as_tensor(pts, dtype=torch.float32, device=dev)))
    else:
        diff = (pts - pmean) @ np.linalg.inv(pcov)
        prior_d = np.exp(-0.5 * (diff * (pts - pmean)).sum(1)) / np.sqrt(
            (2 * np.pi) ** d * np.linalg.det(pcov)
        )
    shape = (g,) if d == 1 else (g, g)

    return {
        "latent_dim": d,
        "data": model.to_x(zx),
        "codes": mu_np,
        "code_std": std_np,
        "recon": model.to_x(recon),
        "ellipse_x": model.to_x(sel),
        "ellipse_mu": emu.cpu().double().numpy(),
        "ellipse_std": None if esig is None else esig.cpu().double().numpy(),
        "manifold_lines": lines,
        "aggregate": {"axes": list(axes), "q": q, "prior": prior_d.reshape(shape)},
        "prior_mean": pmean,
        "prior_cov": pcov,
    }
