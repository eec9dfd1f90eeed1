"""VAE bench: how tight the IWAE bound is at each K, and what beta does to the KL term, on one dataset.

    python bench/vae.py --data moons --seconds 15 --betas 0.5,1,4

Trains the default VAE for a wall-clock budget, prints the bound (nats, data coordinates) at
K = 1 (the ELBO), 16, 64 (the live page), 256 (the default `iwae_k`, the fit table), 1024, 4096
against the true entropy; then one run of --beta-steps steps per beta with its final reconstruction / KL split
(beta large: KL -> 0, the posterior collapses onto the prior and the decoder ignores z).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab.base import make_config  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402
from lab.vae import VAEConfig  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="moons")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--betas", default="0.5,1,4,16")
    p.add_argument("--beta-steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-k", action="store_true", help="only the beta sweep")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    ds = make_dataset(a.data)
    x = ds.sample(a.n_eval, a.seed + 1000)
    entropy = float(-ds.log_prob(x).mean())
    if not a.skip_k:
        k_table(ds, x, entropy, a)
    beta_table(ds, x, a)


def k_table(ds, x, entropy, a) -> None:
    run = fit(RunSpec("vae", ds, VAEConfig(), seed=a.seed, max_seconds=a.seconds))
    m = run.model
    print(
        f"# VAE on {a.data}: {run.step} steps in {run.train_seconds:.1f} s ({time.strftime('%Y-%m-%d %H:%M')}); true entropy {entropy:.4f}\n"
    )
    print("| K | bound (mean log p) | bound - (-entropy) | seconds per 1000 points |")
    print("|---|---|---|---|")
    t0 = time.perf_counter()
    elbo = float(m.elbo(x).double().mean())
    print(f"| ELBO | {elbo:.4f} | {elbo + entropy:.4f} | {(time.perf_counter() - t0) * 1000 / len(x):.3f} |")
    for k in (1, 16, 64, 256, 1024, 4096):
        t0 = time.perf_counter()
        lp = float(m.log_prob_k(x, k).double().mean())
        print(
            f"| {k} | {lp:.4f} | {lp + entropy:.4f} | {(time.perf_counter() - t0) * 1000 / len(x):.3f} |",
            flush=True,
        )


def beta_table(ds, x, a) -> None:
    print("\n| beta | steps | reconstruction -E log P(x|z) | KL(Q || P) | -ELBO | IWAE NLL |")
    print("|---|---|---|---|---|---|")
    for beta in [float(b) for b in a.betas.split(",")]:
        r = fit(
            RunSpec(
                "vae",
                ds,
                make_config(VAEConfig, {"beta": beta}),
                seed=a.seed,
                max_steps=a.beta_steps,
                early_stopping=False,
            )
        )
        last = {
            k: float(np.mean([v[k] for _, v in r.losses.records[-20:]])) for k in ("recon", "kl", "neg_elbo")
        }
        nll = float(-r.model.log_prob(x[:1000]).double().mean())
        print(
            f"| {beta:g} | {r.step} | {last['recon']:.3f} | {last['kl']:.3f} | {last['neg_elbo']:.3f} | {nll:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
