"""Runner overhead and snapshot rate, and the CLI's GMM fit on a known mixture.

    python bench/runner_overhead.py [--model flow] [--seconds 10]

1. steps/s of a bare PyTorch loop (model.train_step on a fixed batch, nothing else) against the
   same model trained by a SessionRunner with live snapshots and metrics (target: <= 10 % slower);
2. snapshots per second the runner delivered meanwhile;
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
from lab.runner import RunSpec, SessionRunner  # noqa: E402


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


def runner_steps_per_second(key: str, seconds: float) -> tuple[float, float, float]:
    r = SessionRunner()
    r.add("a", RunSpec(key, make_dataset("moons"), seed=0, n_train=20000, early_stopping=False), wait=True)
    r.play("a")
    time.sleep(1.0)  # warm-up, first metrics
    run = r.runs["a"]
    s0, c0, t0, tr0 = run.step, r.snapshot_count, time.perf_counter(), run.train_seconds
    time.sleep(seconds)
    s1, c1, t1, tr1 = run.step, r.snapshot_count, time.perf_counter(), run.train_seconds
    share = r.snapshot_seconds / max(r.train_wall, 1e-9)
    r.close()
    # the share of wall time the runner's thread spent outside model.train_step: bookkeeping,
    # snapshots, metrics, yielding its lock. Immune to the machine's speed changing between runs.
    outside = 1 - (tr1 - tr0) / (t1 - t0)
    return (s1 - s0) / (t1 - t0), (c1 - c0) / (t1 - t0), share, outside


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
        subprocess.run([sys.executable, "-m", "lab", "train", "--model", "gmm", "--data-file", f"{d}/F.csv", "--seconds", "5",
                        "--out", f"{d}/D"], cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        subprocess.run([sys.executable, "-m", "lab", "score", "--run", f"{d}/D", "--points", f"{d}/T.csv", "--out", f"{d}/S.csv"],
                       cwd=ROOT, check=True, capture_output=True)
        nll = -np.loadtxt(f"{d}/S.csv", skiprows=1).mean()
        steps = json.load(open(f"{d}/D/metrics.json"))["steps"]
    return nll - (-true_lp.mean()), wall, steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="flow")
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    print(f"# runner benchmark, {os.cpu_count()} cores, torch threads 1, {time.strftime('%Y-%m-%d %H:%M')}\n")
    bare = bare_steps_per_second(a.model, a.seconds)
    live, snaps, share, outside = runner_steps_per_second(a.model, a.seconds)
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| bare loop, {a.model} (steps/s) | {bare:.0f} | |")
    print(f"| SessionRunner with live snapshots (steps/s) | {live:.0f} | |")
    print(f"| runner overhead: wall time outside train_step while training | {100 * outside:.1f} % | <= 10 % |")
    print(f"| steps/s live vs bare (two separate runs: machine noise +-15 %) | {100 * (1 - live / bare):+.1f} % slower | |")
    print(f"| snapshots delivered (per s) | {snaps:.1f} | |")
    print(f"| snapshot time / training time | {100 * share:.1f} % | |")
    gap, wall, steps = cli_gmm_gap()
    print(f"| CLI gmm on a 3-component mixture: test NLL - true entropy (nats) | {gap:.4f} | <= 0.02 |")
    print(f"| CLI gmm train wall time incl. start-up (s), EM steps | {wall:.1f}, {steps} | |")


if __name__ == "__main__":
    main()
