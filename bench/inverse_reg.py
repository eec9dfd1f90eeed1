"""Inverse problems, regularised: latent inversion's prior weight λ against the answers' spread, error and manifold.

    python bench/inverse_reg.py --data moons --c 0.5 --models vae,gan,ae --steps 1500 --seeds 0-2

Trains each latent family (GAN, VAE, AE) per seed for a wall-clock budget, then answers the inverse
problem "x1 = c, what is x2?" by latent inversion at each λ (`--set` other InverseConfig fields), and
prints per family and λ over the seeds (mean ± standard error, worst seed): the answers' spread (std
of x2; the true conditional's beside it), the energy distance of x2 to the true conditional (and its
floor), the fraction of answer points off the data manifold (true density below the level that holds
99 % of the data) and the mean residual |x1 - c|.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab import inverse as I  # noqa: E402
from lab.base import ConfigError, parse_sets  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402


def seeds_of(spec: str) -> list[int]:
    if "-" in spec:
        a, b = spec.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in spec.split(",")]


def fmt(v: list[float], worst=max) -> str:
    a = np.asarray(v, dtype=float)
    se = a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0
    return f"{a.mean():.3f} ± {se:.3f} (worst {worst(a):.3f})"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="moons")
    p.add_argument("--c", type=float, default=0.5)
    p.add_argument("--dim", type=int, default=0)
    p.add_argument("--models", default="vae,gan,ae")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument(
        "--steps", type=int, default=0, help="a budget in steps instead of --seconds (a busy machine)"
    )
    p.add_argument("--seeds", default="0-2")
    p.add_argument("--lambdas", default="0,0.1,1,10")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--set", nargs="*", default=[], help="InverseConfig fields, e.g. steps=500")
    a = p.parse_args(argv)
    try:
        base = parse_sets(I.InverseConfig, a.set)
    except ConfigError as e:
        sys.exit(f"bench/inverse_reg.py: {e}")
    torch.set_num_threads(1)
    ds = make_dataset(a.data)
    truth = I.true_conditional(ds, a.dim, a.c)
    lams = [float(v) for v in a.lambdas.split(",")]
    print(
        f"# Latent inversion on {a.data}, observe x{a.dim + 1} = {a.c:g} ({len(I.solutions(truth))} true "
        f"solutions); {f'{a.steps} steps' if a.steps else f'{a.seconds:g} s'} of training per run, seeds "
        f"{a.seeds}, {a.n} answers; "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print(f"true conditional's spread (std of x{2 - a.dim}): {I.conditional_spread(truth):.3f}\n")
    print(
        "| model | λ | spread | energy distance (floor) | off manifold | residual |x1 - c| | z radius |\n"
        "|---|---|---|---|---|---|---|"
    )
    for key in a.models.split(","):
        rows: dict[float, list[dict]] = {lam: [] for lam in lams}
        for seed in seeds_of(a.seeds):
            budget = {"max_steps": a.steps} if a.steps else {"max_seconds": a.seconds}
            model = fit(RunSpec(key, ds, seed=seed, **budget)).model
            for lam in lams:
                solver = I.InverseConfig(**{**base.to_dict(), "prior_weight": lam})
                ans = I.solve(model, a.dim, a.c, truth, "latent", n=a.n, seed=seed, solver=solver)
                if ans.error:
                    sys.exit(f"{key} seed {seed} λ={lam:g}: {ans.error}")
                s = I.score(ans, truth, a.dim, a.c, seed=seed, dataset=ds)
                rows[lam].append({**s, **ans.info})
        for lam, r in rows.items():
            col = {k: [x[k] for x in r] for k in r[0] if isinstance(r[0][k], (int, float))}
            print(
                f"| {key} | {lam:g} | {fmt(col['spread'], min)} | {fmt(col['energy_distance'])} "
                f"({np.mean(col['energy_distance_floor']):.4f}) | {fmt(col['off_manifold'])} | "
                f"{fmt(col['residual'])} | {np.mean(col['z_radius']):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
