"""The GAN page's lessons, measured: DCGAN's BatchNorm and LeakyReLU on and off, damping (R1 + EMA) on and off
on 2D data, and the Dirac-GAN's oscillations; each a table over seeds (mean, standard error, worst seed).

    python bench/gan_lessons.py                         # all three, 3 seeds x 1000 steps on 8gaussians
    python bench/gan_lessons.py --lessons dcgan --seeds 5 --steps 1500 --data 25gaussians

Every 2D run is a sweep member (lab.sweep.train_member: lab.run.fit to --steps, then lab.live.jobs.evaluate
on 1000 fresh true points at seed + 1000), with the default config but the fields the lesson flips:
- dcgan: batch_norm in {off, on} x activation in {relu, leaky_relu} (DCGAN: BatchNorm in G and D, LeakyReLU
  in D; here one activation for both players, and R1 + EMA stay on as in the defaults);
- damping: r1_gamma = 0 and ema = 0 (none) against the defaults (R1 0.1, EMA 0.99); the JSD columns are
  lab.gan's smoothed JSD(p_data, p_g) every 50 steps over the second half of training: its mean, and its
  standard deviation over those checks (the oscillation: how much p_g still moves), with the floor (data
  against data).
A mode is covered when a high-quality sample (within 3 std) is nearest to it; "all modes" counts the seeds
that cover every mode. --steps is a step budget, so the numbers do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from lab import dirac_gan as dg  # noqa: E402
from lab.sweep import make_sweep, stats  # noqa: E402


def member(sweep, m, jsd: bool, every: int = 50) -> dict:
    """Train and evaluate one member in this process (what a trainer worker does for a sweep). With `jsd`,
    the smoothed JSD every `every` steps over the second half of training: its mean and its standard
    deviation across those checks (how much the generator still moves: the oscillation), and the floor."""
    from lab.live.jobs import evaluate
    from lab.run import RUNNING, Run

    run = Run(sweep.spec(m))
    run.status = RUNNING
    late = []
    while not run.finished:
        run.advance(every)
        if jsd and run.step >= sweep.max_steps // 2:
            late.append(run.model.jsd())
    row = evaluate(run, **sweep.eval_kwargs(m))
    out = {"seed": m.seed, **dict(m.settings), **(row.get("metrics") or {}), "diverged": row["diverged"]}
    if jsd and late:
        out["jsd"], out["jsd_jitter"] = float(np.mean(late)), float(np.std(late))
        out["jsd_floor"] = run.model.jsd_floor()
    return out


def table(rows: list[dict], keys: list[str], cols: list[tuple[str, str, str]]) -> str:
    """One line per setting: mean ± se (worst seed) of each column; worst = min for 'high', max for 'low'."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    head = "| " + " | ".join(keys) + " | " + " | ".join(c[0] for c in cols) + " | all modes |"
    lines = [head, "|" + "---|" * (len(keys) + len(cols) + 1)]
    for key, rs in groups.items():
        cells = []
        for _, name, better in cols:
            s = stats([r.get(name) for r in rs])
            if s["n"] == 0:
                cells.append("–")
                continue
            worst = s["min"] if better == "high" else s["max"]
            se = f" ± {s['se']:.3g}" if s["se"] is not None else ""
            cells.append(f"{s['mean']:.3g}{se} ({worst:.3g})")
        full = sum(r.get("modes") == r.get("n_modes") for r in rs)
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + f" | {full}/{len(rs)} |")
    return "\n".join(lines)


COLS = [
    ("modes", "modes", "high"),
    ("high quality", "high_quality", "high"),
    ("energy distance", "energy_distance", "low"),
]


def run_lesson(name: str, settings: list[list[str]], args, jsd: bool = False) -> list[dict]:
    """One sweep per entry of `settings` (its --set strings), every member trained here, one after another."""
    t0 = time.perf_counter()
    rows = []
    for sets in settings:
        sweep = make_sweep(
            "gan", args.seeds, sets, data=args.data, steps=args.steps, n_train=20_000, n_eval=1000
        )
        for m in sweep.members:
            rows.append(member(sweep, m, jsd))
            r = rows[-1]
            print(
                f"  seed {m.seed} {dict(m.settings)}: modes {r.get('modes')}, hq {r.get('high_quality', 0):.3f}, "
                f"ED {r.get('energy_distance', float('nan')):.4f}, JSD {r.get('jsd', float('nan')):.4f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(
        f"\n## {name}: {args.data}, seeds {args.seeds}, {args.steps} steps ({time.perf_counter() - t0:.0f} s)\n"
    )
    return rows


def dirac() -> None:
    print("\n## Dirac-GAN (lab/dirac_gan.py): distance to the equilibrium from (1, 1), lr 0.1\n")
    print("| rule | loss | step 0 | step 500 | step 2000 | lesson | pass |")
    print("|---|---|---|---|---|---|---|")
    checks = [
        ("simultaneous", 0.0, "grows (spirals out)", lambda d: d[2000] > d[500] > d[0]),
        ("alternating", 0.0, "stays (circles)", lambda d: np.nanmin(d) > 0.9 * d[0]),
        ("simultaneous", 0.5, "shrinks (R1 0.5)", lambda d: d[2000] < 1e-3 * d[0]),
        ("alternating", 0.5, "shrinks (R1 0.5)", lambda d: d[2000] < 1e-3 * d[0]),
    ]
    for loss in ("minimax", "wgan"):
        for update, gamma, lesson, ok in checks:
            d = dg.trajectory(1.0, 1.0, 0.1, 2000, update=update, loss=loss, r1_gamma=gamma).distance
            cells = " | ".join("diverged" if not np.isfinite(d[k]) else f"{d[k]:.3g}" for k in (0, 500, 2000))
            passed = ok(np.nan_to_num(d, nan=np.inf))
            print(f"| {update} | {loss} | {cells} | {lesson} | {'pass' if passed else 'FAIL'} |")
    alt = dg.trajectory(1.0, 1.0, 0.1, 2000, update="alternating", ema=0.99)
    print(
        f"\nalternating GD, EMA 0.99 of theta over steps 1000-2000: max |theta| {np.abs(alt.theta[1000:]).max():.3f}, "
        f"max |theta_ema| {np.abs(alt.theta_ema[1000:]).max():.3f}"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lessons", default="dcgan,damping,dirac")
    p.add_argument("--data", default="8gaussians")
    p.add_argument("--seeds", default="0-2")
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    lessons = args.lessons.split(",")
    if "dirac" in lessons:
        dirac()
    if "dcgan" in lessons:
        rows = run_lesson("DCGAN guidelines", [["batch_norm=false,true", "activation=relu,leaky_relu"]], args)
        print(table(rows, ["batch_norm", "activation"], COLS))
    if "damping" in lessons:
        rows = run_lesson("Damping", [["r1_gamma=0", "ema=0"], ["r1_gamma=0.1", "ema=0.99"]], args, jsd=True)
        print(
            table(
                rows,
                ["r1_gamma", "ema"],
                COLS
                + [
                    ("JSD (late mean)", "jsd", "low"),
                    ("JSD jitter (late std)", "jsd_jitter", "low"),
                    ("JSD floor", "jsd_floor", "low"),
                ],
            )
        )


if __name__ == "__main__":
    main()
