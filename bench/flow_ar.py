"""Flow and ar with default configs: small-data generalisation against the best classical fit, and big-data KL.

    python bench/flow_ar.py --n 300 --seconds 15 --datasets moons,8gaussians,rings,2spirals,checkerboard

Small data: every model (flow, ar, gmm, kde) gets the same `--n` points through the runner, which holds
10 % of them out for early stopping (flow, ar; gmm picks its size by BIC and kde its bandwidth by
cross-validation on the rest). The held-out NLL is measured on `--n-test` fresh points drawn from the
true density with another seed: no model and no model selection ever sees them. Target: flow and ar
no worse than min(gmm, kde) + 0.05 nats.

Big data: flow and ar on `--full-n` points of moons (noise 0.05) for the same budget; KL to truth
(test NLL minus the true entropy on the same fresh points) and sampling time per 1000 points. Targets:
KL <= 0.02 nats (flow) and <= 0.03 (ar).

Budgets are wall-clock seconds of training steps (--clock thread: CPU seconds of this thread), so a busy machine gives fewer steps: the header
prints the load average and every row its step count.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch  # noqa: E402

from bench.fit_table import parse_seeds  # noqa: E402  ('0-4' or '0,3,7')
from lab import run as lab_run  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.metrics import Evaluator, test_nll  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402

FAMILIES = ["flow", "ar"]
CLASSICAL = ["gmm", "kde"]
SMALL_MARGIN = 0.05
KL_TARGET = {"flow": 0.02, "ar": 0.03}


def stop_note(run) -> str:
    if "early stopped" in run.message:
        return f"early stop, best step {run.best_step}"
    if "restored" in run.message:
        return f"budget, best step {run.best_step}"
    return "budget"


def small_data(a) -> None:
    print(
        f"## Small data: {a.n} points ({a.n - int(a.n * 0.1)} train + {int(a.n * 0.1)} validation), "
        f"{a.seconds:g} s, held-out NLL (nats) on {a.n_test} fresh points\n"
    )
    print(
        "| data | seed | model | steps | stopped by | held-out NLL | gmm | kde | best classical | gap | gap <= +0.05 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in a.datasets.split(","):
        ds = make_dataset(name)
        for seed in a.seeds:
            test = ds.sample(a.n_test, seed + 5000)  # the runner draws its points with `seed`: independent
            nll, runs = {}, {}
            for key in CLASSICAL + a.families:
                runs[key] = fit(RunSpec(key, ds, seed=seed, n_train=a.n, max_seconds=a.seconds))
                nll[key] = test_nll(runs[key].model, test)
            best = min(nll[k] for k in CLASSICAL)
            for key in a.families:
                gap = nll[key] - best
                print(
                    f"| {name} | {seed} | {key} | {runs[key].step} | {stop_note(runs[key])} | {nll[key]:.3f} | "
                    f"{nll['gmm']:.3f} | {nll['kde']:.3f} | {best:.3f} | {gap:+.3f} | "
                    f"{'yes' if gap <= SMALL_MARGIN else 'NO'} |",
                    flush=True,
                )


def full_data(a) -> None:
    print(
        f"\n## Full data: {a.full_n} points of {a.full_data}, {a.seconds:g} s; KL to truth and test NLL on "
        f"{a.n_test} fresh points\n"
    )
    print(
        "| data | seed | model | steps | stopped by | test NLL | entropy | KL to truth | KL target | met | ms / 1000 samples |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ds = make_dataset(a.full_data)
    for seed in a.seeds:
        ev = Evaluator(ds, n=a.n_test, seed=seed + 1000)
        for key in a.families:
            run = fit(RunSpec(key, ds, seed=seed, n_train=a.full_n, max_seconds=a.seconds))
            m = ev(run.model)
            kl = m["kl_to_truth"]
            print(
                f"| {a.full_data} | {seed} | {key} | {run.step} | {stop_note(run)} | {m['test_nll']:.4f} | "
                f"{m['entropy']:.4f} | {kl:.4f} | {KL_TARGET[key]} | {'yes' if kl <= KL_TARGET[key] else 'NO'} | "
                f"{1000 * m['sample_seconds_per_1000']:.2f} |",
                flush=True,
            )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="moons,8gaussians,rings,2spirals,checkerboard")
    p.add_argument("--n", type=int, default=300, help="points each model gets (train + validation)")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--seeds", default="0")
    p.add_argument("--n-test", type=int, default=5000)
    p.add_argument("--full-data", default="moons", help="dataset of the big-data rows ('' to skip them)")
    p.add_argument("--full-n", type=int, default=20_000)
    p.add_argument(
        "--clock",
        choices=["thread", "wall"],
        default="wall",
        help="what --seconds counts: wall time (the Run's own clock) or this thread's CPU time",
    )
    p.add_argument("--families", default=",".join(FAMILIES), help="of flow,ar: the rows to train")
    a = p.parse_args(argv)
    a.families = a.families.split(",")
    a.seeds = parse_seeds(a.seeds)
    torch.set_num_threads(1)
    if a.clock == "thread":
        lab_run.time = types.SimpleNamespace(perf_counter=time.thread_time)  # the Run's budget clock
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(
        f"# flow and ar, default configs: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"1 torch thread, {a.clock} clock, load average {load}\n"
    )
    if a.datasets:
        small_data(a)
    if a.full_data:
        full_data(a)
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
