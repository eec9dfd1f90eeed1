"""The lecture's comparison table, measured: each family on moons (and 8gaussians for modes), several seeds.

    python bench/scoreboard.py --models gan,vae,flow,ddpm,ar --seconds 5 --seeds 5

The runs are the Scoreboard page's own measurement (lab.scoreboard.ScoreboardJob: a sweep on one trainer
per core). Prints one markdown row per family: every cell is the measured value, the lecture's claim in
brackets, and ✓ / ✗ where the measurement agrees / disagrees (rules in lab/scoreboard.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab.scoreboard import (  # noqa: E402
    COLUMN_HELP,
    ScoreboardJob,
    aggregate,
    available,
    disagreements,
    markdown,
    table,
)
from lab.sweep import cores, local_pool  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="gan,vae,flow,ddpm,ar,gmm")
    p.add_argument("--data", default="moons")
    p.add_argument("--modes-data", default="8gaussians")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--workers", type=int, default=None, help="trainer processes (default: one per core)")
    p.add_argument("--json", default="", help="also write every measurement here (to re-derive the table)")
    a = p.parse_args(argv)
    keys = a.models.split(",")
    skipped = {k: why for k, why in available(keys).items() if why}
    keys = [k for k in keys if k not in skipped]
    n = a.workers or cores()
    print(
        f"# scoreboard: {a.seconds:g} s training per run, {a.seeds} seeds, {a.data} (+ {a.modes_data} for modes), "
        f"a sweep on {n} trainer processes, {time.strftime('%Y-%m-%d %H:%M')}\n",
        flush=True,
    )
    pool = local_pool(n)
    try:
        job = ScoreboardJob(
            keys, a.seconds, a.seeds, a.data, a.modes_data, a.n_eval, a.n_train, pool=pool
        ).start()
        shown = 0
        while not job.done:
            time.sleep(0.5)
            for m in job.measurements[shown:]:
                print(
                    f"  {m.key:5s} {m.dataset:11s} seed {m.seed}: {m.steps} steps, {m.error or m.status}",
                    file=sys.stderr,
                    flush=True,
                )
                shown += 1
    finally:
        pool.close()
    ms = job.measurements
    if job.error:
        print(f"the measurement stopped: {job.error}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump([dataclasses.asdict(m) for m in ms], fh, indent=1, default=float)
    rows = table(aggregate(ms, a.data, a.modes_data))
    print(markdown(rows))
    print()
    for col, h in COLUMN_HELP.items():
        print(f"- {col}: {h}")
    for k, why in skipped.items():
        print(f"- {k}: {why}")
    dis = disagreements(rows)
    print(f"\n{len(dis)} disagreement(s) with the lecture:")
    for d in dis:
        print(f"- {d}")


if __name__ == "__main__":
    main()
