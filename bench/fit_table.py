"""Fit table: each model trained for a wall-clock budget on each dataset, then measured.

    python bench/fit_table.py --models gmm,kde --datasets moons,8gaussians --seconds 15 --seeds 0-4

Prints one markdown row per (model, dataset, seed): steps, training seconds, test NLL, KL to truth,
energy distance (and its floor), blur gap, modes / high-quality fraction, sampling time; then, with
more than one seed, a summary per (model, dataset): mean and standard error over the seeds of each
number, and the worst seed (largest KL to truth, or energy distance / floor for a family without a
density) with its value.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from lab.base import get_model_class, make_config
from lab.data import make_dataset
from lab.metrics import Evaluator
from lab.run import RunSpec, fit

COLUMNS = [
    "model",
    "data",
    "seed",
    "steps",
    "train_s",
    "test_nll",
    "entropy",
    "kl_to_truth",
    "energy_distance",
    "energy_distance_floor",
    "blur_gap",
    "modes",
    "high_quality",
    "sample_s_per_1000",
    "status",
]


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def row(
    key: str, data: str, seconds: float, seed: int, n_eval: int, sets: dict, data_params: dict, n_train: int
) -> dict:
    ds = make_dataset(data, **data_params)
    cfg = make_config(get_model_class(key).Config, sets)
    run = fit(RunSpec(key, ds, cfg, seed=seed, n_train=n_train, max_seconds=seconds))
    m = Evaluator(ds, n=n_eval, seed=seed + 1000)(run.model)
    return {
        "model": key,
        "data": data,
        "seed": seed,
        "steps": run.step,
        "train_s": run.train_seconds,
        "test_nll": m.get("test_nll"),
        "entropy": m.get("entropy"),
        "kl_to_truth": m.get("kl_to_truth"),
        "energy_distance": m["energy_distance"],
        "energy_distance_floor": m["energy_distance_floor"],
        "blur_gap": m.get("blur_gap"),
        "modes": f"{m['modes']}/{m['n_modes']}" if "modes" in m else None,
        "high_quality": m.get("high_quality"),
        "sample_s_per_1000": m["sample_seconds_per_1000"],
        "status": run.message,
    }


SUMMARY = ["kl_to_truth", "test_nll", "energy_distance", "ed_over_floor", "blur_gap", "high_quality", "steps"]


def parse_seeds(text: str) -> list[int]:
    """'0-4' or '0,3,7' (or both: '0-2,9')."""
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def mean_se(values: list[float]) -> str:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return "-"
    m = sum(v) / len(v)
    if len(v) < 2:
        return fmt(m)
    se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v))
    return f"{fmt(m)} ± {fmt(se)}"


def summary(rows: list[dict]) -> None:
    """Mean ± standard error over seeds per (model, data), and the worst seed."""
    print("\n| model | data | seeds | " + " | ".join(SUMMARY) + " | worst seed |")
    print("|" + "---|" * (len(SUMMARY) + 4))
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        r["ed_over_floor"] = (
            r["energy_distance"] / r["energy_distance_floor"] if r["energy_distance_floor"] else None
        )
        groups.setdefault((r["model"], r["data"]), []).append(r)
    for (model, data), rs in groups.items():
        by = "kl_to_truth" if rs[0]["kl_to_truth"] is not None else "ed_over_floor"
        worst = max(rs, key=lambda r: r[by] if r[by] is not None and math.isfinite(r[by]) else math.inf)
        cells = [mean_se([r[c] for r in rs]) for c in SUMMARY]
        print(
            f"| {model} | {data} | {len(rs)} | "
            + " | ".join(cells)
            + f" | {worst['seed']} ({by} {fmt(worst[by])}) |",
            flush=True,
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="gmm,kde")
    p.add_argument("--datasets", default="moons,rings,8gaussians,2spirals,checkerboard")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--seeds", default="0", help="'0-4' or '0,3,7'")
    p.add_argument("--n-eval", type=int, default=2500)
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--set", action="append", default=[], help="field=value for every model")
    p.add_argument(
        "--data-set", action="append", default=[], help="field=value for every dataset (noise=0.05)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    sets = dict(s.split("=", 1) for s in a.set)
    data_params = {k: float(v) for k, v in (s.split("=", 1) for s in a.data_set)}
    print(
        f"# fit table: {a.seconds:g} s training per row, {os.cpu_count()} cores, torch threads {a.threads}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    rows = []
    seeds = parse_seeds(a.seeds)
    for data in a.datasets.split(","):
        for key in a.models.split(","):
            for seed in seeds:
                r = row(key, data, a.seconds, seed, a.n_eval, sets, data_params, a.n_train)
                rows.append(r)
                print("| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |", flush=True)
    if len(seeds) > 1:
        summary(rows)


if __name__ == "__main__":
    main()
