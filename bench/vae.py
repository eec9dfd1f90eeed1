"""VAE bench: the IWAE bound's tightness over K, beta's KL term, the decoder variance's blur, and mode weights.

    python bench/vae.py --data moons --seconds 15 --betas 0.5,1,4
    python bench/vae.py --only variance --variance-steps 600 --seeds 0-2
    python bench/vae.py --only modes --seconds 15 --seeds 0-4

k: trains the default VAE for a wall-clock budget, prints the bound (nats, data coordinates) at
K = 1 (the ELBO), 16, 64 (the live page), 256 (the default `iwae_k`, the fit table), 1024, 4096
against the true entropy. beta: one run of --beta-steps steps per beta with its final reconstruction /
KL split (beta large: KL -> 0, the posterior collapses onto the prior and the decoder ignores z).
variance: the lecture's blur cause, the decoder variance, per seed at a fixed number of steps: fixed
sigma = 1 (the plain MSE loss), fixed sigma = decoder_std (0.1), one learned sigma per dimension
(global) and sigma(z) (learned), each with the standard prior and the VampPrior (the other cause,
prior holes); the blur gap of samples and of decoder means g(z) (no noise), the energy distance over
its floor, KL to truth, the ELBO gap and the final sigma. modes: issue 18's mode weights, the default
VAE for --seconds on --seeds: energy distance over its floor, the upper moon's share of samples.
Every table: mean ± standard error over seeds and the worst seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab.base import make_config, parse_sets  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.metrics import Evaluator, energy_distance  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402
from lab.vae import VAEConfig  # noqa: E402

VARIANCES = [  # (label, config): the MSE case twice, then the two learned variances
    ("fixed σ = 1 (MSE)", {"decoder_variance": "fixed", "decoder_std": 1.0}),
    ("fixed σ = 0.1", {"decoder_variance": "fixed", "decoder_std": 0.1}),
    ("global learned σ", {"decoder_variance": "global"}),
    ("learned σ(z)", {"decoder_variance": "learned"}),
]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="moons")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--betas", default="0.5,1,4,16")
    p.add_argument("--beta-steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default="0-2", help="seeds of the variance and modes tables")
    p.add_argument("--variance-steps", type=int, default=600)
    p.add_argument(
        "--modes-steps",
        type=int,
        default=0,
        help="the modes table's budget in steps instead of --seconds (a busy machine does fewer steps per second)",
    )
    p.add_argument("--modes-set", nargs="*", default=[], help="field=value changes to the modes table's VAE")
    p.add_argument("--priors", default="vamp", help="priors of the variance table")
    p.add_argument("--only", default="k,beta,variance,modes", help="tables to print, comma-separated")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    ds = make_dataset(a.data)
    x = ds.sample(a.n_eval, a.seed + 1000)
    entropy = float(-ds.log_prob(x).mean())
    only = a.only.split(",")
    if "k" in only:
        k_table(ds, x, entropy, a)
    if "beta" in only:
        beta_table(ds, x, a)
    if "variance" in only:
        variance_table(ds, a)
    if "modes" in only:
        modes_table(ds, a)


def seeds_of(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in spec.split(",")]


def stat(v, worst=max, f=".3f") -> str:
    """mean ± standard error (worst seed)."""
    v = np.asarray(v, dtype=float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{v.mean():{f}} ± {se:{f}} (worst {worst(v):{f}})"


def upper_share(s: np.ndarray) -> float:
    """Share of points nearer the upper moon (cos t, sin t) than the lower (1 - cos t, 0.5 - sin t)."""
    t = np.linspace(0, np.pi, 400)
    up = np.stack([np.cos(t), np.sin(t)], 1)
    lo = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
    d_up = np.linalg.norm(s[:, None] - up[None], axis=2).min(1)
    d_lo = np.linalg.norm(s[:, None] - lo[None], axis=2).min(1)
    return float(np.mean(d_up < d_lo))


def variance_table(ds, a) -> None:
    print(
        f"\n# Decoder variance on {a.data}: {a.variance_steps} steps per run, seeds {a.seeds} "
        f"({time.strftime('%Y-%m-%d %H:%M')})\n"
    )
    print(
        "| prior | P(x|z) variance | blur gap (samples) | blur gap (decoder means g(z)) | energy distance / floor "
        "| KL to truth | ELBO gap | σ at the end (standardised) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for prior in a.priors.split(","):
        for label, cfg in VARIANCES:
            rows = []
            for seed in seeds_of(a.seeds):
                spec = RunSpec(
                    "vae",
                    ds,
                    make_config(VAEConfig, {**cfg, "prior": prior}),
                    seed=seed,
                    max_steps=a.variance_steps,
                    early_stopping=False,
                )
                r = fit(spec)
                m, ev = r.model, Evaluator(ds, n=2000, seed=seed + 1000)  # as bench/fit_table.py
                met = ev(m, timing=False)
                with (
                    torch.no_grad()
                ):  # the decoder's means at z ~ P(z): the blur of averaging, without the noise
                    z = m.prior_sample_latent(2000, torch.Generator().manual_seed(seed + 9))
                    mean, log_std = m.net.decode(z)
                g = m.to_x(mean)
                rows.append(
                    {
                        "blur": met["blur_gap"],
                        "blur_mean": float(ev.truth_lp.mean() - ds.log_prob(g).mean()),
                        "ed": met["energy_distance"] / ev.floor,
                        "kl": met["kl_to_truth"],
                        "gap": r.losses.last()["elbo_gap"],
                        "sigma": float(log_std.exp().mean()),
                    }
                )
            col = {k: [row[k] for row in rows] for k in rows[0]}
            print(
                f"| {prior} | {label} | {stat(col['blur'])} | {stat(col['blur_mean'])} | {stat(col['ed'], f='.2f')} "
                f"| {stat(col['kl'])} | {stat(col['gap'])} | {np.mean(col['sigma']):.3f} |",
                flush=True,
            )


def modes_table(ds, a) -> None:
    print(
        f"\n# Mode weights on {a.data}: the VAE {' '.join(a.modes_set) or '(defaults)'} for "
        f"{f'{a.modes_steps} steps' if a.modes_steps else f'{a.seconds:g} s'}, seeds {a.seeds} "
        f"({time.strftime('%Y-%m-%d %H:%M')}); target: energy distance within 3x its floor on every seed\n"
    )
    # the floor of one pair of 2000-point true samples varies by a factor 3 between draws: its mean over
    # 20 pairs is printed too, and the ratio to it ("/ mean floor") is the steadier yardstick
    mean_floor = float(
        np.mean([energy_distance(ds.sample(2000, 50 + i), ds.sample(2000, 90 + i)) for i in range(20)])
    )
    print(f"mean floor over 20 pairs of true samples: {mean_floor:.5f}\n")
    print(
        "| seed | steps | energy distance | / floor | / mean floor | upper moon's share (truth 0.5) | KL to truth "
        "| blur gap |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for seed in seeds_of(a.seeds):
        budget = (
            {"max_steps": a.modes_steps, "early_stopping": False}
            if a.modes_steps
            else {"max_seconds": a.seconds}
        )
        r = fit(RunSpec("vae", ds, parse_sets(VAEConfig, a.modes_set), seed=seed, **budget))
        ev = Evaluator(ds, n=2000, seed=seed + 1000)  # as bench/fit_table.py
        s = ev.draw(r.model)
        met = ev(r.model, timing=False, samples=s)
        row = {
            "steps": r.step,
            "ed": met["energy_distance"],
            "ratio": met["energy_distance"] / ev.floor,
            "ratio_mean": met["energy_distance"] / mean_floor,
            "upper": upper_share(s) if a.data == "moons" else float("nan"),
            "kl": met["kl_to_truth"],
            "blur": met["blur_gap"],
        }
        rows.append(row)
        print(
            f"| {seed} | {row['steps']} | {row['ed']:.5f} | {row['ratio']:.2f} | {row['ratio_mean']:.2f} "
            f"| {row['upper']:.3f} "
            f"| {row['kl']:.4f} | {row['blur']:.3f} |",
            flush=True,
        )
    col = {k: [row[k] for row in rows] for k in rows[0]}
    worst = int(np.argmax(col["ratio"]))
    print(
        f"| all | {np.mean(col['steps']):.0f} | {stat(col['ed'], f='.5f')} | {stat(col['ratio'], f='.2f')} "
        f"| {stat(col['ratio_mean'], f='.2f')} "
        f"| {stat(col['upper'], worst=lambda v: v[np.argmax(np.abs(v - 0.5))])} | {stat(col['kl'], f='.4f')} "
        f"| {stat(col['blur'])} |"
    )
    print(
        f"\nworst seed {seeds_of(a.seeds)[worst]} ({col['ratio'][worst]:.2f}x floor); within 3x on "
        f"{sum(v <= 3 for v in col['ratio'])} of {len(rows)} seeds (of the mean floor: "
        f"{sum(v <= 3 for v in col['ratio_mean'])} of {len(rows)})"
    )


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
