"""Flow matching at a budget: moons KL after 15 s, Tong et al.'s 2D W2 table, reflow's one-step samples.

    python bench/fm.py --table moons      # KL to the true density and energy distance, 15 s a run (~3 min)
    python bench/fm.py --table tong       # Tong et al. 2024 Table 2 protocol, 60 s a run (~2 min a row)
    python bench/fm.py --table reflow     # energy distance of 1-step and 100-step samples, before / after reflow

Every table has one row per setting: the mean, its standard error and the worst value over seeds.

moons: the lab's moons (noise 0.05), trained until it used the budget in CPU time of its
thread (one torch thread; on a shared machine a wall-clock budget would measure the neighbours), then test KL
(exact log-density through the backward ODE, RK4 20 steps) and the energy distance of 2500 samples, the mean
of `--draws` sample draws, each against a fresh true sample, beside the floor (the same for two true samples).

tong: the data of torchcfm's own generators (torchcfm/utils.py: `sample_moons` = torchdyn's `generate_moons(n,
noise=0.2) * 3 - 1`, points on linspaced half circles shifted by one uniform U[0, 0.2) added to both coordinates;
`sample_8gaussians` = centres of radius 5 plus N(0, sqrt(0.1) I), torch's MultivariateNormal taking sqrt(0.1)
as the covariance, so the std is 0.1^(1/4) = 0.562), fresh samples every step, sigma = 0.1 (their 2D runs),
batch 256, then 10,000 samples (RK4, 20 steps) against 10,000 fresh target samples: exact W2 by
optimal transport (POT's network simplex `ot.emd2`, ~35 s for 10,000 x 10,000; scipy's Hungarian needs
~20 minutes at that size, so without POT the table says so and stops). Beside it the W2 between two true
samples of 10,000: the floor of the metric itself. The model trains in the data's own coordinates (its scaler
set to the identity), so the source N(0, I) and sigma = 0.1 are Tong et al.'s; the lab's usual standardising
(`--tong-standardised`) scales sigma by the data's std (2.6 and 1.5 on their moons) and blurs the samples
(moons OT-CFM W2 0.194 against 0.145, seed 0).

reflow: moons, `--reflow-every` steps on the data, then one reflow round of as many steps on the model's
own (noise, sample) pairs; energy distance (mean of draws) of 1-step Euler and 100-step RK4 samples, before
the reflow (the 1-rectified flow) and after it (2-rectified).
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

from bench.fit_table import parse_seeds  # noqa: E402  ('0-4' or '0,3,7')
from lab.base import Standardizer, make_model
from lab.data import make_dataset
from lab.metrics import Evaluator, energy_distance


def stats(values) -> str:
    """'mean ± standard error (worst)' where worst is the largest value (every column here is lower-is-better)."""
    v = np.asarray(values, dtype=np.float64)
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{v.mean():.4f} ± {se:.4f} ({v.max():.4f})"


def table(cols: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(r) + " |", flush=True)
    print()


def train_cpu(model, seconds: float, batch) -> tuple:
    """Train until the thread has used `seconds` of CPU time (one torch thread computes in this thread), so a
    budget means the same work on a machine shared with other jobs. Returns (model, steps)."""
    g = torch.Generator().manual_seed(model.seed + 1)
    k, t0 = 0, time.thread_time()
    while time.thread_time() - t0 < seconds:
        model.train_step(batch(model, g))
        k += 1
    return model, k


def mean_energy(model, ds, n: int, draws: int, seed: int, sampler=None, steps=None) -> tuple[float, float]:
    """(mean energy distance of `draws` model draws against fresh true samples, the same for two true samples)."""
    ed, floor = [], []
    for d in range(draws):
        g = seed + 100 * d
        x = model.sample(n, g) if sampler is None else model.sample_with(n, sampler, steps, generator=g)
        ed.append(energy_distance(x.double().numpy(), ds.sample(n, seed + 100 * d + 1)))
        floor.append(energy_distance(ds.sample(n, seed + 100 * d + 2), ds.sample(n, seed + 100 * d + 3)))
    return float(np.mean(ed)), float(np.mean(floor))


# ---------------------------------------------------------------------------------------------
# moons, 15 s
# ---------------------------------------------------------------------------------------------


def moons_table(a) -> None:
    ds = make_dataset("moons")
    print(
        f"## moons (noise {ds.noise}), {a.seconds:g} s of CPU time a run (one torch thread), seeds {a.seeds}\n"
    )
    rows = []
    for coupling in a.couplings.split(","):
        kl, ratio, ed, fl, steps = [], [], [], [], []
        for seed in a.seed_list:
            model, k = train_cpu(
                make_model("fm", ds.sample(20_000, seed), {**a.settings, "coupling": coupling}, seed=seed),
                a.seconds,
                lambda mdl, g: mdl.train_z[
                    torch.randint(0, len(mdl.train_z), (mdl.config.batch_size,), generator=g)
                ],
            )
            m = Evaluator(ds, n=a.n_eval, seed=seed + 1000)(model, timing=False)
            e, f = mean_energy(model, ds, a.n_eval, a.draws, seed + 2000)
            kl.append(m["kl_to_truth"]), ed.append(e), fl.append(f), ratio.append(e / f), steps.append(k)
            print(
                f"<!-- {coupling} seed {seed}: {k} steps, KL {kl[-1]:.4f}, ED {e:.5f}, floor {f:.5f} -->",
                flush=True,
            )
        rows.append(
            [
                coupling,
                f"{np.mean(steps):.0f}",
                stats(kl),
                stats(ed),
                stats(fl),
                stats(ratio),
                f"{sum(k <= 0.02 for k in kl)}/{len(kl)}",
                f"{sum(r <= 2 for r in ratio)}/{len(ratio)}",
            ]
        )
    print()
    table(
        [
            "coupling",
            "steps (mean)",
            "KL to truth (nats)",
            f"energy distance (mean of {a.draws})",
            "floor",
            "ED / floor",
            "KL <= 0.02",
            "ED <= 2x floor",
        ],
        rows,
    )


# ---------------------------------------------------------------------------------------------
# Tong et al. 2024, Table 2
# ---------------------------------------------------------------------------------------------


def torchcfm_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    """torchcfm's sample_moons: torchdyn generate_moons(n, noise=0.2) * 3 - 1 (linspaced angles, one uniform shift)."""
    n_out, n_in = n // 2, n - n // 2
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], 1)
    inner = np.stack(
        [1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5], 1
    )
    x = np.concatenate([outer, inner]) + rng.random((n, 1)) * 0.2
    return x * 3 - 1


