"""Does each step of the lecture tour show its lesson? Every step's scenario trained headless over seeds, its
lesson (lab/tour.py) checked on the runs' histories as the Lecture page checks it live.

    python bench/lecture.py [--quick] [--seeds 0,1,2] [--only gan-mode-collapse,...]

Runs train to a number of steps (Step.bench_steps, half with --quick), so a busy machine changes the time
a row takes, not its numbers. Metrics are measured like the trainer workers do (500 fresh true points, 1000
samples for mode coverage), five times over training and at the end.
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
from lab.metrics import Evaluator, sample_seconds_per_1000  # noqa: E402
from lab.run import RUNNING, Run, RunSpec  # noqa: E402
from lab.tour import STEPS, Step, Verdict, get_step  # noqa: E402

MEASURES = 5  # metric points over training (plus the end)


def train(step: Step, seed: int, steps: int) -> tuple[list[dict], float]:
    """Each run of the step's scenario trained to `steps`; its history as the page sees it, and the seconds."""
    sc = step.scenario
    ds = make_dataset(sc.data, **sc.data_params)
    ev = Evaluator(ds, n=500, seed=seed)
    out, t0 = [], time.perf_counter()
    for r in sc.runs:
        cfg = make_config(get_model_class(r.model).Config, r.config)
        run = Run(RunSpec(r.model, ds, cfg, seed=seed, max_steps=steps, early_stopping=False))
        run.status = RUNNING
        every = max(1, steps // MEASURES)
        while not run.finished:
            run.advance(min(every, steps - run.step) or 1)
            if run.finished and run.status != "done":
                break
            run.metrics.add(run.step, ev(run.model, timing=False, n_mode_samples=1000))
        h = {**run.losses.arrays(), **run.metrics.arrays()}
        if run.status == "done":
            h["sample_ms"] = (np.array([run.step]), np.array([1000 * sample_seconds_per_1000(run.model)]))
        out.append(h)
    return out, time.perf_counter() - t0


def fmt(v: Verdict) -> str:
    return "; ".join(f"{k} = {x:.4g}" for k, x in v.numbers.items())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="half the training steps")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--only", default="", help="comma-separated step keys")
    a = p.parse_args()
    torch.set_num_threads(1)
    try:
        steps = [get_step(k) for k in a.only.split(",")] if a.only else list(STEPS)
        seeds = [int(s) for s in a.seeds.split(",")]
    except (KeyError, ValueError) as e:
        sys.exit(f"bench/lecture.py: {str(e).strip(chr(39))}")
    scale = 0.5 if a.quick else 1.0
    t_all = time.perf_counter()
    print(
        f"# lecture tour lessons: {len(steps)} steps x seeds {a.seeds}, "
        f"{'quick (half steps)' if a.quick else 'full'}, {os.cpu_count()} cores, 1 torch thread, "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print("| step | seed | steps | seconds | pass | measured |")
    print("|---|---|---|---|---|---|")
    summary = []
    for st in steps:
        n = max(1, int(st.bench_steps * scale))
        passed = 0
        for seed in seeds:
            try:
                hist, secs = train(st, st.scenario.seed + seed, n)
            except Exception as e:  # one broken family is a row, not the end of the bench
                print(f"| {st.key} | {st.scenario.seed + seed} | {n} | - | NO (error: {e}) | - |", flush=True)
                continue
            v = st.check(hist)
            passed += v.passed
            why = "" if v.passed else f" ({v.failed})"
            print(
                f"| {st.key} | {st.scenario.seed + seed} | {n} | {secs:.1f} | "
                f"{'yes' if v.passed else 'NO'}{why} | {fmt(v)} |",
                flush=True,
            )
        summary.append((st, passed))
    print("\n| step | lesson | passes |")
    print("|---|---|---|")
    for st, k in summary:
        print(f"| {st.key} | {st.lesson.claim} | {k}/{len(seeds)} |")
    total = sum(k == len(seeds) for _, k in summary)
    print(
        f"\n{total}/{len(summary)} steps pass on every seed; {time.perf_counter() - t_all:.0f} s in all.",
        flush=True,
    )


if __name__ == "__main__":
    main()
