"""A toy family for the engine's tests: a Gaussian with a learned mean and switches that make it fail.

Registered as "toy" on import; trainer workers import it too when LAB_WORKER_IMPORTS names this module.
"""

import dataclasses
import math
import time

import torch

from lab.base import REGISTRY, Config, GenerativeModel, option


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    blow_up_at: int = option(0, "step at which the loss becomes nan (0: never)", min=0, max=10**9)
    raise_at: int = option(0, "step at which train_step raises (0: never)", min=0, max=10**9)
    drift_at: int = option(
        0, "step after which the mean is pulled away from the data (0: never)", min=0, max=10**9
    )
    sample_delay: float = option(0.0, "seconds of sleep per sample drawn (a slow sampler)", min=0.0, max=1.0)
    step_delay: float = option(0.0, "seconds of sleep per training step (a slow step)", min=0.0, max=1.0)
    density_delay: float = option(0.0, "seconds of sleep per density grid (a costly bound)", min=0.0, max=1.0)
    views_delay: float = option(
        0.0, "seconds of sleep per views() call (a costly family picture)", min=0.0, max=1.0
    )
    temperature: float = option(1.0, "sampling spread (a live field)", min=0.1, max=10.0, live=True)


class Toy(GenerativeModel):
    """N(mu, I) with a learned mu: small and fast."""

    key, title, Config, has_log_prob, density_kind = "toy", "Toy Gaussian", ToyConfig, True, "exact"

    def _build(self):
        self.net = torch.nn.Linear(1, 2)
        self.net.weight.requires_grad_(False)  # only the bias (the mean) is learned
        self.optimizers = [torch.optim.SGD(self.net.parameters(), lr=self.config.lr)]
        self.n = 0

    def _mean(self):
        return self.net.bias

    def train_step(self, batch):
        time.sleep(self.config.step_delay)
        self.n += 1
        if self.config.raise_at and self.n >= self.config.raise_at:
            raise RuntimeError("the toy broke on purpose")
        if self.config.drift_at and self.n > self.config.drift_at:
            batch = batch + 5.0
        loss = ((batch - self._mean()) ** 2).sum(1).mean()
        self.optimizers[0].zero_grad()
        loss.backward()
        self.optimizers[0].step()
        if self.config.blow_up_at and self.n >= self.config.blow_up_at:
            return {"loss": float("nan")}
        return {"loss": loss.item()}

    def _sample_z(self, n, generator):
        time.sleep(self.config.sample_delay * n)
        return self._mean().detach() + self.config.temperature * torch.randn(n, 2, generator=generator)

    def _log_prob_z(self, z):
        return -0.5 * ((z - self._mean()) ** 2).sum(1) - math.log(2 * math.pi)

    def display_log_prob(self, x):
        time.sleep(self.config.density_delay)
        return super().display_log_prob(x)

    def views(self, **kw):
        time.sleep(self.config.views_delay)
        return {"step": self.n}


REGISTRY["toy"] = "tests.toy_family:Toy"
