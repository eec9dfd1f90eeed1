"""Classifier-free guidance, measured: what the weight w does to each class of a conditional fm and ddpm.

    python bench/guidance.py                          # fm and ddpm on moons and 8gaussians, 3 seeds (~4 min)
    python bench/guidance.py --models fm --data moons --seconds 5 --seeds 2     # a quick look

Each run: a class-conditional model (conditional=true, label dropout p_uncond = 0.2, the family's defaults
otherwise) trained for `--seconds` of CPU time of its thread (one torch thread) on the labelled dataset
(lab.guidance.sample_labelled: which moon; for 8gaussians component k is class k mod 2, four modes a class).
Then for every class and w in 0, 1, 2, 4, 8: `--n` samples of that class against `--n` fresh true samples of it:

- energy distance (lower is better; the floor is two true samples of the class),
- precision: the share of samples inside the class's region (Kynkaanniemi et al. 2019, k = 3 nearest
  neighbours of the true samples), higher is better,
- recall: the share of the class's true samples inside the samples' region (its support covered),
- modes (8gaussians): the class's modes that have a sample within 3 std (mode coverage).

Each cell: mean ± standard error (worst seed) over the seeds; worst is the largest energy distance and the
smallest precision, recall and mode count.
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

from lab.base import make_model
from lab.data import make_dataset
from lab.guidance import (
    GUIDANCE_WEIGHTS,
    class_modes,
    guidance_sweep,
    knn_precision_recall,
    sample_labelled,
    true_class_samples,
)
from lab.metrics import energy_distance


def stats(values, lower_is_better: bool = True, fmt: str = ".4f") -> str:
    """'mean ± standard error (worst)' over seeds."""
    v = np.asarray(values, dtype=np.float64)
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    worst = v.max() if lower_is_better else v.min()
    return f"{v.mean():{fmt}} ± {se:{fmt}} ({worst:{fmt}})"


def train(key: str, ds, seed: int, seconds: float, n_train: int):
    """A conditional model trained for `seconds` of this thread's CPU time. Returns (model, steps)."""
    x, y, _ = sample_labelled(ds, n_train, seed)
    model = make_model(key, x, {"conditional": True}, seed=seed)
    model.set_labels(y)
    batch = model.train_z[: model.config.batch_size]  # a conditional model draws its own labelled batch
    k, t0 = 0, time.thread_time()
    while time.thread_time() - t0 < seconds:
        model.train_step(batch)
        k += 1
    return model, k


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="fm,ddpm")
    p.add_argument("--data", default="moons,8gaussians")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0, help="CPU seconds of training per run")
    p.add_argument("--n", type=int, default=1000, help="samples per class and weight")
    p.add_argument("--n-train", type=int, default=20_000)
    args = p.parse_args()
    torch.set_num_threads(1)
    weights = GUIDANCE_WEIGHTS
    for name in args.data.split(","):
        ds = make_dataset(name)
        for key in args.models.split(","):
            per_seed, steps, floors = [], [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                model, k = train(key, ds, seed, args.seconds, args.n_train)
                refs = true_class_samples(ds, 2 * args.n, seed + 1000)  # fresh, ~n a class
                others = true_class_samples(ds, 2 * args.n, seed + 2000)
                floors.append(
                    [
                        (energy_distance(a, b), *knn_precision_recall(b[: len(a)], a))
                        for a, b in zip(refs, others)
                    ]
                )
                modes = class_modes(ds, len(refs))
                per_seed.append(
                    guidance_sweep(
                        model, refs, weights, n=args.n, seed=seed + 3000, modes=modes, mode_std=ds.mode_std
                    )
                )
                steps.append(k)
                print(
                    f"  {key} on {name}, seed {seed}: {k} steps, {time.perf_counter() - t0:.0f} s wall",
                    file=sys.stderr,
                    flush=True,
                )
            n_classes = len(per_seed[0]["energy"])
            print(
                f"### {key} on {name}: conditional, p_uncond 0.2, {args.seconds:g} CPU s "
                f"({np.mean(steps):.0f} steps), {args.seeds} seeds, {args.n} samples a class and weight\n"
            )
            cols = ["class", "w", "energy distance", "precision (in region)", "recall (support)"]
            has_modes = "modes" in per_seed[0]
            if has_modes:
                cols.append("modes of the class")
            print("| " + " | ".join(cols) + " |")
            print("|" + "---|" * len(cols))
            for c in range(n_classes):
                for j, w in enumerate(weights):
                    cells = [
                        str(c),
                        f"{w:g}",
                        stats([r["energy"][c][j] for r in per_seed]),
                        stats([r["precision"][c][j] for r in per_seed], False, ".3f"),
                        stats([r["recall"][c][j] for r in per_seed], False, ".3f"),
                    ]
                    if has_modes:
                        cells.append(
                            stats([r["modes"][c][j] for r in per_seed], False, ".2f")
                            + f" of {per_seed[0]['n_modes'][c]}"
                        )
                    print("| " + " | ".join(cells) + " |")
                f = np.asarray([fl[c] for fl in floors])
                cells = [
                    str(c),
                    "true vs true",
                    stats(f[:, 0]),
                    stats(f[:, 1], False, ".3f"),
                    stats(f[:, 2], False, ".3f"),
                ]
                print("| " + " | ".join(cells + ([""] if has_modes else [])) + " |", flush=True)
            print()


if __name__ == "__main__":
    main()
