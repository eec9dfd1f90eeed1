"""Do the lecture presets show their lesson? Each preset's runs trained side by side, with the
number the lesson is about (`watch`), the one setting they differ in (`varies`) and the usual metrics.

    python bench/presets.py [--seconds 20] [--only gan-mode-collapse,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab.base import get_model_class, make_config  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.metrics import Evaluator  # noqa: E402
from lab.presets import PRESETS  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402


def watched(run, metrics: dict, name: str):
    """The lesson's number: a metric, or a training loss averaged over the last 10 % of the steps."""
    if name in metrics:
        return metrics[name]
    steps, vals = run.losses.arrays().get(name, (np.array([]), np.array([])))
    if len(vals) == 0:
        return None
    return float(np.mean(vals[-max(1, len(vals) // 10) :]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--only", default="")
    a = p.parse_args()
    torch.set_num_threads(1)
    keys = a.only.split(",") if a.only else list(PRESETS)
    print(
        f"# presets: {a.seconds:g} s per run, {os.cpu_count()} cores, 1 torch thread, {time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print(
        "| preset | varies | run | steps | watched | value | energy distance (floor) | KL to truth | modes (hq) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key in keys:
        pr = PRESETS[key]
        ds = make_dataset(pr.data, **pr.data_params)
        ev = Evaluator(ds, n=2500, seed=pr.seed + 1000)
        for r in pr.runs:
            cfg = make_config(get_model_class(r.model).Config, r.config)
            run = fit(RunSpec(r.model, ds, cfg, seed=pr.seed, max_seconds=a.seconds))
            m = ev(run.model, timing=False)
            v = watched(run, m, pr.watch)
            modes = f"{m['modes']}/{m['n_modes']} ({m['high_quality']:.0%})" if "modes" in m else "-"
            kl = f"{m['kl_to_truth']:.3f}" if "kl_to_truth" in m else "-"
            vs = "-" if v is None else f"{v:.4g}"
            print(
                f"| {key} | {', '.join(pr.varies)} | {r.label} | {run.step} | {pr.watch} | {vs} | {m['energy_distance']:.4f} ({m['energy_distance_floor']:.4f}) | {kl} | {modes} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
