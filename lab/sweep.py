"""Sweeps: models x seeds x settings, each member trained to its budget on every core (or on Ray), one row each.

A sweep is the product of its models, its seeds and the listed values of each swept field
(`--set lr=1e-3,3e-3`). A field belongs to the models whose config has it; the other models' members do
not multiply over it. Every member is one `lab.run.Run` built from a RunSpec, trained to `--steps` or
`--seconds`, then evaluated by `lab.live.jobs.evaluate` on fresh true points (seed + 1000):

- local backend: the members go to a WorkerPool of its own (one trainer process per core), two in
  flight per worker so no core waits for the next member's build;
- Ray backend: the same member function as a Ray task (`RAY_ADDRESS`, or a local Ray for the command).

With a `--steps` budget both give the same numbers for the same seeds and settings (every family draws
from its own seeded generators); with `--seconds` the number of steps depends on the machine's speed.

A member that fails is a row with its error, never a gap. `summarise` gives mean, standard error
(std / sqrt(n), ddof 1), min, max and n of every metric per setting (model + swept values).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.cli import UsageError, _out_dir, check_run_options

MAX_MEMBERS = 20_000
MEMBERS_PER_WORKER = 2  # in flight on each trainer process: the next one is built while one trains

# what a row holds after its identity (model, data, seed, swept fields), in order
METRICS = (
    "test_nll",
    "kl_to_truth",
    "energy_distance",
    "energy_distance_floor",
    "blur_gap",
    "modes",
    "n_modes",
    "high_quality",
)
ROW_TAIL = ("steps", "train_seconds", *METRICS, "diverged", "status", "message", "error")
# summarised per setting (a diverged member counts 1 in `diverged`, so its mean is the divergence rate)
SUMMARISED = ("steps", "train_seconds", *METRICS, "diverged", "failed")


class SweepError(UsageError):
    """A bad sweep spec: one sentence, exit 2 (light: the parser imports this module without torch)."""


@dataclass(frozen=True)
class Member:
    """One member: a model, a seed and its values of the swept fields (raw strings, as given)."""

    key: str
    seed: int
    settings: tuple[tuple[str, str], ...] = ()


@dataclass
class Sweep:
    """A validated sweep: what to train and how to evaluate it."""

    models: list[str]
    dataset: Any  # lab.data.Dataset
    data_name: str
    seeds: list[int]
    grid: dict[str, list[str]]  # field -> values, in the order given
    max_steps: int | None = None
    max_seconds: float | None = None
    n_train: int = 20_000
    n_eval: int = 2000
    device: str = "cpu"
    members: list[Member] = field(default_factory=list)

    def spec(self, m: Member):
        """The RunSpec of a member (the same one for every backend)."""
        from lab.base import get_model_class, make_config
        from lab.spec import RunSpec

        config = make_config(get_model_class(m.key).Config, dict(m.settings))
        return RunSpec(
            m.key,
            self.dataset,
            config,
            seed=m.seed,
            n_train=self.n_train,
            max_steps=self.max_steps,
            max_seconds=self.max_seconds,
            device=self.device,
            views=False,
        )

    def eval_kwargs(self, m: Member) -> dict:
        return {"n_eval": self.n_eval, "seed": m.seed + 1000}

    @property
    def budget_seconds(self) -> float | None:
        """Sum of the members' training budgets in seconds (None for a --steps budget)."""
        return None if self.max_seconds is None else self.max_seconds * len(self.members)


# ---------------------------------------------------------------------------------------------
# Parsing and validation: every mistake is one sentence
# ---------------------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """'0-63' -> 0..63, '0,3,7' -> [0, 3, 7]; ranges and single seeds mix ('0-3,10')."""
    from lab.base import MAX_SEED

    text = (text or "").strip()
    if not text:
        raise SweepError("--seeds is empty; give a range such as 0-63 or a list such as 0,3,7.")
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise SweepError(
                f"--seeds: '{part[:40]}' is not a seed or a range of seeds such as 0-63."
            ) from None
        if not (0 <= a <= MAX_SEED and 0 <= b <= MAX_SEED):
            raise SweepError(f"--seeds: '{part[:40]}' is outside the seeds 0 to {MAX_SEED}.")
        if b < a:
            raise SweepError(f"--seeds: the range {a}-{b} is empty (its end is below its start).")
        if len(seeds) + b - a + 1 > MAX_MEMBERS:
            raise SweepError(
                f"--seeds: more than {MAX_MEMBERS} seeds; a sweep has at most {MAX_MEMBERS} members."
            )
        seeds.extend(range(a, b + 1))
    dup = sorted({s for s in seeds if seeds.count(s) > 1}) if len(seeds) < 5000 else _dups(seeds)
    if dup:
        raise SweepError(f"--seeds lists seed {dup[0]} more than once.")
    return seeds


