"""Sweeps: models x seeds x settings, each member trained to its budget on every core (or on Ray), one row each.

A sweep is the product of its models, its seeds and the listed values of each swept field
(`--set lr=1e-3,3e-3`). A field belongs to the models whose config has it; the other models' members do
not multiply over it. Every member is one `lab.run.Run` built from a RunSpec, trained to `--steps` or
`--seconds`, then evaluated by `lab.live.jobs.evaluate` on fresh true points (seed + 1000):

- local backend: the members go to a WorkerPool (one trainer process per core), two in flight per worker
  so no core waits for the next member's build;
- batched (`--batched`, and always with `--device cuda`): members that share a model and a setting train
  as one stacked model in this process (lab.batched: gan and ddpm), then are evaluated on every core;
  members lab.batched cannot batch go to the pool;
- Ray backend: the same member function as a Ray task (`RAY_ADDRESS`, or a local Ray for the command).

With a `--steps` budget the local and Ray backends give the same numbers for the same seeds and settings
(every family draws from its own seeded generators), and batched members with `--rng member` the same to
float rounding; with `--seconds` the number of steps depends on the machine's speed.

A member that fails is a row with its error, never a gap. `summarise` gives mean, standard error
(std / sqrt(n), ddof 1), min, max and n of every metric per setting (model + swept values).

The public API (pages use it; they never hold a model):

    sweep = make_sweep("gan", "0-15", data="8gaussians", seconds=3.0)   # SweepError: one sentence
    job = SweepJob(sweep, pool=None).start()   # members on a trainer pool, in a background thread
    job.done_count, job.total, job.fraction    # members finished (failed ones included) / all
    job.rows()                                 # the finished members' rows so far, in member order
    job.pairs()                                # (Member, row) of those, for per-member pictures
    job.summary()                              # mean / se / min / max / n per setting, of the rows so far
    job.cancel()                               # drop the members still in flight; finished rows stay
    job.done, job.cancelled, job.error, job.elapsed

`pool=None` uses `shared_pool()` (one trainer per core for this process, kept warm between sweeps); pass
`lab.live.pool.get_pool()` to share the server's trainers with the live pages instead. Without a page:
`run_local(sweep, progress)`, `run_batched(sweep, progress)`, `run_ray(sweep, progress)` return the rows.
"""

from __future__ import annotations

import atexit
import csv
import dataclasses
import json
import math
import os
import sys
import threading
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
    "sample_seconds_per_1000",  # wall time, like train_seconds: differs between runs of the same member
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
    batched: bool = False  # members of one model and setting train as one stacked model (lab.batched)
    # the batched draws: "member" or "shared" (None: member on the CPU, shared on a GPU)
    rng: str | None = None

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
        owners[name] = [
            k for k, cls in classes.items() if name in {f.name for f in dataclasses.fields(cls.Config)}
        ]
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
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[int, dict], None] | None = None,
    session: str = "sweep",
    indices: list[int] | None = None,
) -> list[dict | None]:
    """Every member on a WorkerPool of its own (one trainer per core), closed at the end; rows in member order.
    A `pool` from `local_pool()` (or the server's) is used and left open instead. `should_stop()` ends the
    sweep early (its members in flight are dropped, their rows stay None); `on_row(i, row)` hears each member
    as it finishes; `indices` limits the sweep to those members."""
    own = pool is None
    pool = pool or local_pool(workers)
    rows: list[dict | None] = [None] * len(sweep.members)
    items = [(sweep, i) for i in (range(len(sweep.members)) if indices is None else indices)]
    done_count = failed = 0

    def finish(k: int, row: dict) -> None:
        nonlocal done_count, failed
        i = items[k][1]
        rows[i], done_count = row, done_count + 1
        failed += row["status"] == "failed"
        if on_row is not None:
            on_row(i, row)
        if progress is not None:
            progress(done_count, len(items), failed)

    try:
        drive(pool, items, finish, should_stop, session)
    finally:
        if own:
            pool.close()
    return rows


