"""Fit table: each model trained for a wall-clock budget on each dataset, then measured.

    python bench/fit_table.py --models gmm,kde --datasets moons,8gaussians --seconds 15 --seeds 0-4

    python bench/fit_table.py --models vae --datasets moons --train-file moons20k.csv --seeds 0-4

`--clock thread` budgets each run by its own CPU time (time.thread_time, torch on one thread), which a
loaded machine slows less than wall time (though still: shared caches and cores make a step's CPU time
grow too); `--clock wall` (the default) is the Run's own
`max_seconds`, wall time of its steps, as `python -m lab train --seconds` spends it. `--steps N` trains
a fixed number of steps instead (what a quiet budget buys, measured apart). `--train-file` trains
on a CSV of points (as `python -m lab train --data-file` does: 10 % held out) and measures against the
true density of `--datasets` (one name): a sample of that density that is not the lab's own.

Prints one markdown row per (model, dataset, seed): steps, training seconds, test NLL and KL to truth
(on `--n-kl` fresh true points), energy distance (one draw, and its floor; `ed_mean`, the mean over
`--ed-draws` draws, and that over its expected floor: see mean_energy_distance), blur gap, modes /
high-quality fraction, sampling time; then, with more than one seed, a summary per (model, dataset):
mean and standard error over the seeds of each number, and the worst seed (largest KL to truth, or
`ed_mean` for a family without a density) with its value.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch

from lab.base import get_model_class, make_config
from lab.data import load_points_csv, make_dataset
from lab.metrics import Evaluator, energy_distance
from lab.run import DONE, RUNNING, Run, RunSpec, fit

COLUMNS = [
    "model",
    "data",
    "seed",
    "steps",
    "train_s",
    "cpu_s",
    "test_nll",
    "entropy",
    "kl_to_truth",
    "energy_distance",
    "energy_distance_floor",
    "ed_mean",
    "ed_over_mean_floor",
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


def fit_thread_clock(spec: RunSpec, seconds: float) -> tuple[Run, float]:
    """Train until the run's own CPU time (this thread's) reaches `seconds`; returns (run, cpu seconds)."""
    run = Run(spec)
    run.status = RUNNING
    t0 = time.thread_time()
    while not run.finished and time.thread_time() - t0 < seconds:
        run.advance(10)
    cpu = time.thread_time() - t0
    run.finish(DONE)
    return run, cpu


def kl_on_fresh_points(model, ds, n: int, seed: int) -> tuple[float, float, float]:
    """(KL to truth, test NLL, entropy) on n fresh true points: KL = mean(log p_true - log p_model) over
    the same points. At the Evaluator's 2500 points this estimate moves by +-0.003 nats from one set of
    points to the next (a flow's 0.023 on one set was 0.0185 on 20,000), as much as the margins it is
    read against; 20,000 points bring that to ~0.001."""
    y = ds.sample(n, seed)
    lp_true = np.asarray(ds.log_prob(y), dtype=np.float64)
    lp = model.log_prob(y).double().numpy()
    return float(np.mean(lp_true - lp)), float(-lp.mean()), float(-lp_true.mean())


def mean_energy_distance(model, ds, n: int, seed: int, repeats: int = 16) -> tuple[float, float]:
    """(mean energy distance over `repeats` pairs of a model sample and a fresh true sample, n points each;
    its expected floor): two samples of one density sit at (1/n + 1/m) E|X - X'| on average (the
    V-statistic's zero diagonal), which the mean over true pairs estimates. One draw of the floor
    spreads over a factor of ten (0.00025-0.003 on moons at n = 2500), and one draw of a model's energy
    distance as much, so a target on it is read against the mean over draws (the same quantity, the
    expected energy distance at n points, with 1/sqrt(repeats) of the spread). The ratio is ~1 for a
    perfect model; with 4 draws it still moved by +-0.35 between two sets of draws of one model."""
    eds, spans = [], []
    for r in range(repeats):
        g = torch.Generator().manual_seed(seed + 31 * r + 3)
        x = model.sample(n, g).double().numpy()
        y = ds.sample(n, seed + 5000 + r)
        eds.append(energy_distance(x[np.isfinite(x).all(1)], y))
        d = torch.cdist(torch.as_tensor(y), torch.as_tensor(y))
        spans.append(float(d.sum() / (n * (n - 1))))
    return float(np.mean(eds)), 2.0 / n * float(np.mean(spans))


def row(
    key: str,
    data: str,
    seconds: float,
    seed: int,
    n_eval: int,
    sets: dict,
    data_params: dict,
    n_train: int,
    clock: str = "wall",
    train_file: str | None = None,
    steps: int | None = None,
    n_kl: int = 20000,
    ed_draws: int = 16,
) -> dict:
    ds = make_dataset(data, **data_params)
    train = load_points_csv(train_file) if train_file else ds
    cfg = make_config(get_model_class(key).Config, sets)
    if steps:
        t0 = time.thread_time()
        run = fit(RunSpec(key, train, cfg, seed=seed, n_train=n_train, max_steps=steps))
        cpu = time.thread_time() - t0
    elif clock == "thread":
        run, cpu = fit_thread_clock(RunSpec(key, train, cfg, seed=seed, n_train=n_train), seconds)
    else:
        t0 = time.thread_time()
        run = fit(RunSpec(key, train, cfg, seed=seed, n_train=n_train, max_seconds=seconds))
        cpu = time.thread_time() - t0
    m = Evaluator(ds, n=n_eval, seed=seed + 1000)(run.model)
    ed_mean, floor_mean = (
        mean_energy_distance(run.model, ds, n_eval, seed + 2000, ed_draws) if ds.has_density else (None, None)
    )
    if ds.has_density and run.model.has_log_prob and n_kl:
        m["kl_to_truth"], m["test_nll"], m["entropy"] = kl_on_fresh_points(run.model, ds, n_kl, seed + 3000)
    return {
        "model": key,
        "data": data,
        "seed": seed,
        "steps": run.step,
        "train_s": run.train_seconds,
        "cpu_s": cpu,
        "test_nll": m.get("test_nll"),
        "entropy": m.get("entropy"),
        "kl_to_truth": m.get("kl_to_truth"),
        "energy_distance": m["energy_distance"],
        "energy_distance_floor": m["energy_distance_floor"],
        "ed_mean": ed_mean,
        "ed_over_mean_floor": ed_mean / floor_mean if ed_mean is not None else None,
        "blur_gap": m.get("blur_gap"),
        "modes": f"{m['modes']}/{m['n_modes']}" if "modes" in m else None,
        "high_quality": m.get("high_quality"),
        "sample_s_per_1000": m["sample_seconds_per_1000"],
        "status": run.message,
    }


SUMMARY = [
    "kl_to_truth",
    "test_nll",
    "energy_distance",
    "ed_mean",
    "ed_over_floor",
    "ed_over_mean_floor",
    "blur_gap",
    "high_quality",
    "steps",
    "cpu_s",
]


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
        by = next((c for c in ("kl_to_truth", "ed_mean") if rs[0][c] is not None), "ed_over_floor")
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
    p.add_argument(
        "--n-kl", type=int, default=20000, help="fresh true points for KL and test NLL (0: the --n-eval ones)"
    )
    p.add_argument("--ed-draws", type=int, default=16, help="draws averaged in ed_mean")
    p.add_argument("--set", action="append", default=[], help="field=value for every model")
    p.add_argument(
        "--data-set", action="append", default=[], help="field=value for every dataset (noise=0.05)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--clock", choices=["wall", "thread"], default="wall", help="budget by wall time or own CPU time"
    )
    p.add_argument("--steps", type=int, help="a fixed number of steps instead of --seconds")
    p.add_argument("--train-file", help="train on this CSV's points, measure against --datasets' truth")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    sets = dict(s.split("=", 1) for s in a.set)
    data_params = {k: float(v) for k, v in (s.split("=", 1) for s in a.data_set)}
    budget = f"{a.steps} steps" if a.steps else f"{a.seconds:g} s"
    print(
        f"# fit table: {budget} training per row, {os.cpu_count()} cores, torch threads {a.threads}, "
        f"{a.clock} clock, {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}"
        + (f", trained on {a.train_file}" if a.train_file else "")
        + "\n"
    )
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    rows = []
    seeds = parse_seeds(a.seeds)
    for data in a.datasets.split(","):
        for key in a.models.split(","):
            for seed in seeds:
                r = row(
                    key,
                    data,
                    a.seconds,
                    seed,
                    a.n_eval,
                    sets,
                    data_params,
                    a.n_train,
                    a.clock,
                    a.train_file,
                    a.steps,
                    a.n_kl,
                    a.ed_draws,
                )
                rows.append(r)
                print("| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |", flush=True)
    if len(seeds) > 1:
        summary(rows)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
