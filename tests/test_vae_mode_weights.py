"""The VAE's mass per mode (issue 18): with a VampPrior of uniform weights, each moon's share of the samples
is the share of pseudo-inputs that landed on it at initialisation; learned weights (the default) move it
back to the data's."""

import numpy as np
import pytest
import torch

from lab.base import make_model
from lab.data import make_dataset

T = np.linspace(0, np.pi, 400)
OUTER = np.stack([np.cos(T), np.sin(T)], 1)  # the upper moon's curve, before noise
INNER = np.stack([1 - np.cos(T), 0.5 - np.sin(T)], 1)


def on_upper_moon(x: np.ndarray) -> np.ndarray:
    """[n] bool: the nearest curve is the upper moon's."""
    d_outer = ((x[:, None] - OUTER[None]) ** 2).sum(-1).min(1)
    d_inner = ((x[:, None] - INNER[None]) ** 2).sum(-1).min(1)
    return d_outer < d_inner


def upper_share_after_training(prior_weights: str, steps: int = 300) -> float:
    """Train a small VAE whose 16 pseudo-inputs start 12 on the upper moon and 4 on the lower one; return
    the upper moon's share of 4000 samples (the data's is 1/2)."""
    points = make_dataset("moons").sample(4000, seed=0)
    model = make_model("vae", points, {"prior_weights": prior_weights, "pseudo_inputs": 16}, seed=0)
    upper = on_upper_moon(model.scaler.to_x(model.train_z).numpy())
    z = model.train_z
    with torch.no_grad():
        model.net.pseudo.copy_(torch.cat([z[upper][:12], z[~upper][:4]]))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        model.train_step(z[torch.randint(0, len(z), (256,), generator=g)])
    x = model.sample(4000, torch.Generator().manual_seed(1)).numpy()
    return float(on_upper_moon(x).mean())


def test_uniform_weights_keep_the_pseudo_inputs_split_learned_weights_fix_it():
    assert make_model("vae", make_dataset("moons").sample(500, seed=0)).config.prior_weights == "learned"
    # 12 of 16 pseudo-inputs start on the upper moon: uniform weights leave it 0.62 of the mass after 300 steps
    assert upper_share_after_training("uniform") > 0.6
    assert upper_share_after_training("learned") == pytest.approx(0.5, abs=0.05)
