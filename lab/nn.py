"""Small shared blocks: an MLP and a sinusoidal time/noise-level embedding."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
}


class MLP(nn.Sequential):
    """in_dim -> [hidden] * layers -> out_dim, with the named activation between linear layers."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, layers: int = 3, act: str = "silu"):
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), ACTIVATIONS[act]()]
            d = hidden
        mods.append(nn.Linear(d, out_dim))
        super().__init__(*mods)


@functools.lru_cache(maxsize=32)
def sinusoidal_frequencies(half: int, max_period: float, device: torch.device) -> torch.Tensor:
    # the same few vectors on every call; a sampler embeds 50-1000 times per picture
    return torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=device) / half)


def sinusoidal_embedding(t: torch.Tensor, dim: int = 32, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer-style embedding of a scalar per row: t [n] -> [n, dim] (Vaswani et al. 2017).

    Diffusion models feed the step t (or log sigma) through this before the network.
    """
    freqs = sinusoidal_frequencies(dim // 2, max_period, t.device)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb
