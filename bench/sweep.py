"""Sweeps (issue 14): the Scoreboard's measurement against 1.25 x (sum of budgets) / cores, and batched members.

    nice -n 10 python bench/sweep.py                       # both tables, the Scoreboard page's default measurement
    nice -n 10 python bench/sweep.py --seeds 2 --seconds 1 # a short Scoreboard-like sweep
    python bench/sweep.py --only batched --members 64 --steps 300
    python bench/sweep.py --only overhead                   # CPU seconds per member outside its budget
    python bench/sweep.py --only training --members 32      # training alone: solo vs batched, CPU seconds
    python bench/sweep.py --gpu                             # on a CUDA machine: the GPU targets

Scoreboard table: exactly what the page runs (lab.scoreboard.ScoreboardJob: one sweep per dataset, one
queue on a trainer pool of its own, one process per core, the costliest evaluations first). The wall time
counts everything: starting the pool, every build, training, evaluation, closing the pool. CPU seconds are
this process's and its (waited-for) trainers'; with the load average they say how much of the machine
other work took: on a shared machine the wall time is an upper bound.

Batched table: 64 GAN seeds x 300 steps on 8gaussians, members per second on the worker pool (two members
in flight per worker, as `python -m lab sweep`) and batched (`--batched`: the seeds as one stacked model,
split over one process per core), evaluation included in both; members per CPU second is the comparison
that other work on the machine does not distort.

GPU (--gpu, needs CUDA): 1024 non-saturating GAN seeds x 3000 steps on the 8-Gaussian ring (target <= 15 s
of training, with the collapse rate) and 256 DDPM seeds x 3000 steps, each trained as one batched model.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab.sweep import cores, local_pool, make_sweep, run_batched, run_local  # noqa: E402

GPU_COMMANDS = [
    "python -m lab sweep --models gan --data 8gaussians --seeds 0-1023 --steps 3000 --device cuda --out gan1024",
    "python -m lab sweep --models ddpm --data 8gaussians --seeds 0-255 --steps 3000 --device cuda --out ddpm256",
    "python bench/sweep.py --gpu    # training time alone, and the GAN's collapse rate",
]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished, waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def scoreboard(a) -> None:
    from lab.scoreboard import LECTURE_KEYS, ScoreboardJob

    keys = a.models.split(",") if a.models else LECTURE_KEYS + ["gmm"]
    n = a.workers or cores()
    print(
        f"## The Scoreboard's measurement: {','.join(keys)}, {a.seeds} seeds x {a.seconds:g} s, "
        f"moons + 8gaussians, {n} trainer processes\n"
    )
    print(
        "| members | budgets (s) | target 1.25 x budgets / cores (s) | wall (s) | wall / target | CPU s "
        "| CPU s / (wall x cores) | members' train s / budgets | failed | load avg before, after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    load0, cpu0 = os.getloadavg()[0], cpu_seconds()
    t0 = time.perf_counter()
    pool = local_pool(n)
    job = ScoreboardJob(keys, a.seconds, a.seeds, "moons", "8gaussians", pool=pool).start()
    while not job.done:
        time.sleep(0.2)
    pool.close()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    ms = job.measurements
    budget = a.seconds * len(job.plan)
    target = 1.25 * budget / n
    trained = sum(m.train_seconds for m in ms)
    failed = sum(bool(m.error) for m in ms)
    print(
        f"| {len(ms)} | {budget:.0f} | {target:.1f} | {wall:.1f} | {wall / target:.2f} | {cpu:.0f} "
        f"| {cpu / (wall * n):.2f} | {trained / budget:.2f} | {failed} | {load0:.1f}, {os.getloadavg()[0]:.1f} |"
    )
    for m in ms:
        if m.error:
            print(f"- {m.key} on {m.dataset} seed {m.seed}: {m.error}")
    print()


def overhead(a) -> None:
    """Per member, the CPU seconds outside its training budget: the build and the evaluation (thread CPU
    time, so other work on the machine does not inflate it), as the Scoreboard's members pay them."""
    import torch

    from lab.data import make_dataset
    from lab.live.jobs import evaluate
    from lab.run import RUNNING, Run
    from lab.scoreboard import LECTURE_KEYS, MODES_N_EVAL
    from lab.spec import RunSpec

    torch.set_num_threads(1)
    keys = a.models.split(",") if a.models else LECTURE_KEYS + ["gmm"]
    print(
        f"## Where a Scoreboard member's time goes (seed 0, {a.seconds:g} s budget, CPU seconds, one thread)\n"
    )
    print("| dataset | family | build | training (CPU) | evaluation | (build + evaluation) / budget |")
    print("|---|---|---|---|---|---|")
    total_over = total_budget = 0.0
    for data, n_eval in (("moons", 1000), ("8gaussians", MODES_N_EVAL)):
        ds = make_dataset(data)
        for key in keys:
            c0 = time.thread_time()
            run = Run(RunSpec(key, ds, seed=0, n_train=a.n_train, max_seconds=a.seconds, views=False))
            c1 = time.thread_time()
            run.status = RUNNING
            while not run.finished:
                run.advance(25)
            c2 = time.thread_time()
            evaluate(run, n_eval=n_eval, seed=1000)
            c3 = time.thread_time()
            over = (c1 - c0) + (c3 - c2)
            total_over, total_budget = total_over + over, total_budget + a.seconds
            print(
                f"| {data} | {key} | {c1 - c0:.2f} | {c2 - c1:.2f} | {c3 - c2:.2f} | {over / a.seconds:.2f} |",
                flush=True,
            )
    print(f"| all | | | | | {total_over / total_budget:.2f} |\n")


