"""Training with missing data: test NLL of the GMM and the AR model when the incomplete rows are used vs dropped.

    python bench/missing_data.py                  # moons, 1000 training rows, shares 30/50/70 %, 3 seeds (~3 min)

Each run draws --n training rows from the true density (the runner holds 10 % out for early stopping),
then knocks one coordinate out of a share of the training rows (missing completely at random; x1 or x2
with probability 1/2 each: lab.data.MissingData). "used": the family learns from every row (GMM: exact EM
over the observed coordinates; AR, x1 first: rows missing x2 train p(x1), rows missing x1 are ignored).
"dropped": the same complete rows only. "complete": nothing knocked out (the ceiling). Test NLL on 5000
fresh points of the true density (seed + 1000); gain = dropped - used (positive: the incomplete rows
helped). Mean, standard error and worst seed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lab.data import MissingData, make_dataset  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402


def nll(run, test) -> float:
    return float(-run.model.log_prob(test).double().mean())


def stats(v: list[float], worst=max) -> str:
    se = statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.3f} ± {se:.3f} (worst {worst(v):.3f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="moons")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--shares", default="0.3,0.5,0.7")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", default="gmm,ar")
    p.add_argument("--ar-steps", type=int, default=1500)
    a = p.parse_args()
    torch.set_num_threads(1)
    ds = make_dataset(a.data)
    seeds = [int(s) for s in a.seeds.split(",")]
    shares = [float(s) for s in a.shares.split(",")]
    t0 = time.time()
    print(
        f"# Missing data: {a.data}, {a.n} rows, seeds {a.seeds}, load average {os.getloadavg()[0]:.1f}\n\n"
        "| model | share missing | used: test NLL | dropped: test NLL | complete: test NLL | gain (dropped - used) |\n"
        "|---|---|---|---|---|---|"
    )
    for key in a.models.split(","):
        steps = a.ar_steps if key == "ar" else 500
        res: dict[tuple, list[float]] = {}
        for seed in seeds:
            test = ds.sample(5000, seed + 1000)
            full = fit(RunSpec(key, ds, None, seed=seed, n_train=a.n, max_steps=steps))
            res.setdefault(("complete",), []).append(nll(full, test))
            for share in shares:
                for drop in (False, True):
                    spec = RunSpec(
                        key, MissingData(source=ds, share=share, drop=drop), None, seed=seed, n_train=a.n
                    )
                    spec.max_steps = steps
                    res.setdefault((share, drop), []).append(nll(fit(spec), test))
        for share in shares:
            used, dropped = res[(share, False)], res[(share, True)]
            gain = [d - u for u, d in zip(used, dropped)]
            print(
                f"| {key} | {share:.0%} | {stats(used)} | {stats(dropped)} | {stats(res[('complete',)])} | "
                f"{stats(gain, worst=min)} |"
            )
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
