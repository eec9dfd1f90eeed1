"""Diffusion and score models at a budget: quality after 15 s on moons and 60 s on 25gaussians, and samplers timed.

    python bench/diffusion.py                 # the full table (about 6 minutes on 2 busy cores)
    python bench/diffusion.py --scale 0.2     # budgets scaled down, for a quick look

Prints markdown tables: one row per (model, dataset) with energy distance beside its noise floor
(two true samples of the same size) and the unbiased U-statistic (no floor: 0 on average for a perfect model), blur gap, modes / high-quality fraction; then, for the moons
DDPM, energy distance, blur gap and seconds per 1000 samples for each sampler and step count.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab.data import make_dataset  # noqa: E402
from lab.diffusion import sampler_sweep  # noqa: E402
from lab.metrics import Evaluator, energy_distance, energy_distance_unbiased  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="ddpm,score")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the 15 s / 60 s budgets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-eval", type=int, default=2500)
    p.add_argument(
        "--draws",
        type=int,
        default=6,
        help="sample / true draws averaged in the ed_mean / floor_mean columns and the sweep",
    )
    p.add_argument("--steps", default="5,10,20,50,100,250,1000", help="sampler step counts for the sweep")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    print(
        f"# diffusion bench: {os.cpu_count()} cores, 1 torch thread, {time.strftime('%Y-%m-%d %H:%M')}, budgets x{a.scale:g}\n"
    )
    cols = [
        "model",
        "data",
        "steps",
        "train_s",
        "energy_distance",
        "floor",
        f"ed_mean{a.draws}",
        f"floor_mean{a.draws}",
        f"ed_unbiased_mean{a.draws}",
        "blur_gap",
        "modes",
        "high_quality",
        "sample_s_per_1000",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    moons_ddpm = None
    for data, params, seconds in [("moons", {"noise": 0.05}, 15.0), ("25gaussians", {}, 60.0)]:
        ds = make_dataset(data, **params)
        for key in a.models.split(","):
            run = fit(RunSpec(key, ds, None, seed=a.seed, max_seconds=seconds * a.scale))
            m = Evaluator(ds, n=a.n_eval, seed=a.seed + 1000)(run.model, n_mode_samples=a.n_eval)
            # one draw of 2500 moves by about the floor itself (which moon gets how many points): average several
            # a fresh true sample per draw: one reference of 2500 carries its own noise (which moon got how
            # many points) of the order of the targets, and averaging over one fixed reference keeps it
            truths = [ds.sample(a.n_eval, a.seed + 1001 + r) for r in range(a.draws)]
            xs = [run.model.sample(a.n_eval, a.seed + 500 + r).double().numpy() for r in range(a.draws)]
            ed = [energy_distance(x, t) for x, t in zip(xs, truths)]
            edu = [energy_distance_unbiased(x, t) for x, t in zip(xs, truths)]
            fl = [energy_distance(ds.sample(a.n_eval, a.seed + 600 + r), t) for r, t in enumerate(truths)]
            if key == "ddpm" and data == "moons":
                moons_ddpm = run.model
            r = {
                "model": key,
                "data": data,
                "steps": run.step,
                "train_s": run.train_seconds,
                "energy_distance": m["energy_distance"],
                "floor": m["energy_distance_floor"],
                f"ed_mean{a.draws}": float(np.mean(ed)),
                f"floor_mean{a.draws}": float(np.mean(fl)),
                f"ed_unbiased_mean{a.draws}": float(np.mean(edu)),
                "blur_gap": m.get("blur_gap"),
                "modes": f"{m['modes']}/{m['n_modes']}" if "modes" in m else None,
                "high_quality": m.get("high_quality"),
                "sample_s_per_1000": m["sample_seconds_per_1000"],
            }
            print("| " + " | ".join(fmt(r[c]) for c in cols) + " |", flush=True)
    if moons_ddpm is None:
        return
    ds = make_dataset("moons", noise=0.05)
    truths = [ds.sample(a.n_eval, a.seed + 1001 + r) for r in range(a.draws)]
    truth = truths[0]
    floor = float(
        np.mean([energy_distance(ds.sample(a.n_eval, a.seed + 600 + r), t) for r, t in enumerate(truths)])
    )
    steps = [int(s) for s in a.steps.split(",")]
    sweep = sampler_sweep(moons_ddpm, truths, steps=steps, n=a.n_eval, seed=a.seed + 7, repeats=a.draws)
    print(
        f"\n## moons DDPM: samplers (T = {moons_ddpm.config.T}, {a.n_eval} samples; energy distance and its floor "
        f"are means over {a.draws} draws, each against its own fresh true sample; floor {floor:.4g}; blur gap from the first draw)\n"
    )
    print("| sampler | steps | energy_distance | ed_unbiased | blur_gap | s_per_1000 |")
    print("|---|---|---|---|---|---|")
    tlp = float(np.mean(ds.log_prob(truth)))
    for sampler, rows in sweep.items():
        for k, e, eu, s in zip(rows["steps"], rows["energy"], rows["energy_unbiased"], rows["seconds"]):
            x = moons_ddpm.sample_with(a.n_eval, sampler, k, generator=a.seed + 7).double().numpy()
            blur = tlp - float(np.mean(ds.log_prob(x)))
            print(f"| {sampler} | {k} | {e:.4g} | {eu:.3g} | {blur:.3g} | {s:.4g} |", flush=True)


if __name__ == "__main__":
    main()
