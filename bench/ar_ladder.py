"""PixelRNN vs PixelCNN, and slow sequential sampling: the autoregressive model on d = 2, 4, ..., 32.

    python bench/ar_ladder.py                       # CPU, 1 torch thread, 3 seeds (~3 min on a shared 2-core box)
    python bench/ar_ladder.py --device cuda --out bench/results_ar_ladder_cuda.json

Data: the product of d/2 independent copies of two moons (noise 0.05), standardised: its true density is
known, so the test NLL per pair of coordinates can be set against the true entropy of one pair.

Models: lab.autoregressive.ARDensity, the family's network and 1D mixture conditional in d dimensions,
with its two conditioners: masked (MADE, PixelCNN-style: every conditional in one parallel pass, so a
training step is one pass) and recurrent (a GRU, PixelRNN-style: the state runs through the d dimensions,
sequential in training too). Both sample sequentially: d steps, each a full MADE pass or one GRU cell
update. Beside them, lab.flow.Flow (the 2D spline flow) through its public API: a flow for the product
density is the 2D flow on each pair (block-diagonal, exact for a product), so drawing n points in d
dimensions is one pass over n * d/2 pairs, however large d.

Measured per (d, conditioner, seed): seconds per training step (batch 256, median over the steps after 5
warm-up steps), seconds to draw 1000 points (median of 3) and one point (the latency: median of 9; on one
CPU thread 1000 points cost about their arithmetic, whatever the number of passes, while one point shows
the d sequential passes against the flow's one), and after --steps steps the test NLL per pair
minus the true entropy of a pair (KL per pair, on 5000 fresh points). The table shows mean, standard
error and worst over the seeds; --out writes the JSON the autoregressive page draws.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.fit_table import parse_seeds  # noqa: E402  ('0-4' or '0,3,7')
from lab.autoregressive import ARDensity  # noqa: E402
from lab.base import make_model  # noqa: E402
from lab.data import make_dataset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def product_data(d: int, n: int, seed: int):
    """n points of d/2 independent moons pairs [n, d] and the log-density of the pairs' true density."""
    ds = make_dataset("moons")
    x = ds.sample(n * d // 2, seed).reshape(n, d)
    return x, ds


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def one(d: int, conditioner: str, seed: int, a, device, mean, std, entropy) -> dict:
    torch.manual_seed(seed)
    x, ds = product_data(d, a.n_train, seed)
    z = torch.as_tensor(
        (x - np.tile(mean, d // 2)) / np.tile(std, d // 2), dtype=torch.float32, device=device
    )
    model = ARDensity(d, conditioner, components=a.components, hidden=a.hidden, depth=2).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    g = torch.Generator(device=device).manual_seed(seed)
    step_times = []
    for step in range(a.steps):
        batch = z[torch.randint(0, len(z), (a.batch,), generator=g, device=device)]

        def train_step():
            loss = -model.log_prob(batch).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t = timed(train_step, device)
        if step >= 5:
            step_times.append(t)
    with torch.no_grad():
        xt, _ = product_data(d, a.n_test, seed + 1000)
        zt = torch.as_tensor(
            (xt - np.tile(mean, d // 2)) / np.tile(std, d // 2), dtype=torch.float32, device=device
        )
        nll = float(-model.log_prob(zt).double().mean()) + (d // 2) * float(np.log(std).sum())
        sample_t = statistics.median(
            timed(lambda: model.sample(1000, torch.Generator(device=device).manual_seed(s)), device)
            for s in range(3)
        )
        one_t = statistics.median(
            timed(lambda: model.sample(1, torch.Generator(device=device).manual_seed(s)), device)
            for s in range(9)
        )
    return {
        "d": d,
        "model": conditioner,
        "seed": seed,
        "train_step_s": statistics.median(step_times),
        "sample_1000_s": sample_t,
        "sample_1_s": one_t,
        "kl_per_pair": nll / (d // 2) - entropy,
    }


def flow_rows(dims, seed: int, a, device) -> list[dict]:
    """The 2D flow trained on moons pairs; sampling d dims = one pass over n * d/2 pairs."""
    ds = make_dataset("moons")
    model = make_model("flow", ds.sample(a.n_train, seed), seed=seed, device=str(device))
    g = torch.Generator(device=device).manual_seed(seed)
    z = model.train_z
    times = []
    for step in range(a.steps):
        batch = z[torch.randint(0, len(z), (a.batch,), generator=g, device=device)]
        t = timed(lambda: model.train_step(batch), device)
        if step >= 5:
            times.append(t)
    rows = []
    for d in dims:
        # the same step on the d-dimensional product: a batch of 256 points is 256 * d/2 pairs
        big = z[torch.randint(0, len(z), (a.batch * d // 2,), generator=g, device=device)]
        step_t = statistics.median(timed(lambda: model.train_step(big), device) for _ in range(5))
        sample_t = statistics.median(timed(lambda: model.sample(1000 * d // 2, s), device) for s in range(3))
        one_t = statistics.median(timed(lambda: model.sample(d // 2, s), device) for s in range(9))
        rows.append(
            {
                "d": d,
                "model": "flow",
                "seed": seed,
                "train_step_s": step_t,
                "sample_1000_s": sample_t,
                "sample_1_s": one_t,
            }
        )
    return rows


def summary(rows: list[dict], key: str, d: int, model: str, worst=max) -> tuple[float, float, float]:
    v = [r[key] for r in rows if r["d"] == d and r["model"] == model and r.get(key) is not None]
    if not v:
        return math.nan, math.nan, math.nan
    se = statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else 0.0
    return statistics.mean(v), se, worst(v)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", default="2,4,8,16,32")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--components", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=5000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results_ar_ladder.json"))
    a = p.parse_args()
    torch.set_num_threads(1)
    device = torch.device(a.device)
    dims = [int(v) for v in a.dims.split(",")]
    seeds = parse_seeds(a.seeds)
    ds = make_dataset("moons")
    ref = ds.sample(200_000, 12345)
    mean, std = ref.mean(0), ref.std(0)
    entropy = float(-ds.log_prob(ds.sample(20_000, 54321)).mean())
    t0 = time.time()
    rows = []
    for seed in seeds:
        for d in dims:
            for cond in ("made", "gru"):
                rows.append(one(d, cond, seed, a, device, mean, std, entropy))
        rows += flow_rows(dims, seed, a, device)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{os.cpu_count()}-core CPU ({platform.machine()}), 1 torch thread"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(
        f"# AR dimension ladder: {where}, torch {torch.__version__}, load average {load:.1f}, "
        f"{len(seeds)} seeds, {a.steps} steps, batch {a.batch}, hidden {a.hidden}, {time.time() - t0:.0f} s\n"
    )
    print("| d | model | train step (ms) | sample 1000 (ms) | sample 1 (ms) | KL per pair (nats) |")
    print("|---|---|---|---|---|---|")
    ms = lambda v: f"{1e3 * v[0]:.2f} ± {1e3 * v[1]:.2f} (worst {1e3 * v[2]:.2f})"  # noqa: E731
    for d in dims:
        for m in ("made", "gru", "flow"):
            tr, sa, lat, kl = (
                summary(rows, k, d, m) for k in ("train_step_s", "sample_1000_s", "sample_1_s", "kl_per_pair")
            )
            kl_text = "—" if math.isnan(kl[0]) else f"{kl[0]:.3f} ± {kl[1]:.3f} (worst {kl[2]:.3f})"
            print(f"| {d} | {m} | {ms(tr)} | {ms(sa)} | {ms(lat)} | {kl_text} |")
    info = {
        "measured_on": where,
        "torch": torch.__version__,
        "load_average": load,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {k: getattr(a, k) for k in ("steps", "batch", "hidden", "components", "lr", "n_train")},
        "seeds": seeds,
        "rows": rows,
    }
    with open(a.out, "w") as f:
        json.dump(info, f, indent=1)
    print(f"\nwrote {os.path.relpath(a.out, ROOT)}")


if __name__ == "__main__":
    main()
