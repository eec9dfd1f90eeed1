"""A sweep's wall time against the target 1.25 x (sum of the members' budgets) / cores (issue 14).

    nice -n 10 python bench/sweep.py                                   # short: 2 seeds x 1 s
    nice -n 10 python bench/sweep.py --seeds 5 --seconds 3              # the Scoreboard page's default measurement

A Scoreboard-like sweep: the lecture's families and gmm on the main dataset and on the mode-coverage
dataset, each member trained for `--seconds` of its own training time on the local backend (a trainer
pool of its own, one process per core) and evaluated like a Scoreboard member. The wall time counts
everything: starting the pool (counted in the first dataset's row: one pool serves both), building and
evaluating every member, closing the pool (in the total). Prints one markdown row per dataset and a total; the load average says how much of the machine other work was using.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab.sweep import cores, local_pool, make_sweep, run_local

SCOREBOARD_KEYS = "ae,vae,gan,flow,ar,ddpm,score,gmm"  # lab.scoreboard.LECTURE_KEYS + gmm, the page's default


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=SCOREBOARD_KEYS)
    p.add_argument("--datasets", default="moons,8gaussians")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-eval", type=int, default=1500)
    p.add_argument("--workers", type=int, default=None, help="trainer processes (default: one per core)")
    a = p.parse_args(argv)
    n_cores = a.workers or cores()
    print(
        f"{n_cores} trainer processes, {a.seeds} seeds x {a.seconds:g} s, models {a.models}; "
        f"load average before: {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| dataset | members | budgets (s) | target 1.25 x budgets / cores (s) | wall (s) | wall / target "
        "| failed | diverged | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    pool = local_pool(n_cores)
    start = time.perf_counter() - t0  # starting the pool counts, in the first dataset's row
    total_budget = total_wall = 0.0
    for i, data in enumerate(a.datasets.split(",")):
        s = make_sweep(
            a.models, f"0-{a.seeds - 1}", [], data=data, seconds=a.seconds, n_train=a.n_train, n_eval=a.n_eval
        )
        t0 = time.perf_counter()
        rows = run_local(s, pool=pool)
        wall = time.perf_counter() - t0 + (start if i == 0 else 0.0)
        budget = s.budget_seconds or 0.0
        target = 1.25 * budget / n_cores
        total_budget, total_wall = total_budget + budget, total_wall + wall
        failed = sum(r["status"] == "failed" for r in rows)
        diverged = sum(bool(r["diverged"]) for r in rows)
        print(
            f"| {data} | {len(rows)} | {budget:.0f} | {target:.1f} | {wall:.1f} | {wall / target:.2f} | {failed} "
            f"| {diverged} | {os.getloadavg()[0]:.2f} |",
            flush=True,
        )
        for r in rows:
            if r["status"] == "failed":
                print(f"|  | {r['model']} seed {r['seed']}: {r['error']} |||||||", flush=True)
    t0 = time.perf_counter()
    pool.close()
    total_wall += time.perf_counter() - t0
    target = 1.25 * total_budget / n_cores
    print(
        f"| all | | {total_budget:.0f} | {target:.1f} | {total_wall:.1f} | {total_wall / target:.2f} | | | |"
    )


if __name__ == "__main__":
    main()