def _dups(xs: list[int]) -> list[int]:
    seen, dup = set(), []
    for x in xs:
        if x in seen:
            dup.append(x)
        seen.add(x)
    return sorted(dup)


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """['lr=1e-3,3e-3', 'loss=gan'] -> {'lr': ['1e-3', '3e-3'], 'loss': ['gan']}."""
    grid: dict[str, list[str]] = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SweepError(f"--set needs field=v1,v2,..., got '{item[:40]}'.")
        if name in grid:
            raise SweepError(
                f"--set {name[:40]} is given twice; list all its values in one --set {name}=v1,v2."
            )
        vals = [v.strip() for v in values.split(",")]
        if any(not v for v in vals):
            raise SweepError(f"--set {name[:40]} has an empty value; give values such as {name[:40]}=v1,v2.")
        dup = next((v for i, v in enumerate(vals) if v in vals[:i]), None)
        if dup is not None:
            raise SweepError(f"--set {name[:40]} lists the value {dup[:40]} twice.")
        grid[name] = vals
    return grid


def make_sweep(
    models: str,
    seeds: str,
    sets: list[str] | None = None,
    data: str | None = None,
    data_file: str | None = None,
    steps: int | None = None,
    seconds: float | None = None,
    n_train: int = 20_000,
    n_eval: int = 2000,
    device: str = "cpu",
) -> Sweep:
    """A validated Sweep from the command line's strings; a bad spec raises SweepError (or the data's DataError)."""
    from lab.base import ConfigError, get_model_class, make_config
    from lab.data import load_points_csv, make_dataset

    keys = [k.strip() for k in (models or "").split(",")]
    if not models or any(not k for k in keys):
        raise SweepError("--models needs one or more model keys separated by commas, such as gan,flow.")
    dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if dup is not None:
        raise SweepError(f"--models lists {dup[:40]} twice.")
    classes = {
        k: get_model_class(k) for k in keys
    }  # an unknown key: ConfigError's sentence names the choices
    if (steps is None) == (seconds is None):
        raise SweepError("a sweep needs one budget: --steps N or --seconds S.")
    device = check_run_options(seconds, steps, n_train, device)  # the same sentences as `train`
    seed_list = parse_seeds(seeds)
    grid = parse_grid(sets or [])
    owners: dict[str, list[str]] = {}
    for name, values in grid.items():
        owners[name] = [k for k, cls in classes.items() if name in {f.name for f in _fields(cls.Config)}]
        if not owners[name]:
            raise SweepError(
                f"--set {name[:40]}: no model in this sweep ({', '.join(keys)}) has a setting "
                f"'{name[:40]}' (see python -m lab list)."
            )
        for k in owners[name]:
            for v in values:
                try:
                    make_config(classes[k].Config, {name: v})
                except ConfigError as e:
                    raise SweepError(f"--set {name[:40]}={v[:40]} for {k}: {e}") from None
    n = sum(len(seed_list) * math.prod(len(grid[f]) for f in grid if k in owners[f]) for k in keys)
    if n > MAX_MEMBERS:
        raise SweepError(f"the sweep has {n} members; at most {MAX_MEMBERS} (fewer seeds or values).")
    if data_file:
        ds, data_name = load_points_csv(data_file), os.path.basename(data_file)
    elif data:
        ds, data_name = make_dataset(data), data
    else:
        raise SweepError("a sweep needs --data NAME or --data-file FILE.csv.")
    sweep = Sweep(keys, ds, data_name, seed_list, grid, steps, seconds, n_train, n_eval, device)
    for k in keys:
        mine = [f for f in grid if k in owners[f]]
        for combo in _product([grid[f] for f in mine]):
            settings = tuple(zip(mine, combo))
            try:
                make_config(
                    classes[k].Config, dict(settings)
                )  # combinations a config refuses, before any training
            except ConfigError as e:
                raise SweepError(
                    f"--set {', '.join(f'{a}={b}' for a, b in settings)[:80]} for {k}: {e}"
                ) from None
            sweep.members.extend(Member(k, s, settings) for s in seed_list)
    return sweep


