"""Trainer-worker overhead and picture rate, and the CLI's GMM fit on a known mixture.

    python bench/runner_overhead.py [--model flow] [--seconds 10]

1. steps/s of a bare PyTorch loop (model.train_step on a fixed batch, nothing else) against the
   same model trained live in a trainer worker (lab.live) with pictures and metrics (target: <= 10 % slower);
2. pictures per second that reached the page process meanwhile;
3. `python -m lab train --model gmm` + `score` on a Gaussian mixture: test NLL - true entropy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lab.base import make_model  # noqa: E402
from lab.data import make_dataset  # noqa: E402
from lab.live.pool import WorkerPool  # noqa: E402
from lab.live.session import LiveSession  # noqa: E402
from lab.spec import RunSpec  # noqa: E402


def bare_steps_per_second(key: str, seconds: float) -> float:
    ds = make_dataset("moons")
    model = make_model(key, ds.sample(20000, 0), seed=0)
    batch = model.train_z[: model.config.batch_size]
    for _ in range(20):  # warm-up
        model.train_step(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.train_step(batch)
        n += 1
    return n / (time.perf_counter() - t0)


def worker_steps_per_second(key: str, seconds: float) -> tuple[float, float, float]:
    """(steps/s, pictures/s reaching the page process, share of wall time outside train_step) of one run
    training live in a worker, as a family's own page trains it."""
    pool = WorkerPool(1)
    s = LiveSession(pool)
    try:
        s.add(
            "a", RunSpec(key, make_dataset("moons"), seed=0, n_train=20000, early_stopping=False), start=True
        )
        t0 = time.time()
        while (s.snapshot("a") is None or s.snapshot("a").step == 0) and time.time() - t0 < 120:
            time.sleep(0.01)
        time.sleep(1.0)  # warm-up, first metrics
        first = s.snapshot("a")
        t0, pictures, seen = time.perf_counter(), 0, first.time
        while time.perf_counter() - t0 < seconds:
            snap = s.snapshot("a")
            if snap.time != seen:
                pictures, seen = pictures + 1, snap.time
            time.sleep(0.005)
        last, wall = s.snapshot("a"), time.perf_counter() - t0
    finally:
        pool.close()
    # the share of wall time the worker spent outside model.train_step: bookkeeping, pictures, metrics,
    # messages. Measured between the first and last picture seen (their steps and training seconds).
    span = last.time - first.time
    outside = 1 - (last.train_seconds - first.train_seconds) / span
    return (last.step - first.step) / span, pictures / wall, outside


def cli_gmm_gap() -> tuple[float, float, float]:
    means, std = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 2.0]]), np.array([0.5, 0.3])

    def draw(n, seed):
        r = np.random.default_rng(seed)
        return means[r.integers(0, 3, n)] + r.standard_normal((n, 2)) * std

    from scipy.special import logsumexp

    test = draw(20000, 2)
    z = (test[:, None, :] - means[None]) / std
    true_lp = logsumexp(-0.5 * (z**2).sum(-1) - np.log(2 * np.pi) - np.log(std).sum(), axis=1) - np.log(3)
    with tempfile.TemporaryDirectory() as d:
        np.savetxt(f"{d}/F.csv", draw(5000, 1), delimiter=",", header="x,y", comments="")
        np.savetxt(f"{d}/T.csv", test, delimiter=",")
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lab",
                "train",
                "--model",
                "gmm",
                "--data-file",
                f"{d}/F.csv",
                "--seconds",
                "5",
                "--out",
                f"{d}/D",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lab",
                "score",
                "--run",
                f"{d}/D",
                "--points",
                f"{d}/T.csv",
                "--out",
                f"{d}/S.csv",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        nll = -np.loadtxt(f"{d}/S.csv", skiprows=1).mean()
        steps = json.load(open(f"{d}/D/metrics.json"))["steps"]
    return nll - (-true_lp.mean()), wall, steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="flow")
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    print(
        f"# trainer worker benchmark, {os.cpu_count()} cores, torch threads 1, {time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    bare = bare_steps_per_second(a.model, a.seconds)
    live, pictures, outside = worker_steps_per_second(a.model, a.seconds)
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| bare loop, {a.model} (steps/s) | {bare:.0f} | |")
    print(f"| trainer worker with live pictures (steps/s) | {live:.0f} | |")
    print(
        f"| worker overhead: wall time outside train_step while training | {100 * outside:.1f} % | <= 10 % |"
    )
    print(
        f"| steps/s live vs bare (two separate runs: machine noise +-15 %) | {100 * (1 - live / bare):+.1f} % slower | |"
    )
    print(f"| pictures that reached the page process (per s) | {pictures:.1f} | |")
    gap, wall, steps = cli_gmm_gap()
    print(f"| CLI gmm on a 3-component mixture: test NLL - true entropy (nats) | {gap:.4f} | <= 0.02 |")
    print(f"| CLI gmm train wall time incl. start-up (s), EM steps | {wall:.1f}, {steps} | |")


if __name__ == "__main__":
    main()