def batched(a) -> None:
    n = a.workers or cores()
    print(f"## Batched members: {a.members} GAN seeds x {a.steps} steps on 8gaussians, {n} cores\n")
    print(
        "| path | wall (s) | members / s | CPU s | members / CPU s | failed | collapsed (< 8 modes) "
        "| load avg after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    s = make_sweep("gan", f"0-{a.members - 1}", [], data="8gaussians", steps=a.steps, n_train=a.n_train)
    for name in ("worker pool", "batched"):
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        if name == "batched":
            s.batched = True
            rows = run_batched(s, workers=n)
        else:
            rows = run_local(s, workers=n)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        failed = sum(r["status"] == "failed" for r in rows)
        collapsed = sum(r["modes"] is not None and r["modes"] < 8 for r in rows)
        print(
            f"| {name} | {wall:.1f} | {len(rows) / wall:.2f} | {cpu:.0f} | {len(rows) / cpu:.2f} | {failed} "
            f"| {collapsed}/{len(rows)} "
            f"| {os.getloadavg()[0]:.1f} |",
            flush=True,
        )
    print("\nThe GPU targets (for someone with a CUDA machine):\n")
    for c in GPU_COMMANDS:
        print(f"    {c}")
    print()


def training(a) -> None:
    """Training alone, in one thread, in CPU seconds (thread time: other work does not distort it): the same
    members solo (Run.advance, one after another) and as one batched model (lab.batched, rng=member)."""
    import torch

    from lab.batched import make_group
    from lab.data import make_dataset
    from lab.run import RUNNING, Run
    from lab.spec import RunSpec

    torch.set_num_threads(1)
    ds = make_dataset("8gaussians")
    print(f"## Training alone, one thread: {a.members} seeds x {a.train_steps} steps (builds excluded)\n")
    print("| model | solo: member-steps / CPU s | batched: member-steps / CPU s | batched / solo |")
    print("|---|---|---|---|")
    for key in ("gan", "ddpm"):
        specs = [
            RunSpec(key, ds, seed=s, n_train=a.n_train, max_steps=a.train_steps, views=False)
            for s in range(a.members)
        ]
        runs = [Run(s) for s in specs]
        c0 = time.thread_time()
        for r in runs:
            r.status = RUNNING
            r.advance(a.train_steps)
        solo = a.members * a.train_steps / (time.thread_time() - c0)
        group = make_group([Run(s) for s in specs])
        c0 = time.thread_time()
        for _ in range(a.train_steps):
            group.train_step()
        together = a.members * a.train_steps / (time.thread_time() - c0)
        print(f"| {key} | {solo:.0f} | {together:.0f} | {together / solo:.2f} |", flush=True)
    print()


def gpu(a) -> None:
    import torch

    from lab.batched import train_group
    from lab.data import make_dataset
    from lab.metrics import mode_coverage
    from lab.spec import RunSpec

    if not torch.cuda.is_available():
        print("--gpu needs a CUDA GPU; this machine has none. Commands to run there:")
        for c in GPU_COMMANDS:
            print(f"    {c}")
        return
    ds = make_dataset("8gaussians")
    print(f"## Batched members on {torch.cuda.get_device_name()}\n")
    print("| model | members | steps | train wall (s) | target (s) | result |")
    print("|---|---|---|---|---|---|")
    for key, m, target in (("gan", 1024, 15.0), ("ddpm", 256, 15.0)):
        specs = [
            RunSpec(key, ds, None, seed=s, n_train=20_000, max_steps=3000, views=False) for s in range(m)
        ]
        train_group(specs[:8], device="cuda")  # CUDA context and kernels warm before the clock
        keep: list = []
        t0 = time.perf_counter()
        runs = train_group(specs, device="cuda", keep=keep)
        wall = time.perf_counter() - t0  # includes building the members on the CPU
        train = runs[0].train_seconds
        if key == "gan":
            modes = []
            for r in runs:
                x = r.model.sample(2500, torch.Generator().manual_seed(11)).double().numpy()
                modes.append(mode_coverage(x, ds.modes, ds.mode_std).modes)
            collapsed = sum(k < 8 for k in modes)
            result = f"collapse rate {collapsed}/{m} = {collapsed / m:.3f} (fewer than 8 modes)"
        else:
            last = keep[0].loss_history()[-100:].mean(0)
            result = f"final loss {last.mean():.4f} (members' spread {last.std():.4f})"
        print(
            f"| {key} | {m} | 3000 | {train:.1f} (with builds {wall:.1f}) | {target:g} | {result} |",
            flush=True,
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["scoreboard", "overhead", "batched", "training"], default=None)
    p.add_argument("--train-steps", type=int, default=50, help="steps of the training-alone table")
    p.add_argument("--models", default="", help="Scoreboard families (default: the page's)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--members", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument("--gpu", action="store_true", help="the GPU targets (needs CUDA)")
    a = p.parse_args(argv)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {cores()} cores, load average {os.getloadavg()[0]:.1f} "
        "(a load above the cores means other work shared the machine)\n"
    )
    if a.gpu:
        gpu(a)
        return
    if a.only in (None, "scoreboard"):
        scoreboard(a)
    if a.only == "overhead":
        overhead(a)
    if a.only in (None, "training"):
        training(a)
    if a.only in (None, "batched"):
        batched(a)


if __name__ == "__main__":
    main()
