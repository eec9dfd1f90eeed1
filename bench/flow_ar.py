"""Small-data generalisation: held-out NLL of flow and ar against the best classical fit (GMM by BIC, KDE by CV).

    python bench/flow_ar.py --n 300 --seconds 15 --datasets moons,8gaussians,rings,2spirals,checkerboard

Every model sees the same few hundred points (the runner holds 10 % of them out for early stopping)
and is scored on fresh points from the true density. The target: flow and ar within 0.05 nats of the
better of gmm and kde.
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
from lab.metrics import test_nll  # noqa: E402
from lab.runner import RunSpec, fit  # noqa: E402

MODELS = ["flow", "ar", "gmm", "kde"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="moons,8gaussians,rings,2spirals,checkerboard")
    p.add_argument("--n", type=int, default=300, help="points each model sees (train + validation)")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--seeds", default="0")
    p.add_argument("--n-test", type=int, default=5000)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# small data: {a.n} points, {a.seconds:g} s budget, held-out NLL (nats) on {a.n_test} fresh points, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| data | seed | " + " | ".join(MODELS) + " | best classical | flow - best | ar - best | flow / ar status |")
    print("|" + "---|" * (len(MODELS) + 6))
    for name in a.datasets.split(","):
        ds = make_dataset(name)
        for seed in [int(s) for s in a.seeds.split(",")]:
            test = ds.sample(a.n_test, seed + 5000)
            nll, status = {}, {}
            for key in MODELS:
                run = fit(RunSpec(key, ds, seed=seed, n_train=a.n, max_seconds=a.seconds))
                nll[key] = test_nll(run.model, test)
                status[key] = f"{run.step} steps" + (", early stopped" if "early" in run.message else "")
            best = min(nll["gmm"], nll["kde"])
            cells = [f"{nll[k]:.3f}" for k in MODELS]
            print(f"| {name} | {seed} | " + " | ".join(cells) + f" | {best:.3f} | {nll['flow'] - best:+.3f} | "
                  f"{nll['ar'] - best:+.3f} | {status['flow']} / {status['ar']} |", flush=True)


if __name__ == "__main__":
    main()