def torchcfm_8gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    """torchcfm's sample_8gaussians: eight_normal_sample(n, 2, scale=5, var=0.1), covariance sqrt(0.1) I."""
    s = 1 / math.sqrt(2)
    centres = 5 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    return centres[rng.integers(0, 8, n)] + rng.standard_normal((n, 2)) * 0.1**0.25


TONG = {"moons": torchcfm_moons, "8gaussians": torchcfm_8gaussians}
PUBLISHED = {
    ("moons", "ot"): "0.130 ± 0.016",
    ("moons", "independent"): "0.178",
    ("8gaussians", "ot"): "0.303 ± 0.043",
}


def exact_w2(x: np.ndarray, y: np.ndarray) -> float:
    """W2 between two equal-size empirical measures: sqrt of the optimal transport cost under |x - y|^2."""
    import ot

    M = ot.dist(x, y)  # squared Euclidean
    w = np.full(len(x), 1 / len(x))
    return float(math.sqrt(ot.emd2(w, w, M, numItermax=10**8)))


def tong_table(a) -> None:
    try:
        import ot  # noqa: F401
    except ImportError:
        print(
            "POT (pip install pot) is needed for an exact W2 of 10,000 points; the tong table is skipped.\n"
        )
        return
    print(
        f"## Tong et al. 2024 Table 2 protocol: {a.tong_seconds:g} s of CPU time a run, sigma 0.1, batch 256, n = {a.n_w2}, "
        f"{'data coordinates' if a.tong_raw else 'standardised coordinates'}, "
        f"seeds {a.seeds}\n"
    )
    rows = []
    for data in a.tong_data.split(","):
        gen = TONG[data]
        floor_w2 = (
            exact_w2(gen(a.n_w2, np.random.default_rng(10_001)), gen(a.n_w2, np.random.default_rng(10_002)))
            if a.floor
            else float("nan")
        )
        for coupling in a.couplings.split(","):
            w2s, steps = [], []
            for seed in a.seed_list:
                rng = np.random.default_rng(seed)
                points = gen(100_000, rng)
                model = make_model(
                    "fm", points, {"coupling": coupling, "sigma": 0.1, **a.settings}, seed=seed
                )
                if a.tong_raw:  # their source N(0, I) and sigma 0.1 live in the data's own coordinates
                    model.scaler = Standardizer(mean=np.zeros(2), std=np.ones(2))
                    model.train_z = model.to_z(points)  # the stable target's references, in those coordinates
                # fresh samples each step, as torchcfm does
                model, k = train_cpu(model, a.tong_seconds, lambda mdl, g: mdl.to_z(gen(256, rng)))  # noqa: B023
                x = model.sample(a.n_w2, seed + 500).double().numpy()
                w2s.append(exact_w2(x, gen(a.n_w2, np.random.default_rng(seed + 20_000))))
                steps.append(k)
                print(f"<!-- {data} {coupling} seed {seed}: {k} steps, W2 {w2s[-1]:.4f} -->", flush=True)
            rows.append(
                [
                    f"N(0, I) -> {data}",
                    "OT-CFM" if coupling == "ot" else "I-CFM",
                    f"{np.mean(steps):.0f}",
                    stats(w2s),
                    PUBLISHED.get((data, coupling), "-"),
                    f"{floor_w2:.4f}",
                ]
            )
    print()
    table(
        [
            "task",
            "method",
            "steps (mean)",
            "W2 (mean ± se (worst))",
            "published (Tong et al.)",
            "W2 of two true samples",
        ],
        rows,
    )