def drive(
    pool,
    items: list[tuple[Sweep, int]],
    finish: Callable[[int, dict], None],
    should_stop: Callable[[], bool] | None = None,
    session: str = "sweep",
    on_start: Callable[[int], None] | None = None,
) -> None:
    """Members (sweep, index) to the pool in this order, MEMBERS_PER_WORKER in flight per worker (the next is
    built while one trains, its evaluation overlaps the other's training); `finish(k, row)` for the k-th item
    as it ends. `should_stop()` drops the members in flight."""
    from concurrent.futures import FIRST_COMPLETED, wait

    todo = list(range(len(items)))[::-1]
    flying: dict = {}
    try:
        while todo or flying:
            if should_stop is not None and should_stop():
                break
            while todo and len(flying) < MEMBERS_PER_WORKER * pool.n_workers:
                k = todo.pop()
                sw, i = items[k]
                m = sw.members[i]
                try:
                    f = pool.measure(sw.spec(m), "evaluate", sw.eval_kwargs(m), session=session)
                except Exception as e:  # noqa: BLE001 - a member that cannot start is a row with its error
                    finish(k, row_of(sw, m, None, _sentence(e)))
                    continue
                flying[f] = k
                if on_start is not None:
                    on_start(k)
            done, _ = wait(list(flying), timeout=0.2, return_when=FIRST_COMPLETED)
            for f in done:
                k = flying.pop(f)
                sw, i = items[k]
                try:
                    row = row_of(sw, sw.members[i], f.result())
                except Exception as e:  # noqa: BLE001
                    row = row_of(sw, sw.members[i], None, _sentence(e))
                finish(k, row)
    finally:
        if flying:
            pool.cancel_measures(session)


def groups(sweep: Sweep) -> list[list[int]]:
    """The members' indices grouped by model and setting (the members a batched model can train together)."""
    out: dict[tuple, list[int]] = {}
    for i, m in enumerate(sweep.members):
        out.setdefault((m.key, m.settings), []).append(i)
    return list(out.values())


MAX_GROUP = 4096  # members in one batched model (memory: a GAN member's step needs ~1 MB)


def run_batched(
    sweep: Sweep,
    progress: Callable[[int, int, int], None] | None = None,
    workers: int | None = None,
    pool=None,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[int, dict], None] | None = None,
) -> list[dict | None]:
    """Members that share a model and a setting train as one batched model (lab.batched.train_group), then
    are evaluated like any member. On a GPU one process trains each group and the CPU's cores evaluate; on
    the CPU each group is split over one process per core (one torch thread each: batched members are
    independent, so the split changes nothing but who computes them). Members lab.batched cannot batch go
    to the worker pool (run_local), on the CPU."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    import torch

    from lab.base import get_model_class, make_config
    from lab.batched import unsupported

    rows: list[dict | None] = [None] * len(sweep.members)
    solo: list[int] = []
    done_count = failed = 0

    def finish(i: int, row: dict) -> None:
        nonlocal done_count, failed
        rows[i], done_count = row, done_count + 1
        failed += row["status"] == "failed"
        if on_row is not None:
            on_row(i, row)
        if progress is not None:
            progress(done_count, len(rows), failed)

    parts: list[list[int]] = []
    for idx in groups(sweep):
        m0 = sweep.members[idx[0]]
        if unsupported(m0.key, make_config(get_model_class(m0.key).Config, dict(m0.settings))):
            solo += idx
            continue
        parts += [idx[k : k + MAX_GROUP] for k in range(0, len(idx), MAX_GROUP)]
    on_cpu = torch.device(sweep.device).type == "cpu"
    n_proc = (workers or cores()) if on_cpu else 1
    if on_cpu and n_proc > 1:  # every core trains a slice of every group
        parts = [p[k::n_proc] for p in parts for k in range(min(n_proc, len(p)))]
    stopped = should_stop or (lambda: False)
    args = [
        (
            [sweep.spec(sweep.members[i]) for i in p],
            [sweep.eval_kwargs(sweep.members[i]) for i in p],
            sweep.device,
            sweep.rng,
        )
        for p in parts
    ]
    if on_cpu and n_proc > 1 and parts:
        with ProcessPoolExecutor(n_proc, mp_context=get_context("spawn")) as ex:
            futures = {ex.submit(train_and_evaluate, *a): p for a, p in zip(args, parts)}
            try:
                for f in as_completed(futures):
                    p = futures[f]
                    try:
                        answers = f.result()
                    except Exception as e:  # noqa: BLE001 - the part's members are rows with its error
                        answers = [(None, _sentence(e))] * len(p)
                    for i, (answer, error) in zip(p, answers):
                        finish(i, row_of(sweep, sweep.members[i], answer, error))
                    if stopped():
                        break
            finally:
                ex.shutdown(wait=True, cancel_futures=True)
    else:
        for a, p in zip(args, parts):
            if stopped():
                break
            try:
                answers = train_and_evaluate(*a, eval_threads=cores(), should_stop=stopped)
            except Exception as e:  # noqa: BLE001
                answers = [(None, _sentence(e))] * len(p)
            for i, (answer, error) in zip(p, answers):
                finish(i, row_of(sweep, sweep.members[i], answer, error))
    if solo and not stopped():
        base, base_failed = done_count, failed

        def solo_progress(d: int, t: int, f: int) -> None:
            if progress is not None:
                progress(base + d, len(rows), base_failed + f)

        # on the trainers' CPU cores: the evaluation draws with CPU generators, and a GPU is the batch's
        on_pool = dataclasses.replace(sweep, device="cpu")
        got = run_local(on_pool, solo_progress, workers, pool, should_stop, on_row, indices=solo)
        for i in solo:
            rows[i] = got[i]
    return rows


def train_and_evaluate(
    specs: list,
    eval_kwargs: list[dict],
    device: str = "cpu",
    rng: str | None = None,
    eval_threads: int = 1,
    should_stop: Callable[[], bool] | None = None,
) -> list[tuple[dict | None, str]]:
    """One batched group: train it (lab.batched.train_group), then evaluate each member on the CPU
    (lab.live.jobs.evaluate, `eval_threads` at a time); (answer, error) per spec."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from lab.batched import train_group
    from lab.live.jobs import evaluate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small stacked networks: one thread per core, as in the trainer workers
    try:
        runs = train_group(specs, device=device, rng=rng, should_stop=should_stop)

        def one(pair):
            run, kw = pair
            try:
                return evaluate(run, **kw), ""
            except Exception as e:  # noqa: BLE001 - a member that cannot be evaluated is a row with its error
                return None, _sentence(e)

        with ThreadPoolExecutor(max_workers=max(1, eval_threads)) as ex:
            return list(ex.map(one, zip(runs, eval_kwargs)))
    finally:
        torch.set_num_threads(threads)


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


