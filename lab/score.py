"""Score-based model (NCSN, Song & Ermon 2019): denoising score matching over a sigma ladder, annealed Langevin."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lab.base import Config, GenerativeModel, option
from lab.diffusion import (
    NoiseConditionalMLP,
    _energy,
    field_grid,
    gaussian_kl_to_standard,
    make_ema_pair,
    noised_empirical_score,
    throttled,
    warmup_ema_step,
)


@dataclass(frozen=True)
class ScoreConfig(Config):
    lr: float = option(3e-3, "learning rate (after the warm-up)", min=1e-5, max=1.0, log=True, live=True)
    batch_size: int = option(256, "points per training step", min=8, max=4096)
    noise_levels: str = option(
        "annealed",
        "a geometric ladder of sigmas (NCSN) or one small sigma with plain Langevin",
        choices=["annealed", "single"],
    )
    sigma_max: float = option(
        3.0,
        "largest noise std sigma_1 (standardised units; ~ the data's diameter)",
        min=0.01,
        max=50.0,
        log=True,
    )
    sigma_min: float = option(
        0.01,
        "smallest noise std sigma_L (the single sigma of the single-level variant)",
        min=1e-4,
        max=1.0,
        log=True,
    )
    n_levels: int = option(20, "sigmas in the geometric ladder", min=2, max=200)
    steps_per_level: int = option(
        5, "Langevin steps at each sigma (the single variant runs n_levels * this)", min=1, max=200, live=True
    )
    step_size: float = option(
        1.0, "Langevin step alpha_i = step_size * sigma_i^2", min=1e-4, max=2.0, log=True, live=True
    )
    denoise: bool = option(
        True, "a final Tweedie step x + sigma_L^2 s(x, sigma_L) (Jolicoeur-Martineau et al. 2021)", live=True
    )
    hidden: int = option(128, "hidden units per layer of the score network", min=16, max=1024)
    layers: int = option(3, "hidden layers of the score network", min=1, max=8)
    time_dim: int = option(64, "size of the sinusoidal embedding of the noise level", min=4, max=256)
    x_embedding: int = option(32, "sinusoidal features per coordinate of x (0: raw x only)", min=0, max=128)
    ema_decay: float = option(0.995, "EMA of the weights used for sampling (0: no EMA)", min=0.0, max=0.9999)
    warmup: int = option(100, "steps of linear learning-rate warm-up", min=0, max=10_000)


class ScoreModel(GenerativeModel):
    """Noise-conditional score network s_theta(x, sigma) ~ grad_x log p_sigma(x) (Song & Ermon 2019).

    p_sigma = p_data * N(0, sigma^2 I) for sigma on a geometric ladder sigma_1 > ... > sigma_L.
    Denoising score matching with lambda(sigma) = sigma^2:
      L = E_{sigma, x, eps} 1/2 |sigma s_theta(x + sigma eps, sigma) + eps|^2,
    and s_theta(x, sigma) = f_theta(x, sigma) / sigma (NCSNv2's output scaling, Song & Ermon 2020).
    The "single" variant trains and samples at sigma_L alone: plain Langevin started away from the
    data follows a score that was never trained in the low-density space between modes.
    """

    key = "score"
    title = "Score-based model (NCSN)"
    Config = ScoreConfig
    has_log_prob = False
    density_kind = "none"
    early_stopping = False

    def _build(self):
        cfg = self.config
        if cfg.noise_levels == "single":
            self.sigmas = torch.tensor([cfg.sigma_min], dtype=torch.float64)
        else:
            self.sigmas = torch.exp(
                torch.linspace(
                    math.log(max(cfg.sigma_max, cfg.sigma_min)),
                    math.log(cfg.sigma_min),
                    cfg.n_levels,
                    dtype=torch.float64,
                )
            )
        self.net = make_ema_pair(NoiseConditionalMLP(cfg.hidden, cfg.layers, cfg.time_dim, cfg.x_embedding))
        self.optimizers = [torch.optim.Adam(self.net["model"].parameters(), lr=cfg.lr, fused=True)]
        self.step_count = 0
        self._true_cache: dict = {}

    def _condition(self, sigma: torch.Tensor) -> torch.Tensor:
        """log sigma mapped to [0, 1000] (sigma_min -> 0, sigma_max -> 1000), the embedding's input."""
        lo, hi = (
            math.log(self.config.sigma_min),
            math.log(max(self.config.sigma_max, self.config.sigma_min * 1.0001)),
        )
        return 1000.0 * (sigma.log() - lo) / (hi - lo)

    def score(self, x: torch.Tensor, sigma: torch.Tensor, ema: bool = True) -> torch.Tensor:
        """s_theta(x, sigma) [n, 2] in z; sigma [n]. The EMA weights when ema is True."""
        net = self.net["ema"] if ema and self.config.ema_decay > 0 else self.net["model"]
        sigma = sigma.float()
        return net(x, self._condition(sigma)) / sigma[:, None]

    def score_at_levels(self):
        """(x, i) -> s_theta(x, sigma_i) with the EMA weights, for Langevin's steps: each level's embedding goes
        through the network's first layer once (NoiseConditionalMLP.at_levels)."""
        net = self.net["ema"] if self.config.ema_decay > 0 else self.net["model"]
        f_at = net.at_levels(self._condition(self.sigmas.float().to(self.device)))
        sigmas = self.sigmas.float().tolist()
        return lambda x, i: f_at(x, i) / sigmas[i]

    def train_step(self, batch):
        n = len(batch)
        idx = torch.randint(0, len(self.sigmas), (n,), generator=self.gen, device=self.device)
        sigma = self.sigmas.to(self.device)[idx].float()
        eps = torch.randn(n, 2, generator=self.gen, device=self.device)
        # sigma * s_theta(x~, sigma) = f_theta(x~, sigma) should equal -eps
        f = self.net["model"](batch + sigma[:, None] * eps, self._condition(sigma))
        loss = 0.5 * ((f + eps) ** 2).sum(1).mean()
        warmup_ema_step(self, loss)
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def langevin(
        self, n: int, generator: torch.Generator, record: bool = False, known: tuple[int, float] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) in z.

        x_0 ~ N(0, sigma_1^2 I) (N(0, I), the data's scale, for the single variant); for each sigma_i,
        alpha_i = step_size * sigma_i^2, repeat steps_per_level times:
          x <- x + alpha_i / 2 s_theta(x, sigma_i) + sqrt(alpha_i) z.
        Then optionally x <- x + sigma_L^2 s_theta(x, sigma_L) (Tweedie's denoising step).
        known = (dim, value_z): inpainting as in Song & Ermon's Algorithm 2: before every step the
        known coordinate is set to value + sigma_i z, a draw of the noised observation.
        Returns (x [n, 2], [x after each level] if record).
        """
        cfg = self.config
        single = cfg.noise_levels == "single"
        x = torch.randn(n, 2, generator=generator, device=self.device) * (
            1.0 if single else float(self.sigmas[0])
        )
        path = [x.clone()] if record else []
        steps = cfg.steps_per_level * (cfg.n_levels if single else 1)
        sigmas = self.sigmas.tolist()
        score_at = self.score_at_levels()
        for level, sigma in enumerate(sigmas):
            alpha = cfg.step_size * sigma**2
            for _ in range(steps):
                if known is not None:
                    x[:, known[0]] = known[1] + sigma * torch.randn(
                        n, generator=generator, device=self.device
                    )
                z = torch.randn(n, 2, generator=generator, device=self.device)
                x = x + 0.5 * alpha * score_at(x, level) + math.sqrt(alpha) * z
            if record:
                path.append(x.clone())
        if cfg.denoise:
            if known is not None:
                x[:, known[0]] = known[1] + sigmas[-1] * torch.randn(
                    n, generator=generator, device=self.device
                )
            x = x + sigmas[-1] ** 2 * score_at(x, len(sigmas) - 1)
            if record:
                path.append(x.clone())
        if known is not None:
            x[:, known[0]] = known[1]
        return x, path

    def _sample_z(self, n, generator):
        return self.langevin(n, generator)[0]

    def inpaint(self, dim: int, value: float, n: int, generator=None) -> torch.Tensor:
        """Samples [n, 2] (data coordinates) of p(x_other | x_dim = value) by annealed Langevin with the
        known coordinate replaced by value + sigma_i z at every step (Song & Ermon 2019, Algorithm 2).

        Approximation: the unknown coordinate follows the joint score at a point whose known
        coordinate is a fresh noisy draw, not the conditional score of p_sigma(x_other | y_sigma);
        the two agree as sigma -> 0, and the error is largest where the condition is unlikely.
        """
        if dim not in (0, 1):
            raise ValueError(f"dim must be 0 or 1, got {dim}")
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        v = (float(value) - float(self.scaler.mean[dim])) / float(self.scaler.std[dim])
        x = self.scaler.to_x(self.langevin(int(n), generator, known=(dim, v))[0].float().cpu())
        x[:, dim] = float(value)
        return x

    # -- views ----------------------------------------------------------------------------------------
    def views(self, n_forward: int = 500, n_particles: int = 48, grid: int = 20, **kw) -> dict:
        """Noised data along the ladder, x at sigma_1 against N(0, sigma_1^2 I), Langevin paths, score field (in x)."""
        g = torch.Generator(device=self.device).manual_seed(self.seed + 4242)
        x0 = self.train_z[torch.randint(0, len(self.train_z), (n_forward,), generator=g, device=self.device)]
        eps = torch.randn(n_forward, 2, generator=g, device=self.device)
        sig = self.sigmas.tolist()[::-1]  # small to large, like t = 0 .. T
        frames = np.stack([self.to_x(x0)] + [self.to_x(x0 + s * eps) for s in sig])
        top = sig[-1]
        x_top = x0 + top * eps
        prior = top * torch.randn(n_forward, 2, generator=g, device=self.device)
        paths = throttled(
            self,
            f"paths{n_particles}",
            lambda: np.stack([self.to_x(p) for p in self.langevin(n_particles, g, record=True)[1]], 1),
        )
        return {
            "kind": "score",
            "forward": {
                "points": frames,
                "labels": ["data"] + [f"sigma = {s:.3g}" for s in sig],
                "signal": [1.0] + [1.0 / math.sqrt(1 + s * s) for s in sig],
            },
            "prior": {
                # the prior is N(0, sigma_1^2 I): compare x / sigma_1 with N(0, I)
                "x_T": self.to_x(x_top),
                "prior": self.to_x(prior),
                "kl_gaussian": gaussian_kl_to_standard(x_top / top),
                "energy_distance": _energy(x_top / top, prior / top),
                "energy_floor": _energy(*torch.randn(2, n_forward, 2, generator=g, device=self.device)),
                "signal": 1.0 / math.sqrt(1 + top * top),
            },
            "trajectories": {"paths": paths, "time": np.linspace(1.0, 0.0, paths.shape[1])},
            "score_field": throttled(self, f"field{grid}", lambda: self._score_field(grid)),
        }

    def _score_field(self, size: int) -> dict:
        gx, gy, pts = field_grid(self, size)
        L = len(self.sigmas)
        idx = sorted(
            {int(round(f * (L - 1))) for f in (1.0, 0.85, 0.65, 0.4, 0.0)}, reverse=True
        )  # small sigma first
        sigmas = [float(self.sigmas[i]) for i in idx]
        key = (size, tuple(sigmas))
        if key not in self._true_cache:
            centres = self.train_z[:4000]
            self._true_cache = {key: [noised_empirical_score(pts, centres, 1.0, s).cpu() for s in sigmas]}
        std = torch.as_tensor(self.scaler.std, dtype=torch.float32)
        model, truth, error, labels = [], [], [], []
        for s, s_true in zip(sigmas, self._true_cache[key]):
            with torch.no_grad():
                sm = self.score(pts, torch.full((len(pts),), s, device=self.device)).cpu()
            error.append((s * (sm - s_true).norm(dim=1)).reshape(size, size).numpy())
            model.append((sm / std).reshape(size, size, 2).numpy())
            truth.append((s_true / std).reshape(size, size, 2).numpy())
            labels.append(f"sigma = {s:.3g}")
        return {
            "x": gx,
            "y": gy,
            "labels": labels,
            "model": np.stack(model),
            "true": np.stack(truth),
            "error": np.stack(error),
        }