def _fields(cls):
    import dataclasses

    return dataclasses.fields(cls)


def _product(lists: list[list[str]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for values in lists:
        out = [o + (v,) for o in out for v in values]
    return out


# ---------------------------------------------------------------------------------------------
# One member: the function every backend runs (in a trainer worker, or as a Ray task)
# ---------------------------------------------------------------------------------------------


def train_member(spec, n_eval: int, seed: int) -> dict[str, Any]:
    """Train one member to its budget in this process and evaluate it: the answer a trainer worker gives to
    WorkerPool.measure (lab.live.jobs.evaluate on a lab.run.Run), for backends without our workers."""
    import torch

    from lab.live.jobs import evaluate
    from lab.run import fit

    torch.set_num_threads(1)  # as in the trainer workers (OMP_NUM_THREADS=1): same threads, same numbers
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    run = fit(spec)
    return evaluate(run, n_eval=n_eval, seed=seed)


def row_of(sweep: Sweep, m: Member, answer: dict | None, error: str = "") -> dict[str, Any]:
    """A member's row: identity, every swept field (blank where the model has none), its numbers or its error."""
    settings = dict(m.settings)
    row: dict[str, Any] = {"model": m.key, "data": sweep.data_name, "seed": m.seed}
    row.update({f: settings.get(f, "") for f in sweep.grid})
    row.update(dict.fromkeys(ROW_TAIL))
    if answer is None:
        row.update(status="failed", error=error or "no answer", diverged=False)
        return row
    metrics = answer.get("metrics") or {}
    row.update(
        steps=answer.get("steps"),
        train_seconds=answer.get("train_seconds"),
        status=answer.get("status"),
        message=answer.get("message", ""),
        diverged=bool(answer.get("diverged")),
        error="",
    )
    for k in METRICS:
        v = metrics.get(k)
        row[k] = float(v) if isinstance(v, float) else v
    return row


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_local(
    sweep: Sweep,
    progress: Callable[[int, int, int], None] | None = None,
    workers: int | None = None,
    pool=None,
) -> list[dict]:
    """Every member on a WorkerPool of its own (one trainer per core), closed at the end; rows in member order.
    A `pool` from `local_pool()` is used and left open instead (several sweeps in a row start it once)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    own = pool is None
    pool = pool or local_pool(workers)
    rows: list[dict | None] = [None] * len(sweep.members)
    todo = list(range(len(sweep.members)))[::-1]
    flying: dict = {}
    failed = 0
    try:
        while todo or flying:
            while todo and len(flying) < MEMBERS_PER_WORKER * pool.n_workers:
                i = todo.pop()
                m = sweep.members[i]
                try:
                    f = pool.measure(sweep.spec(m), "evaluate", sweep.eval_kwargs(m), session="sweep")
                except Exception as e:  # noqa: BLE001 - a member that cannot start is a row with its error
                    rows[i] = row_of(sweep, m, None, _sentence(e))
                    failed += 1
                    continue
                flying[f] = i
            done, _ = wait(list(flying), timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                i = flying.pop(f)
                try:
                    rows[i] = row_of(sweep, sweep.members[i], f.result())
                except Exception as e:  # noqa: BLE001
                    rows[i] = row_of(sweep, sweep.members[i], None, _sentence(e))
                    failed += 1
            if progress is not None:
                progress(sum(r is not None for r in rows), len(rows), failed)
    finally:
        if own:
            pool.close()
        elif flying:
            pool.cancel_measures("sweep")
    return rows  # type: ignore[return-value]


def run_ray(sweep: Sweep, progress: Callable[[int, int, int], None] | None = None) -> list[dict]:
    """Every member as a Ray task running `train_member` (RAY_ADDRESS's cluster, else a local Ray for this call)."""
    try:
        import ray
    except ImportError:
        raise SweepError(
            "--backend ray needs the ray package (pip install ray, see requirements.txt)."
        ) from None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        env = {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}
        if address:  # a cluster's nodes get this repository as the tasks' working directory
            env["working_dir"] = root
            env["excludes"] = [".git", "static", "tests/e2e", "*.safetensors", "*.mp4", "*.gif"]
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:
            env["env_vars"]["PYTHONPATH"] = os.pathsep.join(
                filter(None, [root, os.environ.get("PYTHONPATH", "")])
            )
            ray.init(
                num_cpus=cores(),
                runtime_env=env,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
    task = ray.remote(num_cpus=1, max_retries=0)(train_member)
    rows: list[dict | None] = [None] * len(sweep.members)
    failed = 0
    try:
        refs = {}
        for i, m in enumerate(sweep.members):
            refs[task.remote(sweep.spec(m), **sweep.eval_kwargs(m))] = i
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in ready:
                i = refs.pop(ref)
                try:
                    rows[i] = row_of(sweep, sweep.members[i], ray.get(ref))
                except Exception as e:  # noqa: BLE001 - a RayTaskError carries the member's own exception
                    cause = getattr(e, "cause", None) or e
                    rows[i] = row_of(sweep, sweep.members[i], None, _sentence(cause))
                    failed += 1
            if progress is not None:
                progress(sum(r is not None for r in rows), len(rows), failed)
    finally:
        if started:
            ray.shutdown()
    return rows  # type: ignore[return-value]


def local_pool(workers: int | None = None):
    """A started trainer pool for sweeps (one process per core unless `workers`); close() it when done."""
    from lab.live.pool import WorkerPool

    pool = WorkerPool(workers or cores())  # members go to the worker with the fewest open requests
    pool.start()
    return pool


def _sentence(e: BaseException) -> str:
    """A pool's JobError is already the member's sentence; anything else says what it was."""
    text = str(e).strip().splitlines()[0][:300] if str(e).strip() else "no message"
    return text if type(e).__name__ == "JobError" else f"{type(e).__name__}: {text}"


# ---------------------------------------------------------------------------------------------
# Summary per setting, and the files
# ---------------------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, float | int | None]:
    """mean, standard error of the mean (sample std / sqrt(n)), min, max, n of the finite values."""
    xs = [float(v) for v in values if v is not None and not isinstance(v, str) and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return {"mean": None, "se": None, "min": None, "max": None, "n": 0}
    mean = sum(xs) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1) / n) if n > 1 else None
    return {"mean": mean, "se": se, "min": min(xs), "max": max(xs), "n": n}


def summarise(sweep: Sweep, rows: list[dict]) -> list[dict]:
    """One record per (setting, metric): model, the swept fields, metric, mean, se, min, max, n."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], *(r[f] for f in sweep.grid)), []).append(r)
    out = []
    for key, members in groups.items():
        ident = {"model": key[0], **dict(zip(sweep.grid, key[1:]))}
        for metric in SUMMARISED:
            if metric == "failed":
                values = [1.0 if r["status"] == "failed" else 0.0 for r in members]
            elif metric == "diverged":
                values = [1.0 if r["diverged"] else 0.0 for r in members if r["status"] != "failed"]
            else:
                values = [r[metric] for r in members]
            s = stats(values)
            if s["n"] or metric in ("failed", "diverged"):
                out.append({**ident, "metric": metric, **s})
    return out


def write(out: str, sweep: Sweep, rows: list[dict], summary: list[dict], info: dict | None = None) -> None:
    """DIR/results.csv, DIR/results.json (rows and the sweep's description), DIR/summary.csv."""
    os.makedirs(out, exist_ok=True)
    cols = ["model", "data", "seed", *sweep.grid, *ROW_TAIL]
    _csv(os.path.join(out, "results.csv"), cols, rows)
    _csv(
        os.path.join(out, "summary.csv"),
        ["model", *sweep.grid, "metric", "mean", "se", "min", "max", "n"],
        summary,
    )
    desc = {
        "models": sweep.models,
        "data": sweep.data_name,
        "seeds": sweep.seeds,
        "grid": sweep.grid,
        "max_steps": sweep.max_steps,
        "max_seconds": sweep.max_seconds,
        "n_train": sweep.n_train,
        "n_eval": sweep.n_eval,
        "device": sweep.device,
        **(info or {}),
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(_finite({"sweep": desc, "rows": rows, "summary": summary}), f, indent=1)


def _csv(path: str, cols: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in cols})


def _cell(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "" if v is None else str(v)
    if isinstance(v, float):
        return f"{v:.8g}"
    return v


def _finite(d):
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_finite(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


# ---------------------------------------------------------------------------------------------
# The command (python -m lab sweep)
# ---------------------------------------------------------------------------------------------


class Bar:
    """A progress line on stderr, only on a terminal: members done, failed, elapsed and left."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width, self.t0, self.drawn = width, time.monotonic(), False

    def __call__(self, done: int, total: int, failed: int) -> None:
        if not self.enabled:
            return
        f = done / total if total else 1.0
        el = time.monotonic() - self.t0
        left = f" ~{el / f - el:.0f}s left" if 0 < f < 1 else ""
        bar = "#" * int(f * self.width) + "-" * (self.width - int(f * self.width))
        bad = f", {failed} failed" if failed else ""
        self.stream.write(f"\r[{bar}] {done}/{total} members{bad}  {el:.0f}s{left}   ")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def command(args) -> int:
    """`python -m lab sweep`: validate everything, train every member, write the three files, print one line."""
    if args.backend not in ("local", "ray"):
        raise SweepError(f"--backend must be local or ray, got '{str(args.backend)[:40]}'.")
    sweep = make_sweep(
        args.models,
        args.seeds,
        args.set,
        data=args.data,
        data_file=args.data_file,
        steps=args.steps,
        seconds=args.seconds,
        n_train=args.n_train,
        device=args.device,
    )
    out = _out_dir(args.out)  # last: nothing is written before the spec is sound
    bar = Bar()
    t0 = time.perf_counter()
    try:
        rows = run_ray(sweep, bar) if args.backend == "ray" else run_local(sweep, bar)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    summary = summarise(sweep, rows)
    write(
        out, sweep, rows, summary, {"backend": args.backend, "wall_seconds": round(wall, 3), "cores": cores()}
    )
    failed = sum(r["status"] == "failed" for r in rows)
    diverged = sum(bool(r["diverged"]) for r in rows)
    print(
        f"sweep: {len(rows)} members in {wall:.1f} s on {args.backend} ({cores()} cores), {diverged} diverged, "
        f"{failed} failed; wrote {os.path.join(out, 'results.csv')}, results.json, summary.csv"
    )
    return 0


def add_parser(sub) -> None:
    """The `sweep` subcommand's arguments (lab/cli.py calls this)."""
    w = sub.add_parser(
        "sweep", help="train models x seeds x settings on every core (or Ray); one row per member"
    )
    w.add_argument("--models", required=True, help="model keys separated by commas, e.g. gan,flow")
    src = w.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="built-in dataset name")
    src.add_argument("--data-file", help="CSV with two numeric columns, header optional")
    w.add_argument("--seeds", required=True, help="a range such as 0-63, or a list such as 0,3,7")
    w.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="swept setting: every listed value is a setting (the product over fields)",
    )
    budget = w.add_mutually_exclusive_group(required=True)
    budget.add_argument(
        "--seconds", type=float, help="training seconds per member (steps then depend on the machine)"
    )
    budget.add_argument("--steps", type=int, help="training steps per member (same numbers on every backend)")
    w.add_argument(
        "--backend",
        default="local",
        help="local (default: every core here) or ray (RAY_ADDRESS, or a "
        "local Ray); with --steps both give the same numbers, with --seconds they cannot",
    )
    w.add_argument(
        "--n-train", type=int, default=20_000, help="training points drawn from a built-in dataset"
    )
    w.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    w.add_argument("--out", required=True, help="directory for results.csv, results.json, summary.csv")