_SHARED_POOL = None
_SHARED_LOCK = threading.Lock()


def shared_pool():
    """One trainer per core for this process's sweeps, started on first use and kept warm (closed at exit),
    so a page's second measurement starts at once."""
    global _SHARED_POOL
    with _SHARED_LOCK:
        if _SHARED_POOL is None or _SHARED_POOL.closed:
            _SHARED_POOL = local_pool(cores())
        return _SHARED_POOL


@atexit.register
def _close_shared_pool() -> None:
    if _SHARED_POOL is not None:
        _SHARED_POOL.close()


class SweepJob:
    """Sweeps in a background thread, for pages: start, poll, cancel (see the module docstring).

    `sweeps` is one Sweep or several (the Scoreboard: one per dataset), run as one queue on one pool;
    `order(sweep, member)` sorts that queue (the costliest members first, so cheap ones fill the tail)."""

    def __init__(
        self,
        sweeps: Sweep | list[Sweep],
        pool=None,
        name: str = "sweep",
        order: Callable[[Sweep, Member], Any] | None = None,
    ):
        self.sweeps = [sweeps] if isinstance(sweeps, Sweep) else list(sweeps)
        self.sweep = self.sweeps[0] if self.sweeps else None
        self.pool = pool
        self.items = [(sw, i) for sw in self.sweeps for i in range(len(sw.members))]
        if order is not None:
            self.items.sort(key=lambda it: order(it[0], it[0].members[it[1]]))
        self.total = len(self.items)
        self.done_count = self.failed = 0
        self.error = ""
        self.started = time.monotonic()
        self.finished_at: float | None = None
        self.session = f"{name}-{id(self):x}"
        self._rows: dict[tuple[int, int], dict] = {}  # (sweep number, member index) -> row
        self._flying: set[int] = set()  # items in flight
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lab-{name}", daemon=True)

    def start(self) -> SweepJob:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            pool = self.pool or shared_pool()
            if not self._stop.is_set():
                drive(pool, self.items, self._row, self._stop.is_set, self.session, self._flying.add)
        except Exception as e:  # noqa: BLE001 - the page shows it; the job never dies silently
            self.error = _sentence(e)
        finally:
            self.finished_at = time.monotonic()

    def _row(self, k: int, row: dict) -> None:
        sw, i = self.items[k]
        with self._lock:
            self._flying.discard(k)
            self._rows[(next(s for s, x in enumerate(self.sweeps) if x is sw), i)] = row
            self.done_count += 1
            self.failed += row["status"] == "failed"

    def cancel(self, wait: float = 0.0) -> None:
        """Stop: members in flight are dropped, finished rows stay."""
        self._stop.set()
        if wait and self._thread.is_alive():
            self._thread.join(timeout=wait)

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def fraction(self) -> float:
        return self.done_count / self.total if self.total else 1.0

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started

    def in_flight(self) -> list[tuple[str, Member]]:
        """(dataset name, member) of the members training now."""
        if self.done:
            return []
        items = [self.items[k] for k in sorted(set(self._flying))]
        return [(sw.data_name, sw.members[i]) for sw, i in items]

    def pairs(self) -> list[tuple[Member, dict]]:
        """(member, row) of every finished member, sweep by sweep, in member order."""
        with self._lock:
            keys = sorted(self._rows)
            return [(self.sweeps[s].members[i], self._rows[(s, i)]) for s, i in keys]

    def rows(self) -> list[dict]:
        """The finished members' rows so far, sweep by sweep, in member order."""
        return [r for _, r in self.pairs()]

    def summary(self) -> list[dict]:
        """mean / se / min / max / n per setting of the rows so far (one sweep: its settings; several: each's)."""
        with self._lock:
            rows = dict(self._rows)
        per = [[rows[k] for k in sorted(rows) if k[0] == s] for s in range(len(self.sweeps))]
        if len(self.sweeps) == 1:
            return summarise(self.sweeps[0], per[0])
        return [
            {"data": sw.data_name, **r} for sw, mine in zip(self.sweeps, per) for r in summarise(sw, mine)
        ]


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
    batched = args.batched or str(args.device).startswith("cuda")
    if batched and args.backend == "ray":
        raise SweepError(
            "batched members (--batched, --device cuda) train in this process; not with --backend ray."
        )
    if args.rng is not None and args.rng not in ("member", "shared"):
        raise SweepError(f"--rng must be member or shared, got '{str(args.rng)[:40]}'.")
    if args.rng is not None and not batched:
        raise SweepError("--rng chooses the batched members' draws; give it with --batched or --device cuda.")
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
    sweep.batched, sweep.rng = batched, args.rng
    out = _out_dir(args.out)  # last: nothing is written before the spec is sound
    bar = Bar()
    t0 = time.perf_counter()
    try:
        if args.backend == "ray":
            rows = run_ray(sweep, bar)
        else:
            rows = run_batched(sweep, bar) if batched else run_local(sweep, bar)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    summary = summarise(sweep, rows)
    info = {"backend": args.backend, "wall_seconds": round(wall, 3), "cores": cores(), "batched": batched}
    if batched:
        info["rng"] = sweep.rng or ("member" if sweep.device == "cpu" else "shared")
    write(out, sweep, rows, summary, info)
    failed = sum(r["status"] == "failed" for r in rows)
    diverged = sum(bool(r["diverged"]) for r in rows)
    print(
        f"sweep: {len(rows)} members in {wall:.1f} s on {args.backend}{' batched' if batched else ''} "
        f"({cores()} cores, {sweep.device}), {diverged} diverged, "
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
    w.add_argument(
        "--device", default="cpu", help="cpu (default) or cuda (members then train batched on the GPU)"
    )
    w.add_argument(
        "--batched",
        action="store_true",
        help="members of one model and setting train as one stacked model (gan, ddpm; the others one by one)",
    )
    w.add_argument(
        "--rng",
        default=None,
        help="batched draws: member (each member's own generators, as its solo run; the CPU default) "
        "or shared (one stream for all, the same law; the GPU default)",
    )
    w.add_argument("--out", required=True, help="directory for results.csv, results.json, summary.csv")