# ---------------------------------------------------------------------------------------------
# reflow
# ---------------------------------------------------------------------------------------------


def reflow_table(a) -> None:
    ds = make_dataset("moons")
    k = a.reflow_every
    print(
        f"## reflow on moons: {k} steps on the data, then {k} on the model's own pairs (one round), "
        f"seeds {a.seeds}, energy distance the mean of {a.draws} draws of {a.n_eval}\n"
    )
    res = {
        name: []
        for name in ("e1_before", "e100_before", "s_before", "e1_after", "e100_after", "s_after", "floor")
    }
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(9))
    for seed in a.seed_list:
        model = make_model("fm", ds.sample(20_000, seed), {"reflow": 1, "reflow_every": k}, seed=seed)
        g = torch.Generator().manual_seed(seed + 1)
        for when in ("before", "after"):
            for _ in range(k):  # the reflow round starts inside the first train_step after k steps
                model.train_step(model.train_z[torch.randint(0, len(model.train_z), (256,), generator=g)])
            e1, fl = mean_energy(model, ds, a.n_eval, a.draws, seed + 3000, "euler", 1)
            e100, _ = mean_energy(model, ds, a.n_eval, a.draws, seed + 3000, "rk4", 100)
            (
                res[f"e1_{when}"].append(e1),
                res[f"e100_{when}"].append(e100),
                res[f"s_{when}"].append(model.straightness(x0)),
            )
        res["floor"].append(fl)
        print(
            f"<!-- seed {seed}: round {model.reflow_round}, 1-step {res['e1_before'][-1]:.5f} -> "
            f"{res['e1_after'][-1]:.5f}, 100-step {res['e100_before'][-1]:.5f} -> {res['e100_after'][-1]:.5f} -->",
            flush=True,
        )
    rows = []
    for when, label in (("before", "1-rectified (no reflow)"), ("after", "2-rectified (one reflow)")):
        ratio = np.asarray(res[f"e1_{when}"]) / np.asarray(res[f"e100_{when}"])
        rows.append(
            [
                label,
                stats(res[f"e1_{when}"]),
                stats(res[f"e100_{when}"]),
                stats(ratio),
                f"{(ratio <= 2).sum()}/{len(ratio)}",
                stats(res[f"s_{when}"]),
                stats(res["floor"]),
            ]
        )
    print()
    table(
        [
            "flow",
            "ED 1 Euler step",
            "ED 100 RK4 steps",
            "1-step / 100-step",
            "ratio <= 2",
            "straightness",
            "floor",
        ],
        rows,
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default="moons", choices=["moons", "tong", "reflow", "all"])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--couplings", default="independent,ot")
    p.add_argument("--seconds", type=float, default=15.0, help="moons budget per run")
    p.add_argument("--tong-seconds", type=float, default=60.0)
    p.add_argument("--tong-data", default="moons,8gaussians")
    p.add_argument("--n-w2", type=int, default=10_000)
    p.add_argument(
        "--tong-standardised",
        dest="tong_raw",
        action="store_false",
        help="tong table: train in the lab's standardised coordinates (source and sigma scaled by the data's std)",
    )
    p.add_argument(
        "--no-floor", dest="floor", action="store_false", help="tong table: skip the W2 of two true samples"
    )
    p.add_argument("--reflow-every", type=int, default=3000)
    p.add_argument("--n-eval", type=int, default=2500)
    p.add_argument("--draws", type=int, default=4)
    p.add_argument(
        "--set", action="append", default=[], help="moons table: an fm setting field=value (repeatable)"
    )
    a = p.parse_args(argv)
    a.seed_list = parse_seeds(a.seeds)
    a.settings = dict(item.split("=", 1) for item in a.set)  # validated by make_model's config
    torch.set_num_threads(1)
    print(
        f"# flow matching bench: {os.cpu_count()} cores, 1 torch thread, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
    )
    for name, fn in (("moons", moons_table), ("tong", tong_table), ("reflow", reflow_table)):
        if a.table in (name, "all"):
            fn(a)


if __name__ == "__main__":
    main()
