"""Fit table: each model trained for a wall-clock budget on each dataset, then measured.

    python bench/fit_table.py --models gmm,kde --datasets moons,8gaussians --seconds 15

Prints one markdown row per (model, dataset): steps, training seconds, test NLL, KL to truth,
energy distance (and its floor), blur gap, modes / high-quality fraction, sampling time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lab.base import make_config, get_model_class  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.metrics import Evaluator  # noqa: E402
from lab.run import RunSpec, fit  # noqa: E402

COLUMNS = ["model", "data", "seed", "steps", "train_s", "test_nll", "entropy", "kl_to_truth", "energy_distance",
           "energy_distance_floor", "blur_gap", "modes", "high_quality", "sample_s_per_1000", "status"]


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def row(key: str, data: str, seconds: float, seed: int, n_eval: int, sets: dict, data_params: dict, n_train: int) -> dict:
    ds = make_dataset(data, **data_params)
    cfg = make_config(get_model_class(key).Config, sets)
    run = fit(RunSpec(key, ds, cfg, seed=seed, n_train=n_train, max_seconds=seconds))
    m = Evaluator(ds, n=n_eval, seed=seed + 1000)(run.model)
    return {
        "model": key, "data": data, "seed": seed, "steps": run.step, "train_s": run.train_seconds,
        "test_nll": m.get("test_nll"), "entropy": m.get("entropy"), "kl_to_truth": m.get("kl_to_truth"),
        "energy_distance": m["energy_distance"], "energy_distance_floor": m["energy_distance_floor"],
        "blur_gap": m.get("blur_gap"),
        "modes": f"{m['modes']}/{m['n_modes']}" if "modes" in m else None,
        "high_quality": m.get("high_quality"), "sample_s_per_1000": m["sample_seconds_per_1000"],
        "status": run.message,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="gmm,kde")
    p.add_argument("--datasets", default="moons,rings,8gaussians,2spirals,checkerboard")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--seeds", default="0")
    p.add_argument("--n-eval", type=int, default=2500)
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--set", action="append", default=[], help="field=value for every model")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    sets = dict(s.split("=", 1) for s in a.set)
    print(f"# fit table: {a.seconds:g} s training per row, {os.cpu_count()} cores, torch threads {a.threads}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for data in a.datasets.split(","):
        for key in a.models.split(","):
            for seed in [int(s) for s in a.seeds.split(",")]:
                r = row(key, data, a.seconds, seed, a.n_eval, sets, {}, a.n_train)
                print("| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |", flush=True)


if __name__ == "__main__":
    main()
