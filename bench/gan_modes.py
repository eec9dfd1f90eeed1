"""GAN mode coverage: modes captured and high-quality fraction per loss, with and without a remedy.

    python bench/gan_modes.py                                   # the defaults, 5 seeds x 60 s, both datasets
    python bench/gan_modes.py --losses all --remedy both --seeds 2 --seconds 30
    python bench/gan_modes.py --losses all --remedy both --remedy-field r1_gamma --other-seeds 1 --other-seconds 30

The remedy is one config field switched on and off: PacGAN packing (`pack`, off = 1) by default, or
the R1 penalty (`r1_gamma`, off = 0) or the EMA generator (`ema`, off = 0); on is the default
config's value when it is on, else REMEDIES' value. Each run trains the default config (only `loss`
and the remedy field changed, plus any --set; the WGAN losses use their papers' k = 5 critic steps per
generator step unless --set d_steps=... is given) on 20,000 points for a wall-clock budget, then draws
2500 samples. Rows other than the default config (another loss, or the remedy flipped) may get a
smaller budget (--other-seeds, --other-seconds) so a whole table fits in minutes. A sample is high
quality when it lies within 3 std of its nearest mode; a mode is captured when some high-quality
sample is nearest to it (VEEGAN / PacGAN's protocol). Literature (PacGAN4, ~400k iterations):
7.8/8 modes, 95.9 % high quality on the ring; 24.8/25, 93.6 % on the grid.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab.base import make_config  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.gan import LOSSES, GANConfig  # noqa: E402
from lab.metrics import Evaluator  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402

PAPER_D_STEPS = {"wgan": 5, "wgan-gp": 5}  # n_critic in Arjovsky et al. 2017 and Gulrajani et al. 2017
REMEDIES = {
    "pack": (2, 1),
    "r1_gamma": (0.1, 0.0),
    "ema": (0.99, 0.0),
}  # field: (on when the default is off, off)


def run_one(data: str, cfg: GANConfig, seed: int, seconds: float, n_samples: int) -> dict:
    ds = make_dataset(data)
    run = fit(RunSpec("gan", ds, cfg, seed=seed, max_seconds=seconds))
    m = Evaluator(ds, n=1000, seed=seed + 1000)(run.model, timing=False, n_mode_samples=n_samples)
    return {
        "steps": run.step,
        "train_s": run.train_seconds,
        "modes": m["modes"],
        "n_modes": m["n_modes"],
        "hq": m["high_quality"],
        "status": run.status,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="8gaussians,25gaussians")
    p.add_argument(
        "--losses", default="default", help="comma list of losses, 'default' (the config's) or 'all'"
    )
    p.add_argument(
        "--remedy",
        default="default",
        choices=["default", "on", "off", "both"],
        help="the remedy field at the default config's value, on, off, or both",
    )
    p.add_argument(
        "--remedy-field",
        default="pack",
        choices=list(REMEDIES),
        help="which remedy: PacGAN packing, the R1 penalty or the EMA generator",
    )
    p.add_argument(
        "--remedy-value",
        "--pack",
        type=float,
        default=None,
        help="the remedy's value when on (default: the config's when on, else REMEDIES')",
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument(
        "--other-seeds",
        type=int,
        default=None,
        help="seeds for rows other than the default config (default: --seeds)",
    )
    p.add_argument(
        "--other-seconds",
        type=float,
        default=None,
        help="budget for rows other than the default config (default: --seconds)",
    )
    p.add_argument("--samples", type=int, default=2500)
    p.add_argument("--set", action="append", default=[], help="field=value for every run")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    sets = dict(s.split("=", 1) for s in a.set)
    base = make_config(GANConfig, sets)
    losses = [base.loss] if a.losses == "default" else LOSSES if a.losses == "all" else a.losses.split(",")
    field = a.remedy_field
    kind = type(getattr(base, field))
    on_default, off = REMEDIES[field]
    now = getattr(base, field)
    on = kind(a.remedy_value) if a.remedy_value is not None else now if now != off else on_default
    values = {"default": [now], "on": [on], "off": [off], "both": [on, off]}[a.remedy]
    other_seeds = a.seeds if a.other_seeds is None else a.other_seeds
    other_seconds = a.seconds if a.other_seconds is None else a.other_seconds

    print(
        f"# GAN modes: {a.seconds:g} s per run, seeds 0..{a.seeds - 1} for the default config; other rows (another loss or "
        f"{field} flipped): {other_seconds:g} s, seeds 0..{other_seeds - 1}. {a.samples} samples, {os.cpu_count()} cores, "
        f"torch threads {a.threads}, {time.strftime('%Y-%m-%d %H:%M')}; base config {dataclasses.asdict(base)}\n",
        flush=True,
    )
    print("| data | loss | pack | r1_gamma | ema | d_steps | seed | seconds | steps | modes | high quality |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    summary = []
    for data in a.datasets.split(","):
        for loss in losses:
            for value in values:
                k = (
                    base.d_steps
                    if "d_steps" in sets or loss == base.loss
                    else PAPER_D_STEPS.get(loss, base.d_steps)
                )
                cfg = dataclasses.replace(base, loss=loss, d_steps=k, **{field: value})
                default = loss == base.loss and value == now
                n_seeds, seconds = (a.seeds, a.seconds) if default else (other_seeds, other_seconds)
                rows = []
                for seed in range(n_seeds):
                    r = run_one(data, cfg, seed, seconds, a.samples)
                    rows.append(r)
                    print(
                        f"| {data} | {loss} | {cfg.pack} | {cfg.r1_gamma:g} | {cfg.ema:g} | {cfg.d_steps} | {seed} | {seconds:g} | {r['steps']} | "
                        f"{r['modes']}/{r['n_modes']} | {100 * r['hq']:.1f} % |",
                        flush=True,
                    )
                modes, hq = np.array([r["modes"] for r in rows]), np.array([r["hq"] for r in rows])
                full = sum(r["modes"] == r["n_modes"] for r in rows)
                summary.append(
                    f"| {data} | {loss} | {cfg.pack} | {cfg.r1_gamma:g} | {cfg.ema:g} | {cfg.d_steps} | {len(rows)} x {seconds:g} s | "
                    f"{np.mean([r['steps'] for r in rows]):.0f} | {modes.mean():.1f}/{rows[0]['n_modes']} (min {modes.min()}) | "
                    f"{full}/{len(rows)} | {100 * hq.mean():.1f} % (min {100 * hq.min():.1f} %) |"
                )
    print(
        "\n| data | loss | pack | r1_gamma | ema | d_steps | seeds x budget | mean steps | modes mean (min) | seeds with all modes | high quality mean (min) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(summary), flush=True)


if __name__ == "__main__":
    main()
