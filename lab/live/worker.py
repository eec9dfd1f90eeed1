"""A trainer worker process: holds runs like actors, trains them in slices fair between sessions,
and sends their snapshots to the page process.

Started by lab.live.pool as `python -m lab.live.worker FD` with one end of a socket pair. It ends when
told to, or when the other end closes (the server stopped or died): a worker never outlives its server.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import signal
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from lab.live.messages import Command, Picture, Reply
from lab.live.pacing import LiveRun, PictureCost, PictureOrder, PicturePacer, SpeedLimit
from lab.live.trim import release_memory
from lab.snapshot import DONE, PAUSED, READY, RUNNING, STOPPED, Snapshot

# fields a picture may leave as they were: the pool copies them from the run's previous snapshot
_DENSITY_FIELDS = ("density",)
_VIEW_FIELDS = ("views", "views_time")
_HISTORY_FIELDS = ("losses", "metrics", "latest_metrics")
# what a run stopped by an error keeps showing: its last picture and histories
_KEPT_WHEN_STOPPED = (
    "samples",
    *_DENSITY_FIELDS,
    *_VIEW_FIELDS,
    *_HISTORY_FIELDS,
    "sample_seconds_per_1000",
    "train_seconds",
    "progress",
    "lr",
)
NICE = 5  # a worker's priority below the server's (a third of its CPU weight when both want a core)


@dataclass
class Actor:
    """One run in this worker: its model (once built), its session, and what was asked of it."""

    run_id: str
    session: str
    spec: Any  # lab.run.RunSpec
    run: Any = None  # lab.run.Run, None until built
    many: bool = False  # its page shows more than two runs
    start_after_build: bool = False
    weights: bytes | None = None  # uploaded weights to load once built
    speed: SpeedLimit | None = None
    pending_steps: int = 0
    redraw: bool = False  # a still picture is due (paused, stepped, finished, changed live)
    seq: int = 0  # the last command applied
    measure: tuple[int, str, dict] | None = None  # (request, evaluate job, kwargs): a sweep member
    evaluator: Any = None
    sample_seconds_per_1000: float | None = None  # from full-size draws only
    last_history: float = -math.inf  # when losses and metrics were last sent
    used: float = 0.0  # training seconds this run has had (its virtual clock)
    trained: float = 0.0  # training seconds it really had (for its first turns)
    since: float | None = None  # when it first trained (its session's first steps are served in that order)
    wall: float = 0.0  # wall seconds it has been running (for a wall-clock budget)
    wall_mark: float | None = None  # when wall time was last counted while running


class Worker:
    """The message loop and the training rounds. `clock` is injected for the pacer."""

    round_seconds = 0.1  # pictures and commands are looked at at least this often
    slice_seconds = 0.03  # one turn of one run at most (less with many runs)
    max_debt = 0.25  # seconds a run may be ahead of its session's least served run
    # a run's first steps go before fair share: a newcomer's panels move within seconds of Train even when ten
    # sessions share the cores (a VAE's first 20 cost ~0.4 s with its first validation; its fair share of a
    # crowd is a fiftieth of a core)
    warm_steps, warm_seconds = 20, 1.0
    history_interval = 1.0  # losses and metrics travel with a picture at most this often

    def __init__(self, conn: Connection, clock: Callable[[], float] = time.monotonic):
        self.conn = conn
        self.clock = clock
        self.pacer = PicturePacer(clock)
        self.actors: dict[str, Actor] = {}
        self.builds: deque[str] = deque()
        self.evaluators: dict[tuple, Any] = {}
        self.closed = False
        self.parent = os.getppid()
        self.session_time: dict[str, float] = {}  # training seconds each session has had (a virtual clock)
        self.active: set[str] = set()  # sessions with running runs at the last turn
        self.turns: set[str] = set()  # runs that were running at the last turn
        self.trim_due = False  # a session's runs went: give the memory back after this batch of commands

    # -- messages -----------------------------------------------------------------------------
    def send(self, msg) -> None:
        try:
            self.conn.send(msg)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.closed = True

    def poll(self, timeout: float = 0.0) -> None:
        """Handle every waiting command (waiting up to `timeout` for the first)."""
        try:
            while not self.closed and self.conn.poll(timeout):
                self.handle(self.conn.recv())
                timeout = 0.0
        except (EOFError, OSError):  # the server is gone
            self.closed = True
        if self.trim_due:  # a garbage collection and a trim take 0.1-0.3 s: twenty closed tabs took seconds
            self.trim_due = False
            release_memory()
        if os.getppid() != self.parent:
            self.closed = True

    def handle(self, c: Command) -> None:
        a = self.actors.get(c.run_id)
        if a is not None:
            a.seq = max(a.seq, c.seq)
        if c.op == "shutdown":
            self.closed = True
        elif c.op in ("add", "measure"):
            self.forget(c.run_id)
            a = Actor(
                c.run_id,
                c.session,
                c.args["spec"],
                many=c.args.get("many", False),
                seq=c.seq,
                start_after_build=c.args.get("start", False) or c.op == "measure",
                weights=c.args.get("weights"),
            )
            if c.op == "measure":
                a.measure = (c.request, c.args["evaluate"], c.args.get("kwargs", {}))
            self.actors[c.run_id] = a
            self.builds.append(c.run_id)
        elif c.op == "remove":
            self.forget(c.run_id)
        elif c.op == "remove_session":
            for rid in [i for i, x in self.actors.items() if x.session == c.session]:
                self.forget(rid)
            self.trim_due = True  # once for every session that closed meanwhile (see poll)
        elif c.op == "job":
            self.job(c)
        elif a is None:
            return
        elif c.op == "play":
            if a.run is None:
                a.start_after_build = True
            elif a.run.status in (READY, PAUSED):
                a.run.status = RUNNING
                if a.speed:
                    a.speed.restart()
        elif c.op == "pause":  # always answered with a still picture (the page waits for one)
            a.start_after_build, a.pending_steps = False, 0
            if a.run is not None:
                if a.run.status == RUNNING:
                    a.run.status = PAUSED
                a.redraw = True
        elif c.op == "stop":
            if a.run is not None:
                if not a.run.finished:
                    a.run.finish(STOPPED, f"stopped at step {a.run.step}")
                a.redraw = True
        elif c.op == "step":
            if a.run is not None and a.run.status in (READY, PAUSED):
                a.run.status = PAUSED
                a.pending_steps += int(c.args.get("n", 1))
        elif c.op == "speed":
            rate = c.args.get("rate")
            a.speed = SpeedLimit(rate) if rate else None
        elif c.op == "live":
            a.many = c.args.get("many", a.many)
            if a.run is not None:
                self.apply_live(a, c.args)

    def apply_live(self, a: Actor, args: dict) -> None:
        """Live settings: the learning rate, a sampler's steps, the budget; no retraining."""
        run = a.run
        fields = args.get("fields") or {}
        if fields:
            run.model.apply_live(fields)
        run.spec = dataclasses.replace(
            run.spec,
            max_steps=args.get("max_steps"),
            max_seconds=args.get("max_seconds"),
            max_wall_seconds=args.get("max_wall_seconds"),
            config=run.model.config,
        )
        a.spec = run.spec
        if (
            run.status == "done"
            and run.budget_left()
            and not run.model.converged
            and not self.out_of_wall_time(a)
        ):
            run.status, run.message = PAUSED, ""  # a bigger budget lets a finished run go on
        a.redraw = True

    def job(self, c: Command) -> None:
        from lab.live.jobs import JOBS

        a = self.actors.get(c.run_id)
        name = c.args.get("name", "")
        try:
            if name not in JOBS:
                raise ValueError(f"there is no job '{name}'")
            if c.run_id and (a is None or a.run is None):
                raise ValueError("that run is not built (yet)")
            value = JOBS[name](a.run if a else None, **c.args.get("kwargs", {}))
            self.send(Reply(c.request, value))
        except Exception as e:  # a job's failure is the page's sentence, never the worker's end
            self.send(Reply(c.request, error=_sentence(e)))

    def forget(self, run_id: str) -> None:
        if self.actors.pop(run_id, None) is not None:
            self.pacer.forget(run_id)
            self.evaluators.pop(("run", run_id), None)

    # -- building ---------------------------------------------------------------------------------
    def build_next(self) -> None:
        """Build one waiting run (a build may take a second: KDE's bandwidth search, GMM's BIC fits), of the
        session with the fewest built runs: ten sessions opening together each get their first panels soon,
        and one more gets its runs built without waiting for all the others' nine."""
        while self.builds:
            built: dict[str, int] = {}
            for x in self.actors.values():
                built[x.session] = built.get(x.session, 0) + (x.run is not None)
            rid = min(
                self.builds, key=lambda r: built.get(self.actors[r].session, 0) if r in self.actors else -1
            )
            self.builds.remove(rid)
            a = self.actors.get(rid)
            if a is None or a.run is not None:
                continue
            from lab.run import Run

            try:
                a.run = Run(a.spec)
                if a.weights is not None:
                    load_uploaded(a.run, a.weights)
                    a.run.message = "loaded from uploaded weights"
                a.weights = None
            except Exception as e:  # bad settings for this data: a sentence on the page
                a.run = None
                self.fail(a, "error", f"could not build {a.spec.key}: {_sentence(e)}")
                self.actors.pop(a.run_id, None)
                return
            a.run.status = RUNNING if a.start_after_build else PAUSED
            if not a.measure:
                self.picture(a, self.pacer.still(a.run_id, a.many), live=False, metrics=a.run.step > 0)
            return

    # -- training ---------------------------------------------------------------------------------
    def serve(self) -> None:
        while not self.closed:
            busy = self.builds or any(
                a.run is not None and (a.run.status == RUNNING or a.pending_steps or a.redraw)
                for a in self.actors.values()
            )
            self.poll(0.0 if busy else 0.2)
            if self.closed:
                break
            if (
                self.builds
            ):  # one build, then a round: building a session's nine models does not stop the others
                self.build_next()
            wait = self.train_round()
            if wait > 0:  # every running run waits for its speed limit: the core is free until the next step
                t0 = self.clock()
                self.poll(min(wait, 0.05))
                self.pacer.earn(self.clock() - t0, 0, idle=True)

    def train_round(self) -> float:
        """About `round_seconds` of training in slices, each to the least served run of the least served
        session (their training seconds are virtual clocks, as in fair-share schedulers): sessions share the
        worker equally whatever their number of runs, and a family whose one step takes 0.4 s (KDE's
        leave-one-out score, a VAE's validation) waits its turn instead of holding every other panel back.
        Stills for stepped or paused runs first. Returns how long to wait when every running run is at its
        speed limit (else 0)."""
        for a in list(self.actors.values()):
            if a.run is not None and (a.pending_steps or a.redraw) and a.run.status != RUNNING:
                self.guarded(a, self.still)
        self.count_wall_time()
        t_end = self.clock() + self.round_seconds
        any_trained, next_due, limited = False, math.inf, set()
        while not self.closed:
            running = [
                a
                for a in self.actors.values()
                if a.run is not None and a.run.status == RUNNING and a.run_id not in limited
            ]
            if not running:
                break
            self.catch_up(running)
            for x in running:
                if x.since is None:
                    x.since = self.clock()
            warm = [x for x in running if self.warming(x)]
            if warm:
                # sessions in the order they started (first come, first served: ten sessions pressing Train
                # together see their first steps one after another, ~1 s each, instead of all after ~10 s)
                since: dict[str, float] = {}
                for x in warm:
                    since[x.session] = min(since.get(x.session, math.inf), x.since)
                a = min(warm, key=lambda x: (since[x.session], x.trained))
                session = a.session
            else:
                session = min({a.session for a in running}, key=lambda k: self.session_time[k])
                a = min((x for x in running if x.session == session), key=lambda x: x.used)
            t0 = self.clock()
            # a run's panel moves once per turn: with many runs, short slices keep every turn within a round
            slice_seconds = min(self.slice_seconds, self.round_seconds / len(running))
            trained, wait = self.guarded(a, self.train_slice, slice_seconds)
            spent = self.clock() - t0
            # within a session a slow step is forgiven past max_debt: the others run on meanwhile, but its panel
            # is not frozen for the whole time they take to catch up with one 0.8 s validation
            least = min(x.used for x in running if x.session == session)
            a.used = min(a.used + spent, least + self.max_debt)
            a.trained += spent
            self.session_time[session] += spent
            if trained:
                any_trained = True
                self.after_slice(a)
            else:
                limited.add(a.run_id)
                if wait is not None:
                    next_due = min(next_due, wait)
            self.poll()  # pause, step and settings answer between slices
            if self.clock() >= t_end:
                break
        return 0.0 if any_trained or next_due == math.inf else next_due

    def warming(self, a: Actor) -> bool:
        """In its first steps, which go before fair share. EM and KDE's bandwidth search (no learning rate)
        take whole-data steps of 30-300 ms: their first step is their warm-up."""
        whole_data = "lr" in getattr(a.run.model, "unused_fields", ())
        return a.run.step < (1 if whole_data else self.warm_steps) and a.trained < self.warm_seconds

    def count_wall_time(self) -> None:
        """Wall time while running, for runs with a wall-clock budget: the comparison ends on time however
        many runs and sessions share the cores (each run got its fair share of them meanwhile)."""
        now = self.clock()
        for a in list(self.actors.values()):
            running = a.run is not None and a.run.status == RUNNING
            if running and a.wall_mark is not None:
                a.wall += now - a.wall_mark
            a.wall_mark = now if running else None
            if running and self.out_of_wall_time(a):
                a.run.finish(DONE, f"finished on time: {a.run.step:,} steps in {a.wall:.0f} s of wall time")
                self.guarded(a, self.finish_measure if a.measure else self.still)

    def out_of_wall_time(self, a: Actor) -> bool:
        limit = a.spec.max_wall_seconds
        return limit is not None and a.wall >= limit

    def catch_up(self, running: list[Actor]) -> None:
        """A session or run that starts (or comes back) joins at the least served one's clock, so it gets its
        share from now on rather than a burst for the time it was away."""
        sessions = {a.session for a in running}
        known = [self.session_time[k] for k in sessions if k in self.session_time]
        floor = min(known) if known else 0.0
        for k in sessions:
            if k not in self.session_time or k not in self.active:
                self.session_time[k] = max(self.session_time.get(k, 0.0), floor)
        self.active = sessions
        for k in sessions:
            mine = [a for a in running if a.session == k]
            least = (
                min(a.used for a in mine if a.run_id in self.turns)
                if any(a.run_id in self.turns for a in mine)
                else 0.0
            )
            for a in mine:
                if a.run_id not in self.turns:
                    a.used = max(a.used, least)
        self.turns = {a.run_id for a in running}

    def guarded(self, a: Actor, fn, *args, **kwargs):
        """fn(a, ...); a family that raises ends its own run with a sentence, and the others go on."""
        try:
            return fn(a, *args, **kwargs)
        except Exception as e:
            run = a.run
            step = run.step if run is not None else 0
            msg = f"training stopped at step {step}: {_sentence(e)}"
            print(f"lab worker: {a.spec.key} run {a.run_id}: {type(e).__name__}: {e}", file=sys.stderr)
            if run is not None:
                run.status, run.message = STOPPED, msg
            self.fail(a, STOPPED, msg, reuse=_KEPT_WHEN_STOPPED)
            return False, None

    def fail(self, a: Actor, status: str, message: str, reuse: tuple[str, ...] = ()) -> None:
        """End a run with a sentence: a sweep member's request fails with it; a page's run sends it with its
        last picture (`reuse`: what the page keeps from the run's previous snapshot)."""
        if a.measure:
            self.send(Reply(a.measure[0], error=message))
            self.forget(a.run_id)
            return
        run = a.run
        snap = Snapshot(
            a.run_id,
            a.spec.key,
            run.model.title if run is not None else a.spec.key,
            status=status,
            message=message,
            step=run.step if run is not None else 0,
            time=time.time(),
        )
        self.send(Picture(snap, reuse=reuse, seq=a.seq))

    def train_slice(self, a: Actor, slice_seconds: float) -> tuple[bool, float | None]:
        run = a.run
        t0 = self.clock()
        allowed = 1 << 30
        if a.speed is not None:
            allowed, wait = a.speed.allowed(t0, run.step)
            if not allowed:
                return False, wait
        # at least one step per slice: a slow step (EM over every point) would otherwise lose whole rounds
        run.advance(1)
        allowed -= 1
        while allowed > 0 and run.status == RUNNING and self.clock() - t0 < slice_seconds:
            run.advance(1)
            allowed -= 1
        n_running = sum(x.run is not None and x.run.status == RUNNING for x in self.actors.values())
        self.pacer.earn(self.clock() - t0, n_running)
        return True, None

    def after_slice(self, a: Actor) -> None:
        if a.run.finished:
            if a.measure:
                self.guarded(a, self.finish_measure)
            else:
                self.guarded(a, self.still)
            return
        running = [x for x in self.actors.values() if x.run is not None and x.run.status == RUNNING]
        # each session's running runs, counted once per slice (counted per run, a crowd's 90 runs cost 90^2)
        peers = Counter(x.session for x in running)
        live = [
            LiveRun(x.run_id, x.run.step, x.many, peers[x.session], x.speed.rate if x.speed else None)
            for x in running
            if not x.measure
        ]
        for _ in range(len(live)):
            order = self.pacer.next_live(live)
            if order is None:
                return
            x = self.actors[order.run_id]
            self.guarded(x, self.picture, order, live=True, metrics=order.metrics)

    def progress(self, a: Actor) -> float:
        limit = a.spec.max_wall_seconds
        return a.run.progress if not limit else max(a.run.progress, min(1.0, a.wall / limit))

    def still(self, a: Actor) -> None:
        if a.pending_steps:
            n, a.pending_steps = a.pending_steps, 0
            a.run.advance(n)
            if a.run.status == RUNNING:
                a.run.status = PAUSED
        a.redraw = False
        if not a.measure:
            self.picture(a, self.pacer.still(a.run_id, a.many), live=False, metrics=True)

    def finish_measure(self, a: Actor) -> None:
        from lab.live.jobs import JOBS

        request, evaluate, kwargs = a.measure
        value = JOBS[evaluate](a.run, **kwargs)
        self.send(Reply(request, value))
        self.forget(a.run_id)

    # -- pictures ---------------------------------------------------------------------------------
    def evaluator(self, a: Actor):
        from lab.metrics import Evaluator

        ds, seed = a.run.spec.dataset, a.run.spec.seed
        # runs on the same data and seed share one reference sample
        key = (
            ("data", ds.name, tuple(sorted(ds.params().items())), seed)
            if ds.has_density
            else ("run", a.run_id)
        )
        if key not in self.evaluators:
            test = None if ds.has_density else a.run.test_points
            self.evaluators[key] = Evaluator(ds, n=500, seed=seed, test_points=test)
        return self.evaluators[key]

    def picture(self, a: Actor, order: PictureOrder, live: bool, metrics: bool) -> None:
        """Draw the run as the order says and send it; what was not redrawn travels as `reuse`."""
        import torch

        run, m = a.run, a.run.model
        t_start = time.perf_counter()
        views_cost = density_cost = None
        reuse: list[str] = []
        views, views_time = {}, 0.0
        if order.views and run.spec.views:
            t0 = time.perf_counter()
            views, views_time = m.views(), time.time()
            views_cost = time.perf_counter() - t0
        elif run.spec.views:
            reuse += _VIEW_FIELDS
        density = None
        if order.density:
            t0 = time.perf_counter()
            density = density_grid(m, run.spec.dataset.bounds(), order.grid)
            density_cost = time.perf_counter() - t0
        else:
            reuse += _DENSITY_FIELDS
        t0 = time.perf_counter()
        ev = self.evaluator(a) if metrics else None
        if ev is not None and order.n_samples <= ev.n:  # one draw serves the picture and the metrics
            drawn = ev.draw(m)
            samples = drawn[: order.n_samples].astype(np.float32)
            per = (time.perf_counter() - t0) / len(drawn)
        else:
            drawn = None
            samples = m.sample(order.n_samples, torch.Generator().manual_seed(run.spec.seed + 12345)).numpy()
            per = (time.perf_counter() - t0) / max(order.n_samples, 1)
        if ev is not None:
            run.metrics.add(run.step, ev(m, timing=False, n_mode_samples=1000, samples=drawn))
        if order.n_samples >= self.pacer.n_samples // 2 or a.sample_seconds_per_1000 is None:
            a.sample_seconds_per_1000 = per * 1000  # the scoreboard's speed: from full-size draws
        now = self.clock()
        histories = metrics or not live or order.density or now - a.last_history >= self.history_interval
        if histories:
            a.last_history = now
        else:
            reuse += _HISTORY_FIELDS
        sps = run.steps_per_second
        if a.speed is not None:  # a slowed run's steps per second of wall time
            sps = min(sps, a.speed.rate)
        snap = Snapshot(
            run_id=a.run_id,
            key=run.spec.key,
            title=m.title,
            status=run.status,
            message=run.message,
            step=run.step,
            train_seconds=run.train_seconds,
            steps_per_second=sps,
            progress=self.progress(a),
            lr=m.config.lr,
            wall_seconds=a.wall,
            samples=samples,
            density=density,
            views=views,
            views_time=views_time,
            losses=run.losses.arrays() if histories else {},
            metrics=run.metrics.arrays() if histories else {},
            latest_metrics=latest(run.metrics) if histories else {},
            sample_seconds_per_1000=a.sample_seconds_per_1000,
            time=time.time(),
        )
        self.send(Picture(snap, tuple(reuse), a.seq))
        self.pacer.paid(
            order,
            PictureCost(time.perf_counter() - t_start, density_cost, views_cost, per),
            run.step,
            live,
            a.many,
        )


def density_grid(model, bounds, size: int = 64):
    """log p on a size x size grid over bounds (x0, x1, y0, y1), or None when there is no density."""
    if not model.has_log_prob:
        return None
    x0, x1, y0, y1 = bounds
    gx, gy = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    xx, yy = np.meshgrid(gx, gy)
    lp = model.display_log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).numpy().reshape(size, size)
    return {"x": gx, "y": gy, "log_prob": lp}


def latest(history) -> dict[str, float]:
    """The last value of every metric in a History."""
    out: dict[str, float] = {}
    for _, v in history.records:
        out.update({k: x for k, x in v.items() if x is not None})
    return out


def load_uploaded(run, raw: bytes) -> None:
    """Uploaded weights into a freshly built run: the weights were trained in the upload's coordinates."""
    import torch

    from lab.base import model_from_bytes

    model = model_from_bytes(raw)
    run.model.load_weights(model.weights())
    run.model.scaler = model.scaler
    run.model.train_z = run.model.scaler.to_z(torch.as_tensor(run.train_x, dtype=torch.float32)).to(
        run.model.device
    )


def warm_up() -> None:
    """Import every family and build one optimiser now: torch's first Adam imports ~2 s of modules, which
    would otherwise delay the first run a user builds."""
    import torch

    from lab.base import REGISTRY, get_model_class

    for key in list(REGISTRY):
        try:
            get_model_class(key)
        except Exception:  # a family that cannot import says so when a run asks for it
            pass
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])


def _sentence(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the server shuts down and closes our socket, which ends us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # training takes what the page process and the browser leave: a click, a rerun or a panel's fetch runs
    # first, so the pool can use every core without the page waiting behind it
    try:
        os.nice(NICE)
    except OSError:
        pass
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)  # tiny networks: one intra-op thread per worker is fastest
    threadpool_limits(1)  # and one BLAS thread: oversubscribed cores slow scikit-learn ~20x
    for module in filter(None, os.environ.get("LAB_WORKER_IMPORTS", "").split(",")):
        importlib.import_module(module)  # plug-in families (tests register a toy family this way)
    conn = Connection(int(argv[1]))
    warm_up()
    try:
        Worker(conn).serve()
    except Exception as e:  # a bug here: one line on the server's terminal, and the pool replaces us
        print(f"lab worker stopped: {_sentence(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
